// cuda_sim implementations of the convolution ops: the CUDA kernels of
// csrc/cuda/conv compiled for the SIMT emulator, on CPU tensors. Every tensor
// a kernel touches is copied into a guard-page buffer (torch/sim/guarded.h).
#include <torch/library.h>

#include "cuda/conv/conv_fprop.h"
#include "cuda/epilogue/bias_act.h"
#include "torch/conv_glue.h"
#include "torch/sim/guarded.h"

namespace {

using bk::simglue::Guarded;

std::tuple<at::Tensor, at::Tensor> conv2d_sim(const at::Tensor& x, const at::Tensor& weight,
                                              const std::optional<at::Tensor>& bias,
                                              const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                                              at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                              int64_t activation, double alpha, bool save_preact) {
  auto call = bk::glue::prepare_conv(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha,
                                     save_preact);
  {
    Guarded gx(call.x, Guarded::kIn), gw(call.w, Guarded::kIn), gy(call.y, Guarded::kOut);
    auto gb = bk::simglue::guard_in(call.bias), gr = bk::simglue::guard_in(call.residual);
    std::optional<Guarded> gz;
    if (call.z.defined()) gz.emplace(call.z, Guarded::kOut);
    bk::ConvParams p = call.p;
    p.x = gx.get(), p.w = gw.get(), p.y = gy.get();
    p.z = gz ? gz->get() : nullptr;
    p.bias = gb ? gb->get() : nullptr;
    p.residual = gr ? gr->get() : nullptr;
    TORCH_CHECK(bk::cuda::conv2d_fprop_supported(p), "bigkernels cuda_sim: conv2d: this call is not served by the "
                "implicit-GEMM kernel (fp16/bf16, (C/groups) % 8 == 0)");
    bk::simglue::check(bk::cuda::conv2d_fprop(p, nullptr), "conv2d");
  }
  return bk::glue::finish_conv(call);
}

at::Tensor act_backward_sim(const at::Tensor& grad_y, const at::Tensor& saved, int64_t activation, double alpha) {
  auto p = bk::glue::make_bias_act_params(saved, std::nullopt, std::nullopt, activation, alpha, 1);
  at::Tensor grad_z = at::empty_like(saved);
  {
    Guarded gs(saved, Guarded::kIn), gg(grad_y, Guarded::kIn), gz(grad_z, Guarded::kOut);
    p.x = gs.get(), p.grad_y = gg.get(), p.grad_z = gz.get();
    bk::simglue::check(bk::cuda::bias_act_backward(p, nullptr), "conv2d_backward (activation)");
  }
  return grad_z;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv2d_backward_sim(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& saved,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t activation,
    double alpha, std::array<bool, 4> mask) {
  return bk::glue::conv_backward(grad_y, x, weight, saved, stride, padding, dilation, groups, activation, alpha, mask,
                                 [&](const at::Tensor& gy, const at::Tensor& s) {
                                   return act_backward_sim(gy, s, activation, alpha);
                                 });
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) {
  m.impl("conv2d_sim", &conv2d_sim);
  m.impl("conv2d_backward_sim", &conv2d_backward_sim);
}
