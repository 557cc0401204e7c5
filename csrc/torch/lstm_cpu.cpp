// CPU dispatch-key implementations of the LSTM ops (schemas: bigkernels/ops/lstm.py).
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <tuple>

#include "cpu/lstm/lstm_layer.h"
#include "torch/lstm_params.h"

namespace {

using bk::glue::compute;
using Tensors5 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

Tensors5 lstm_layer_cpu(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                        const std::optional<at::Tensor>& w_hr, bool reverse, bool train) {
  auto p = bk::glue::make_lstm_params(x_proj, h0, c0, w_hh, w_hr, reverse);
  const auto out_type = x_proj.scalar_type();
  const auto opts = x_proj.options().dtype(bk::glue::lstm_compute_type(out_type));
  at::Tensor xp = compute(x_proj), h = compute(h0), c = compute(c0), w = compute(w_hh);
  at::Tensor wr = w_hr.has_value() ? compute(*w_hr) : at::Tensor();
  at::Tensor y = at::empty({p.T, p.B, p.P}, opts), hT = at::empty({p.B, p.P}, opts), cT = at::empty({p.B, p.H}, opts);
  at::Tensor gates = at::empty({train ? p.T : 0, p.B, 4 * p.H}, opts);
  at::Tensor cs = at::empty({train ? p.T : 0, p.B, p.H}, opts);
  p.x_proj = xp.data_ptr();
  p.h0 = h.data_ptr();
  p.c0 = c.data_ptr();
  p.w_hh = w.data_ptr();
  p.w_hr = wr.defined() ? wr.data_ptr() : nullptr;
  p.y = y.data_ptr();
  p.h_T = hT.data_ptr();
  p.c_T = cT.data_ptr();
  p.gates = train ? gates.data_ptr() : nullptr;
  p.cs = train ? cs.data_ptr() : nullptr;
  bk::cpu::lstm_layer_forward(p);
  return {y.to(out_type), hT.to(out_type), cT.to(out_type), gates, cs};
}

Tensors5 lstm_layer_backward_cpu(const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& grad_cT,
                                 const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                                 const std::optional<at::Tensor>& w_hr, const at::Tensor& y, const at::Tensor& gates,
                                 const at::Tensor& cs, bool reverse) {
  auto p = bk::glue::make_lstm_params(grad_y.new_empty({y.size(0), y.size(1), 4 * c0.size(1)}), h0, c0, w_hh, w_hr,
                                      reverse);
  TORCH_CHECK(gates.size(0) == p.T && cs.size(0) == p.T,
              "bigkernels: lstm_layer_backward needs the workspace of a forward run with train=True");
  const auto out_type = grad_y.scalar_type();
  const auto opts = grad_y.options().dtype(bk::glue::lstm_compute_type(out_type));
  at::Tensor gy = compute(grad_y), ghT = compute(grad_hT), gcT = compute(grad_cT);
  at::Tensor h = compute(h0), c = compute(c0), w = compute(w_hh), yy = compute(y);
  at::Tensor g = compute(gates), cc = compute(cs);
  at::Tensor wr = w_hr.has_value() ? compute(*w_hr) : at::Tensor();
  at::Tensor dxp = at::empty({p.T, p.B, 4 * p.H}, opts), dh0 = at::empty({p.B, p.P}, opts);
  at::Tensor dc0 = at::empty({p.B, p.H}, opts), dw = at::empty({4 * p.H, p.P}, opts);
  at::Tensor dwr = at::empty({wr.defined() ? p.P : 0, wr.defined() ? p.H : 0}, opts);
  p.h0 = h.data_ptr();
  p.c0 = c.data_ptr();
  p.w_hh = w.data_ptr();
  p.w_hr = wr.defined() ? wr.data_ptr() : nullptr;
  p.y = yy.data_ptr();
  p.gates = g.data_ptr();
  p.cs = cc.data_ptr();
  p.grad_y = gy.data_ptr();
  p.grad_hT = ghT.data_ptr();
  p.grad_cT = gcT.data_ptr();
  p.grad_x_proj = dxp.data_ptr();
  p.grad_h0 = dh0.data_ptr();
  p.grad_c0 = dc0.data_ptr();
  p.grad_w_hh = dw.data_ptr();
  p.grad_w_hr = wr.defined() ? dwr.data_ptr() : nullptr;
  bk::cpu::lstm_layer_backward(p);
  return {dxp.to(out_type), dh0.to(out_type), dc0.to(out_type), dw.to(out_type), dwr.to(out_type)};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("lstm_layer", &lstm_layer_cpu);
  m.impl("lstm_layer_backward", &lstm_layer_backward_cpu);
}
