// CUDA dispatch-key implementations of the epilogue ops. Compiled only where
// torch has CUDA: the device guard and torch's current stream, never the default one.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/epilogue/bias_act.h"
#include "torch/epilogue_params.h"

namespace {

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "bigkernels: ", what, " launch failed: ", cudaGetErrorString(err));
}

at::Tensor bias_act_cuda(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                         const std::optional<at::Tensor>& residual, int64_t activation, double alpha,
                         int64_t channel_dim) {
  c10::cuda::CUDAGuard guard(x.device());
  auto p = bk::glue::make_bias_act_params(x, bias, residual, activation, alpha, channel_dim);
  at::Tensor y = at::empty_like(x);
  p.y = y.data_ptr();
  check_launch(bk::cuda::bias_act_forward(p, c10::cuda::getCurrentCUDAStream(x.device().index()).stream()),
               "bias_act");
  return y;
}

at::Tensor bias_act_backward_cuda(const at::Tensor& grad_y, const at::Tensor& x,
                                  const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                                  int64_t activation, double alpha, int64_t channel_dim) {
  c10::cuda::CUDAGuard guard(x.device());
  auto p = bk::glue::make_bias_act_params(x, bias, residual, activation, alpha, channel_dim);
  TORCH_CHECK(grad_y.sizes() == x.sizes() && grad_y.strides() == x.strides(),
              "bigkernels: grad_y must match x in shape and strides");
  at::Tensor grad_z = at::empty_like(x);
  p.grad_y = grad_y.data_ptr();
  p.grad_z = grad_z.data_ptr();
  check_launch(bk::cuda::bias_act_backward(p, c10::cuda::getCurrentCUDAStream(x.device().index()).stream()),
               "bias_act_backward");
  return grad_z;
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) {
  m.impl("bias_act", &bias_act_cuda);
  m.impl("bias_act_backward", &bias_act_backward_cuda);
}
