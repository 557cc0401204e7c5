// Attention forward, FlashAttention-2 style on the CPU: one task owns a block
// of block_q query rows of one (batch, head) and streams the visible key
// blocks through an online softmax, so memory is O(block_q * block_kv) per
// thread, never (Sq, Skv). Tile GEMMs go to BLAS; the softmax rows to
// rowops (vectorised exp). Blocks above the causal diagonal are never read.
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

template <typename T>
void forward(const AttentionParams& p) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t BM = p.block_q, BN = p.block_kv, D = p.head_dim;
  const int64_t group = p.heads_q / p.heads_kv;
  const int64_t q_blocks = (p.seqlen_q + BM - 1) / BM;
  const int64_t tasks = p.batch * p.heads_q * q_blocks;
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> S(BM * BN), acc(BM * D), m(BM), l(BM), Z(p.dropout_p > 0 ? BM * BN : 0);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t qb = t % q_blocks, h = (t / q_blocks) % p.heads_q, b = t / (q_blocks * p.heads_q);
      const Seq sq = seq_of(p, b);
      const int64_t hk = h / group, i0 = qb * BM;
      if (i0 >= sq.sq) continue;  // varlen: past this sequence's end
      const int64_t rows = std::min(BM, sq.sq - i0);
      const T* q = at3<T>(p.q, p.q_stride, b, h, sq.q0 + i0);
      std::fill(acc.begin(), acc.begin() + rows * D, T(0));
      std::fill(m.begin(), m.begin() + rows, kNegInf);
      std::fill(l.begin(), l.begin() + rows, T(0));
      // The last row of the block sees the most keys.
      const int64_t kv_end = causal_end(p, sq, i0 + rows - 1);
      for (int64_t j0 = 0; j0 < kv_end; j0 += BN) {
        const int64_t cols = std::min(BN, kv_end - j0);
        const T* k = at3<T>(p.k, p.k_stride, b, hk, sq.k0 + j0);
        const T* v = at3<T>(p.v, p.v_stride, b, hk, sq.k0 + j0);
        gemm_rm<T>(false, true, rows, cols, D, T(p.scale), q, p.q_stride[2], k, p.k_stride[2], T(0), S.data(), BN);
        if (tile_needs_mask(p, sq, i0, j0, cols)) mask_tile<T>(p, sq, S.data(), BN, b, h, i0, rows, j0, cols);
        for (int64_t r = 0; r < rows; ++r) {
          T* s = S.data() + r * BN;
          const T m_new = std::max(m[r], rowops::max(s, cols));
          if (m_new == kNegInf) {  // nothing visible yet in this row: P = 0
            std::fill(s, s + cols, T(0));
            continue;
          }
          const T alpha = std::exp(m[r] - m_new);  // exp(-inf) = 0 on the first visible block
          l[r] = l[r] * alpha + rowops::exp_sub_sum(s, cols, m_new);
          if (alpha != T(1)) rowops::scale(acc.data() + r * D, D, alpha);
          m[r] = m_new;
        }
        if (p.dropout_p > 0) {  // the normaliser l keeps the undropped P
          dropout_tile<T>(p, Z.data(), BN, b, h, i0, rows, j0, cols);
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) S[r * BN + c] *= Z[r * BN + c];
        }
        gemm_rm<T>(false, false, rows, D, cols, T(1), S.data(), BN, v, p.v_stride[2], T(1), acc.data(), D);
      }
      T* o = at3<T>(p.o, p.o_stride, b, h, sq.q0 + i0);
      T* lse = static_cast<T*>(p.lse) + lse_row(p, sq, b, h) + i0;
      for (int64_t r = 0; r < rows; ++r) {
        // A row that saw no key: output 0 and lse -inf (the backward's P = 0).
        const T inv = l[r] > T(0) ? T(1) / l[r] : T(0);
        for (int64_t d = 0; d < D; ++d) o[r * p.o_stride[2] + d] = acc[r * D + d] * inv;
        lse[r] = l[r] > T(0) ? m[r] + std::log(l[r]) : kNegInf;
      }
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
