// CUDA C++ as the host compiler sees it under the SIMT emulator (-DBK_SIM).
// CUDA's own headers come first (types, __half, __nv_bfloat16 and their
// conversions compile as host code); the execution-space qualifiers are
// redefined after them. threadIdx & co. read the running fiber's indices.
#pragma once
#include <cuda_runtime_api.h>
#include <vector_types.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <type_traits>

#include "sim/device_api.h"

#undef __global__
#undef __device__
#undef __host__
#undef __forceinline__
#undef __noinline__
#undef __shared__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
// A raw __shared__ would become a per-fiber local and hide every shared-
// memory bug: declare shared memory with BK_SHARED / BK_SHARED_DYNAMIC.
#define __shared__ static_assert(false, "use BK_SHARED or BK_SHARED_DYNAMIC (csrc/device/primitives.cuh)");

#define BK_DEVICE inline __attribute__((always_inline))
#define BK_GLOBAL
#define BK_HOST_DEVICE inline

#define threadIdx (::bk::sim::tl_ids->thread_idx)
#define blockIdx (::bk::sim::tl_ids->block_idx)
#define blockDim (::bk::sim::tl_ids->block_dim)
#define gridDim (::bk::sim::tl_ids->grid_dim)
constexpr int warpSize = 32;

// ---- synchronisation and warp collectives ----
inline void __syncthreads() { ::bk::sim::syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::bk::sim::syncwarp(mask); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline unsigned __activemask() { return ::bk::sim::active_mask(); }
inline unsigned __ballot_sync(unsigned mask, int pred) { return ::bk::sim::vote(mask, pred, 0); }
inline int __any_sync(unsigned mask, int pred) { return int(::bk::sim::vote(mask, pred, 1)); }
inline int __all_sync(unsigned mask, int pred) { return int(::bk::sim::vote(mask, pred, 2)); }
inline void __trap() { ::bk::sim::device_trap("__trap()"); }

namespace bk {
namespace sim {
template <typename T>
inline T shfl_t(unsigned mask, T v, int mode, int arg, int width) {
  // Bitwise copies: __half2 / __nv_bfloat162 are not trivially copyable in
  // CUDA's headers (user-written copy operators) but are plain 32-bit values.
  static_assert(sizeof(T) <= 8, "shuffle of a type wider than 64 bits");
  uint64_t bits = 0;
  memcpy(&bits, static_cast<const void*>(&v), sizeof(T));
  bits = shfl(mask, bits, mode, arg, width);
  T r;
  memcpy(static_cast<void*>(&r), &bits, sizeof(T));
  return r;
}
}  // namespace sim
}  // namespace bk
template <typename T> inline T __shfl_sync(unsigned m, T v, int src, int w = 32) { return ::bk::sim::shfl_t(m, v, 0, src, w); }
template <typename T> inline T __shfl_up_sync(unsigned m, T v, unsigned d, int w = 32) { return ::bk::sim::shfl_t(m, v, 1, int(d), w); }
template <typename T> inline T __shfl_down_sync(unsigned m, T v, unsigned d, int w = 32) { return ::bk::sim::shfl_t(m, v, 2, int(d), w); }
template <typename T> inline T __shfl_xor_sync(unsigned m, T v, int lm, int w = 32) { return ::bk::sim::shfl_t(m, v, 3, lm, w); }

// ---- integer intrinsics ----
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x ? __builtin_clz(unsigned(x)) : 32; }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
  return __builtin_bswap32(x);
}
template <typename T> inline T __ldg(const T* p) { return *p; }

// ---- fast math: the approximations are emulated by the exact functions,
// so a kernel is checked against the tolerance rule, not against ulps ----
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }

// ---- atomics: real atomics, blocks run concurrently on several OS threads ----
template <typename T> inline T bk_sim_atomic_add(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T bk_sim_atomic_cas_op(T* p, T v, int op) {
  T old, nv;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  do {
    nv = op == 0 ? old + v : op == 1 ? (v > old ? v : old) : (v < old ? v : old);
  } while (!__atomic_compare_exchange(p, &old, &nv, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
inline int atomicAdd(int* p, int v) { return bk_sim_atomic_add(p, v); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return bk_sim_atomic_add(p, v); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { return bk_sim_atomic_add(p, v); }
inline float atomicAdd(float* p, float v) { return bk_sim_atomic_cas_op(p, v, 0); }
inline double atomicAdd(double* p, double v) { return bk_sim_atomic_cas_op(p, v, 0); }
inline int atomicSub(int* p, int v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicSub(unsigned* p, unsigned v) { return __atomic_fetch_sub(p, v, __ATOMIC_RELAXED); }
inline int atomicMax(int* p, int v) { return bk_sim_atomic_cas_op(p, v, 1); }
inline unsigned atomicMax(unsigned* p, unsigned v) { return bk_sim_atomic_cas_op(p, v, 1); }
inline int atomicMin(int* p, int v) { return bk_sim_atomic_cas_op(p, v, 2); }
inline unsigned atomicMin(unsigned* p, unsigned v) { return bk_sim_atomic_cas_op(p, v, 2); }
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned* p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline float atomicExch(float* p, float v) { float o; __atomic_exchange(p, &v, &o, __ATOMIC_RELAXED); return o; }
template <typename T> inline T bk_sim_cas(T* p, T cmp, T v) {
  __atomic_compare_exchange_n(p, &cmp, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return cmp;
}
inline int atomicCAS(int* p, int c, int v) { return bk_sim_cas(p, c, v); }
inline unsigned atomicCAS(unsigned* p, unsigned c, unsigned v) { return bk_sim_cas(p, c, v); }
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long c, unsigned long long v) { return bk_sim_cas(p, c, v); }
inline int atomicOr(int* p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicOr(unsigned* p, unsigned v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
inline int atomicAnd(int* p, int v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAnd(unsigned* p, unsigned v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
