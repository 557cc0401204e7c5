// Register-blocked products with weight panels packed once per layer call:
// the per-step GEMMs of the CPU recurrent team kernels (lstm_team.cpp), and
// the tile products of the CPU attention kernels (forward_lanes.cpp,
// backward_lanes.cpp), whose panels are query blocks transposed (queries
// along the vector lanes) or rows of Q, dO and K (head dim along the lanes).
//
// A panel holds L consecutive output columns of a weight (L = the vector
// width: 16 floats with AVX-512, 8 otherwise). A group of NP panels is
// stored interleaved, [K][NP][L], so that each k reads NP * L contiguous
// floats (one sequential stream rather than NP streams 16 KiB apart; on the
// dev VM both layouts measured the same, the batch-1 GEMV being bound by
// L2 bandwidth either way). The group is multiplied by BT rows of A at once:
// the BT x NP accumulators stay in vector registers, and each k loads NP
// weight vectors and broadcasts BT values of A. This is what MKL's packed
// GEMM does too, but called from inside one thread of a team that lives for
// the whole sequence instead of forking per step (batch 16, H = 256, one
// core: ~65 GFLOP/s for the per-step packed MKL calls, 85-91 for these tiles).
//
// The vector type comes from an ISA traits struct (VecAvx512, VecAvx2,
// VecBase): explicit FMA intrinsics, because -std=c++20 turns GCC's
// contraction of a * b + c into an FMA off. The templates here are plain
// `inline`: a caller compiles them for one ISA by calling them from a
// function with that target and __attribute__((flatten)), which inlines
// everything below it (an always_inline template would be compiled for the
// default target first and fail to inline the intrinsics).
#pragma once
#include <stdint.h>
#include <string.h>

#include <algorithm>

#include "cpu/isa.h"

#if BK_HAS_ISA_CLONES
#include <immintrin.h>
#endif

#define BK_PANEL_INLINE inline

