// CUDA dispatch-key implementations of the packed-sequence (varlen) and
// KV-cache (decode) attention ops (schemas: bigkernels/ops/attention_varlen.py):
// the dense kernels with per-sequence lengths, and the split-KV decode kernel.
// Compiled only where torch has CUDA: a device guard and the current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/attention/attention.h"
#include "torch/attention_cuda_params.h"

namespace {

cudaStream_t stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

void check(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "bigkernels: ", what, " launch failed: ", cudaGetErrorString(err));
}

std::tuple<at::Tensor, at::Tensor> attention_varlen_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                         const at::Tensor& cu_q, const at::Tensor& cu_k,
                                                         int64_t max_q, int64_t max_k, bool causal, double scale) {
  c10::cuda::CUDAGuard guard(q.device());
  auto a = bk::glue::make_varlen(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale);
  const char* why = bk::cuda::attention_forward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention_varlen (cuda): ", why ? why : "");
  check(bk::cuda::attention_forward(a.p, a.q.scalar_type() == at::kBFloat16, stream_of(q)), "attention_varlen");
  return {a.o, a.lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_varlen_backward_cuda(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_lse, const at::Tensor& q, const at::Tensor& k,
    const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse, const at::Tensor& cu_q,
    const at::Tensor& cu_k, int64_t max_q, int64_t max_k, bool causal, double scale) {
  c10::cuda::CUDAGuard guard(q.device());
  auto a = bk::glue::make_varlen(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale);
  bk::glue::add_varlen_backward(a, grad_out, grad_lse, out, lse);
  const char* why = bk::cuda::attention_backward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention_varlen_backward (cuda): ", why ? why : "");
  bk::cuda::AttentionBwdWorkspace ws;
  ws.dq_accum = a.dq_accum.data_ptr<float>();
  ws.lse_log2 = a.lse_log2.data_ptr<float>();
  ws.delta = a.delta.data_ptr<float>();
  check(bk::cuda::attention_backward(a.p, ws, a.q.scalar_type() == at::kBFloat16, stream_of(q)),
        "attention_varlen_backward");
  return {a.dq, a.dk, a.dv};
}

at::Tensor attention_decode_cuda(const at::Tensor& q, at::Tensor& k_cache, at::Tensor& v_cache,
                                 const at::Tensor& cache_seqlens, const std::optional<at::Tensor>& k_new,
                                 const std::optional<at::Tensor>& v_new, double scale) {
  c10::cuda::CUDAGuard guard(q.device());
  auto a = bk::glue::make_decode(q, k_cache, v_cache, cache_seqlens, k_new, v_new, scale);
  const char* why = bk::cuda::attention_decode_unsupported(a.f.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention_decode (cuda): ", why ? why : "");
  auto ws = bk::cuda::attention_decode_plan(a.f.p);
  const at::Tensor& fq = a.f.q;
  at::Tensor o_partial, lse_partial;
  if (ws.num_splits > 1) {
    o_partial = at::empty({ws.num_splits, fq.size(0), fq.size(1), fq.size(2), fq.size(3)}, a.f.lse.options());
    lse_partial = at::empty({ws.num_splits, fq.size(0), fq.size(1), fq.size(2)}, a.f.lse.options());
    ws.o_partial = o_partial.data_ptr<float>();
    ws.lse_partial = lse_partial.data_ptr<float>();
  }
  check(bk::cuda::attention_decode(a.f.p, ws, fq.scalar_type() == at::kBFloat16, stream_of(q), a.append),
        "attention_decode");
  bk::glue::finish_decode(a, k_cache, v_cache);
  return a.f.o;
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) {
  m.impl("attention_varlen", &attention_varlen_cuda);
  m.impl("attention_varlen_backward", &attention_varlen_backward_cuda);
  m.impl("attention_decode", &attention_decode_cuda);
}
