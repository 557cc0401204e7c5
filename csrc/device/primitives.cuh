// Device primitives: the only place where kernels meet PTX and CUDA
// intrinsics. Under nvcc each primitive is the real instruction; under the
// SIMT emulator (host compiler, -DBK_SIM) csrc/sim provides the same names.
// Kernel files include this header and never write `asm` themselves.
#pragma once

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <cooperative_groups.h>
#define BK_DEVICE __device__ __forceinline__
#define BK_GLOBAL __global__
#elif defined(BK_SIM)
#include "sim/cuda_host.h"
#else
#error "csrc/device/primitives.cuh: compile with nvcc, or with the host compiler and -DBK_SIM"
#endif

#include <stdint.h>

namespace bk {
namespace dev {

template <typename T> BK_DEVICE float to_float(T v);
template <> BK_DEVICE float to_float<float>(float v) { return v; }
template <> BK_DEVICE float to_float<__half>(__half v) { return __half2float(v); }
template <> BK_DEVICE float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> BK_DEVICE T from_float(float v);
template <> BK_DEVICE float from_float<float>(float v) { return v; }
template <> BK_DEVICE __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> BK_DEVICE __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Flat thread index and total thread count of a 1-D launch (grid-stride loops).
BK_DEVICE int64_t global_thread_index() {
  return int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
}
BK_DEVICE int64_t global_thread_count() { return int64_t(gridDim.x) * blockDim.x; }

}  // namespace dev
}  // namespace bk

// Shared memory, static and dynamic. Under the emulator both live in a
// per-block pool (poisoned at block start, bounds-checked), never in a
// thread_local. Usage:  BK_SHARED(float, tile, [64][65]);
//                       BK_SHARED_DYNAMIC(__half, buf);   // __half* buf
#if defined(__CUDACC__)
#define BK_SHARED(T, name, dims) __shared__ T name dims
#define BK_SHARED_DYNAMIC(T, name)                             \
  extern __shared__ __align__(16) unsigned char bk_dyn_smem_[]; \
  T* name = reinterpret_cast<T*>(bk_dyn_smem_)
#else
#define BK_SHARED(T, name, dims)                 \
  static const char bk_smem_key_##name = 0;      \
  T(&name) dims = *reinterpret_cast<T(*) dims>(  \
      ::bk::sim::shared_static(sizeof(T dims), alignof(T), &bk_smem_key_##name, #name))
#define BK_SHARED_DYNAMIC(T, name) T* name = reinterpret_cast<T*>(::bk::sim::shared_dynamic())
#endif

#include "device/async_copy.cuh"
#include "device/tensor_core.cuh"

namespace bk {
namespace dev {
// Grid-wide barrier; only valid in a kernel started with BK_LAUNCH_COOPERATIVE.
BK_DEVICE void grid_sync() {
#if defined(__CUDACC__)
  cooperative_groups::this_grid().sync();
#elif defined(BK_SIM)
  ::bk::sim::grid_sync();
#endif
}

}  // namespace dev
}  // namespace bk
