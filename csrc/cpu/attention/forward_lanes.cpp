// Attention forward for float32 with queries along the vector lanes: a task
// owns BM = 4 * L queries of one (batch, head) (64 with AVX-512) and keeps
// everything per query in vectors, so the online softmax (row max, exp,
// sums, the rescale of the accumulator) needs no horizontal reduction.
//   Qt [D][BM]  the query block transposed and pre-scaled, packed once per task;
//   St [BN][BM] the scores of one key block (key c, query r), then P;
//   Ot [D][BM]  the output accumulator, transposed back at the end.
// A block shorter than BM (a sequence's last) runs on as many vectors as its
// queries need (np <= 4 panels: 65 queries cost 5 vectors, not 8), so the
// lanes kernels serve any length with at most L - 1 idle lanes per block.
// Both products are panel_gemm tiles (6 x 4 accumulators with AVX-512):
// St = K Qt (K rows broadcast, Qt panels loaded) and Ot += V^T St (V read
// down its columns). K and V are read in place through their strides, so
// there is no packing per key block, and any head dim works (D is a
// reduction length or a row count, never the lane dimension).
// Measured on the 2-core Zen 4 VM (B 4, H 8, S 1024, D 64): see docs/attention.md.
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

struct Workspace {
  std::vector<float> qt, ot, st, z;
};

template <typename Vec>
BK_PANEL_INLINE void forward_task(const AttentionParams& p, Workspace& ws, int64_t t) {
  constexpr int BM = kPanels * Vec::L, R = Vec::kMaxRows;
  constexpr int64_t BN = kBlockKv;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t D = p.head_dim, group = p.heads_q / p.heads_kv;
  const int64_t q_blocks = (p.seqlen_q + BM - 1) / BM;
  const int64_t qb = t % q_blocks, h = (t / q_blocks) % p.heads_q, b = t / (q_blocks * p.heads_q);
  const Seq sq = seq_of(p, b);
  const int64_t hk = h / group, i0 = qb * BM;
  if (i0 >= sq.sq) return;  // varlen: past this sequence's end
  const int64_t rows = std::min<int64_t>(BM, sq.sq - i0);
  const int np = int((rows + Vec::L - 1) / Vec::L), bm = np * Vec::L;  // vectors, lanes in use
  const bool drop = p.dropout_p > 0;

  float* qt = ws.qt.data();
  float* ot = ws.ot.data();
  float* st = ws.st.data();
  const float* q = at3<float>(p.q, p.q_stride, b, h, sq.q0 + i0);
  const float scale = float(p.scale);
  for (int64_t r = 0; r < BM; ++r)
    for (int64_t d = 0; d < D; ++d) qt[d * BM + r] = r < rows ? q[r * p.q_stride[2] + d] * scale : 0.0f;
  std::fill(ot, ot + D * BM, 0.0f);
  alignas(64) float m[BM], l[BM], m_new[BM], m_use[BM], alpha[BM], sum[BM];
  for (int r = 0; r < BM; ++r) m[r] = kNegInf, l[r] = 0.0f;

  const int64_t kv_end = causal_end(p, sq, i0 + rows - 1);  // the last query sees the most keys
  const int64_t ldk = p.k_stride[2], ldv = p.v_stride[2];
  for (int64_t j0 = 0; j0 < kv_end; j0 += BN) {
    const int64_t cols = std::min(BN, kv_end - j0);
    const float* k = at3<float>(p.k, p.k_stride, b, hk, sq.k0 + j0);
    const float* v = at3<float>(p.v, p.v_stride, b, hk, sq.k0 + j0);
    for (int64_t c0 = 0; c0 < cols; c0 += R)
      panel_block<Vec, R, kPanels>(int(std::min<int64_t>(R, cols - c0)), np, k + c0 * ldk, ldk, qt, D,
                                   st + c0 * BM, false, 1, BM, BM);
    if (tile_needs_mask(p, sq, i0, j0, cols)) mask_lanes(p, sq, st, BM, b, h, i0, rows, j0, cols);

    // Online softmax, every query at once.
    for (int r = 0; r < bm; ++r) m_new[r] = m[r], sum[r] = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float* s = st + c * BM;
#pragma omp simd
      for (int r = 0; r < bm; ++r) m_new[r] = s[r] > m_new[r] ? s[r] : m_new[r];
    }
    bool rescale = false;
    for (int r = 0; r < bm; ++r) {
      // A query with nothing visible yet keeps m = -inf and P = 0: exp(-inf - 0).
      m_use[r] = m_new[r] == kNegInf ? 0.0f : m_new[r];
      alpha[r] = fast_exp(m[r] - m_use[r]);  // exp(-inf) = 0 on the first visible block
      rescale |= alpha[r] != 1.0f;
    }
    for (int64_t c = 0; c < cols; ++c) {
      float* s = st + c * BM;
#pragma omp simd
      for (int r = 0; r < bm; ++r) {
        s[r] = fast_exp(s[r] - m_use[r]);
        sum[r] += s[r];
      }
    }
    for (int r = 0; r < bm; ++r) {
      l[r] = l[r] * alpha[r] + sum[r];
      m[r] = m_new[r];
    }
    if (rescale)
      for (int64_t d = 0; d < D; ++d) {
        float* o = ot + d * BM;
#pragma omp simd
        for (int r = 0; r < bm; ++r) o[r] *= alpha[r];
      }
    if (drop) {  // the normaliser l keeps the undropped P
      float* z = ws.z.data();
      dropout_tile<float>(p, z, BN, b, h, i0, rows, j0, cols);
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < rows; ++r) st[c * BM + r] *= z[r * BN + c];
    }
    for (int64_t d0 = 0; d0 < D; d0 += R)
      panel_block<Vec, R, kPanels>(int(std::min<int64_t>(R, D - d0)), np, v + d0, 1, st, cols, ot + d0 * BM, true,
                                   ldv, BM, BM);
  }

  float* o = at3<float>(p.o, p.o_stride, b, h, sq.q0 + i0);
  float* lse = static_cast<float*>(p.lse) + lse_row(p, sq, b, h) + i0;
  for (int64_t r = 0; r < rows; ++r) {
    // A query that saw no key: output 0 and lse -inf (the backward's P = 0).
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    float* o_row = o + r * p.o_stride[2];
    for (int64_t d = 0; d < D; ++d) o_row[d] = ot[d * BM + r] * inv;
    lse[r] = l[r] > 0.0f ? m[r] + std::log(l[r]) : kNegInf;
  }
}

