// CUDA key of bigkernels::conv2d_cudnn: cuDNN's convolution (through ATen,
// without bias), then our fused epilogue kernel on the current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/epilogue/bias_act.h"
#include "torch/conv_cudnn_glue.h"

namespace {

std::tuple<at::Tensor, at::Tensor> conv2d_cudnn_cuda(const at::Tensor& x, const at::Tensor& weight,
                                                     const std::optional<at::Tensor>& bias,
                                                     const std::optional<at::Tensor>& residual,
                                                     at::IntArrayRef stride, at::IntArrayRef padding,
                                                     at::IntArrayRef dilation, int64_t groups, int64_t activation,
                                                     double alpha, bool save_preact) {
  c10::cuda::CUDAGuard guard(x.device());
  auto launch = [&](bk::BiasActParams p, const bk::glue::EpilogueTensors& t) {
    p.y = t.y.data_ptr();
    p.z = t.z.defined() ? t.z.data_ptr() : nullptr;
    cudaError_t err = bk::cuda::bias_act_forward(p, c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
    TORCH_CHECK(err == cudaSuccess, "bigkernels: conv2d (cudnn path) epilogue launch failed: ",
                cudaGetErrorString(err));
  };
  return bk::glue::conv_cudnn_forward(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha,
                                      save_preact, launch);
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) { m.impl("conv2d_cudnn", &conv2d_cudnn_cuda); }
