// cp.async (sm_80+): global -> shared copies that land at the matching
// wait. Real PTX under nvcc; under the SIMT emulator a copy is queued and
// performed only at the cp_async_wait that covers its group, so a read before
// the wait sees poisoned shared memory. Included by device/primitives.cuh.
#pragma once
#include <stdint.h>

namespace bk {
namespace dev {

#if defined(__CUDACC__)
BK_DEVICE uint32_t smem_addr(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
#endif

// 16-byte global -> shared copy that lands at the matching cp_async_wait;
// `valid == false` zero-fills the destination (for tile edges).
BK_DEVICE void cp_async_16(void* smem_dst, const void* gmem_src, bool valid = true) {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem_dst)), "l"(gmem_src),
               "r"(valid ? 16 : 0));
#elif defined(BK_SIM)
  ::bk::sim::cp_async(smem_dst, gmem_src, 16, valid ? 16 : 0);
#endif
}
BK_DEVICE void cp_async_commit() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.commit_group;\n" ::);
#elif defined(BK_SIM)
  ::bk::sim::cp_async_commit();
#endif
}
// Waits until at most N committed groups are still in flight.
template <int N>
BK_DEVICE void cp_async_wait() {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
#elif defined(BK_SIM)
  ::bk::sim::cp_async_wait(N);
#endif
}

// 4- and 8-byte variants (cp.async.ca, through L1): for rows that are not
// 16-byte aligned. `valid == false` zero-fills.
BK_DEVICE void cp_async_4(void* smem_dst, const void* gmem_src, bool valid = true) {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(smem_dst)), "l"(gmem_src),
               "r"(valid ? 4 : 0));
#elif defined(BK_SIM)
  ::bk::sim::cp_async(smem_dst, gmem_src, 4, valid ? 4 : 0);
#endif
}
BK_DEVICE void cp_async_8(void* smem_dst, const void* gmem_src, bool valid = true) {
#if defined(__CUDA_ARCH__)
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(smem_addr(smem_dst)), "l"(gmem_src),
               "r"(valid ? 8 : 0));
#elif defined(BK_SIM)
  ::bk::sim::cp_async(smem_dst, gmem_src, 8, valid ? 8 : 0);
#endif
}

}  // namespace dev
}  // namespace bk
