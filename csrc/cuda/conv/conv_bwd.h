// Host entry points of the implicit-GEMM convolution backward (tensor cores,
// fp16/bf16, NHWC; same layouts as conv_fprop.h), from grad_z = dL/d(pre-
// activation) in NHWC [N, P, Q, K]:
//   dgrad: grad_x [N, H, W, C]    = sum over (r, s, k) of grad_z * w
//   wgrad: grad_w [K, R, S, C/g]  = sum over output pixels of grad_z * x,
//          split over pixels into fp32 partials (p.grad_w_partial, see
//          conv2d_wgrad_workspace) summed in a fixed order: deterministic.
// With p.saved set (and an activation), grad_z holds dL/dy instead and both
// kernels form dL/dz = dL/dy * act'(saved) in shared memory (saved: NHWC like
// grad_z); wgrad then also writes p.grad_bias ([K], x's dtype) and p.grad_preact
// (dL/dz, NHWC) where set (the bias gradient without an activation too).
// Both need (C/groups) % 8 == 0 and (K/groups) % 8 == 0 (16-byte cp.async
// rows of both operands) and 16-byte aligned tensors.
#pragma once
#include <stdint.h>

#include "common/conv_params.h"

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {
bool conv2d_bwd_supported(const ConvParams& p);
cudaError_t conv2d_dgrad(const ConvParams& p, cudaStream_t stream);
// Floats of fp32 workspace conv2d_wgrad needs (passed as `workspace`): the
// weight and bias partials.
int64_t conv2d_wgrad_workspace(const ConvParams& p);
cudaError_t conv2d_wgrad(const ConvParams& p, float* workspace, cudaStream_t stream);
}  // namespace cuda
}  // namespace bk
