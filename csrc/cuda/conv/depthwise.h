// Host entry points of the depthwise convolution kernels (groups == C, one
// input channel per group, any channel multiplier K / C): direct kernels, any
// kernel size / stride / padding / dilation, fp32/fp16/bf16, NCHW or NHWC
// (p.channels_last) for x, y, z, residual, grad_z and grad_x; w is [K, R, S].
// Forward fuses bias, residual and the activation (and stores the
// pre-activation when p.z is set). Backward takes grad_z (the activation's
// backward already applied) and writes grad_x and/or grad_w; both are
// gathers / block reductions without atomics, so results are deterministic.
#pragma once
#include "common/conv_params.h"

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {
bool depthwise_supported(const ConvParams& p);
cudaError_t depthwise_forward(const ConvParams& p, cudaStream_t stream);
cudaError_t depthwise_backward_data(const ConvParams& p, cudaStream_t stream);
cudaError_t depthwise_backward_weight(const ConvParams& p, cudaStream_t stream);
}  // namespace cuda
}  // namespace bk
