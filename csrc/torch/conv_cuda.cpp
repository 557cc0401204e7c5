// CUDA dispatch-key implementations of the convolution ops. Compiled only
// where torch has CUDA: the device guard and torch's current stream.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "cuda/conv/conv_bwd.h"
#include "cuda/conv/conv_fprop.h"
#include "cuda/conv/depthwise.h"
#include "cuda/epilogue/bias_act.h"
#include "torch/conv_glue.h"

namespace {

void check_launch(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, "bigkernels: ", what, " launch failed: ", cudaGetErrorString(err));
}

cudaStream_t stream_of(const at::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }

std::tuple<at::Tensor, at::Tensor> conv2d_cuda(const at::Tensor& x, const at::Tensor& weight,
                                               const std::optional<at::Tensor>& bias,
                                               const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                                               at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                                               int64_t activation, double alpha, bool save_preact) {
  c10::cuda::CUDAGuard guard(x.device());
  auto call = bk::glue::prepare_conv(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha,
                                     save_preact);
  const bool depthwise = bk::glue::is_depthwise(x, weight, groups);
  // cp.async moves 16 bytes: a view at an odd offset is copied to fresh (aligned) storage.
  if (!depthwise && reinterpret_cast<uintptr_t>(call.x.data_ptr()) % 16)
    call.x = call.x.clone(at::MemoryFormat::ChannelsLast);
  if (!depthwise && reinterpret_cast<uintptr_t>(call.w.data_ptr()) % 16)
    call.w = call.w.clone(at::MemoryFormat::ChannelsLast);
  bk::ConvParams p = call.p;
  p.x = call.x.data_ptr(), p.w = call.w.data_ptr(), p.y = call.y.data_ptr();
  p.z = call.z.defined() ? call.z.data_ptr() : nullptr;
  p.bias = call.bias ? call.bias->data_ptr() : nullptr;
  p.residual = call.residual ? call.residual->data_ptr() : nullptr;
  if (depthwise) {
    check_launch(bk::cuda::depthwise_forward(p, stream_of(x)), "conv2d (depthwise)");
  } else {
    TORCH_CHECK(bk::cuda::conv2d_fprop_supported(p), "bigkernels: conv2d: this call is not served by the "
                "implicit-GEMM kernel (fp16/bf16, (C/groups) % 8 == 0)");
    check_launch(bk::cuda::conv2d_fprop(p, stream_of(x)), "conv2d");
  }
  return bk::glue::finish_conv(call);
}

// conv2d_stats: the implicit-GEMM forward (no activation, no residual) with
// the BN statistics epilogue; mean and biased variance in the compute type.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_stats_cuda(const at::Tensor& x, const at::Tensor& weight,
                                                                 const std::optional<at::Tensor>& bias,
                                                                 at::IntArrayRef stride, at::IntArrayRef padding,
                                                                 at::IntArrayRef dilation, int64_t groups) {
  c10::cuda::CUDAGuard guard(x.device());
  auto call = bk::glue::prepare_conv(x, weight, bias, std::nullopt, stride, padding, dilation, groups, 0, 0.0, false);
  if (reinterpret_cast<uintptr_t>(call.x.data_ptr()) % 16) call.x = call.x.clone(at::MemoryFormat::ChannelsLast);
  if (reinterpret_cast<uintptr_t>(call.w.data_ptr()) % 16) call.w = call.w.clone(at::MemoryFormat::ChannelsLast);
  bk::ConvParams p = call.p;
  p.x = call.x.data_ptr(), p.w = call.w.data_ptr(), p.y = call.y.data_ptr();
  p.bias = call.bias ? call.bias->data_ptr() : nullptr;
  TORCH_CHECK(!bk::glue::is_depthwise(x, weight, groups) && bk::cuda::conv2d_fprop_supported(p),
              "bigkernels: conv2d_stats: not served by the implicit-GEMM kernel");
  at::Tensor ws = at::empty({bk::cuda::conv2d_stats_workspace(p)}, x.options().dtype(at::kFloat));
  at::Tensor mean = at::empty({p.k}, x.options().dtype(at::kDouble)), var = at::empty_like(mean);
  p.stats_partial = ws.data_ptr<float>();
  check_launch(bk::cuda::conv2d_fprop(p, stream_of(x)), "conv2d_stats");
  check_launch(bk::cuda::conv2d_stats_finish(p, p.stats_partial, mean.data_ptr<double>(), var.data_ptr<double>(),
                                             stream_of(x)), "conv2d_stats (finish)");
  return {std::get<0>(bk::glue::finish_conv(call)), mean.to(at::kFloat), var.to(at::kFloat)};
}

