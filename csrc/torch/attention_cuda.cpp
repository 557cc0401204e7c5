// CUDA dispatch-key implementation of the attention forward (schema:
// bigkernels/ops/attention.py): the FlashAttention-2-style kernels of
// csrc/cuda/attention. Compiled only where torch has CUDA: a device guard
// and torch's current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/attention/attention.h"
#include "torch/attention_cuda_params.h"

namespace {

std::tuple<at::Tensor, at::Tensor> attention_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                                  const std::optional<at::Tensor>& mask, bool causal, double scale,
                                                  double dropout_p, int64_t seed, int64_t offset) {
  c10::cuda::CUDAGuard guard(q.device());
  auto a = bk::glue::make_attention_forward(q, k, v, mask, causal, scale, dropout_p, seed, offset);
  const char* why = bk::cuda::attention_forward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention (cuda): ", why ? why : "");
  const cudaError_t err = bk::cuda::attention_forward(a.p, a.q.scalar_type() == at::kBFloat16,
                                                      c10::cuda::getCurrentCUDAStream(q.device().index()).stream());
  TORCH_CHECK(err == cudaSuccess, "bigkernels: attention launch failed: ", cudaGetErrorString(err));
  return {a.o, a.lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> attention_backward_cuda(
    const at::Tensor& grad_out, const std::optional<at::Tensor>& grad_lse, const at::Tensor& q, const at::Tensor& k,
    const at::Tensor& v, const at::Tensor& out, const at::Tensor& lse, const std::optional<at::Tensor>& mask,
    bool causal, double scale, double dropout_p, int64_t seed, int64_t offset) {
  c10::cuda::CUDAGuard guard(q.device());
  auto a = bk::glue::make_attention_backward(grad_out, grad_lse, q, k, v, out, lse, mask, causal, scale, dropout_p,
                                             seed, offset);
  const char* why = bk::cuda::attention_backward_unsupported(a.p);
  TORCH_CHECK(why == nullptr, "bigkernels: attention_backward (cuda): ", why ? why : "");
  bk::cuda::AttentionBwdWorkspace ws;
  ws.dq_accum = a.dq_accum.data_ptr<float>();
  ws.lse_log2 = a.lse_log2.data_ptr<float>();
  ws.delta = a.delta.data_ptr<float>();
  const cudaError_t err = bk::cuda::attention_backward(a.p, ws, a.q.scalar_type() == at::kBFloat16,
                                                       c10::cuda::getCurrentCUDAStream(q.device().index()).stream());
  TORCH_CHECK(err == cudaSuccess, "bigkernels: attention_backward launch failed: ", cudaGetErrorString(err));
  return {a.dq, a.dk, a.dv};
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) {
  m.impl("attention", &attention_cuda);
  m.impl("attention_backward", &attention_backward_cuda);
}
