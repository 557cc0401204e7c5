// cuda_sim variant of the cudnn path (bigkernels::conv2d_cudnn_sim): torch's
// CPU convolution in place of cuDNN, then the same CUDA epilogue kernel under
// the emulator, every tensor it touches in a guard-page buffer.
#include <torch/library.h>

#include "cuda/epilogue/bias_act.h"
#include "torch/conv_cudnn_glue.h"
#include "torch/sim/guarded.h"

namespace {

using bk::simglue::Guarded;

std::tuple<at::Tensor, at::Tensor> conv2d_cudnn_sim(const at::Tensor& x, const at::Tensor& weight,
                                                    const std::optional<at::Tensor>& bias,
                                                    const std::optional<at::Tensor>& residual,
                                                    at::IntArrayRef stride, at::IntArrayRef padding,
                                                    at::IntArrayRef dilation, int64_t groups, int64_t activation,
                                                    double alpha, bool save_preact) {
  auto launch = [](bk::BiasActParams p, const bk::glue::EpilogueTensors& t) {
    // separate guard buffers for the aliased conv/y/z: read from the input's copy, written back on exit
    Guarded gin(t.conv, Guarded::kIn), gy(t.y, Guarded::kOut);
    auto gb = bk::simglue::guard_in(t.bias), gr = bk::simglue::guard_in(t.residual);
    std::optional<Guarded> gz;
    if (t.z.defined()) gz.emplace(t.z, Guarded::kOut);
    p.x = gin.get(), p.y = gy.get(), p.z = gz ? gz->get() : nullptr;
    p.bias = gb ? gb->get() : nullptr, p.residual = gr ? gr->get() : nullptr;
    bk::simglue::check(bk::cuda::bias_act_forward(p, nullptr), "conv2d (cudnn path) epilogue");
  };
  return bk::glue::conv_cudnn_forward(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha,
                                      save_preact, launch);
}

}  // namespace

TORCH_LIBRARY_IMPL(bigkernels, CPU, m) { m.impl("conv2d_cudnn_sim", &conv2d_cudnn_sim); }