struct CudaKernels {
  int64_t activation;
  double alpha;

  at::Tensor act_backward(const at::Tensor& grad_y, const at::Tensor& saved) {
    auto p = bk::glue::make_bias_act_params(saved, std::nullopt, std::nullopt, activation, alpha, 1);
    at::Tensor grad_z = at::empty_like(saved);
    p.grad_y = grad_y.data_ptr();
    p.grad_z = grad_z.data_ptr();
    check_launch(bk::cuda::bias_act_backward(p, stream_of(saved)), "conv2d_backward (activation)");
    return grad_z;
  }

  void depthwise(const bk::glue::ConvCall& call, const at::Tensor& gz, at::Tensor& gx, at::Tensor& gw) {
    bk::ConvParams p = call.p;
    p.grad_z = gz.data_ptr(), p.x = call.x.data_ptr(), p.w = call.w.data_ptr();
    p.grad_x = gx.defined() ? gx.data_ptr() : nullptr;
    p.grad_w = gw.defined() ? gw.data_ptr() : nullptr;
    if (gx.defined()) check_launch(bk::cuda::depthwise_backward_data(p, stream_of(gz)), "conv2d_backward (data)");
    if (gw.defined()) check_launch(bk::cuda::depthwise_backward_weight(p, stream_of(gz)), "conv2d_backward (weight)");
  }

  // g: dL/dy with `saved` (the activation backward fused), else dL/dz; gb and gz (dL/dz for the residual)
  // come from the weight-gradient kernel.
  void gemm(const bk::glue::ConvCall& call, const at::Tensor& g, const at::Tensor& saved, at::Tensor& gx,
            at::Tensor& gw, at::Tensor& gb, at::Tensor& gz) {
    // cp.async moves 16 bytes: operands at an odd offset are copied to fresh (aligned) storage.
    auto aligned = [](const at::Tensor& t) {
      return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 ? t.clone(at::MemoryFormat::ChannelsLast) : t;
    };
    at::Tensor g_a = aligned(g), x_a = aligned(call.x), w_a = aligned(call.w);
    at::Tensor s_a = saved.defined() ? aligned(saved) : saved;
    bk::ConvParams p = call.p;
    p.grad_z = g_a.data_ptr(), p.x = x_a.data_ptr(), p.w = w_a.data_ptr();
    p.saved = s_a.defined() ? s_a.data_ptr() : nullptr;
    p.grad_x = gx.defined() ? gx.data_ptr() : nullptr;
    p.grad_w = gw.defined() ? gw.data_ptr() : nullptr;
    p.grad_bias = gb.defined() ? gb.data_ptr() : nullptr;
    p.grad_preact = gz.defined() ? gz.data_ptr() : nullptr;
    TORCH_CHECK(bk::cuda::conv2d_bwd_supported(p), "bigkernels: conv2d_backward: not served by the implicit GEMM");
    if (gx.defined()) check_launch(bk::cuda::conv2d_dgrad(p, stream_of(g)), "conv2d_backward (data)");
    if (gw.defined()) {
      at::Tensor ws = at::empty({bk::cuda::conv2d_wgrad_workspace(p)}, g.options().dtype(at::kFloat));
      check_launch(bk::cuda::conv2d_wgrad(p, ws.data_ptr<float>(), stream_of(g)), "conv2d_backward (weight)");
    }
  }
};

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv2d_backward_cuda(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& saved,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t activation,
    double alpha, std::array<bool, 4> mask) {
  c10::cuda::CUDAGuard guard(x.device());
  CudaKernels k{activation, alpha};
  return bk::glue::conv_backward(grad_y, x, weight, saved, stride, padding, dilation, groups, activation, alpha, mask,
                                 k);
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CUDA, m) {
  m.impl("conv2d", &conv2d_cuda);
  m.impl("conv2d_backward", &conv2d_backward_cuda);
  m.impl("conv2d_stats", &conv2d_stats_cuda);
}
