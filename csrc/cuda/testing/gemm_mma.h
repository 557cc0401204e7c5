// A small tensor-core GEMM used to test the device primitives (cp.async,
// ldmatrix, mma.sync) end to end, under nvcc and under the SIMT emulator.
// Not an op: C (fp32, MxN row-major) = A (MxK row-major) * B^T (B is NxK
// row-major), inputs fp16 or bf16. K must be a multiple of 8.
#pragma once
#include <stdint.h>

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {
cudaError_t testing_gemm_mma(const void* a, const void* b, float* c, int m, int n, int k, bool bf16,
                             cudaStream_t stream);
}  // namespace cuda
}  // namespace bk
