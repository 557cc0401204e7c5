// The guarded copies every emulated attention backward reads and writes (q,
// k, v, out, grad_out, lse, dq, dk, dv, the dQ accumulator and the
// preprocess scratch, an optional grad_lse), and the params and workspace
// pointing into them: shared by the dense and varlen cuda_sim glue, which add
// their own inputs (a mask; cu_seqlens) on top.
#pragma once
#include <optional>

#include "cuda/attention/attention.h"
#include "torch/sim/attention_span.h"
#include "torch/sim/guarded.h"

namespace bk {
namespace simglue {

template <typename Args>  // the glue's backward arguments (bk::glue::make_attention_backward / make_varlen)
struct AttentionBackwardGuards {
  Guarded q, k, v, o, g, lse, dq, dk, dv;
  // scratch starts poisoned too: the preprocess kernel must zero the dQ accumulator
  Guarded dq_accum, lse_log2, delta;
  std::optional<Guarded> dlse;

  explicit AttentionBackwardGuards(const Args& a)
      : q(span_of(a.q), Guarded::kIn), k(span_of(a.k), Guarded::kIn), v(span_of(a.v), Guarded::kIn),
        o(span_of(a.o), Guarded::kIn), g(span_of(a.g), Guarded::kIn), lse(a.lse, Guarded::kIn),
        dq(a.dq, Guarded::kOut), dk(a.dk, Guarded::kOut), dv(a.dv, Guarded::kOut),
        dq_accum(a.dq_accum, Guarded::kOut), lse_log2(a.lse_log2, Guarded::kOut), delta(a.delta, Guarded::kOut) {
    if (a.p.dlse) dlse.emplace(a.dlse, Guarded::kIn);
  }

  // base's shapes and flags with every pointer above swapped in
  bk::AttentionParams params(bk::AttentionParams p) const {
    p.q = q.get();
    p.k = k.get();
    p.v = v.get();
    p.o = o.get();
    p.dout = g.get();
    p.lse = lse.get();
    p.dlse = dlse ? dlse->get() : nullptr;
    p.dq = dq.get();
    p.dk = dk.get();
    p.dv = dv.get();
    return p;
  }

  bk::cuda::AttentionBwdWorkspace workspace() const {
    bk::cuda::AttentionBwdWorkspace ws;
    ws.dq_accum = static_cast<float*>(dq_accum.get());
    ws.lse_log2 = static_cast<float*>(lse_log2.get());
    ws.delta = static_cast<float*>(delta.get());
    return ws;
  }
};

}  // namespace simglue
}  // namespace bk
