// See seeded_bugs.h: deliberately wrong kernels for the emulator's glue tests.
#include "cuda/testing/seeded_bugs.h"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

BK_GLOBAL void seeded_oob_kernel(float* buf, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) buf[i] = 1.0f;  // the bug: <= instead of <
}

BK_GLOBAL void seeded_deadlock_kernel(float* buf, int n) {
  if (threadIdx.x < blockDim.x / 2) return;  // the bug: these never reach the barrier
  __syncthreads();
  if (int(threadIdx.x) < n) buf[threadIdx.x] = 1.0f;
}

}  // namespace

cudaError_t testing_seeded_bug(SeededBug bug, float* buf, int n, cudaStream_t stream) {
  if (bug == SeededBug::OutOfBounds)
    return BK_LAUNCH(seeded_oob_kernel, dim3((n + 64) / 64), dim3(64), 0, stream, buf, n);
  return BK_LAUNCH(seeded_deadlock_kernel, dim3(1), dim3(64), 0, stream, buf, n);
}

}  // namespace cuda
}  // namespace bk
