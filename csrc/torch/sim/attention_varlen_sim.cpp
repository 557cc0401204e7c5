// cuda_sim implementations of the varlen and decode attention ops: the CUDA
// kernels of csrc/cuda/attention under the SIMT emulator, on CPU tensors
// (cu_seqlens and seqused_k guarded like the data).
#include <torch/library.h>

#include "cuda/attention/attention.h"
#include "torch/attention_cuda_params.h"
#include "torch/sim/attention_backward_guards.h"
#include "torch/sim/attention_span.h"
#include "torch/sim/guarded.h"

namespace {

using bk::simglue::Guarded;
using bk::simglue::span_of;

int64_t last_decode_splits = 0;  // how the last decode call split the cache (tests)
int64_t attention_decode_last_splits_sim() { return last_decode_splits; }

std::tuple<at::Tensor, at::Tensor> attention_varlen_sim(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                        const at::Tensor& cu_q, const at::Tensor& cu_k,
                                                        int64_t max_q, int64_t max_k, bool causal, double scale) {
  auto a = bk::glue::make_varlen(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale);
  const char* why = bk::cuda::attention_forward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention_varlen (cuda_sim): ", why ? why : "");
  {
    Guarded gq(span_of(a.q), Guarded::kIn), gk(span_of(a.k), Guarded::kIn), gv(span_of(a.v), Guarded::kIn);
    Guarded gcq(a.cu_q, Guarded::kIn), gck(a.cu_k, Guarded::kIn);
    Guarded go(a.o, Guarded::kOut), gl(a.lse, Guarded::kOut);
    bk::AttentionParams p = a.p;
    p.q = gq.get();
    p.k = gk.get();
    p.v = gv.get();
    p.cu_seqlens_q = static_cast<const int64_t*>(gcq.get());
    p.cu_seqlens_k = static_cast<const int64_t*>(gck.get());
    p.o = go.get();
    p.lse = gl.get();
    bk::simglue::check(bk::cuda::attention_forward(p, a.q.scalar_type() == at::kBFloat16, nullptr),
                       "attention_varlen");
  }
  return {a.o, a.lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_varlen_backward_sim(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_lse, const at::Tensor& q, const at::Tensor& k,
    const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse, const at::Tensor& cu_q,
    const at::Tensor& cu_k, int64_t max_q, int64_t max_k, bool causal, double scale) {
  auto a = bk::glue::make_varlen(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale);
  bk::glue::add_varlen_backward(a, grad_out, grad_lse, out, lse);
  const char* why = bk::cuda::attention_backward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention_varlen_backward (cuda_sim): ", why ? why : "");
  if (a.p.seqlen_q == 0 || a.p.seqlen_kv == 0) return {a.dq, a.dk, a.dv};  // zeros: nothing to launch
  {
    bk::simglue::AttentionBackwardGuards<decltype(a)> guards(a);
    Guarded gcq(a.cu_q, Guarded::kIn), gck(a.cu_k, Guarded::kIn);
    bk::AttentionParams p = guards.params(a.p);
    p.cu_seqlens_q = static_cast<const int64_t*>(gcq.get());
    p.cu_seqlens_k = static_cast<const int64_t*>(gck.get());
    const bool bf16 = a.q.scalar_type() == at::kBFloat16;
    bk::simglue::check(bk::cuda::attention_backward(p, guards.workspace(), bf16, nullptr), "attention_varlen_backward");
  }
  return {a.dq, a.dk, a.dv};
}

at::Tensor attention_decode_sim(const at::Tensor& q, at::Tensor& k_cache, at::Tensor& v_cache,
                                const at::Tensor& cache_seqlens, const std::optional<at::Tensor>& k_new,
                                const std::optional<at::Tensor>& v_new, double scale) {
  auto a = bk::glue::make_decode(q, k_cache, v_cache, cache_seqlens, k_new, v_new, scale);
  const char* why = bk::cuda::attention_decode_unsupported(a.f.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention_decode (cuda_sim): ", why ? why : "");
  auto ws = bk::cuda::attention_decode_plan(a.f.p);
  last_decode_splits = ws.num_splits;
  const int64_t splits = ws.num_splits;
  const at::Tensor& fq = a.f.q;
  at::Tensor o_partial = at::empty({splits, fq.size(0), fq.size(1), fq.size(2), fq.size(3)}, a.f.lse.options());
  at::Tensor lse_partial = at::empty({splits, fq.size(0), fq.size(1), fq.size(2)}, a.f.lse.options());
  {
    // The caches are read and written (the append): copied in and back out.
    const bool append = a.append.seqlen_new > 0;
    const auto cache_mode = append ? Guarded::kInOut : Guarded::kIn;
    Guarded gq(span_of(fq), Guarded::kIn), gk(span_of(a.f.k), cache_mode), gv(span_of(a.f.v), cache_mode);
    std::optional<Guarded> gkn, gvn;
    if (append) {
      gkn.emplace(span_of(a.k_new), Guarded::kIn);
      gvn.emplace(span_of(a.v_new), Guarded::kIn);
    }
    Guarded gu(a.f.seqused, Guarded::kIn), go(a.f.o, Guarded::kOut), gl(a.f.lse, Guarded::kOut);
    Guarded gop(o_partial, Guarded::kOut), glp(lse_partial, Guarded::kOut);
    bk::AttentionParams p = a.f.p;
    p.q = gq.get();
    p.k = gk.get();
    p.v = gv.get();
    p.seqused_k = static_cast<const int64_t*>(gu.get());
    p.o = go.get();
    p.lse = gl.get();
    if (splits > 1) {
      ws.o_partial = static_cast<float*>(gop.get());
      ws.lse_partial = static_cast<float*>(glp.get());
    }
    bk::cuda::AttentionCacheAppend ap = a.append;
    if (append) {
      ap.k_new = gkn->get();
      ap.v_new = gvn->get();
      ap.k_cache = gk.get();
      ap.v_cache = gv.get();
    }
    bk::simglue::check(bk::cuda::attention_decode(p, ws, fq.scalar_type() == at::kBFloat16, nullptr, ap),
                       "attention_decode");
  }
  bk::glue::finish_decode(a, k_cache, v_cache);
  return a.f.o;
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("attention_varlen_sim", &attention_varlen_sim);
  m.impl("attention_varlen_backward_sim", &attention_varlen_backward_sim);
  m.impl("attention_decode_sim", &attention_decode_sim);
}

TORCH_LIBRARY_FRAGMENT(bigkernels_sim, m) { m.def("attention_decode_last_splits", &attention_decode_last_splits_sim); }
