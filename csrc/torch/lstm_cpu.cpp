// CPU dispatch-key implementations of the LSTM ops (schemas: bigkernels/ops/lstm.py).
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <array>
#include <optional>
#include <tuple>
#include <vector>

#include "cpu/lstm/lstm_layer.h"
#include "torch/lstm_params.h"

namespace {

using bk::glue::compute;
using Tensors5 = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// One direction, writing y, h_T, c_T, gates, cs (compute type; fresh tensors
// or slices of the bidirectional op's stacked outputs).
void forward_into(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                  const std::optional<at::Tensor>& w_hr, bool reverse, bool train, const Tensors5& out) {
  auto p = bk::glue::make_lstm_params(x_proj, h0, c0, w_hh, w_hr, reverse);
  at::Tensor xp = compute(x_proj), h = compute(h0), c = compute(c0), w = compute(w_hh);
  at::Tensor wr = w_hr.has_value() ? compute(*w_hr) : at::Tensor();
  p.x_proj = xp.data_ptr();
  p.h0 = h.data_ptr();
  p.c0 = c.data_ptr();
  p.w_hh = w.data_ptr();
  p.w_hr = wr.defined() ? wr.data_ptr() : nullptr;
  p.y = std::get<0>(out).data_ptr();
  p.h_T = std::get<1>(out).data_ptr();
  p.c_T = std::get<2>(out).data_ptr();
  p.gates = train ? std::get<3>(out).data_ptr() : nullptr;
  p.cs = train ? std::get<4>(out).data_ptr() : nullptr;
  bk::cpu::lstm_layer_forward(p);
}

// Five tensors of the given sizes, each with a leading dim of `dirs` when dirs > 0.
Tensors5 empty5(std::array<std::vector<int64_t>, 5> sizes, int64_t dirs, const at::TensorOptions& opts) {
  for (auto& s : sizes) {
    if (dirs) s.insert(s.begin(), dirs);
  }
  return {at::empty(sizes[0], opts), at::empty(sizes[1], opts), at::empty(sizes[2], opts), at::empty(sizes[3], opts),
          at::empty(sizes[4], opts)};
}

// Forward outputs for `dirs` directions (0: one, unstacked; 2: stacked on a leading dim).
Tensors5 forward_outputs(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0, bool train,
                         int64_t dirs) {
  const int64_t o = dirs ? 1 : 0, T = x_proj.size(o), B = x_proj.size(o + 1), H = c0.size(o + 1);
  const int64_t P = h0.size(o + 1);
  const auto opts = x_proj.options().dtype(bk::glue::lstm_compute_type(x_proj.scalar_type()));
  return empty5({{{T, B, P}, {B, P}, {B, H}, {train ? T : 0, B, 4 * H}, {train ? T : 0, B, H}}}, dirs, opts);
}

Tensors5 cast_outputs(const Tensors5& r, at::ScalarType out_type, bool all) {
  const auto cast = [&](const at::Tensor& t) { return t.to(out_type); };
  return {cast(std::get<0>(r)), cast(std::get<1>(r)), cast(std::get<2>(r)),
          all ? cast(std::get<3>(r)) : std::get<3>(r), all ? cast(std::get<4>(r)) : std::get<4>(r)};
}

Tensors5 lstm_layer_cpu(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                        const std::optional<at::Tensor>& w_hr, bool reverse, bool train) {
  const Tensors5 r = forward_outputs(x_proj, h0, c0, train, 0);
  forward_into(x_proj, h0, c0, w_hh, w_hr, reverse, train, r);
  return cast_outputs(r, x_proj.scalar_type(), false);
}

Tensors5 slice(const Tensors5& r, int64_t d) {
  return {std::get<0>(r)[d], std::get<1>(r)[d], std::get<2>(r)[d], std::get<3>(r)[d], std::get<4>(r)[d]};
}

// Both directions of a bidirectional layer, inputs and outputs stacked on a
// leading dim of 2 ([0] forward, [1] reverse): the one-direction kernel twice,
// each writing its slice of the stacked outputs (no extra copies).
Tensors5 lstm_bidir_layer_cpu(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& c0,
                              const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hr, bool train) {
  TORCH_CHECK(x_proj.dim() == 4 && x_proj.size(0) == 2 && h0.dim() == 3 && c0.dim() == 3 && w_hh.dim() == 3,
              "bigkernels: lstm_bidir_layer expects x_proj [2,T,B,4H], h0 [2,B,P], c0 [2,B,H], w_hh [2,4H,P]");
  const Tensors5 r = forward_outputs(x_proj, h0, c0, train, 2);
  for (int64_t d = 0; d < 2; ++d) {
    forward_into(x_proj[d], h0[d], c0[d], w_hh[d], bk::glue::dir_of(w_hr, d), d == 1, train, slice(r, d));
  }
  return cast_outputs(r, x_proj.scalar_type(), false);
}

void backward_into(const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& grad_cT,
                   const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                   const std::optional<at::Tensor>& w_hr, const at::Tensor& y, const at::Tensor& gates,
                   const at::Tensor& cs, bool reverse, const Tensors5& out) {
  auto p = bk::glue::make_lstm_params(grad_y.new_empty({y.size(0), y.size(1), 4 * c0.size(1)}), h0, c0, w_hh, w_hr,
                                      reverse);
  TORCH_CHECK(gates.size(0) == p.T && cs.size(0) == p.T,
              "bigkernels: lstm_layer_backward needs the workspace of a forward run with train=True");
  at::Tensor gy = compute(grad_y), ghT = compute(grad_hT), gcT = compute(grad_cT);
  at::Tensor h = compute(h0), c = compute(c0), w = compute(w_hh), yy = compute(y);
  at::Tensor g = compute(gates), cc = compute(cs);
  at::Tensor wr = w_hr.has_value() ? compute(*w_hr) : at::Tensor();
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
  p.grad_x_proj = std::get<0>(out).data_ptr();
  p.grad_h0 = std::get<1>(out).data_ptr();
  p.grad_c0 = std::get<2>(out).data_ptr();
  p.grad_w_hh = std::get<3>(out).data_ptr();
  p.grad_w_hr = wr.defined() ? std::get<4>(out).data_ptr() : nullptr;
  bk::cpu::lstm_layer_backward(p);
}

// Backward outputs for `dirs` directions (0: one, unstacked; 2: stacked).
Tensors5 backward_outputs(const at::Tensor& grad_y, const at::Tensor& c0, bool proj, int64_t dirs) {
  const int64_t o = dirs ? 1 : 0, T = grad_y.size(o), B = grad_y.size(o + 1), P = grad_y.size(o + 2);
  const int64_t H = c0.size(o + 1);
  const auto opts = grad_y.options().dtype(bk::glue::lstm_compute_type(grad_y.scalar_type()));
  return empty5({{{T, B, 4 * H}, {B, P}, {B, H}, {4 * H, P}, {proj ? P : 0, proj ? H : 0}}}, dirs, opts);
}

Tensors5 lstm_layer_backward_cpu(const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& grad_cT,
                                 const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                                 const std::optional<at::Tensor>& w_hr, const at::Tensor& y, const at::Tensor& gates,
                                 const at::Tensor& cs, bool reverse) {
  const Tensors5 r = backward_outputs(grad_y, c0, w_hr.has_value(), 0);
  backward_into(grad_y, grad_hT, grad_cT, h0, c0, w_hh, w_hr, y, gates, cs, reverse, r);
  return cast_outputs(r, grad_y.scalar_type(), true);
}

Tensors5 lstm_bidir_layer_backward_cpu(const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& grad_cT,
                                       const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
                                       const std::optional<at::Tensor>& w_hr, const at::Tensor& y,
                                       const at::Tensor& gates, const at::Tensor& cs) {
  TORCH_CHECK(grad_y.dim() == 4 && grad_y.size(0) == 2 && c0.dim() == 3,
              "bigkernels: lstm_bidir_layer_backward expects grad_y [2,T,B,P], c0 [2,B,H]");
  const Tensors5 r = backward_outputs(grad_y, c0, w_hr.has_value(), 2);
  for (int64_t d = 0; d < 2; ++d) {
    backward_into(grad_y[d], grad_hT[d], grad_cT[d], h0[d], c0[d], w_hh[d], bk::glue::dir_of(w_hr, d), y[d],
                  gates[d], cs[d], d == 1, slice(r, d));
  }
  return cast_outputs(r, grad_y.scalar_type(), true);
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("lstm_layer", &lstm_layer_cpu);
  m.impl("lstm_layer_backward", &lstm_layer_backward_cpu);
  m.impl("lstm_bidir_layer", &lstm_bidir_layer_cpu);
  m.impl("lstm_bidir_layer_backward", &lstm_bidir_layer_backward_cpu);
}
