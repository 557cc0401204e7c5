// Tensor -> BiasActParams for every backend's glue (CPU, CUDA, emulator).
// Argument errors that name the user's arguments are raised earlier, in
// bigkernels/ops/epilogue.py; these checks guard the C++ boundary itself.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/Exception.h>

#include "common/bias_act_params.h"

namespace bk {
namespace glue {

inline DType dtype_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::F32;
    case at::kHalf: return DType::F16;
    case at::kBFloat16: return DType::BF16;
    case at::kDouble: return DType::F64;
    default: TORCH_CHECK_TYPE(false, "bigkernels: unsupported dtype ", t.scalar_type());
  }
}

// The memory layout shared by x, residual and the output: the distance in
// elements between consecutive channels' runs. Returns -1 if x is not dense
// in a layout the kernels understand (the Python layer makes it so).
inline int64_t channel_inner(const at::Tensor& x, int64_t channel_dim) {
  if (x.is_contiguous()) {
    int64_t inner = 1;
    for (int64_t d = channel_dim + 1; d < x.dim(); ++d) inner *= x.size(d);
    return inner;
  }
  if (channel_dim == 1 && x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast)) return 1;
  if (channel_dim == 1 && x.dim() == 5 && x.is_contiguous(at::MemoryFormat::ChannelsLast3d)) return 1;
  return -1;
}

inline BiasActParams make_bias_act_params(const at::Tensor& x, const std::optional<at::Tensor>& bias,
                                          const std::optional<at::Tensor>& residual, int64_t activation,
                                          double alpha, int64_t channel_dim) {
  TORCH_CHECK(activation >= 0 && activation < kNumActs, "bigkernels: activation code ", activation, " out of range");
  TORCH_CHECK(channel_dim >= 0 && channel_dim < std::max<int64_t>(x.dim(), 1), "bigkernels: channel_dim out of range");
  BiasActParams p;
  p.numel = x.numel();
  p.channels = x.dim() == 0 ? 1 : x.size(channel_dim);
  p.inner = x.dim() == 0 ? 1 : channel_inner(x, channel_dim);
  TORCH_CHECK(p.inner >= 0, "bigkernels: x must be contiguous or channels_last");
  p.dtype = dtype_of(x);
  p.act = static_cast<Act>(activation);
  p.alpha = alpha;
  p.x = x.data_ptr();
  if (bias.has_value()) {
    TORCH_CHECK(bias->is_contiguous() && bias->numel() == p.channels && bias->scalar_type() == x.scalar_type(),
                "bigkernels: bias must be a contiguous [channels] tensor of x's dtype");
    p.bias = bias->data_ptr();
  }
  if (residual.has_value()) {
    TORCH_CHECK(residual->sizes() == x.sizes() && residual->strides() == x.strides() &&
                    residual->scalar_type() == x.scalar_type(),
                "bigkernels: residual must match x in shape, strides and dtype");
    p.residual = residual->data_ptr();
  }
  return p;
}

}  // namespace glue
}  // namespace bk
