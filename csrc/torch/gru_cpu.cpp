// CPU dispatch-key implementations of the GRU layer ops (schemas: bigkernels/ops/gru.py).
// fp16/bf16 run in fp32 like the LSTM (torch/lstm_params.h).
#include <ATen/ops/empty.h>
#include <ATen/ops/sum.h>
#include <torch/library.h>

#include <tuple>

#include "common/gru_params.h"
#include "cpu/lstm/gru_layer.h"
#include "torch/lstm_params.h"

namespace {

using bk::glue::compute;

bk::GruParams make_params(const at::Tensor& h0, const at::Tensor& w_hh, int64_t T, bool reverse) {
  TORCH_CHECK(h0.dim() == 2 && w_hh.dim() == 2 && w_hh.size(0) == 3 * h0.size(1) && w_hh.size(1) == h0.size(1),
              "bigkernels: gru_layer expects h0 [B,H], w_hh [3H,H]");
  bk::GruParams p;
  p.T = T;
  p.B = h0.size(0);
  p.H = h0.size(1);
  p.reverse = reverse;
  p.dtype = h0.scalar_type() == at::kDouble ? bk::DType::F64 : bk::DType::F32;
  return p;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_cpu(const at::Tensor& x_proj, const at::Tensor& h0,
                                                             const at::Tensor& w_hh,
                                                             const std::optional<at::Tensor>& b_hh, bool reverse,
                                                             bool train) {
  TORCH_CHECK(x_proj.dim() == 3 && x_proj.size(1) == h0.size(0) && x_proj.size(2) == 3 * h0.size(1),
              "bigkernels: gru_layer expects x_proj [T,B,3H]");
  auto p = make_params(h0, w_hh, x_proj.size(0), reverse);
  const auto out_type = x_proj.scalar_type();
  const auto opts = x_proj.options().dtype(bk::glue::lstm_compute_type(out_type));
  at::Tensor xp = compute(x_proj), h = compute(h0), w = compute(w_hh);
  at::Tensor b = b_hh.has_value() ? compute(*b_hh) : at::Tensor();
  at::Tensor y = at::empty({p.T, p.B, p.H}, opts), ws = at::empty({train ? p.T : 0, p.B, 4 * p.H}, opts);
  p.x_proj = xp.data_ptr();
  p.h0 = h.data_ptr();
  p.w_hh = w.data_ptr();
  p.b_hh = b.defined() ? b.data_ptr() : nullptr;
  p.y = y.data_ptr();
  p.ws = train ? ws.data_ptr() : nullptr;
  bk::cpu::gru_layer_forward(p);
  at::Tensor hT = p.T > 0 ? y.select(0, reverse ? 0 : p.T - 1) : h;
  return {y.to(out_type), hT.to(out_type, /*non_blocking=*/false, /*copy=*/true), ws};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_layer_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& h0, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& b_hh, const at::Tensor& y, const at::Tensor& ws, bool reverse) {
  auto p = make_params(h0, w_hh, grad_y.size(0), reverse);
  TORCH_CHECK(ws.size(0) == p.T, "bigkernels: gru_layer_backward needs the workspace of a train=True forward");
  const auto out_type = grad_y.scalar_type();
  const auto opts = grad_y.options().dtype(bk::glue::lstm_compute_type(out_type));
  at::Tensor gy = compute(grad_y), ghT = compute(grad_hT), h = compute(h0), w = compute(w_hh), yy = compute(y);
  at::Tensor wsc = compute(ws);
  at::Tensor dxp = at::empty({p.T, p.B, 3 * p.H}, opts), da = at::empty({p.T, p.B, 3 * p.H}, opts);
  at::Tensor dh0 = at::empty({p.B, p.H}, opts), dw = at::empty({3 * p.H, p.H}, opts);
  p.h0 = h.data_ptr();
  p.w_hh = w.data_ptr();
  p.y = yy.data_ptr();
  p.ws = wsc.data_ptr();
  p.grad_y = gy.data_ptr();
  p.grad_hT = ghT.data_ptr();
  p.grad_x_proj = dxp.data_ptr();
  p.grad_a = da.data_ptr();
  p.grad_h0 = dh0.data_ptr();
  p.grad_w_hh = dw.data_ptr();
  bk::cpu::gru_layer_backward(p);
  at::Tensor db = b_hh.has_value() ? at::sum(da, {0, 1}) : at::empty({0}, opts);
  return {dxp.to(out_type), dh0.to(out_type), dw.to(out_type), db.to(out_type)};
}

// Both directions of a bidirectional layer (stacked on a leading dim of 2):
// the one-direction kernel per direction, outputs stacked.
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_bidir_layer_cpu(const at::Tensor& x_proj, const at::Tensor& h0,
                                                                   const at::Tensor& w_hh,
                                                                   const std::optional<at::Tensor>& b_hh, bool train) {
  using bk::glue::dir_of;
  return bk::glue::stack_dirs(gru_layer_cpu(x_proj[0], h0[0], w_hh[0], dir_of(b_hh, 0), false, train),
                              gru_layer_cpu(x_proj[1], h0[1], w_hh[1], dir_of(b_hh, 1), true, train));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_bidir_layer_backward_cpu(
    const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& h0, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& b_hh, const at::Tensor& y, const at::Tensor& ws) {
  using bk::glue::dir_of;
  return bk::glue::stack_dirs(
      gru_layer_backward_cpu(grad_y[0], grad_hT[0], h0[0], w_hh[0], dir_of(b_hh, 0), y[0], ws[0], false),
      gru_layer_backward_cpu(grad_y[1], grad_hT[1], h0[1], w_hh[1], dir_of(b_hh, 1), y[1], ws[1], true));
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("gru_bidir_layer", &gru_bidir_layer_cpu);
  m.impl("gru_bidir_layer_backward", &gru_bidir_layer_backward_cpu);
  m.impl("gru_layer", &gru_layer_cpu);
  m.impl("gru_layer_backward", &gru_layer_backward_cpu);
}
