// Attention forward, FlashAttention-2 style on the CPU: one task owns a block
// of block_q query rows of one (batch, head) and streams the visible key
// blocks through an online softmax, so memory is O(block_q * block_kv) per
// thread, never (Sq, Skv). Tile GEMMs go to BLAS; the softmax rows to
// rowops (vectorised exp). Blocks above the causal diagonal are never read.
// With fewer query blocks than threads (decoding) the keys are split as well.
// float32 calls with full query blocks run forward_lanes.cpp instead.
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cpu/attention/attention.h"
#include "cpu/blas/gemm.h"
#include "cpu/attention/lanes.h"
#include "cpu/attention/rowops.h"
#include "cpu/attention/tile.h"

namespace bk {
namespace cpu {
namespace {

// Task t of the forward: query block i0 = qb * block_q of head h of batch b.
struct QueryBlock {
  int64_t b, h, i0;
};
inline QueryBlock query_block(const AttentionParams& p, int64_t t, int64_t q_blocks) {
  return {t / (q_blocks * p.heads_q), (t / q_blocks) % p.heads_q, (t % q_blocks) * p.block_q};
}

// Streams the keys [j_begin, j_end) (j_begin a multiple of the block) past
// one block of query rows: the online softmax's running state acc [rows][D],
// m, l is updated in place. S (and Z with dropout) are BM x BN scratch.
template <typename T>
void attend_keys(const AttentionParams& p, const Seq& sq, int64_t b, int64_t h, int64_t i0, int64_t rows,
                 int64_t j_begin, int64_t j_end, T* S, T* Z, T* acc, T* m, T* l) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t BN = p.block_kv, D = p.head_dim, hk = h / (p.heads_q / p.heads_kv);
  const T* q = at3<T>(p.q, p.q_stride, b, h, sq.q0 + i0);
  for (int64_t j0 = j_begin; j0 < j_end; j0 += BN) {
    const int64_t cols = std::min(BN, j_end - j0);
    const T* k = at3<T>(p.k, p.k_stride, b, hk, sq.k0 + j0);
    const T* v = at3<T>(p.v, p.v_stride, b, hk, sq.k0 + j0);
    gemm_rm<T>(false, true, rows, cols, D, T(p.scale), q, p.q_stride[2], k, p.k_stride[2], T(0), S, BN);
    if (tile_needs_mask(p, sq, i0, j0, cols)) mask_tile<T>(p, sq, S, BN, b, h, i0, rows, j0, cols);
    for (int64_t r = 0; r < rows; ++r) {
      T* s = S + r * BN;
      const T m_new = std::max(m[r], rowops::max(s, cols));
      if (m_new == kNegInf) {  // nothing visible yet in this row: P = 0
        std::fill(s, s + cols, T(0));
        continue;
      }
      const T alpha = std::exp(m[r] - m_new);  // exp(-inf) = 0 on the first visible block
      l[r] = l[r] * alpha + rowops::exp_sub_sum(s, cols, m_new);
      if (alpha != T(1)) rowops::scale(acc + r * D, D, alpha);
      m[r] = m_new;
    }
    if (p.dropout_p > 0) {  // the normaliser l keeps the undropped P
      dropout_tile<T>(p, Z, BN, b, h, i0, rows, j0, cols);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) S[r * BN + c] *= Z[r * BN + c];
    }
    gemm_rm<T>(false, false, rows, D, cols, T(1), S, BN, v, p.v_stride[2], T(1), acc, D);
  }
}

// o = acc / l and lse = m + log l for `rows` rows; a row that saw no key gets
// output 0 and lse -inf (the backward's P = 0).
template <typename T>
void write_rows(const AttentionParams& p, const Seq& sq, int64_t b, int64_t h, int64_t i0, int64_t rows,
                const T* acc, const T* m, const T* l) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t D = p.head_dim;
  T* o = at3<T>(p.o, p.o_stride, b, h, sq.q0 + i0);
  T* lse = static_cast<T*>(p.lse) + lse_row(p, sq, b, h) + i0;
  for (int64_t r = 0; r < rows; ++r) {
    const T inv = l[r] > T(0) ? T(1) / l[r] : T(0);
    for (int64_t d = 0; d < D; ++d) o[r * p.o_stride[2] + d] = acc[r * D + d] * inv;
    lse[r] = l[r] > T(0) ? m[r] + std::log(l[r]) : kNegInf;
  }
}

