// Host entry points of the emulator's test kernels (kernels_*.cu). Each
// returns the launch's cudaError_t; seeded-bug variants are named bug_*.
#pragma once
#include <cuda_runtime_api.h>
#include <stdint.h>

namespace simtest {
// kernels_sync.cu
cudaError_t indices(int* out, dim3 grid, dim3 block);
cudaError_t block_sum(const float* in, float* out, int blocks, bool bug_missing_barrier);
cudaError_t uninit_smem(float* out, bool bug_read_unwritten);
cudaError_t smem_overflow(float* out, bool dynamic);  // seeded bug: writes 1 float past the array
cudaError_t early_exit_barrier(int* out);       // seeded deadlock: barrier not reached by all
cudaError_t half_warp_shfl(int* out);           // seeded deadlock: mask names lanes that wait elsewhere
cudaError_t mask_without_caller(int* out);      // lane calls with a mask that omits itself
cudaError_t cp_async_stage(const float* in, float* out, int blocks, bool bug_missing_wait);
cudaError_t cp_async_small(const float* in, float* out);  // 4/8-byte copies, zero-fill
cudaError_t pipeline(const float* in, float* out, int iters, bool bug_missing_war_barrier);
cudaError_t atomic_count(unsigned* counter, float* fsum, int blocks);
cudaError_t grid_exchange(int* out, int blocks, int threads);
cudaError_t grid_skip(int* out);               // seeded deadlock: a block skips grid sync
cudaError_t oob_write(float* out, int n);       // seeded bug: writes out[n]
cudaError_t warp_ops(int* out, int nthreads);
cudaError_t barrier_loop(int iters, int threads, int* out);   // shuffles and votes, 8 results per thread
// kernels_frag.cu: fragments built by the test from the ISA layout formula.
cudaError_t mma_frag(int kind, const uint32_t* a_regs, const uint32_t* b_regs, const float* c, float* d);
cudaError_t ldmatrix_probe(int num, bool trans, uint32_t* out);  // smem[r][c] = r*256+c for 32x8 halves
}  // namespace simtest
