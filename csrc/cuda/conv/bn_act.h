// Host entry points of the CUDA batch-norm + residual + activation kernels
// (params: common/conv_bn_params.h; z, residual, y and the gradients share
// one dense layout, NCHW (inner = H*W) or channels-last (inner = 1)).
// Reductions are two-level and atomic-free (per-split partial sums in
// p.workspace, then a fixed-order sum per channel), so every schedule and
// every run gives the same bits. Per-channel scale/shift/mean/invstd are in
// the compute type (float; double for fp64 tensors).
#pragma once
#include <stdint.h>

#include "common/conv_bn_params.h"

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {
// Doubles p.workspace must hold.
int64_t bn_workspace_size(const BnActParams& p);
// out0/out1 = per-channel mean and biased variance of z (shifted sums).
cudaError_t bn_stats(const BnActParams& p, cudaStream_t stream);
// y = act(z * scale + shift + residual).
cudaError_t bn_act_forward(const BnActParams& p, cudaStream_t stream);
// out0/out1 = sum(g), sum(g * xhat) with g = grad_y * act'(pre-activation);
// then grad_z (if set) and grad_residual (= g, if set). batch_stats = false:
// fixed statistics, grad_z = scale * g.
cudaError_t bn_act_backward(const BnActParams& p, cudaStream_t stream);
}  // namespace cuda
}  // namespace bk
