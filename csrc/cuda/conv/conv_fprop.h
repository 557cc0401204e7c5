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

// Training-mode BN statistics from the epilogue: with p.stats_partial set
// (conv2d_stats_workspace floats), each block writes the mean and M2 of its
// tile's stored y per channel; conv2d_stats_finish merges them per channel in
// tile order (Chan et al., in double; no atomics: the same bits on every
// run) into the batch mean and biased variance ([K] doubles each).
constexpr int kConvFpropTileM = 64;  // output pixels per block (one partial per tile and channel)
int64_t conv2d_stats_workspace(const ConvParams& p);
cudaError_t conv2d_stats_finish(const ConvParams& p, const float* partial, double* mean, double* var,
                                cudaStream_t stream);
}  // namespace cuda
}  // namespace bk
