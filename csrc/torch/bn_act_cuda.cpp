// CUDA dispatch-key implementations of the BN + residual + activation ops
// (schemas: bigkernels/ops/batchnorm.py): device guard, torch's current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "torch/bn_glue.h"

namespace {

struct Cuda {
  struct Scope {
    const void* in(const at::Tensor& t) { return t.data_ptr(); }
    void* out(const at::Tensor& t) { return t.data_ptr(); }
  };
  static cudaStream_t stream(const at::Tensor& t) {
    return c10::cuda::getCurrentCUDAStream(t.device().index()).stream();
  }
  static void check(cudaError_t err, const char* what) {
    TORCH_CHECK(err == cudaSuccess, "bigkernels: ", what, " launch failed: ", cudaGetErrorString(err));
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor> bn_act_cuda(
    const at::Tensor& z, const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& residual, const std::optional<at::Tensor>& mean,
    const std::optional<at::Tensor>& var, double eps, int64_t activation, double alpha) {
  c10::cuda::CUDAGuard guard(z.device());
  return bk::glue::bn_act_forward<Cuda>(z, weight, bias, residual, mean, var, eps, activation, alpha);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bn_act_backward_cuda(
    const at::Tensor& grad_y, const at::Tensor& z, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual, const at::Tensor& mean,
    const at::Tensor& var, double eps, int64_t activation, double alpha, bool batch_stats,
    std::array<bool, 4> output_mask) {
  c10::cuda::CUDAGuard guard(z.device());
  return bk::glue::bn_act_backward<Cuda>(grad_y, z, weight, bias, residual, mean, var, eps, activation, alpha,
                                         batch_stats, output_mask);
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) {
  m.impl("bn_act", &bn_act_cuda);
  m.impl("bn_act_backward", &bn_act_backward_cuda);
}
