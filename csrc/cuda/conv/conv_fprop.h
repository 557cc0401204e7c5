// Host entry point of the implicit-GEMM convolution forward (tensor cores).
// Layouts: x NHWC, w KRSC (torch's channels_last weight), y/z/residual NHWC.
// Serves fp16/bf16 with (C/groups) % 8 == 0 (16-byte cp.async rows) and
// 16-byte aligned x and w; anything else returns cudaErrorInvalidValue and
// the router sends the call to another backend.
#pragma once
#include "common/conv_params.h"

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {
bool conv2d_fprop_supported(const ConvParams& p);
cudaError_t conv2d_fprop(const ConvParams& p, cudaStream_t stream);
}  // namespace cuda
}  // namespace bk
