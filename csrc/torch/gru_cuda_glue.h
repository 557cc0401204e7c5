// Tensor side of the CUDA GRU kernels, shared by the CUDA glue (gru_cuda.cpp)
// and the emulator glue (sim/gru_sim.cpp); see lstm_cuda_glue.h for the
// pattern. dW_hh = sum_t da_t^T h_{t-1} and db_hh = sum da run here (ATen)
// after the recurrence.
#pragma once
#include <ATen/ops/sum.h>

#include "cuda/lstm/gru_cuda.h"
#include "torch/lstm_cuda_glue.h"

namespace bk {
namespace glue {

inline GruParams make_gru_cuda_params(const at::Tensor& h0, const at::Tensor& w_hh, int64_t T, bool reverse) {
  TORCH_CHECK(h0.dim() == 2 && w_hh.dim() == 2 && w_hh.size(0) == 3 * h0.size(1) && w_hh.size(1) == h0.size(1),
              "bigkernels: gru_layer expects h0 [B,H], w_hh [3H,H]");
  GruParams p;
  p.T = T;
  p.B = h0.size(0);
  p.H = h0.size(1);
  p.reverse = reverse;
  return p;
}

struct GruForwardCall {
  GruParams p;
  bk::cuda::GruCudaWork w;
  std::vector<Binding> bindings;
  at::Tensor h0f, y, ws, hbuf;
  at::ScalarType out_type;

  GruForwardCall(const at::Tensor& x_proj, const at::Tensor& h0, const at::Tensor& w_hh,
                 const std::optional<at::Tensor>& b_hh, bool reverse, bool train) {
    TORCH_CHECK(x_proj.dim() == 3 && x_proj.size(1) == h0.size(0) && x_proj.size(2) == 3 * h0.size(1),
                "bigkernels: gru_layer expects x_proj [T,B,3H]");
    p = make_gru_cuda_params(h0, w_hh, x_proj.size(0), reverse);
    w.storage = lstm_storage(x_proj);
    out_type = x_proj.scalar_type();
    const auto o32 = x_proj.options().dtype(at::kFloat);
    h0f = f32(h0);
    y = at::empty({p.T, p.B, p.H}, x_proj.options());
    ws = at::empty({train ? p.T : 0, p.B, 4 * p.H}, o32);
    hbuf = at::empty({2, p.B, p.H}, o32);
    bindings = {{x_proj.contiguous(), false, slot(&p.x_proj)},
                {w_hh.to(out_type).contiguous(), false, slot(&p.w_hh)}, {h0f, false, slot(&w.h0)}, {y, true, slot(&p.y)}, {hbuf, true, slot(&w.hbuf)}};
    if (b_hh.has_value()) bindings.push_back({f32(*b_hh), false, slot(&w.b_hh)});
    if (train) bindings.push_back({ws, true, slot(&p.ws)});
  }

  std::tuple<at::Tensor, at::Tensor, at::Tensor> outputs() const {
    at::Tensor hT = p.T > 0 ? hbuf[(p.T - 1) % 2] : h0f;
    return {y, hT.to(out_type, false, true), ws};  // a copy: with T = 0 it would alias h0
  }
};

struct GruBackwardCall {
  GruParams p;
  bk::cuda::GruCudaWork w;
  std::vector<Binding> bindings;
  at::Tensor ghT, w_hh_s, h_prev, dx, da, dd;
  bool bias;
  at::ScalarType out_type;

  GruBackwardCall(const at::Tensor& grad_y, const at::Tensor& grad_hT, const at::Tensor& h0, const at::Tensor& w_hh,
                  const std::optional<at::Tensor>& b_hh, const at::Tensor& y, const at::Tensor& ws, bool reverse) {
    p = make_gru_cuda_params(h0, w_hh, grad_y.size(0), reverse);
    TORCH_CHECK(ws.size(0) == p.T, "bigkernels: gru_layer_backward needs the workspace of a train=True forward");
    w.storage = lstm_storage(grad_y);
    out_type = grad_y.scalar_type();
    bias = b_hh.has_value();
    const auto o32 = grad_y.options().dtype(at::kFloat);
    const int64_t T = p.T;
    ghT = f32(grad_hT);
    w_hh_s = w_hh.to(out_type).contiguous();
    // h_{t-1} of every step t, in fp32: h0 for the first forward step, else y of the forward predecessor
    const at::Tensor h0f = f32(h0), yf = y.to(at::kFloat);
    h_prev = T <= 1 ? h0f.unsqueeze(0).expand({T, p.B, p.H}).contiguous()
             : reverse ? at::cat({yf.slice(0, 1, T), h0f.unsqueeze(0)}, 0)
                       : at::cat({h0f.unsqueeze(0), yf.slice(0, 0, T - 1)}, 0);
    dx = at::empty({T, p.B, 3 * p.H}, o32);
    da = at::empty({T, p.B, 3 * p.H}, o32);
    dd = at::empty({p.B, p.H}, o32);
    bindings = {{grad_y.contiguous(), false, slot(&p.grad_y)}, {w_hh_s, false, slot(&p.w_hh)},
                {f32(ws), false, slot(&p.ws)}, {h_prev, false, slot(&w.h_prev)}, {ghT, false, slot(&w.grad_hT)},
                {dx, true, slot(&w.dx)}, {da, true, slot(&w.da)}, {dd, true, slot(&w.dd)}};
  }

  std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> outputs() const {
    const int64_t T = p.T, B = p.B, H = p.H, G = 3 * H;
    const auto opts = ghT.options().dtype(out_type);
    at::Tensor db = bias ? at::sum(da, {0, 1}).to(out_type) : at::empty({0}, opts);
    if (T == 0) {
      return {dx.to(out_type), ghT.to(out_type, false, true), at::zeros({G, H}, opts),
              bias ? at::zeros({G}, opts) : db};
    }
    const at::Tensor dh0 = dd.add(at::mm(da[p.reverse ? T - 1 : 0], w_hh_s.to(at::kFloat)));
    const at::Tensor dw = at::mm(da.reshape({T * B, G}).t(), h_prev.reshape({T * B, H}));
    return {dx.to(out_type), dh0.to(out_type), dw.to(out_type), db};
  }
};

}  // namespace glue
}  // namespace bk
