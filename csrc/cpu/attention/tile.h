// What the forward and backward share: addressing, the mask and causal limit
// applied to one tile of scores, and the causal visibility arithmetic.
#pragma once
#include <stdint.h>

#include <algorithm>
#include <limits>

#include "common/attention_params.h"
#include "common/attention_philox.h"
#include "cpu/isa.h"

namespace bk {
namespace cpu {

template <typename T>
inline const T* at3(const void* base, const int64_t* stride, int64_t b, int64_t h, int64_t s) {
  return static_cast<const T*>(base) + b * stride[0] + h * stride[1] + s * stride[2];
}
template <typename T>
inline T* at3(void* base, const int64_t* stride, int64_t b, int64_t h, int64_t s) {
  return static_cast<T*>(base) + b * stride[0] + h * stride[1] + s * stride[2];
}

// One sequence of the batch: its lengths and first rows (varlen: packed offsets).
struct Seq {
  int64_t sq, skv, q0, k0;
};

inline Seq seq_of(const AttentionParams& p, int64_t b) {
  Seq s{p.seqlen_q, p.seqlen_kv, 0, 0};
  if (p.cu_seqlens_q) {
    s.q0 = p.cu_seqlens_q[b];
    s.sq = p.cu_seqlens_q[b + 1] - s.q0;
    s.k0 = p.cu_seqlens_k[b];
    s.skv = p.cu_seqlens_k[b + 1] - s.k0;
  }
  if (p.seqused_k) s.skv = p.seqused_k[b];
  return s;
}

// Row of (b, h, query 0) in lse / delta: (B, Hq, Sq) dense, (Hq, total_q) varlen.
inline int64_t lse_row(const AttentionParams& p, const Seq& s, int64_t b, int64_t h) {
  return p.cu_seqlens_q ? h * p.total_q + s.q0 : (b * p.heads_q + h) * p.seqlen_q;
}

// Causal, bottom-right aligned: query i sees keys j < i + 1 + (Skv - Sq).
inline int64_t causal_end(const AttentionParams& p, const Seq& s, int64_t i) {
  return p.causal ? std::min(s.skv, std::max<int64_t>(0, i + 1 + s.skv - s.sq)) : s.skv;
}

// Adds the mask and the causal limit to the scores S[r][c] (query i0 + r,
// key j0 + c). The mask is read through its strides (0 where broadcast).
template <typename T>
inline void mask_tile(const AttentionParams& p, const Seq& sq, T* S, int64_t ld, int64_t b, int64_t h, int64_t i0,
                      int64_t rows, int64_t j0, int64_t cols) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t* ms = p.mask_stride;
  for (int64_t r = 0; r < rows; ++r) {
    T* s = S + r * ld;
    const int64_t i = i0 + r;
    if (p.mask_kind == AttnMask::Bool) {
      const uint8_t* m = static_cast<const uint8_t*>(p.mask) + b * ms[0] + h * ms[1] + i * ms[2] + j0 * ms[3];
      for (int64_t c = 0; c < cols; ++c) s[c] = m[c * ms[3]] ? s[c] : kNegInf;
    } else if (p.mask_kind == AttnMask::Additive) {
      const T* m = static_cast<const T*>(p.mask) + b * ms[0] + h * ms[1] + i * ms[2] + j0 * ms[3];
      for (int64_t c = 0; c < cols; ++c) s[c] += m[c * ms[3]];
    }
    if (p.causal) {
      const int64_t visible = std::clamp<int64_t>(causal_end(p, sq, i) - j0, 0, cols);
      for (int64_t c = visible; c < cols; ++c) s[c] = kNegInf;
    }
  }
}

// mask_tile for a transposed tile (forward_lanes.cpp, backward_lanes.cpp):
// st[c * BM + r] is key j0 + c for query i0 + r.
template <typename T>
inline void mask_lanes(const AttentionParams& p, const Seq& sq, T* st, int64_t BM, int64_t b, int64_t h,
                       int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t* ms = p.mask_stride;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = i0 + r;
    if (p.mask_kind == AttnMask::Bool) {
      const uint8_t* m = static_cast<const uint8_t*>(p.mask) + b * ms[0] + h * ms[1] + i * ms[2] + j0 * ms[3];
      for (int64_t c = 0; c < cols; ++c)
        if (!m[c * ms[3]]) st[c * BM + r] = kNegInf;
    } else if (p.mask_kind == AttnMask::Additive) {
      const T* m = static_cast<const T*>(p.mask) + b * ms[0] + h * ms[1] + i * ms[2] + j0 * ms[3];
      for (int64_t c = 0; c < cols; ++c) st[c * BM + r] += m[c * ms[3]];
    }
    if (p.causal) {
      const int64_t visible = std::clamp<int64_t>(causal_end(p, sq, i) - j0, 0, cols);
      for (int64_t c = visible; c < cols; ++c) st[c * BM + r] = kNegInf;
    }
  }
}

// Share of the vector lanes that hold a query (1 when every sequence length
// is a multiple of L): a sequence's last block runs on just the vectors its
// queries need, so only the last vector's lanes can idle. Below ~0.75 (short
// sequences, decoding) the BLAS-tile path is as fast or faster (docs/attention.md).
constexpr double kMinLaneFill = 0.75;
inline double lane_fill(const AttentionParams& p, int64_t L) {
  int64_t queries = 0, slots = 0;
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t sq = seq_of(p, b).sq;
    queries += sq;
    slots += (sq + L - 1) / L * L;
  }
  return slots ? double(queries) / double(slots) : 0.0;
}

// The vector width the lanes kernels run a call at (floats: 16 with AVX-512,
// 8 with AVX2), or 0 where they do not apply: float64, a CPU without AVX2,
// or lanes filled below kMinLaneFill.
inline int lanes_width(const AttentionParams& p) {
  if (p.fp64) return 0;
  const Isa isa = best_isa();
  const int L = isa == Isa::Avx512 ? 16 : isa == Isa::Avx2 ? 8 : 0;
  return L && lane_fill(p, L) >= kMinLaneFill ? L : 0;
}

// True when the tile needs mask_tile at all: a mask, or keys past the causal
// limit of its first row (rows further down see more).
inline bool tile_needs_mask(const AttentionParams& p, const Seq& s, int64_t i0, int64_t j0, int64_t cols) {
  return p.mask_kind != AttnMask::None || (p.causal && j0 + cols > causal_end(p, s, i0));
}

// Z[r][c] = 1 / (1 - p) where element (query i0 + r, key j0 + c) is kept, else 0.
template <typename T>
inline void dropout_tile(const AttentionParams& p, T* Z, int64_t ld, int64_t b, int64_t h, int64_t i0, int64_t rows,
                         int64_t j0, int64_t cols) {
  const T kept = T(1) / T(1 - p.dropout_p);
  const int64_t threshold = dropout_threshold(p.dropout_p);
  for (int64_t r = 0; r < rows; ++r) {
    const uint64_t row = p.offset + uint64_t(((b * p.heads_q + h) * p.seqlen_q + i0 + r) * p.seqlen_kv + j0);
    for (int64_t c = 0; c < cols; ++c) Z[r * ld + c] = dropout_keep(p.seed, row + c, threshold) ? kept : T(0);
  }
}

}  // namespace cpu
}  // namespace bk
