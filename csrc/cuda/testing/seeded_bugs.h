// Kernels with deliberate bugs, for checking that the emulator's reports
// reach Python through the cuda_sim glue (tests/sim/test_glue_errors.py).
// Never called outside tests.
#pragma once

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {
enum class SeededBug : int { OutOfBounds = 0, BarrierDeadlock = 1 };
// OutOfBounds writes buf[n] (one past the end); BarrierDeadlock lets half
// the threads return before a __syncthreads.
cudaError_t testing_seeded_bug(SeededBug bug, float* buf, int n, cudaStream_t stream);
}  // namespace cuda
}  // namespace bk
