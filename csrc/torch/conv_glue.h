// Tensor -> ConvParams for the CUDA convolution kernels, shared by the CUDA
// glue (conv_cuda.cpp) and the emulator's (sim/conv_sim.cpp). The op's
// contract (bigkernels/ops/conv.py): the output keeps x's memory format. The
// implicit-GEMM kernel reads and writes NHWC only, so an NCHW call is run on
// channels_last copies and its outputs converted back (cuDNN does the same
// internally for NCHW tensor-core convs); the depthwise kernel reads either.
// Argument errors naming the user's arguments are raised in Python; these
// checks guard the C++ boundary.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/convolution_backward.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/sum.h>
#include <c10/util/Exception.h>

#include <optional>
#include <tuple>

#include "common/conv_params.h"
#include "cuda/conv/conv_bwd.h"
#include "torch/epilogue_params.h"

namespace bk {
namespace glue {

// groups == C with one input channel per group (any channel multiplier K / C),
// in a dtype the depthwise kernels serve.
inline bool is_depthwise(const at::Tensor& x, const at::Tensor& w, int64_t groups) {
  return groups == x.size(1) && w.size(1) == 1 && x.scalar_type() != at::kDouble;
}

// The implicit-GEMM backward's domain (csrc/cuda/conv/conv_bwd.h).
inline bool gemm_backward_ok(const at::Tensor& x, const at::Tensor& w, int64_t groups) {
  const auto t = x.scalar_type();
  return (t == at::kHalf || t == at::kBFloat16) && (x.size(1) / groups) % 8 == 0 && (w.size(0) / groups) % 8 == 0;
}

// Tensors in the layout the chosen kernel reads, and outputs allocated for it.
struct ConvCall {
  at::Tensor x, w, y, z;
  std::optional<at::Tensor> bias, residual;
  at::MemoryFormat out_format;  // x's: the format y and z are returned in
  ConvParams p;
};

inline at::MemoryFormat format_of(const at::Tensor& x) {
  return x.is_contiguous() ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast;
}

inline ConvCall prepare_conv(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                             const std::optional<at::Tensor>& residual, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t activation,
                             double alpha, bool save_preact) {
  TORCH_CHECK(x.dim() == 4 && weight.dim() == 4, "bigkernels: conv2d expects 4-D x and weight");
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2,
              "bigkernels: stride, padding and dilation must be pairs");
  TORCH_CHECK(activation >= 0 && activation < kNumActs, "bigkernels: activation code ", activation, " out of range");
  TORCH_CHECK(weight.scalar_type() == x.scalar_type(), "bigkernels: weight must have x's dtype");
  ConvCall call;
  call.out_format = format_of(x);
  const bool depthwise = is_depthwise(x, weight, groups);
  // Depthwise reads x's own layout; the implicit GEMM needs NHWC.
  const at::MemoryFormat fmt = depthwise ? call.out_format : at::MemoryFormat::ChannelsLast;
  call.x = x.contiguous(fmt);
  call.w = depthwise ? weight.contiguous() : weight.contiguous(at::MemoryFormat::ChannelsLast);
  ConvParams& p = call.p;
  p.n = int(x.size(0)), p.c = int(x.size(1)), p.h = int(x.size(2)), p.w_in = int(x.size(3));
  p.k = int(weight.size(0)), p.r = int(weight.size(2)), p.s = int(weight.size(3));
  p.stride_h = int(stride[0]), p.stride_w = int(stride[1]);
  p.pad_h = int(padding[0]), p.pad_w = int(padding[1]);
  p.dil_h = int(dilation[0]), p.dil_w = int(dilation[1]);
  p.groups = int(groups);
  p.p = (p.h + 2 * p.pad_h - p.dil_h * (p.r - 1) - 1) / p.stride_h + 1;
  p.q = (p.w_in + 2 * p.pad_w - p.dil_w * (p.s - 1) - 1) / p.stride_w + 1;
  TORCH_CHECK(p.p > 0 && p.q > 0, "bigkernels: conv2d output would be empty");
  p.channels_last = fmt == at::MemoryFormat::ChannelsLast;
  p.act = static_cast<Act>(activation);
  p.alpha = float(alpha);
  p.dtype = dtype_of(x);
  call.y = at::empty({p.n, p.k, p.p, p.q}, x.options().memory_format(fmt));
  if (save_preact) call.z = at::empty_like(call.y);
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == p.k && bias->scalar_type() == x.scalar_type(),
                "bigkernels: bias must be a [K] tensor of x's dtype");
    call.bias = bias->contiguous();
  }
  if (residual.has_value()) {
    TORCH_CHECK(residual->sizes() == call.y.sizes() && residual->scalar_type() == x.scalar_type(),
                "bigkernels: residual must have the output's shape and x's dtype");
    call.residual = residual->contiguous(fmt);
  }
  return call;
}

