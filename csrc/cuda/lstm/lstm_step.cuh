// Device code shared by the persistent and per-step LSTM kernels: the launch
// arguments, the warp dot products and the gate math of one step.
//
// Work split: a block owns `units` hidden units; each warp takes one (unit,
// batch row) pair at a time and its 32 lanes split the reduction dimension,
// so all four gate pre-activations of a unit end in one warp (no shared
// memory exchange before the gates) and the shuffle-tree reduction makes the
// result independent of the schedule (bit-for-bit reproducible).
#pragma once
#include "cuda/lstm/lstm_cuda.h"
#include "device/launch.cuh"

// Persistent kernels are declared __launch_bounds__(kLstmThreads, 1): one
// block per SM is the design, so ptxas may use up to 255 registers (with the
// default bound it capped the GRU kernel at 40 and spilled 8 bytes on sm_90a).

namespace bk {
namespace cuda {
namespace lstm {

struct Args {
  LstmParams p;
  LstmCudaWork w;
  int units;      // hidden units per block
  int proj_rows;  // projection rows per block
};

// The arguments of one launch: one direction, or both directions of a
// bidirectional layer at once (grid split in halves, direction = half; the
// halves share every grid_sync, so one sync per step serves both). `blocks`
// is the grid of one direction. A (Args or GruArgs) is one direction's.
template <typename A>
struct Dirs {
  A d[2];
  int n;       // directions in this launch (1 or 2)
  int blocks;  // blocks per direction
};

// This block's direction and its block index within that direction.
template <typename A>
BK_DEVICE const A& my_dir(const Dirs<A>& g, int64_t* blk) {
  const int k = int(blockIdx.x) >= g.blocks ? 1 : 0;
  *blk = int64_t(blockIdx.x) - int64_t(k) * g.blocks;
  return g.d[k];
}

inline Dirs<Args> dirs_args(const LstmParams* p, const LstmCudaWork* w, int n, const LstmPlan& plan) {
  Dirs<Args> g{};
  for (int k = 0; k < n; ++k) g.d[k] = Args{p[k], w[k], plan.units, plan.proj_rows};
  g.n = n;
  g.blocks = plan.blocks;
  return g;
}

// A weight slice: element k of row (gate q, unit j) sits at
// base[q * s_gate + j * s_unit + k * s_k]; shared memory or global memory.
template <typename T>
struct WView {
  const T* base;
  int64_t s_gate, s_unit, s_k;
  BK_DEVICE float at(int q, int j, int64_t k) const { return dev::to_float(base[q * s_gate + j * s_unit + k * s_k]); }
};

BK_DEVICE float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

BK_DEVICE float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// sum_k W[q, j, k] * v[k] for the NQ gates q (4 LSTM, 3 GRU), on the calling
// warp; every lane gets the sums.
template <int NQ, typename T, typename V>
BK_DEVICE void dotq(const WView<T>& w, int j, const V* v, int64_t K, int lane, float acc[NQ]) {
  float a[NQ];
#pragma unroll
  for (int q = 0; q < NQ; ++q) a[q] = 0.f;
  for (int64_t k = lane; k < K; k += 32) {
    const float x = dev::to_float(v[k]);
#pragma unroll
    for (int q = 0; q < NQ; ++q) a[q] = fmaf(w.at(q, j, k), x, a[q]);
  }
#pragma unroll
  for (int q = 0; q < NQ; ++q) acc[q] = warp_sum(a[q]);
}

template <typename T>
BK_DEVICE float dot1(const WView<T>& w, int j, const float* v, int64_t K, int lane) {
  float a = 0.f;
  for (int64_t k = lane; k < K; k += 32) a = fmaf(w.at(0, j, k), v[k], a);
  return warp_sum(a);
}

BK_DEVICE int warp_id() { return int(threadIdx.x) / 32; }
BK_DEVICE int lane_id() { return int(threadIdx.x) % 32; }
BK_DEVICE int num_warps() { return int(blockDim.x) / 32; }

// How many of a block's `per_block` items (units or rows starting at `start`) exist.
BK_DEVICE int clamp_count(int64_t total, int64_t start, int per_block) {
  const int64_t n = total - start;
  return n <= 0 ? 0 : (n < per_block ? int(n) : per_block);
}

// Launches a persistent kernel with BK_LAUNCH_COOPERATIVE. On the GPU it first
// opts in to `smem` bytes of dynamic shared memory and checks that `blocks`
// blocks are co-resident (registers included, which the plan cannot know);
// when they are not it launches nothing and returns
// cudaErrorCooperativeLaunchTooLarge, and an `Auto` caller runs the per-step
// path instead (fall_back_to_per_step). The emulator checks residency itself.
template <auto Kernel, typename... Args_>
inline cudaError_t launch_persistent(int blocks, size_t smem, cudaStream_t stream, Args_... args) {
#if defined(__CUDACC__)
  cudaError_t err = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  int per_sm = 0, dev = 0, sms = 0;
  if (err == cudaSuccess) err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, Kernel, kLstmThreads, smem);
  if (err == cudaSuccess) err = cudaGetDevice(&dev);
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (err != cudaSuccess) return err;
  if (int64_t(per_sm) * sms < blocks) return cudaErrorCooperativeLaunchTooLarge;
#endif
  return BK_LAUNCH_COOPERATIVE(Kernel, dim3(unsigned(blocks)), dim3(kLstmThreads), smem, stream, args...);
}

// After a persistent launch returned `err`: true when the per-step path should run instead.
inline bool fall_back_to_per_step(cudaError_t err, LstmPath force) {
  if (err != cudaErrorCooperativeLaunchTooLarge || force != LstmPath::Auto) return false;
#if defined(__CUDACC__)
  (void)cudaGetLastError();  // a refused launch is not sticky, but leaves the last error set
#endif
  return true;
}

// Timestep processed at position s of the forward loop.
BK_DEVICE int64_t fwd_t(const LstmParams& p, int64_t s) { return p.reverse ? p.T - 1 - s : s; }

}  // namespace lstm
}  // namespace cuda
}  // namespace bk
