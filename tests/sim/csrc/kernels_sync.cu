// Test kernels for barriers, warp collectives, atomics, cp.async and grid
// sync, with the seeded bugs each bug finder must catch. Built with -DBK_SIM.
#include "device/launch.cuh"
#include "kernels.h"

namespace simtest {

BK_GLOBAL void indices_kernel(int* out) {
  const int b = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const int t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  int* o = out + 6 * (b * blockDim.x * blockDim.y * blockDim.z + t);
  o[0] = threadIdx.x, o[1] = threadIdx.y, o[2] = threadIdx.z;
  o[3] = blockIdx.x, o[4] = blockIdx.y, o[5] = blockIdx.z;
}
cudaError_t indices(int* out, dim3 grid, dim3 block) { return BK_LAUNCH(indices_kernel, grid, block, 0, nullptr, out); }

// Tree reduction over 256 threads; the seeded bug drops the barrier between
// the first two levels, so a thread may read its partner's slot before it is written.
template <bool Bug>
BK_GLOBAL void block_sum_kernel(const float* in, float* out) {
  BK_SHARED(float, s, [256]);
  const int t = threadIdx.x;
  s[t] = in[blockIdx.x * 256 + t];
  __syncthreads();
  for (int step = 128; step > 0; step /= 2) {
    if (t < step) s[t] += s[t + step];
    if (!Bug || step != 64) __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}
cudaError_t block_sum(const float* in, float* out, int blocks, bool bug) {
  if (bug) return BK_LAUNCH(block_sum_kernel<true>, dim3(blocks), dim3(256), 0, nullptr, in, out);
  return BK_LAUNCH(block_sum_kernel<false>, dim3(blocks), dim3(256), 0, nullptr, in, out);
}

// Dynamic smem of 128 floats; the seeded bug writes only 127 of them.
template <bool Bug>
BK_GLOBAL void uninit_kernel(float* out) {
  BK_SHARED_DYNAMIC(float, s);
  const int t = threadIdx.x;
  if (!Bug || t != 77) s[t] = float(t);
  __syncthreads();
  out[t] = s[127 - t];
}
cudaError_t uninit_smem(float* out, bool bug) {
  if (bug) return BK_LAUNCH(uninit_kernel<true>, dim3(1), dim3(128), 128 * sizeof(float), nullptr, out);
  return BK_LAUNCH(uninit_kernel<false>, dim3(1), dim3(128), 128 * sizeof(float), nullptr, out);
}

// Seeded bug: 33 threads write a 32-float array (static `tile`, or dynamic
// shared memory launched with 32 floats).
template <bool Dynamic>
BK_GLOBAL void smem_overflow_kernel(float* out) {
  float* s;
  if constexpr (Dynamic) {
    BK_SHARED_DYNAMIC(float, dyn);
    s = dyn;
  } else {
    BK_SHARED(float, tile, [32]);
    s = tile;
  }
  s[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x % 32];
}
cudaError_t smem_overflow(float* out, bool dynamic) {
  if (dynamic) return BK_LAUNCH(smem_overflow_kernel<true>, dim3(1), dim3(33), 32 * sizeof(float), nullptr, out);
  return BK_LAUNCH(smem_overflow_kernel<false>, dim3(1), dim3(33), 0, nullptr, out);
}

BK_GLOBAL void early_exit_kernel(int* out) {
  if (threadIdx.x < 16) return;  // seeded bug: these threads never reach the barrier
  __syncthreads();
  out[threadIdx.x] = 1;
}
cudaError_t early_exit_barrier(int* out) { return BK_LAUNCH(early_exit_kernel, dim3(1), dim3(64), 0, nullptr, out); }

BK_GLOBAL void half_warp_kernel(int* out) {
  int v = threadIdx.x;
  // Seeded bug: full mask, but lanes 16..31 sit at a barrier instead.
  if (threadIdx.x % 32 < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
  __syncthreads();
  out[threadIdx.x] = v;
}
cudaError_t half_warp_shfl(int* out) { return BK_LAUNCH(half_warp_kernel, dim3(1), dim3(32), 0, nullptr, out); }

BK_GLOBAL void mask_no_caller_kernel(int* out) {
  out[threadIdx.x] = __shfl_sync(0x0000ffffu, int(threadIdx.x), 0);  // lanes 16..31 not in mask
}
cudaError_t mask_without_caller(int* out) {
  return BK_LAUNCH(mask_no_caller_kernel, dim3(1), dim3(32), 0, nullptr, out);
}

// Each thread stages 4 floats with cp.async; thread t then reads what
// thread (t + 1) % 64 staged. The seeded bug waits for nothing.
template <bool Bug>
BK_GLOBAL void cp_async_kernel(const float* in, float* out) {
  BK_SHARED(float, s, [64 * 4]);
  const int t = threadIdx.x, base = blockIdx.x * 256;
  bk::dev::cp_async_16(&s[4 * t], in + base + 4 * t);
  bk::dev::cp_async_commit();
  if (!Bug) bk::dev::cp_async_wait<0>();
  __syncthreads();
  const int u = (t + 1) % 64;
  for (int i = 0; i < 4; ++i) out[base + 4 * t + i] = s[4 * u + i] * 2.0f;
}
cudaError_t cp_async_stage(const float* in, float* out, int blocks, bool bug) {
  if (bug) return BK_LAUNCH(cp_async_kernel<true>, dim3(blocks), dim3(64), 0, nullptr, in, out);
  return BK_LAUNCH(cp_async_kernel<false>, dim3(blocks), dim3(64), 0, nullptr, in, out);
}

// 4- and 8-byte cp.async, the last 8 bytes zero-filled (valid == false).
BK_GLOBAL void cp_async_small_kernel(const float* in, float* out) {
  BK_SHARED(float, s, [8]);
  const int t = threadIdx.x;  // 3 threads
  if (t == 0) bk::dev::cp_async_4(&s[0], in), bk::dev::cp_async_4(&s[1], in + 1);
  if (t == 1) bk::dev::cp_async_8(&s[2], in + 2), bk::dev::cp_async_8(&s[4], in + 4);
  if (t == 2) bk::dev::cp_async_8(&s[6], in + 6, false);
  bk::dev::cp_async_commit();
  bk::dev::cp_async_wait<0>();
  __syncthreads();
  if (t == 0)
    for (int i = 0; i < 8; ++i) out[i] = s[i];
}
cudaError_t cp_async_small(const float* in, float* out) {
  return BK_LAUNCH(cp_async_small_kernel, dim3(1), dim3(3), 0, nullptr, in, out);
}

// Double-buffered cp.async pipeline, 64 threads: each iteration reads an
// element staged by the other warp. The seeded bug drops the barrier that
// keeps the next cp.async from overwriting a stage still being read.
template <bool Bug>
BK_GLOBAL void pipeline_kernel(const float* in, float* out, int iters) {
  BK_SHARED(float, buf, [2][64]);
  const int t = threadIdx.x;
  float acc = 0.0f;
  bk::dev::cp_async_4(&buf[0][t], in + t);
  bk::dev::cp_async_commit();
  for (int it = 0; it < iters; ++it) {
    if (it + 1 < iters) bk::dev::cp_async_4(&buf[(it + 1) & 1][t], in + (it + 1) * 64 + t);
    bk::dev::cp_async_commit();
    bk::dev::cp_async_wait<1>();
    __syncthreads();
    acc = acc * 0.5f + buf[it & 1][(t + 32) % 64];
    if (!Bug) __syncthreads();
  }
  out[t] = acc;
}
cudaError_t pipeline(const float* in, float* out, int iters, bool bug) {
  if (bug) return BK_LAUNCH(pipeline_kernel<true>, dim3(1), dim3(64), 0, nullptr, in, out, iters);
  return BK_LAUNCH(pipeline_kernel<false>, dim3(1), dim3(64), 0, nullptr, in, out, iters);
}

BK_GLOBAL void atomic_kernel(unsigned* counter, float* fsum) {
  atomicAdd(counter, 1u);
  atomicAdd(fsum, 0.5f);
}
cudaError_t atomic_count(unsigned* counter, float* fsum, int blocks) {
  return BK_LAUNCH(atomic_kernel, dim3(blocks), dim3(128), 0, nullptr, counter, fsum);
}

// Phase 1 writes one value per block, grid sync, phase 2 reads the next block's.
BK_GLOBAL void grid_kernel(int* out, int* scratch) {
  if (threadIdx.x == 0) scratch[blockIdx.x] = int(blockIdx.x) * 10;
  bk::dev::grid_sync();
  if (threadIdx.x == 0) out[blockIdx.x] = scratch[(blockIdx.x + 1) % gridDim.x];
}
cudaError_t grid_exchange(int* out, int blocks, int threads) {
  static int scratch[1 << 16];
  return BK_LAUNCH_COOPERATIVE(grid_kernel, dim3(blocks), dim3(threads), 0, nullptr, out, scratch);
}

BK_GLOBAL void grid_skip_kernel(int* out) {
  if (blockIdx.x == 1) return;  // seeded bug: one block never reaches the grid barrier
  bk::dev::grid_sync();
  out[blockIdx.x] = 1;
}
cudaError_t grid_skip(int* out) { return BK_LAUNCH_COOPERATIVE(grid_skip_kernel, dim3(4), dim3(32), 0, nullptr, out); }

BK_GLOBAL void oob_kernel(float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = 1.0f;  // seeded bug: <= instead of <
}
cudaError_t oob_write(float* out, int n) {
  return BK_LAUNCH(oob_kernel, dim3((n + 64) / 64), dim3(64), 0, nullptr, out, n);
}

// out[8*t + ...]: xor-reduce sum, inclusive scan (up), down by 3, broadcast
// from lane 5 within 16-lane segments, ballot of odd lanes, any, all, syncwarp.
BK_GLOBAL void warp_ops_kernel(int* out) {
  const int t = threadIdx.x, lane = t % 32;
  const unsigned full = 0xffffffffu;
  int sum = lane;
  for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(full, sum, o);
  int scan = lane;
  for (int o = 1; o < 32; o *= 2) {
    const int v = __shfl_up_sync(full, scan, o);
    if (lane >= o) scan += v;
  }
  int* o = out + 8 * t;
  o[0] = sum;
  o[1] = scan;
  o[2] = __shfl_down_sync(full, lane * 100, 3);
  o[3] = __shfl_sync(full, lane * 7, 5, 16);
  o[4] = int(__ballot_sync(full, lane & 1));
  o[5] = __any_sync(full, lane == 31);
  o[6] = __all_sync(full, lane < 31);
  __syncwarp();
  o[7] = int(__shfl_sync(full, double(lane) + 0.5, 31 - lane) * 2.0);
}
cudaError_t warp_ops(int* out, int nthreads) {
  return BK_LAUNCH(warp_ops_kernel, dim3(1), dim3(nthreads), 0, nullptr, out);
}

// `iters` block barriers: measures the emulator's per-thread switch cost.
BK_GLOBAL void barrier_loop_kernel(int iters, int* out) {
  for (int i = 0; i < iters; ++i) __syncthreads();
  out[threadIdx.x] = iters;
}
cudaError_t barrier_loop(int iters, int threads, int* out) {
  return BK_LAUNCH(barrier_loop_kernel, dim3(1), dim3(threads), 0, nullptr, iters, out);
}

}  // namespace simtest