// One compiled copy per ISA; flatten inlines the tile products (and their
// intrinsics) into the targeted function.
#define BK_FORWARD_LANES(TARGET, SUFFIX, VEC)                                                                    \
  TARGET __attribute__((flatten)) void task_##SUFFIX(const AttentionParams& p, Workspace& ws, int64_t t) { \
    forward_task<VEC>(p, ws, t);                                                                                \
  }
BK_FOR_EACH_VECTOR_ISA(BK_FORWARD_LANES)
#undef BK_FORWARD_LANES

}  // namespace

bool lanes_forward(const AttentionParams& p) {
#if BK_HAS_ISA_CLONES
  const int L = lanes_width(p);
  if (L == 0) return false;
  const int64_t BM = kPanels * L, D = p.head_dim;
  const int64_t q_blocks = (p.seqlen_q + BM - 1) / BM;
  at::parallel_for(0, p.batch * p.heads_q * q_blocks, 1, [&](int64_t begin, int64_t end) {
    Workspace ws{std::vector<float>(D * BM), std::vector<float>(D * BM), std::vector<float>(kBlockKv * BM),
                 std::vector<float>(p.dropout_p > 0 ? BM * kBlockKv : 0)};
    for (int64_t t = begin; t < end; ++t) {
      if (L == VecAvx512::L) {
        task_avx512(p, ws, t);
      } else {
        task_avx2(p, ws, t);
      }
    }
  });
  return true;
#else
  (void)p;
  return false;
#endif
}

}  // namespace cpu
}  // namespace bk