// Fewer query blocks than threads (decoding: a few queries per sequence, batch
// 1): the keys are split too (flash-decoding). Each (block, split) keeps its own
// acc, m, l; a second pass merges the splits by their maxima, in split order.
template <typename T>
void forward_split_keys(const AttentionParams& p, int64_t tasks, int64_t q_blocks, int64_t splits) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t BM = p.block_q, BN = p.block_kv, D = p.head_dim;
  const int64_t kv_blocks = (p.seqlen_kv + BN - 1) / BN;
  const int64_t per_split = (kv_blocks + splits - 1) / splits * BN;  // keys
  std::vector<T> acc(tasks * splits * BM * D), m(tasks * splits * BM, kNegInf), l(tasks * splits * BM, T(0));
  at::parallel_for(0, tasks * splits, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> S(BM * BN), Z(p.dropout_p > 0 ? BM * BN : 0);
    for (int64_t x = begin; x < end; ++x) {
      const int64_t t = x / splits, split = x % splits;
      const auto [b, h, i0] = query_block(p, t, q_blocks);
      const Seq sq = seq_of(p, b);
      if (i0 >= sq.sq) continue;
      const int64_t rows = std::min(BM, sq.sq - i0);
      const int64_t kv_end = causal_end(p, sq, i0 + rows - 1);
      const int64_t j_begin = split * per_split, j_end = std::min(kv_end, j_begin + per_split);
      if (j_begin >= j_end) continue;  // m stays -inf, l 0: this split adds nothing
      attend_keys<T>(p, sq, b, h, i0, rows, j_begin, j_end, S.data(), Z.data(), acc.data() + x * BM * D,
                     m.data() + x * BM, l.data() + x * BM);
    }
  });
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> out(BM * D), m_all(BM), l_all(BM);
    for (int64_t t = begin; t < end; ++t) {
      const auto [b, h, i0] = query_block(p, t, q_blocks);
      const Seq sq = seq_of(p, b);
      if (i0 >= sq.sq) continue;
      const int64_t rows = std::min(BM, sq.sq - i0);
      for (int64_t r = 0; r < rows; ++r) {
        T mx = kNegInf, sum = T(0);
        for (int64_t s = 0; s < splits; ++s) mx = std::max(mx, m[(t * splits + s) * BM + r]);
        std::fill(out.begin() + r * D, out.begin() + (r + 1) * D, T(0));
        for (int64_t s = 0; s < splits && mx != kNegInf; ++s) {
          const int64_t x = t * splits + s;
          const T w = std::exp(m[x * BM + r] - mx);  // 0 for a split that saw nothing
          sum += w * l[x * BM + r];
          for (int64_t d = 0; d < D; ++d) out[r * D + d] += w * acc[(x * BM + r) * D + d];
        }
        m_all[r] = mx;
        l_all[r] = sum;
      }
      write_rows<T>(p, sq, b, h, i0, rows, out.data(), m_all.data(), l_all.data());
    }
  });
}

template <typename T>
void forward(const AttentionParams& p) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t BM = p.block_q, BN = p.block_kv, D = p.head_dim;
  const int64_t q_blocks = (p.seqlen_q + BM - 1) / BM;
  const int64_t tasks = p.batch * p.heads_q * q_blocks;
  const int64_t threads = at::get_num_threads(), kv_blocks = (p.seqlen_kv + BN - 1) / BN;
  if (tasks < threads && kv_blocks > 1) {
    forward_split_keys<T>(p, tasks, q_blocks, std::min(kv_blocks, (threads + tasks - 1) / tasks));
    return;
  }
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> S(BM * BN), acc(BM * D), m(BM), l(BM), Z(p.dropout_p > 0 ? BM * BN : 0);
    for (int64_t t = begin; t < end; ++t) {
      const auto [b, h, i0] = query_block(p, t, q_blocks);
      const Seq sq = seq_of(p, b);
      if (i0 >= sq.sq) continue;  // varlen: past this sequence's end
      const int64_t rows = std::min(BM, sq.sq - i0);
      std::fill(acc.begin(), acc.begin() + rows * D, T(0));
      std::fill(m.begin(), m.begin() + rows, kNegInf);
      std::fill(l.begin(), l.begin() + rows, T(0));
      // The last row of the block sees the most keys.
      attend_keys<T>(p, sq, b, h, i0, rows, 0, causal_end(p, sq, i0 + rows - 1), S.data(), Z.data(), acc.data(),
                     m.data(), l.data());
      write_rows<T>(p, sq, b, h, i0, rows, acc.data(), m.data(), l.data());
    }
  });
}

}  // namespace

void attention_forward(const AttentionParams& p) {
  if (p.fp64) {
    forward<double>(p);
  } else if (!lanes_forward(p)) {
    forward<float>(p);
  }
}

}  // namespace cpu
}  // namespace bk
