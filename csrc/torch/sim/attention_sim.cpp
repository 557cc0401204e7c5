// cuda_sim implementations of the attention forward and backward: the CUDA kernels of
// csrc/cuda/attention under the SIMT emulator, on CPU tensors. Inputs are
// read in place through their strides, as on the GPU: each is guarded as the
// span of memory its strides reach (a transposed view, a broadcast mask with
// stride-0 dims), so a read past that span faults.
#include <torch/library.h>

#include "cuda/attention/attention.h"
#include "torch/attention_cuda_params.h"
#include "torch/sim/attention_backward_guards.h"
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
    bk::simglue::AttentionBackwardGuards<decltype(a)> guards(a);
    std::optional<Guarded> gm;
    if (a.mask.has_value()) gm.emplace(span_of(*a.mask), Guarded::kIn);
    bk::AttentionParams p = guards.params(a.p);
    p.mask = gm ? gm->get() : nullptr;
    const bool bf16 = a.q.scalar_type() == at::kBFloat16;
    bk::simglue::check(bk::cuda::attention_backward(p, guards.workspace(), bf16, nullptr), "attention_backward");
  }
  return {a.dq, a.dk, a.dv};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("attention_sim", &attention_sim);
  m.impl("attention_backward_sim", &attention_backward_sim);
}
