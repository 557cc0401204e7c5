// Warp-level pieces of the 64x64 implicit-GEMM tiles (4 warps, 32x32 each,
// m16n8k16): ldmatrix fragment loads for operands stored either way round in
// shared memory, and the 2x4 mma.sync block. Fragment layouts: PTX ISA
// (mma.m16n8k16 A row / B col); `.trans` serves an operand whose stored rows
// run along the reduction: thread (g = lane/4, t = lane%4) then receives
// stored rows 2t, 2t+1 of column g, which is the k-pair the fragment wants.
#pragma once
#include <stdint.h>

#include <type_traits>

#include "device/primitives.cuh"

namespace bk {
namespace cuda {
namespace tile {

// A stored [m][k]: 8x8 matrix j = lane/8 covers rows +8*(j&1), k +8*(j>>1).
template <int LD>
BK_DEVICE void load_a(uint32_t (&a)[2][4], const uint16_t (*s)[LD], int wm, int kk, int lane) {
  for (int i = 0; i < 2; ++i)
    dev::ldmatrix_x4(a[i][0], a[i][1], a[i][2], a[i][3],
                     &s[wm + 16 * i + (lane % 8) + 8 * ((lane / 8) & 1)][kk + 8 * (lane / 16)]);
}
// A stored [k][m]: matrix j covers m +8*(j&1), k +8*(j>>1); transposed.
template <int LD>
BK_DEVICE void load_a_trans(uint32_t (&a)[2][4], const uint16_t (*s)[LD], int wm, int kk, int lane) {
  for (int i = 0; i < 2; ++i)
    dev::ldmatrix_x4_trans(a[i][0], a[i][1], a[i][2], a[i][3],
                           &s[kk + (lane % 8) + 8 * (lane / 16)][wm + 16 * i + 8 * ((lane / 8) & 1)]);
}
// B stored [k][n]: matrix j covers k +8*(j&1), n +8*(j>>1): two n8 tiles per x4.
template <int LD>
BK_DEVICE void load_b_trans(uint32_t (&b)[4][2], const uint16_t (*s)[LD], int wn, int kk, int lane) {
  for (int j = 0; j < 2; ++j)
    dev::ldmatrix_x4_trans(b[2 * j][0], b[2 * j][1], b[2 * j + 1][0], b[2 * j + 1][1],
                           &s[kk + (lane % 8) + 8 * ((lane / 8) & 1)][wn + 16 * j + 8 * (lane / 16)]);
}

template <typename T>
BK_DEVICE void mma(float (&acc)[2][4][4], uint32_t (&a)[2][4], uint32_t (&b)[4][2]) {
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      if constexpr (std::is_same<T, __nv_bfloat16>::value) dev::mma_m16n8k16_bf16f32(acc[i][j], a[i], b[j], acc[i][j]);
      else dev::mma_m16n8k16_f16f32(acc[i][j], a[i], b[j], acc[i][j]);
    }
}

// (row, col) inside the warp's 32x32 block of accumulator acc[i][j][v].
BK_DEVICE int acc_row(int lane, int i, int v) { return 16 * i + lane / 4 + 8 * (v >> 1); }
BK_DEVICE int acc_col(int lane, int j, int v) { return 8 * j + 2 * (lane % 4) + (v & 1); }

}  // namespace tile
}  // namespace cuda
}  // namespace bk
