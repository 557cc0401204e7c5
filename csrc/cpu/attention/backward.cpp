// Attention backward from the saved log-sum-exp (FlashAttention-2 style):
// P = exp(scale * Q K^T + mask - lse) is recomputed per tile, never stored;
// delta = rowsum(dO * O) - dLSE; dS = P * (dO V^T - delta).
// Each task owns the key blocks of one chunk of one (batch, kv head), and
// loops over every query head of its GQA group, so dK and dV are written by
// exactly one task (no atomics, deterministic). dQ is accumulated in place
// when one chunk per (batch, kv head) already fills the threads; otherwise
// each chunk accumulates into its own dQ copy and the copies are summed in a
// fixed order (deterministic, O(chunks * S * D) memory).
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

// delta, laid out as lse (dense (B, Hq, Sq) or varlen (Hq, total_q)).
template <typename T>
std::vector<T> row_deltas(const AttentionParams& p) {
  const int64_t rows = p.batch * p.heads_q * p.seqlen_q;
  std::vector<T> delta(p.cu_seqlens_q ? p.heads_q * p.total_q : rows);
  at::parallel_for(0, rows, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r % p.seqlen_q, h = (r / p.seqlen_q) % p.heads_q, b = r / (p.seqlen_q * p.heads_q);
      const Seq s = seq_of(p, b);
      if (i >= s.sq) continue;
      const T* o = at3<T>(p.o, p.o_stride, b, h, s.q0 + i);
      const T* g = at3<T>(p.dout, p.do_stride, b, h, s.q0 + i);
      const int64_t at = lse_row(p, s, b, h) + i;
      delta[at] = rowops::dot(o, g, p.head_dim) - (p.dlse ? static_cast<const T*>(p.dlse)[at] : T(0));
    }
  });
  return delta;
}

