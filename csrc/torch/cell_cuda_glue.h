// Tensor side of the fused cell kernels (cuda/lstm/cell_cuda.h), shared by
// the CUDA glue (cell_cuda.cpp) and the emulator glue (sim/cell_sim.cpp).
// Outputs: LSTM (h1, c1, gates [1, B, 4H] fp32, cs [1, B, H] fp32), GRU
// (h1, ws [1, B, 4H] fp32): the workspace of a one-step layer, so the
// backward reuses the layer backward op (bigkernels/ops/lstm.py, gru.py).
#pragma once
#include "cuda/lstm/cell_cuda.h"
#include "torch/lstm_cuda_glue.h"

namespace bk {
namespace glue {

struct CellCall {
  bk::cuda::CellParams p;
  std::vector<Binding> bindings;
  at::Tensor h1, c1, gates, cs;

  CellCall(int gates_per_unit, const at::Tensor& x, const at::Tensor& h, const std::optional<at::Tensor>& c,
           const at::Tensor& w_ih, const at::Tensor& w_hh, const std::optional<at::Tensor>& b_ih,
           const std::optional<at::Tensor>& b_hh, bool train) {
    const int64_t G = gates_per_unit;
    TORCH_CHECK(x.dim() == 2 && h.dim() == 2 && w_ih.dim() == 2 && w_hh.dim() == 2 && h.size(0) == x.size(0) &&
                    w_ih.size(0) == G * h.size(1) && w_ih.size(1) == x.size(1) && w_hh.size(0) == G * h.size(1) &&
                    w_hh.size(1) == h.size(1),
                "bigkernels: cell expects x [B,I], h [B,H], w_ih [GH,I], w_hh [GH,H]");
    p.B = x.size(0);
    p.I = x.size(1);
    p.H = h.size(1);
    p.storage = lstm_storage(x);
    const auto type = x.scalar_type();
    const auto o32 = x.options().dtype(at::kFloat);
    h1 = at::empty({p.B, p.H}, x.options());
    gates = at::empty({train ? 1 : 0, p.B, 4 * p.H}, o32);
    bindings = {{x.contiguous(), false, slot(&p.x)}, {h.to(type).contiguous(), false, slot(&p.h)},
                {w_ih.to(type).contiguous(), false, slot(&p.w_ih)},
                {w_hh.to(type).contiguous(), false, slot(&p.w_hh)}, {h1, true, slot(&p.h1)}};
    if (c.has_value()) {
      TORCH_CHECK(c->sizes() == h.sizes(), "bigkernels: lstm cell expects c like h");
      c1 = at::empty({p.B, p.H}, x.options());
      cs = at::empty({train ? 1 : 0, p.B, p.H}, o32);
      bindings.push_back({c->to(type).contiguous(), false, slot(&p.c)});
      bindings.push_back({c1, true, slot(&p.c1)});
      if (train) bindings.push_back({cs, true, slot(&p.cs)});
    }
    if (b_ih.has_value()) bindings.push_back({b_ih->to(type).contiguous(), false, slot(&p.b_ih)});
    if (b_hh.has_value()) bindings.push_back({b_hh->to(type).contiguous(), false, slot(&p.b_hh)});
    if (train) bindings.push_back({gates, true, slot(&p.gates)});
  }
};

}  // namespace glue
}  // namespace bk
