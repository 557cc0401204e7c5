// Tensor-core pieces shared by the persistent (lstm_forward_mma.cu) and the
// per-step (lstm_step_mma.cu) fp16/bf16 forward kernels. Both order W_hh rows
// so that one m16 tile holds the 4 gates of 4 units: tile row r = 4 gate + unit
// (r / 4 = gate i, f, g, o; r % 4 = unit), so the accumulator of one
// m16n8k16 holds, in lane (g = lane/4, t = lane%4), rows g (gate i or f) and
// g+8 (gate g or o) of unit g % 4 for batch columns 2t, 2t+1.
#pragma once
#include <type_traits>

#include "cuda/lstm/lstm_forward.cuh"

namespace bk {
namespace cuda {
namespace lstm {

template <typename T>
BK_DEVICE void mma16816(float* d, const uint32_t* a, const uint32_t* b) {
  if constexpr (std::is_same<T, __half>::value) dev::mma_m16n8k16_f16f32(d, a, b, d);
  else dev::mma_m16n8k16_bf16f32(d, a, b, d);
}

// Block-local unit j (of the block's nU) held at row r of the block's tiles.
BK_DEVICE int64_t mma_row_unit(int64_t r) { return (r / 16) * 4 + r % 4; }
BK_DEVICE int mma_row_gate(int64_t r) { return int(r % 16) / 4; }

// The cells of one accumulator tile: m16 tile `mt` of the block (units
// 4 mt .. 4 mt + 3 after u0), batch columns b0 .. b0 + 7. Lanes 16-31 hand f
// and o to lanes 0-15 with one shuffle, which apply cell_update. All 32
// lanes must call it (the shuffle).
template <typename T, bool kProj>
BK_DEVICE void mma_tile_cells(const Args& a, int64_t s, const float acc[4], int64_t mt, int64_t b0, int64_t u0,
                              int nU) {
  const int lane = lane_id(), g = lane / 4, tq = lane % 4;
  const float f0 = __shfl_xor_sync(0xffffffffu, acc[0], 16), f1 = __shfl_xor_sync(0xffffffffu, acc[1], 16);
  const float o0 = __shfl_xor_sync(0xffffffffu, acc[2], 16), o1 = __shfl_xor_sync(0xffffffffu, acc[3], 16);
  if (lane >= 16) return;
  const int64_t j = mt * 4 + g;
  for (int e = 0; e < 2; ++e) {
    const int64_t b = b0 + 2 * tq + e;
    if (j >= nU || b >= a.p.B) continue;
    const float z[4] = {acc[e], e ? f1 : f0, acc[2 + e], e ? o1 : o0};
    cell_update<T, kProj>(a, s, b, u0 + j, z);
  }
}

}  // namespace lstm
}  // namespace cuda
}  // namespace bk
