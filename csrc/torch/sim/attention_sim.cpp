// cuda_sim implementations of the attention forward and backward: the CUDA kernels of
// csrc/cuda/attention under the SIMT emulator, on CPU tensors. Inputs are
// read in place through their strides, as on the GPU: each is guarded as the
// span of memory its strides reach (a transposed view, a broadcast mask with
// stride-0 dims), so a read past that span faults.
#include <torch/library.h>

#include "cuda/attention/attention.h"
#include "torch/attention_cuda_params.h"
#include "torch/sim/attention_span.h"
#include "torch/sim/guarded.h"

namespace {

using bk::simglue::Guarded;
using bk::simglue::span_of;

std::tuple<at::Tensor, at::Tensor> attention_sim(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                 const std::optional<at::Tensor>& mask, bool causal, double scale,
                                                 double dropout_p, int64_t seed, int64_t offset) {
  auto a = bk::glue::make_attention_forward(q, k, v, mask, causal, scale, dropout_p, seed, offset);
  const char* why = bk::cuda::attention_forward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention (cuda_sim): ", why ? why : "");
  {
    Guarded gq(span_of(a.q), Guarded::kIn), gk(span_of(a.k), Guarded::kIn), gv(span_of(a.v), Guarded::kIn);
    Guarded go(a.o, Guarded::kOut), gl(a.lse, Guarded::kOut);
    std::optional<Guarded> gm;
    if (a.mask.has_value()) gm.emplace(span_of(*a.mask), Guarded::kIn);
    bk::AttentionParams p = a.p;
    p.q = gq.get();
    p.k = gk.get();
    p.v = gv.get();
    p.o = go.get();
    p.lse = gl.get();
    p.mask = gm ? gm->get() : nullptr;
    bk::simglue::check(bk::cuda::attention_forward(p, a.q.scalar_type() == at::kBFloat16, nullptr), "attention");
  }
  return {a.o, a.lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_backward_sim(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_lse, const at::Tensor& q, const at::Tensor& k,
    const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse, const std::optional<at::Tensor>& mask,
    bool causal, double scale, double dropout_p, int64_t seed, int64_t offset) {
  auto a = bk::glue::make_attention_backward(grad_out, grad_lse, q, k, v, out, lse, mask, causal, scale, dropout_p,
                                             seed, offset);
  const char* why = bk::cuda::attention_backward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention_backward (cuda_sim): ", why ? why : "");
  if (a.p.seqlen_q == 0 || a.p.seqlen_kv == 0) return {a.dq, a.dk, a.dv};  // zeros: nothing to launch
  {
    Guarded gq(span_of(a.q), Guarded::kIn), gk(span_of(a.k), Guarded::kIn), gv(span_of(a.v), Guarded::kIn);
    Guarded go(span_of(a.o), Guarded::kIn), gg(span_of(a.g), Guarded::kIn), gl(a.lse, Guarded::kIn);
    Guarded gdq(a.dq, Guarded::kOut), gdk(a.dk, Guarded::kOut), gdv(a.dv, Guarded::kOut);
    // scratch starts poisoned too: the preprocess kernel must zero the dQ accumulator
    Guarded gacc(a.dq_accum, Guarded::kOut), gl2(a.lse_log2, Guarded::kOut), gdelta(a.delta, Guarded::kOut);
    std::optional<Guarded> gm, gdl;
    if (a.mask.has_value()) gm.emplace(span_of(*a.mask), Guarded::kIn);
    if (a.p.dlse) gdl.emplace(a.dlse, Guarded::kIn);
    bk::AttentionParams p = a.p;
    p.q = gq.get();
    p.k = gk.get();
    p.v = gv.get();
    p.o = go.get();
    p.dout = gg.get();
    p.lse = gl.get();
    p.dlse = gdl ? gdl->get() : nullptr;
    p.mask = gm ? gm->get() : nullptr;
    p.dq = gdq.get();
    p.dk = gdk.get();
    p.dv = gdv.get();
    bk::cuda::AttentionBwdWorkspace ws;
    ws.dq_accum = static_cast<float*>(gacc.get());
    ws.lse_log2 = static_cast<float*>(gl2.get());
    ws.delta = static_cast<float*>(gdelta.get());
    bk::simglue::check(bk::cuda::attention_backward(p, ws, a.q.scalar_type() == at::kBFloat16, nullptr),
                       "attention_backward");
  }
  return {a.dq, a.dk, a.dv};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("attention_sim", &attention_sim);
  m.impl("attention_backward_sim", &attention_backward_sim);
}
