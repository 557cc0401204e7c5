// The `cudnn` path of conv2d's cuda backend (bigkernels/ops/conv_path.py):
// torch's convolution without bias (cuDNN on a GPU; on CPU tensors, for the
// emulator's variant, oneDNN), then ONE epilogue kernel of ours over its
// output, in place: y = act(conv + bias + residual), plus the pre-activation
// z when the backward needs it (csrc/cuda/epilogue/bias_act.cu). torch picks
// the algorithm and honours torch.backends.cudnn.{benchmark, deterministic,
// allow_tf32}. Shared by the CUDA glue (conv_cudnn_cuda.cpp) and the
// emulator's (sim/conv_cudnn_sim.cpp), which differ only in the launch.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/convolution.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>

#include <optional>
#include <tuple>

#include "torch/conv_glue.h"
#include "torch/epilogue_params.h"

namespace bk {
namespace glue {

// What the epilogue reads and writes; y or z is the conv output itself.
struct EpilogueTensors {
  at::Tensor conv, y, z;  // z undefined when not saved
  std::optional<at::Tensor> bias, residual;
};

// `launch(BiasActParams p, const EpilogueTensors&)`: p has x/bias/residual
// set to the tensors' pointers; the launcher sets y and z and runs the kernel.
template <typename Launch>
std::tuple<at::Tensor, at::Tensor> conv_cudnn_forward(const at::Tensor& x, const at::Tensor& weight,
                                                      const std::optional<at::Tensor>& bias,
                                                      const std::optional<at::Tensor>& residual,
                                                      at::IntArrayRef stride, at::IntArrayRef padding,
                                                      at::IntArrayRef dilation, int64_t groups, int64_t activation,
                                                      double alpha, bool save_preact, Launch&& launch) {
  TORCH_CHECK(x.dim() == 4 && weight.dim() == 4, "bigkernels: conv2d expects 4-D x and weight");
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), "bigkernels: weight must have x's dtype");
  const at::MemoryFormat fmt = format_of(x);  // the op's contract: y in x's memory format
  EpilogueTensors t;
  t.conv = at::convolution(x, weight, std::nullopt, stride, padding, dilation, false, {0, 0}, groups).contiguous(fmt);
  if (bias.has_value()) t.bias = bias->contiguous();
  if (residual.has_value()) {
    TORCH_CHECK(residual->sizes() == t.conv.sizes() && residual->scalar_type() == x.scalar_type(),
                "bigkernels: residual must have the output's shape and x's dtype");
    // the kernel indexes residual like the conv output: same strides (size-1 dims included)
    t.residual = residual->strides() == t.conv.strides() ? *residual : at::empty_like(t.conv).copy_(*residual);
  }
  BiasActParams p = make_bias_act_params(t.conv, t.bias, t.residual, activation, alpha, 1);
  // In place (each element is read before the same thread writes it): y over
  // the conv output, or z there and y fresh when the pre-activation is kept.
  t.y = save_preact ? at::empty_like(t.conv) : t.conv;
  if (save_preact) t.z = t.conv;
  launch(p, t);
  return {t.y, save_preact ? t.z : at::empty({0}, x.options())};
}

}  // namespace glue
}  // namespace bk
