// 64x64 output tile per block of 4 warps (2x2, 32x32 each), BK = 32, two
// cp.async stages. Shared rows are padded to 40 halves (80 bytes): keeps
// ldmatrix rows 16-byte aligned and spreads the 8 rows of a matrix over
// different banks.
#include "cuda/testing/gemm_mma.h"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 32, kPad = 40, kThreads = 128;

// Copies a 64x32 tile of a row-major [rows, K] matrix into smem (16 bytes
// per cp.async, 2 per thread); rows or k-chunks outside the matrix are zero.
BK_DEVICE void load_tile(uint16_t (*dst)[kPad], const uint16_t* src, int row0, int rows, int k0, int K) {
  for (int c = threadIdx.x; c < kBM * kBK / 8; c += kThreads) {
    const int r = c / (kBK / 8), kc = (c % (kBK / 8)) * 8;
    const bool valid = row0 + r < rows && k0 + kc < K;
    const uint16_t* p = valid ? src + int64_t(row0 + r) * K + k0 + kc : src;
    dev::cp_async_16(&dst[r][kc], p, valid);
  }
}

template <bool BF16>
BK_GLOBAL void gemm_mma_kernel(const uint16_t* A, const uint16_t* B, float* C, int M, int N, int K) {
  BK_SHARED(uint16_t, As, [2][kBM][kPad]);
  BK_SHARED(uint16_t, Bs, [2][kBN][kPad]);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int m0 = blockIdx.y * kBM, n0 = blockIdx.x * kBN;
  float acc[2][4][4] = {};
  const int KT = (K + kBK - 1) / kBK;
  load_tile(As[0], A, m0, M, 0, K);
  load_tile(Bs[0], B, n0, N, 0, K);
  dev::cp_async_commit();
  for (int kt = 0; kt < KT; ++kt) {
    const int s = kt & 1;
    if (kt + 1 < KT) {
      load_tile(As[s ^ 1], A, m0, M, (kt + 1) * kBK, K);
      load_tile(Bs[s ^ 1], B, n0, N, (kt + 1) * kBK, K);
    }
    dev::cp_async_commit();  // possibly empty: keeps the group count uniform
    dev::cp_async_wait<1>();
    __syncthreads();
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t a[2][4], b[4][2];
      // A 16x16: matrix j = lane/8 covers rows +8*(j&1), cols +8*(j>>1).
      for (int i = 0; i < 2; ++i)
        dev::ldmatrix_x4(a[i][0], a[i][1], a[i][2], a[i][3],
                         &As[s][wm + 16 * i + (lane % 8) + 8 * ((lane / 8) & 1)][kk + 8 * (lane / 16)]);
      // B^T rows are n: matrix j covers n +8*(j>>1), k +8*(j&1): two n8 tiles.
      for (int j = 0; j < 2; ++j)
        dev::ldmatrix_x4(b[2 * j][0], b[2 * j][1], b[2 * j + 1][0], b[2 * j + 1][1],
                         &Bs[s][wn + 16 * j + (lane % 8) + 8 * (lane / 16)][kk + 8 * ((lane / 8) & 1)]);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j) {
          if constexpr (BF16) dev::mma_m16n8k16_bf16f32(acc[i][j], a[i], b[j], acc[i][j]);
          else dev::mma_m16n8k16_f16f32(acc[i][j], a[i], b[j], acc[i][j]);
        }
    }
    __syncthreads();  // the next iteration's cp.async overwrites this stage
  }
  const int g = lane / 4, t = lane % 4;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int v = 0; v < 4; ++v) {
        const int r = m0 + wm + 16 * i + g + 8 * (v >> 1), c = n0 + wn + 8 * j + 2 * t + (v & 1);
        if (r < M && c < N) C[int64_t(r) * N + c] = acc[i][j][v];
      }
}

}  // namespace

cudaError_t testing_gemm_mma(const void* a, const void* b, float* c, int m, int n, int k, bool bf16,
                             cudaStream_t stream) {
  if (m <= 0 || n <= 0 || k <= 0 || k % 8) return cudaErrorInvalidValue;
  const dim3 grid((n + kBN - 1) / kBN, (m + kBM - 1) / kBM), block(kThreads);
  const auto* A = static_cast<const uint16_t*>(a);
  const auto* B = static_cast<const uint16_t*>(b);
  if (bf16) return BK_LAUNCH(gemm_mma_kernel<true>, grid, block, 0, stream, A, B, c, m, n, k);
  return BK_LAUNCH(gemm_mma_kernel<false>, grid, block, 0, stream, A, B, c, m, n, k);
}

}  // namespace cuda
}  // namespace bk
