// Attention backward for float32 in the layout of forward_lanes.cpp: scores
// and probabilities of a (key block, query block) tile are St[c][r] with the
// BM queries along the vector lanes, so P = exp(S - lse) and
// dS = P (dP - delta) use lse and delta as plain vectors.
// A task owns the key blocks of one chunk of one (batch, kv head), as in
// backward.cpp (dK, dV written by one task; dQ by one task or summed from
// per-chunk copies in a fixed order: deterministic). Per query head it packs
// once: Q^T and dO^T per query block (panels of the St and dP^T products),
// and Q, dO padded to Dp = D rounded up to the lane width (panels of the dK
// and dV products, head dim along the lanes). Per tile, five panel products:
//   St   = scale K Q^T        dPt  = V dO^T
//   dV  += P^T dO             dK  += dS^T Q           dQ += dS K
// dK, dV and dQ accumulate in Dp-wide buffers and are written back at the end.
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cpu/attention/lanes.h"
#include "cpu/attention/tile.h"
#include "cpu/blas/panel_gemm.h"
#include "cpu/vec_math.h"

namespace bk {
namespace cpu {
namespace {

constexpr int kPanels = 4;
constexpr int64_t kBlockKv = 64;

struct Geometry {
  int64_t D, Dp, BM, BN, q_blocks, kv_blocks, chunks, blocks_per_chunk, group;
};

struct Workspace {
  // per query head: [q block][D][BM] transposed, [query][Dp] padded, per query
  std::vector<float> qt, dot, qp, dop, dq, lse, delta;
  // per key block: K padded; the chunk's dK, dV; the tile buffers
  std::vector<float> kp, dk, dv, st, dpt, pz, z;
};

// out[c][0..Dp) += sum_k A[c * lda + k] * rows[k][0..Dp), c < n, k < K: the
// products whose lanes are the head dim, over Dp / L panels in groups of 4.
template <typename Vec>
BK_PANEL_INLINE void lanes_over_d(int64_t n, const float* A, int64_t lda, int64_t ak, const float* rows, int64_t K,
                                  int64_t Dp, float* out) {
  constexpr int L = Vec::L, R = Vec::kMaxRows;
  for (int64_t c0 = 0; c0 < n; c0 += R) {
    const int bt = int(std::min<int64_t>(R, n - c0));
    for (int64_t d0 = 0; d0 < Dp; d0 += kPanels * L) {
      const int np = int(std::min<int64_t>(kPanels, (Dp - d0) / L));
      panel_block<Vec, R, kPanels>(bt, np, A + c0 * lda, lda, rows + d0, K, out + c0 * Dp + d0, true, ak, Dp, Dp);
    }
  }
}

// Packs query head h of batch b: Q^T (scaled) and dO^T per query block, Q and
// dO padded, lse (+inf where a row saw no key, so that P = exp(-inf) = 0) and delta.
template <typename Vec>
BK_PANEL_INLINE void pack_queries(const AttentionParams& p, const Geometry& g, const Seq& sq, const float* delta_all,
                                  int64_t b, int64_t h, Workspace& ws) {
  const int64_t D = g.D, Dp = g.Dp, BM = g.BM;
  const int64_t nq = (sq.sq + BM - 1) / BM * BM;
  const float* q = at3<float>(p.q, p.q_stride, b, h, sq.q0);
  const float* dout = at3<float>(p.dout, p.do_stride, b, h, sq.q0);
  const float* lse = static_cast<const float*>(p.lse) + lse_row(p, sq, b, h);
  const float* delta = delta_all + lse_row(p, sq, b, h);
  const float scale = float(p.scale);
  std::fill(ws.qp.begin(), ws.qp.begin() + nq * Dp, 0.0f);
  std::fill(ws.dop.begin(), ws.dop.begin() + nq * Dp, 0.0f);
  std::fill(ws.dq.begin(), ws.dq.begin() + nq * Dp, 0.0f);
  for (int64_t i = 0; i < nq; ++i) {
    const bool in = i < sq.sq;
    float* qt = ws.qt.data() + (i / BM) * D * BM + i % BM;
    float* dot = ws.dot.data() + (i / BM) * D * BM + i % BM;
    for (int64_t d = 0; d < D; ++d) {
      const float qv = in ? q[i * p.q_stride[2] + d] : 0.0f, gv = in ? dout[i * p.do_stride[2] + d] : 0.0f;
      qt[d * BM] = qv * scale;
      dot[d * BM] = gv;
      ws.qp[i * Dp + d] = qv;
      ws.dop[i * Dp + d] = gv;
    }
    const bool seen = in && lse[i] != -std::numeric_limits<float>::infinity();
    ws.lse[i] = seen ? lse[i] : std::numeric_limits<float>::infinity();
    ws.delta[i] = in ? delta[i] : 0.0f;
  }
}

template <typename Vec>
BK_PANEL_INLINE void backward_task(const AttentionParams& p, const Geometry& g, const float* delta_all,
                                   float* dq_parts, int64_t dq_numel, Workspace& ws, int64_t t) {
  constexpr int R = Vec::kMaxRows, BM = kPanels * Vec::L;
  const int64_t D = g.D, Dp = g.Dp, BN = g.BN;
  const int64_t chunk = t % g.chunks, hk = (t / g.chunks) % p.heads_kv, b = t / (g.chunks * p.heads_kv);
  const Seq sq = seq_of(p, b);
  const int64_t jb0 = chunk * g.blocks_per_chunk;
  const int64_t key0 = jb0 * BN, key1 = std::min(sq.skv, std::min(g.kv_blocks, jb0 + g.blocks_per_chunk) * BN);
  if (key0 >= key1) return;  // varlen / decode: past this sequence's keys
  const bool drop = p.dropout_p > 0;
  const int64_t ldk = p.k_stride[2], ldv = p.v_stride[2];
  std::fill(ws.dk.begin(), ws.dk.begin() + (key1 - key0) * Dp, 0.0f);
  std::fill(ws.dv.begin(), ws.dv.begin() + (key1 - key0) * Dp, 0.0f);
  float *st = ws.st.data(), *dpt = ws.dpt.data();

  for (int64_t h = hk * g.group; h < (hk + 1) * g.group; ++h) {
    pack_queries<Vec>(p, g, sq, delta_all, b, h, ws);
    for (int64_t j0 = key0; j0 < key1; j0 += BN) {
      const int64_t cols = std::min(BN, key1 - j0);
      const float* k = at3<float>(p.k, p.k_stride, b, hk, sq.k0 + j0);
      const float* v = at3<float>(p.v, p.v_stride, b, hk, sq.k0 + j0);
      float* kp = ws.kp.data();
      for (int64_t c = 0; c < cols; ++c) {
        std::copy(k + c * ldk, k + c * ldk + D, kp + c * Dp);
        std::fill(kp + c * Dp + D, kp + (c + 1) * Dp, 0.0f);
      }
      float* dk = ws.dk.data() + (j0 - key0) * Dp;
      float* dv = ws.dv.data() + (j0 - key0) * Dp;
      // The first query that sees key j0: i >= j0 - (Skv - Sq).
      const int64_t i_first = p.causal ? std::max<int64_t>(0, j0 - (sq.skv - sq.sq)) : 0;
      for (int64_t i0 = (i_first / BM) * BM; i0 < sq.sq; i0 += BM) {
        const int64_t rows = std::min<int64_t>(BM, sq.sq - i0);
        const int np = int((rows + Vec::L - 1) / Vec::L), bm = np * Vec::L;  // a short last block: fewer vectors
        const float* qt = ws.qt.data() + (i0 / BM) * D * BM;
        const float* dot = ws.dot.data() + (i0 / BM) * D * BM;
        const float* lse = ws.lse.data() + i0;
        const float* delta = ws.delta.data() + i0;
        for (int64_t c0 = 0; c0 < cols; c0 += R) {
          const int bt = int(std::min<int64_t>(R, cols - c0));
          panel_block<Vec, R, kPanels>(bt, np, k + c0 * ldk, ldk, qt, D, st + c0 * BM, false, 1, BM, BM);
          panel_block<Vec, R, kPanels>(bt, np, v + c0 * ldv, ldv, dot, D, dpt + c0 * BM, false, 1, BM, BM);
        }
        if (tile_needs_mask(p, sq, i0, j0, cols)) mask_lanes(p, sq, st, BM, b, h, i0, rows, j0, cols);
        for (int64_t c = 0; c < cols; ++c) {
          float* s = st + c * BM;
#pragma omp simd
          for (int r = 0; r < bm; ++r) s[r] = fast_exp(s[r] - lse[r]);
        }
        // With dropout (Z = keep / (1 - p)): dV += (P Z)^T dO;  dP = (dO V^T) Z.
        const float* pz = st;
        if (drop) {
          float *z = ws.z.data(), *pzw = ws.pz.data();
          dropout_tile<float>(p, z, BN, b, h, i0, rows, j0, cols);
          for (int64_t c = 0; c < cols; ++c)
            for (int64_t r = 0; r < bm; ++r) {
              const float zv = r < rows ? z[r * BN + c] : 0.0f;
              pzw[c * BM + r] = st[c * BM + r] * zv;
              dpt[c * BM + r] *= zv;
            }
          pz = pzw;
        }
        lanes_over_d<Vec>(cols, pz, BM, 1, ws.dop.data() + i0 * Dp, rows, Dp, dv);
        // dS = scale P (dP - delta), the scale of both dQ and dK folded in.
        const float scale = float(p.scale);
        for (int64_t c = 0; c < cols; ++c) {
          float* s = st + c * BM;
          const float* dp = dpt + c * BM;
#pragma omp simd
          for (int r = 0; r < bm; ++r) s[r] = scale * s[r] * (dp[r] - delta[r]);
        }
        lanes_over_d<Vec>(cols, st, BM, 1, ws.qp.data() + i0 * Dp, rows, Dp, dk);
        lanes_over_d<Vec>(rows, st, 1, BM, kp, cols, Dp, ws.dq.data() + i0 * Dp);
      }
    }
    // This chunk's share of dQ for head h.
    float* dq_base = g.chunks > 1 ? dq_parts + chunk * dq_numel : static_cast<float*>(p.dq);
    float* dq = at3<float>(dq_base, p.dq_stride, b, h, sq.q0);
    for (int64_t i = 0; i < sq.sq; ++i)
      for (int64_t d = 0; d < D; ++d) dq[i * p.dq_stride[2] + d] += ws.dq[i * Dp + d];
  }
  float* dk_out = at3<float>(p.dk, p.dk_stride, b, hk, sq.k0 + key0);
  float* dv_out = at3<float>(p.dv, p.dv_stride, b, hk, sq.k0 + key0);
  for (int64_t c = 0; c < key1 - key0; ++c) {
    std::copy(ws.dk.begin() + c * Dp, ws.dk.begin() + c * Dp + D, dk_out + c * p.dk_stride[2]);
    std::copy(ws.dv.begin() + c * Dp, ws.dv.begin() + c * Dp + D, dv_out + c * p.dv_stride[2]);
  }
}

#define BK_BACKWARD_LANES(TARGET, SUFFIX, VEC)                                                                \
  TARGET __attribute__((flatten)) void task_##SUFFIX(const AttentionParams& p, const Geometry& g,            \
                                                     const float* delta, float* dq_parts, int64_t dq_numel, \
                                                     Workspace& ws, int64_t t) {                            \
    backward_task<VEC>(p, g, delta, dq_parts, dq_numel, ws, t);                                             \
  }
BK_FOR_EACH_VECTOR_ISA(BK_BACKWARD_LANES)
#undef BK_BACKWARD_LANES

}  // namespace

bool lanes_backward(const AttentionParams& p) {
#if BK_HAS_ISA_CLONES
  const int64_t L = lanes_width(p);
  if (L == 0) return false;
  Geometry g;
  g.D = p.head_dim;
  g.Dp = (g.D + L - 1) / L * L;
  g.BM = kPanels * L;
  g.BN = kBlockKv;
  g.q_blocks = (p.seqlen_q + g.BM - 1) / g.BM;
  g.kv_blocks = (p.seqlen_kv + g.BN - 1) / g.BN;
  g.group = p.heads_q / p.heads_kv;
  const int64_t owners = p.batch * p.heads_kv, threads = at::get_num_threads();
  g.chunks = std::min(g.kv_blocks, std::max<int64_t>(1, (2 * threads + owners - 1) / owners));
  g.blocks_per_chunk = (g.kv_blocks + g.chunks - 1) / g.chunks;

  const std::vector<float> delta = attention_row_deltas(p);
  const int64_t dq_numel = (p.cu_seqlens_q ? p.total_q : p.batch * p.seqlen_q) * p.heads_q * g.D;
  std::vector<float> dq_parts(g.chunks > 1 ? g.chunks * dq_numel : 0, 0.0f);
  // Buffers by the longest sequence present, not by seqlen_q alone (varlen:
  // the maximum the caller declared).
  int64_t longest = 0;
  for (int64_t b = 0; b < p.batch; ++b) longest = std::max(longest, seq_of(p, b).sq);
  g.q_blocks = std::max(g.q_blocks, (longest + g.BM - 1) / g.BM);
  const int64_t nq = g.q_blocks * g.BM, chunk_keys = g.blocks_per_chunk * g.BN, tile = g.BN * g.BM;
  at::parallel_for(0, owners * g.chunks, 1, [&](int64_t begin, int64_t end) {
    Workspace ws;
    for (auto* buf : {&ws.qt, &ws.dot}) buf->resize(g.q_blocks * g.D * g.BM);
    for (auto* buf : {&ws.qp, &ws.dop, &ws.dq}) buf->resize(nq * g.Dp);
    for (auto* buf : {&ws.lse, &ws.delta}) buf->resize(nq);
    ws.kp.resize(g.BN * g.Dp);
    for (auto* buf : {&ws.dk, &ws.dv}) buf->resize(chunk_keys * g.Dp);
    for (auto* buf : {&ws.st, &ws.dpt}) buf->resize(tile);
    if (p.dropout_p > 0) {
      ws.pz.resize(tile);
      ws.z.resize(tile);
    }
    for (int64_t t = begin; t < end; ++t) {
      if (L == VecAvx512::L) {
        task_avx512(p, g, delta.data(), dq_parts.data(), dq_numel, ws, t);
      } else {
        task_avx2(p, g, delta.data(), dq_parts.data(), dq_numel, ws, t);
      }
    }
  });
  if (g.chunks > 1) {
    float* dq = static_cast<float*>(p.dq);
    at::parallel_for(0, dq_numel, 4096, [&](int64_t begin, int64_t end) {
      for (int64_t c = 0; c < g.chunks; ++c) {
        const float* part = dq_parts.data() + c * dq_numel;
        for (int64_t x = begin; x < end; ++x) dq[x] += part[x];
      }
    });
  }
  return true;
#else
  (void)p;
  return false;
#endif
}

}  // namespace cpu
}  // namespace bk
