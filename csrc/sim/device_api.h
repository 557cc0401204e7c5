// What emulated kernels call: the emulator's side of the CUDA built-ins and
// of the bk::dev primitives. Kept free of STL so kernels compile fast.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <vector_types.h>

namespace bk {
namespace sim {

// threadIdx & co. of the running fiber; fibers never move between OS
// threads, so a thread_local pointer (set on every switch) is enough.
struct Ids {
  uint3 thread_idx, block_idx;
  dim3 block_dim, grid_dim;
};
extern thread_local Ids* tl_ids;

void syncthreads();
void syncwarp(unsigned mask);
// mode: 0 idx, 1 up, 2 down, 3 xor (CUDA's __shfl*_sync semantics).
uint64_t shfl(unsigned mask, uint64_t bits, int mode, int arg, int width);
// mode: 0 ballot, 1 any, 2 all.
unsigned vote(unsigned mask, int pred, int mode);
unsigned active_mask();
void grid_sync();
[[noreturn]] void device_trap(const char* what);

// Shared memory: one pool per block; `key` identifies a static declaration.
void* shared_static(size_t bytes, size_t align, const void* key, const char* name);
void* shared_dynamic();

void cp_async(void* smem_dst, const void* src, int bytes, int src_bytes);
void cp_async_commit();
void cp_async_wait(int pending_groups);

// ldmatrix .x{num} [.trans]: `row` is this lane's row address.
void ldmatrix(int num, bool trans, const void* row, uint32_t* out);

enum MmaKind : int { kMmaF16 = 0, kMmaBF16 = 1, kMmaTF32 = 2 };
// m16n8k16 (f16/bf16: a[4], b[2]) or m16n8k8 (tf32: a[4], b[2]); f32 c/d[4].
void mma(int kind, float* d, const uint32_t* a, const uint32_t* b, const float* c);

}  // namespace sim
}  // namespace bk