// The outputs in x's memory format; an empty z when it was not saved.
inline std::tuple<at::Tensor, at::Tensor> finish_conv(const ConvCall& call) {
  at::Tensor y = call.y.contiguous(call.out_format);
  at::Tensor z = call.z.defined() ? call.z.contiguous(call.out_format) : at::empty({0}, call.y.options());
  return {y, z};
}

// conv2d_backward. Implicit GEMM (fp16/bf16, C/g and K/g multiples of 8,
// NHWC): `k.gemm` gets dL/dy and the saved tensor, and the kernels apply the
// activation backward to their tiles themselves; the weight gradient also
// returns the bias gradient and dL/dz (the residual's). Without a weight
// gradient to carry those two, dL/dz takes a pass of its own
// (`k.act_backward`, our bias_act backward kernel) as everywhere else:
// depthwise (`k.depthwise`, x's layout) and torch's convolution_backward
// (cuDNN on a GPU) for shapes outside our kernels, with the bias gradient a
// torch reduction of dL/dz.
template <typename Kernels>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> conv_backward(
    const at::Tensor& grad_y, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& saved,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups, int64_t activation,
    double alpha, std::array<bool, 4> mask, Kernels& k) {
  const bool depthwise = is_depthwise(x, weight, groups);
  std::optional<ConvCall> call;  // the implicit GEMM, where its domain and shape limits allow
  if (!depthwise && gemm_backward_ok(x, weight, groups) && (mask[0] || mask[1])) {
    call = prepare_conv(x, weight, std::nullopt, std::nullopt, stride, padding, dilation, groups, 0, 0.0, false);
    call->p.act = static_cast<Act>(activation);
    call->p.alpha = float(alpha);
    if (!bk::cuda::conv2d_bwd_supported(call->p)) call.reset();  // (pointers unset: the shape limits only)
  }
  const bool want_gz = mask[3] && activation != 0;
  at::Tensor gx, gw, gb, gz;
  if (call && (mask[1] || !(mask[2] || want_gz))) {
    const at::Tensor gy = grad_y.contiguous(at::MemoryFormat::ChannelsLast);
    const at::Tensor sv = activation != 0 ? saved.contiguous(at::MemoryFormat::ChannelsLast) : at::Tensor();
    if (mask[0]) gx = at::empty_like(call->x);
    if (mask[1]) gw = at::empty_like(call->w);
    if (mask[2]) gb = at::empty({weight.size(0)}, grad_y.options());
    if (want_gz) gz = at::empty_like(gy);
    k.gemm(*call, gy, sv, gx, gw, gb, gz);
  } else {
    gz = grad_y;
    if (activation != 0) {
      at::Tensor gy = grad_y.strides() == saved.strides() ? grad_y : at::empty_like(saved).copy_(grad_y);
      gz = k.act_backward(gy, saved);
    }
    if (depthwise && (mask[0] || mask[1])) {
      ConvCall dw = prepare_conv(x, weight, std::nullopt, std::nullopt, stride, padding, dilation, groups, 0, 0.0,
                                 false);
      at::Tensor gz_k = gz.contiguous(dw.out_format);
      if (mask[0]) gx = at::empty_like(dw.x);
      if (mask[1]) gw = at::empty_like(dw.w);
      k.depthwise(dw, gz_k, gx, gw);
      if (mask[2]) gb = gz.sum({0, 2, 3});
    } else if (call) {  // no weight gradient: the data gradient alone, on dL/dz
      call->p.act = Act::None;
      if (mask[0]) gx = at::empty_like(call->x);
      at::Tensor none;
      k.gemm(*call, gz.contiguous(at::MemoryFormat::ChannelsLast), none, gx, none, none, none);
      if (mask[2]) gb = gz.sum({0, 2, 3});
    } else if (mask[0] || mask[1] || mask[2]) {
      std::tie(gx, gw, gb) = at::convolution_backward(gz, x, weight, std::vector<int64_t>{weight.size(0)}, stride,
                                                      padding, dilation, false, {0, 0}, groups,
                                                      {mask[0], mask[1], mask[2]});
    }
  }
  return {mask[0] ? gx.contiguous(format_of(x)) : at::empty({0}, x.options()),
          mask[1] ? gw.contiguous(format_of(weight)) : at::empty({0}, x.options()),
          mask[2] ? gb : at::empty({0}, x.options()),
          want_gz ? gz.contiguous(format_of(x)) : at::empty({0}, x.options())};
}

}  // namespace glue
}  // namespace bk