template <typename T>
void backward(const AttentionParams& p) {
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t BM = p.block_q, BN = p.block_kv, D = p.head_dim;
  const int64_t group = p.heads_q / p.heads_kv;
  const int64_t kv_blocks = (p.seqlen_kv + BN - 1) / BN;
  const int64_t owners = p.batch * p.heads_kv;
  const int64_t threads = at::get_num_threads();
  const int64_t chunks = std::min(kv_blocks, std::max<int64_t>(1, (2 * threads + owners - 1) / owners));
  const int64_t blocks_per_chunk = (kv_blocks + chunks - 1) / chunks;
  const std::vector<T> delta = row_deltas<T>(p);
  const T* lse_all = static_cast<const T*>(p.lse);

  // dQ targets: p.dq itself (contiguous, zero-filled by the caller), or one
  // copy of it per chunk, summed in chunk order at the end.
  const int64_t dq_numel = (p.cu_seqlens_q ? p.total_q : p.batch * p.seqlen_q) * p.heads_q * D;
  std::vector<T> dq_parts(chunks > 1 ? chunks * dq_numel : 0, T(0));

  at::parallel_for(0, owners * chunks, 1, [&](int64_t begin, int64_t end) {
    const bool drop = p.dropout_p > 0;
    std::vector<T> P(BM * BN), dP(BM * BN), dk(BN * D), dv(BN * D), Z(drop ? BM * BN : 0), PZ(drop ? BM * BN : 0);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t chunk = t % chunks, hk = (t / chunks) % p.heads_kv, b = t / (chunks * p.heads_kv);
      void* dq_base = chunks > 1 ? static_cast<void*>(dq_parts.data() + chunk * dq_numel) : p.dq;
      const int64_t* dq_stride = p.dq_stride;
      const Seq sq = seq_of(p, b);
      const int64_t jb_end = std::min(kv_blocks, (chunk + 1) * blocks_per_chunk);
      for (int64_t jb = chunk * blocks_per_chunk; jb < jb_end; ++jb) {
        const int64_t j0 = jb * BN;
        if (j0 >= sq.skv) break;  // varlen / decode: past this sequence's keys
        const int64_t cols = std::min(BN, sq.skv - j0);
        const T* k = at3<T>(p.k, p.k_stride, b, hk, sq.k0 + j0);
        const T* v = at3<T>(p.v, p.v_stride, b, hk, sq.k0 + j0);
        std::fill(dk.begin(), dk.begin() + cols * D, T(0));
        std::fill(dv.begin(), dv.begin() + cols * D, T(0));
        // The first query that sees key j0: i >= j0 - (Skv - Sq).
        const int64_t i_first = p.causal ? std::max<int64_t>(0, j0 - (sq.skv - sq.sq)) : 0;
        for (int64_t h = hk * group; h < (hk + 1) * group; ++h) {
          for (int64_t i0 = (i_first / BM) * BM; i0 < sq.sq; i0 += BM) {
            const int64_t rows = std::min(BM, sq.sq - i0);
            const T* q = at3<T>(p.q, p.q_stride, b, h, sq.q0 + i0);
            const T* g = at3<T>(p.dout, p.do_stride, b, h, sq.q0 + i0);
            const T* lse = lse_all + lse_row(p, sq, b, h) + i0;
            const T* dl = delta.data() + lse_row(p, sq, b, h) + i0;
            gemm_rm<T>(false, true, rows, cols, D, T(p.scale), q, p.q_stride[2], k, p.k_stride[2], T(0), P.data(), BN);
            if (tile_needs_mask(p, sq, i0, j0, cols)) mask_tile<T>(p, sq, P.data(), BN, b, h, i0, rows, j0, cols);
            for (int64_t r = 0; r < rows; ++r) {
              T* s = P.data() + r * BN;
              if (lse[r] == kNegInf) {
                std::fill(s, s + cols, T(0));  // the row saw no key: zero gradient
              } else {
                rowops::exp_sub(s, cols, lse[r]);
              }
            }
            // With dropout (Z = keep / (1 - p)): dV += (P Z)^T dO;  dP = (dO V^T) Z.
            // dV += P^T dO;  dP = dO V^T;  dS = P (dP - delta)
            if (drop) {
              dropout_tile<T>(p, Z.data(), BN, b, h, i0, rows, j0, cols);
              for (int64_t x = 0; x < rows * BN; ++x) PZ[x] = P[x] * Z[x];
            }
            gemm_rm<T>(true, false, cols, D, rows, T(1), drop ? PZ.data() : P.data(), BN, g, p.do_stride[2], T(1),
                    dv.data(), D);
            gemm_rm<T>(false, true, rows, cols, D, T(1), g, p.do_stride[2], v, p.v_stride[2], T(0), dP.data(), BN);
            if (drop)
              for (int64_t x = 0; x < rows * BN; ++x) dP[x] *= Z[x];
            for (int64_t r = 0; r < rows; ++r) rowops::softmax_grad(P.data() + r * BN, dP.data() + r * BN, cols, dl[r]);
            // dQ += scale dS K;  dK += scale dS^T Q
            T* dq = at3<T>(dq_base, dq_stride, b, h, sq.q0 + i0);
            gemm_rm<T>(false, false, rows, D, cols, T(p.scale), P.data(), BN, k, p.k_stride[2], T(1), dq, dq_stride[2]);
            gemm_rm<T>(true, false, cols, D, rows, T(p.scale), P.data(), BN, q, p.q_stride[2], T(1), dk.data(), D);
          }
        }
        T* dk_out = at3<T>(p.dk, p.dk_stride, b, hk, sq.k0 + j0);
        T* dv_out = at3<T>(p.dv, p.dv_stride, b, hk, sq.k0 + j0);
        for (int64_t c = 0; c < cols; ++c) {
          std::copy(dk.begin() + c * D, dk.begin() + (c + 1) * D, dk_out + c * p.dk_stride[2]);
          std::copy(dv.begin() + c * D, dv.begin() + (c + 1) * D, dv_out + c * p.dv_stride[2]);
        }
      }
    }
  });

  if (chunks > 1) {
    T* dq = static_cast<T*>(p.dq);
    at::parallel_for(0, dq_numel, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t c = 0; c < chunks; ++c) {
        const T* part = dq_parts.data() + c * dq_numel;
        for (int64_t x = begin; x < end; ++x) dq[x] += part[x];
      }
    });
  }
}

}  // namespace

std::vector<float> attention_row_deltas(const AttentionParams& p) { return row_deltas<float>(p); }

void attention_backward(const AttentionParams& p) {
  if (p.fp64) {
    backward<double>(p);
  } else if (!lanes_backward(p)) {
    backward<float>(p);
  }
}

}  // namespace cpu
}  // namespace bk
