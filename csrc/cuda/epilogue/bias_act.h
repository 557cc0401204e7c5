// Host entry points of the fused bias + residual + activation CUDA kernels.
// Torch-free: params struct in, cudaError_t out, on the caller's stream.
#pragma once
#include "common/bias_act_params.h"

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {
cudaError_t bias_act_forward(const BiasActParams& p, cudaStream_t stream);
cudaError_t bias_act_backward(const BiasActParams& p, cudaStream_t stream);
}  // namespace cuda
}  // namespace bk