namespace bk {
namespace cpu {

#if BK_HAS_ISA_CLONES
struct VecAvx512 {
  static constexpr int L = 16;
  static constexpr int kMaxRows = 6;  // 6 x 4 accumulators + 4 weights of 32 zmm registers
  using V = __m512;
  BK_TARGET_AVX512 static BK_PANEL_INLINE V zero() { return _mm512_setzero_ps(); }
  BK_TARGET_AVX512 static BK_PANEL_INLINE V load(const float* p) { return _mm512_loadu_ps(p); }
  BK_TARGET_AVX512 static BK_PANEL_INLINE V bcast(float x) { return _mm512_set1_ps(x); }
  BK_TARGET_AVX512 static BK_PANEL_INLINE V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  BK_TARGET_AVX512 static BK_PANEL_INLINE void store(float* p, V v) { _mm512_storeu_ps(p, v); }
};

struct VecAvx2 {
  static constexpr int L = 8;
  static constexpr int kMaxRows = 3;  // 3 x 4 accumulators + 4 weights of 16 ymm registers
  using V = __m256;
  BK_TARGET_AVX2 static BK_PANEL_INLINE V zero() { return _mm256_setzero_ps(); }
  BK_TARGET_AVX2 static BK_PANEL_INLINE V load(const float* p) { return _mm256_loadu_ps(p); }
  BK_TARGET_AVX2 static BK_PANEL_INLINE V bcast(float x) { return _mm256_set1_ps(x); }
  BK_TARGET_AVX2 static BK_PANEL_INLINE V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  BK_TARGET_AVX2 static BK_PANEL_INLINE void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
#endif

// Stamps MACRO(target attribute, name suffix, vector traits) once per vector
// ISA: the per-ISA copies of a kernel built on these tiles (called from a
// function with that target and flatten, as said above).
#if BK_HAS_ISA_CLONES
#define BK_FOR_EACH_VECTOR_ISA(MACRO) \
  MACRO(BK_TARGET_AVX2, avx2, VecAvx2) \
  MACRO(BK_TARGET_AVX512, avx512, VecAvx512)
#else
#define BK_FOR_EACH_VECTOR_ISA(MACRO)
#endif

struct VecBase {  // any CPU: GCC's generic vectors, no FMA
  static constexpr int L = 8;
  static constexpr int kMaxRows = 1;
  using V = float __attribute__((vector_size(L * sizeof(float))));
  static BK_PANEL_INLINE V zero() { return V{}; }
  static BK_PANEL_INLINE V load(const float* p) {
    V v;
    memcpy(&v, p, sizeof(V));
    return v;
  }
  static BK_PANEL_INLINE V bcast(float x) { return V{} + x; }
  static BK_PANEL_INLINE V fma(V a, V b, V c) { return a * b + c; }
  static BK_PANEL_INLINE void store(float* p, V v) { memcpy(p, &v, sizeof(V)); }
};

// out[b][p][0..L) (+)= sum_k A[b * lda + k * ak] * panels[k][p][0..L), b < BT, p < NP
// (accumulate: add to what out holds, for a K split in chunks). Panel k starts
// at panels + k * ldp and output row b at out + b * ldo (0: NP * L, packed
// densely); ak != 1 reads A down its columns (A transposed).
template <typename Vec, int BT, int NP>
BK_PANEL_INLINE void panel_tile(const float* A, int64_t lda, const float* panels, int64_t K, float* out,
                                bool accumulate, int64_t ak = 1, int64_t ldp = 0, int64_t ldo = 0) {
  constexpr int L = Vec::L;
  if (ldp == 0) ldp = NP * L;
  if (ldo == 0) ldo = NP * L;
  typename Vec::V acc[BT][NP];
  for (int b = 0; b < BT; ++b)
    for (int p = 0; p < NP; ++p) acc[b][p] = accumulate ? Vec::load(out + b * ldo + p * L) : Vec::zero();
  for (int64_t k = 0; k < K; ++k) {
    typename Vec::V w[NP];
    for (int p = 0; p < NP; ++p) w[p] = Vec::load(panels + k * ldp + p * L);
    for (int b = 0; b < BT; ++b) {
      const auto a = Vec::bcast(A[b * lda + k * ak]);
      for (int p = 0; p < NP; ++p) acc[b][p] = Vec::fma(a, w[p], acc[b][p]);
    }
  }
  for (int b = 0; b < BT; ++b)
    for (int p = 0; p < NP; ++p) Vec::store(out + b * ldo + p * L, acc[b][p]);
}

// panel_tile for a run-time row count bt <= BTmax (one instantiation each).
template <typename Vec, int BTmax, int NP>
BK_PANEL_INLINE void panel_rows(int bt, const float* A, int64_t lda, const float* panels, int64_t K, float* out,
                                bool accumulate = false, int64_t ak = 1, int64_t ldp = 0, int64_t ldo = 0) {
  if constexpr (BTmax > 1) {
    if (bt < BTmax) return panel_rows<Vec, BTmax - 1, NP>(bt, A, lda, panels, K, out, accumulate, ak, ldp, ldo);
  }
  panel_tile<Vec, BTmax, NP>(A, lda, panels, K, out, accumulate, ak, ldp, ldo);
}

// ... and a run-time panel count np <= NPmax.
template <typename Vec, int BTmax, int NPmax>
BK_PANEL_INLINE void panel_block(int bt, int np, const float* A, int64_t lda, const float* panels, int64_t K,
                                 float* out, bool accumulate = false, int64_t ak = 1, int64_t ldp = 0,
                                 int64_t ldo = 0) {
  if constexpr (NPmax > 1) {
    if (np < NPmax) return panel_block<Vec, BTmax, NPmax - 1>(bt, np, A, lda, panels, K, out, accumulate, ak, ldp, ldo);
  }
  panel_rows<Vec, BTmax, NPmax>(bt, A, lda, panels, K, out, accumulate, ak, ldp, ldo);
}

// panel_block over all B rows of A in tiles of up to Vec::kMaxRows rows,
// with K split in chunks of kChunk: a chunk of the group's panels (np x
// kChunk x L floats, 16 KiB with AVX-512 at np = 4) stays in L1 while every
// row tile uses it, instead of streaming the whole group from L2 once per
// tile. out: [B][np][L].
constexpr int64_t kChunk = 64;
template <typename Vec>
BK_PANEL_INLINE void panel_all_rows(int64_t B, int np, const float* A, int64_t lda, const float* panels, int64_t K,
                                    float* out) {
  constexpr int R = Vec::kMaxRows;
  for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
    const int64_t kc = std::min(kChunk, K - k0);
    for (int64_t b0 = 0; b0 < B; b0 += R) {
      const int bt = int(std::min<int64_t>(R, B - b0));
      panel_block<Vec, R, 4>(bt, np, A + b0 * lda + k0, lda, panels + k0 * np * Vec::L, kc,
                             out + b0 * np * Vec::L, k0 > 0);
    }
  }
}

}  // namespace cpu
}  // namespace bk
