// CPU dispatch-key implementations of the Elman RNN layer ops (schemas: bigkernels/ops/rnn.py).
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <tuple>

#include "common/rnn_params.h"
#include "cpu/lstm/rnn_layer.h"
#include "torch/lstm_params.h"

namespace {

using bk::glue::compute;

bk::RnnParams make_params(const at::Tensor& h0, const at::Tensor& w_hh, int64_t T, bool relu, bool reverse) {
  TORCH_CHECK(h0.dim() == 2 && w_hh.dim() == 2 && w_hh.size(0) == h0.size(1) && w_hh.size(1) == h0.size(1),
              "bigkernels: rnn_layer expects h0 [B,H], w_hh [H,H]");
  bk::RnnParams p;
  p.T = T;
  p.B = h0.size(0);
  p.H = h0.size(1);
  p.relu = relu;
  p.reverse = reverse;
  p.dtype = h0.scalar_type() == at::kDouble ? bk::DType::F64 : bk::DType::F32;
  return p;
}

std::tuple<at::Tensor, at::Tensor> rnn_layer_cpu(const at::Tensor& x_proj, const at::Tensor& h0,
                                                 const at::Tensor& w_hh, bool relu, bool reverse) {
  TORCH_CHECK(x_proj.dim() == 3 && x_proj.size(1) == h0.size(0) && x_proj.size(2) == h0.size(1),
              "bigkernels: rnn_layer expects x_proj [T,B,H]");
  auto p = make_params(h0, w_hh, x_proj.size(0), relu, reverse);
  const auto out_type = x_proj.scalar_type();
  at::Tensor xp = compute(x_proj), h = compute(h0), w = compute(w_hh);
  at::Tensor y = at::empty({p.T, p.B, p.H}, xp.options());
  p.x_proj = xp.data_ptr();
  p.h0 = h.data_ptr();
  p.w_hh = w.data_ptr();
  p.y = y.data_ptr();
  bk::cpu::rnn_layer_forward(p);
  at::Tensor hT = p.T > 0 ? y.select(0, reverse ? 0 : p.T - 1) : h;
  return {y.to(out_type), hT.to(out_type, /*non_blocking=*/false, /*copy=*/true)};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> rnn_layer_backward_cpu(const at::Tensor& grad_y,
                                                                      const at::Tensor& grad_hT, const at::Tensor& h0,
                                                                      const at::Tensor& w_hh, const at::Tensor& y,
                                                                      bool relu, bool reverse) {
  auto p = make_params(h0, w_hh, grad_y.size(0), relu, reverse);
  const auto out_type = grad_y.scalar_type();
  at::Tensor gy = compute(grad_y), ghT = compute(grad_hT), h = compute(h0), w = compute(w_hh), yy = compute(y);
  at::Tensor dxp = at::empty({p.T, p.B, p.H}, gy.options()), dh0 = at::empty({p.B, p.H}, gy.options());
  at::Tensor dw = at::empty({p.H, p.H}, gy.options());
  p.h0 = h.data_ptr();
  p.w_hh = w.data_ptr();
  p.y = yy.data_ptr();
  p.grad_y = gy.data_ptr();
  p.grad_hT = ghT.data_ptr();
  p.grad_x_proj = dxp.data_ptr();
  p.grad_h0 = dh0.data_ptr();
  p.grad_w_hh = dw.data_ptr();
  bk::cpu::rnn_layer_backward(p);
  return {dxp.to(out_type), dh0.to(out_type), dw.to(out_type)};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("rnn_layer", &rnn_layer_cpu);
  m.impl("rnn_layer_backward", &rnn_layer_backward_cpu);
}
