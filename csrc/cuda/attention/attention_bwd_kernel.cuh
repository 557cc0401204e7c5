// FlashAttention-2-style backward, three kernels:
//  1. preprocess, one warp per query row: delta = rowsum(dO * O) - dLSE,
//     lse in base 2 (+inf for a row that sees nothing, so its P is 0), and
//     the row of the fp32 dQ accumulator zeroed;
//  2. one block per (64-key block, kv head, batch): K and V stay in shared
//     memory, the query blocks of every query head of the GQA group stream
//     through (Q, dO, lse, delta; cp.async, 2 stages). Each warp owns 16 keys
//     (and, for head dims over 128, half of the head dim: 8 warps), recomputes
//     P^T = exp2(scale log2e K Q^T - lse) and dP^T = V dO^T, accumulates
//     dV += P^T dO and dK += dS^T Q in registers (dS = P (dP - delta) scale),
//     and adds dQ = dS K into the fp32 accumulator with atomics (declared
//     to the schedule check: the summation order varies);
//  3. dQ accumulator -> q's dtype.
// Dropout: the keep decisions of the forward (same Philox counters); the
// dropped, rescaled P feeds dV, and dP is dropped and rescaled before dS.
// dK and dV are written once per key block: the GQA group's query heads are
// summed inside the block, without atomics.
#pragma once
#include "cuda/attention/attention_bwd_launch.h"
#include "cuda/attention/attention_fwd_kernel.cuh"

namespace bk {
namespace cuda {
namespace attn {

template <int kD>
struct BwdTile {
  static constexpr int kBlockN = 64;                  // keys per block: 4 warps x 16
  static constexpr int kDSplit = kD > 128 ? 2 : 1;    // warps per key group, each owning kD / kDSplit columns
  static constexpr int kDW = kD / kDSplit;
  static constexpr int kBlockM = kD <= 64 ? 64 : 32;  // query rows per step: bounds S^T and dP^T registers
  static constexpr int kThreads = 128 * kDSplit;
  static constexpr int kStride = kD + 8;
  static constexpr int kDsStride = kBlockM + 8;
  static constexpr size_t kHalves = size_t(2 * kBlockN + 4 * kBlockM) * kStride + size_t(kBlockN) * kDsStride;
  static constexpr size_t kSmemBytes = kHalves * 2 + size_t(4 * kBlockM) * 4;  // + lse2 and delta, 2 stages
  static_assert(kDW % 16 == 0, "each warp's share of the head dim must be a multiple of 16");
};

template <typename T>
__global__ void __launch_bounds__(128) attention_bwd_preprocess_kernel(const AttentionParams p,
                                                                        const AttentionBwdWorkspace ws) {
  // Row arrays are (B, Hq, Sq), or (Hq, total_q) for varlen: the same walk with B = 1, Sq = total_q.
  const int64_t batch = p.cu_seqlens_q ? 1 : p.batch, sq = p.cu_seqlens_q ? p.total_q : p.seqlen_q;
  const int64_t rows = batch * p.heads_q * sq;
  const int64_t row = int64_t(blockIdx.x) * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;  // whole warps leave together
  const int64_t i = row % sq, bh = row / sq, h = bh % p.heads_q, b = bh / p.heads_q;
  const T* o = static_cast<const T*>(p.o) + b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
  const T* dout = static_cast<const T*>(p.dout) + b * p.do_stride[0] + h * p.do_stride[1] + i * p.do_stride[2];
  float* dq_acc = ws.dq_accum + row * p.head_dim;
  float sum = 0.f;
  for (int d = lane; d < p.head_dim; d += 32) {
    sum += dev::to_float(o[d]) * dev::to_float(dout[d]);
    dq_acc[d] = 0.f;
  }
  for (int m = 16; m > 0; m /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, m);
  if (lane == 0) {
    const float lse = static_cast<const float*>(p.lse)[row];
    ws.delta[row] = sum - (p.dlse ? static_cast<const float*>(p.dlse)[row] : 0.f);
    ws.lse_log2[row] = lse == -INFINITY ? INFINITY : lse * kLog2e;
  }
}

template <typename T>
__global__ void __launch_bounds__(256) attention_bwd_convert_dq_kernel(const AttentionParams p,
                                                                        const AttentionBwdWorkspace ws) {
  const int64_t batch = p.cu_seqlens_q ? 1 : p.batch, sq = p.cu_seqlens_q ? p.total_q : p.seqlen_q;
  const int64_t n = batch * p.heads_q * sq * p.head_dim;
  for (int64_t e = dev::global_thread_index(); e < n; e += dev::global_thread_count()) {
    const int64_t d = e % p.head_dim, row = e / p.head_dim, i = row % sq, bh = row / sq;
    const int64_t h = bh % p.heads_q, b = bh / p.heads_q;
    static_cast<T*>(p.dq)[b * p.dq_stride[0] + h * p.dq_stride[1] + i * p.dq_stride[2] + d] =
        dev::from_float<T>(ws.dq_accum[e]);
  }
}

template <typename T, int kD>
__global__ void __launch_bounds__(BwdTile<kD>::kThreads) attention_bwd_kernel(const AttentionParams p,
                                                                              const AttentionBwdWorkspace ws) {
  using Tile = BwdTile<kD>;
  constexpr int kBlockM = Tile::kBlockM, kBlockN = Tile::kBlockN, kStride = Tile::kStride;
  constexpr int kThreads = Tile::kThreads, kDW = Tile::kDW, kMT = kBlockM / 8, kDsStride = Tile::kDsStride;
  BK_SHARED_DYNAMIC(uint16_t, smem);
  uint16_t* sK = smem;                          // [kBlockN][kStride]
  uint16_t* sV = sK + kBlockN * kStride;        // [kBlockN][kStride]
  uint16_t* sQ = sV + kBlockN * kStride;        // [2][kBlockM][kStride]
  uint16_t* sdO = sQ + 2 * kBlockM * kStride;   // [2][kBlockM][kStride]
  uint16_t* sdS = sdO + 2 * kBlockM * kStride;  // [kBlockN][kDsStride]: dS^T * scale
  float* sLse = reinterpret_cast<float*>(sdS + kBlockN * kDsStride);  // [2][kBlockM]
  float* sDelta = sLse + 2 * kBlockM;                                  // [2][kBlockM]

  const int n0 = blockIdx.x * kBlockN, hk = blockIdx.y, b = blockIdx.z;
  const int group = int(p.heads_q / p.heads_kv);
  const SeqView sv = seq_view(p, b);
  const int Sq = sv.sq, Skv = sv.skv, D = int(p.head_dim), diag = Skv - Sq;
  if (n0 >= Skv) return;  // varlen: the grid covers the longest sequence
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int wk = warp % 4, d0 = (warp / 4) * kDW;  // this warp's 16 keys and head-dim columns
  const float scale = float(p.scale), scale_log2 = scale * kLog2e;
  const int64_t drop_threshold = p.dropout_p > 0.0 ? dropout_threshold(p.dropout_p) : 0;
  const float keep_scale = p.dropout_p > 0.0 ? float(1.0 / (1.0 - p.dropout_p)) : 1.f;

  // Causal: query i sees key j iff j <= i + diag: the first query block that
  // sees key n0, and none at all for keys past every query's reach.
  const int m_first = p.causal && n0 > diag ? (n0 - diag) / kBlockM * kBlockM : 0;
  const int m_blocks = m_first < Sq ? (Sq - m_first + kBlockM - 1) / kBlockM : 0;
  const int steps = group * m_blocks;

  const uint16_t* k = static_cast<const uint16_t*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1] +
                      (sv.k_row0 + n0) * p.k_stride[2];
  const uint16_t* v = static_cast<const uint16_t*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1] +
                      (sv.k_row0 + n0) * p.v_stride[2];
  load_tile<kBlockN, kD, kThreads>(sK, k, p.k_stride[2], Skv - n0, D);
  load_tile<kBlockN, kD, kThreads>(sV, v, p.v_stride[2], Skv - n0, D);

  // One step: query head h = hk * group + step / m_blocks, rows m0...
  auto load_step = [&](int step, int s) {
    const int h = hk * group + step / m_blocks, m0 = m_first + (step % m_blocks) * kBlockM;
    const int64_t r0 = sv.q_row0 + m0;
    const uint16_t* q = static_cast<const uint16_t*>(p.q) + b * p.q_stride[0] + h * p.q_stride[1] + r0 * p.q_stride[2];
    const uint16_t* dout =
        static_cast<const uint16_t*>(p.dout) + b * p.do_stride[0] + h * p.do_stride[1] + r0 * p.do_stride[2];
    load_tile<kBlockM, kD, kThreads>(sQ + s * kBlockM * kStride, q, p.q_stride[2], Sq - m0, D);
    load_tile<kBlockM, kD, kThreads>(sdO + s * kBlockM * kStride, dout, p.do_stride[2], Sq - m0, D);
    const int64_t row0 = row_index(p, b, h, sv, m0);
    for (int r = threadIdx.x; r < kBlockM; r += kThreads) {
      const bool valid = m0 + r < Sq;
      dev::cp_async_4(sLse + s * kBlockM + r, ws.lse_log2 + (valid ? row0 + r : 0), valid);
      dev::cp_async_4(sDelta + s * kBlockM + r, ws.delta + (valid ? row0 + r : 0), valid);
    }
  };
  if (steps > 0) load_step(0, 0);
  dev::cp_async_commit();

  float dK[kDW / 8][4], dV[kDW / 8][4];
  #pragma unroll
  for (int i = 0; i < kDW / 8; ++i)
    #pragma unroll
    for (int e = 0; e < 4; ++e) dK[i][e] = dV[i][e] = 0.f;
  const uint16_t* k_frag_row = sK + (16 * wk + (lane % 8) + 8 * ((lane / 8) & 1)) * kStride + 8 * (lane / 16);
  const uint16_t* v_frag_row = sV + (16 * wk + (lane % 8) + 8 * ((lane / 8) & 1)) * kStride + 8 * (lane / 16);
  const unsigned char* mask_b = nullptr;
  const float* mask_f = nullptr;

  for (int step = 0; step < steps; ++step) {
    const int s = step & 1;
    const int h = hk * group + step / m_blocks, m0 = m_first + (step % m_blocks) * kBlockM;
    if (step + 1 < steps) load_step(step + 1, s ^ 1);
    dev::cp_async_commit();
    dev::cp_async_wait<1>();
    __syncthreads();
    const uint16_t* sQs = sQ + s * kBlockM * kStride;
    const uint16_t* sdOs = sdO + s * kBlockM * kStride;
    if (p.mask_kind != AttnMask::None) {
      const int64_t off = b * p.mask_stride[0] + h * p.mask_stride[1];
      if (p.mask_kind == AttnMask::Bool) mask_b = static_cast<const unsigned char*>(p.mask) + off;
      else mask_f = static_cast<const float*>(p.mask) + off;
    }

    // S^T = K Q^T and dP^T = V dO^T: this warp's 16 keys x kBlockM queries.
    float S[kMT][4], dP[kMT][4];
    #pragma unroll
    for (int j = 0; j < kMT; ++j)
      #pragma unroll
      for (int e = 0; e < 4; ++e) S[j][e] = dP[j][e] = 0.f;
    #pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t ak[4], av[4];
      dev::ldmatrix_x4(ak[0], ak[1], ak[2], ak[3], k_frag_row + 16 * kk);
      dev::ldmatrix_x4(av[0], av[1], av[2], av[3], v_frag_row + 16 * kk);
      #pragma unroll
      for (int j = 0; j < kMT / 2; ++j) {
        const int off = (16 * j + (lane % 8) + 8 * (lane / 16)) * kStride + 16 * kk + 8 * ((lane / 8) & 1);
        uint32_t bq[4], bo[4];
        dev::ldmatrix_x4(bq[0], bq[1], bq[2], bq[3], sQs + off);
        dev::ldmatrix_x4(bo[0], bo[1], bo[2], bo[3], sdOs + off);
        mma16816<T>(S[2 * j], ak, bq);
        mma16816<T>(S[2 * j + 1], ak, bq + 2);
        mma16816<T>(dP[2 * j], av, bo);
        mma16816<T>(dP[2 * j + 1], av, bo + 2);
      }
    }

    // P^T = exp2(scaled scores - lse2), 0 where masked; dS^T = P^T (dP^T - delta) scale.
    const bool edge = n0 + kBlockN > Skv || m0 + kBlockM > Sq ||
                      (p.causal && n0 + kBlockN - 1 > m0 + diag) || p.mask_kind != AttnMask::None;
    #pragma unroll
    for (int j = 0; j < kMT; ++j)
      #pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = n0 + 16 * wk + g + 8 * (e >> 1), qc = 8 * j + 2 * t + (e & 1), row = m0 + qc;
        float x = S[j][e] * scale_log2;
        bool keep = true;
        if (edge) {
          keep = key < Skv && row < Sq && (!p.causal || key <= row + diag);
          if (keep) {
            const int64_t at = row * p.mask_stride[2] + key * p.mask_stride[3];
            if (mask_b) keep = mask_b[at] != 0;
            else if (mask_f) x += mask_f[at] * kLog2e;
          }
        }
        const float pr = keep ? exp2f(x - sLse[s * kBlockM + qc]) : 0.f;
        float dp = dP[j][e];
        S[j][e] = pr;
        if (drop_threshold > 0) {
          const uint64_t index = p.offset + ((uint64_t(b) * p.heads_q + h) * uint64_t(Sq) + row) * uint64_t(Skv) + key;
          const bool kept = dropout_keep(p.seed, index, drop_threshold);
          S[j][e] = kept ? pr * keep_scale : 0.f;
          dp = kept ? dp * keep_scale : 0.f;
        }
        dP[j][e] = pr * (dp - sDelta[s * kBlockM + qc]) * scale;
      }

    // dV += P^T dO and dK += dS^T Q: the accumulator layouts are A fragments;
    // dO and Q ([query][d], k = query) through ldmatrix.trans.
    #pragma unroll
    for (int kk = 0; kk < kBlockM / 16; ++kk) {
      const uint32_t ap[4] = {pack2<T>(S[2 * kk][0], S[2 * kk][1]), pack2<T>(S[2 * kk][2], S[2 * kk][3]),
                              pack2<T>(S[2 * kk + 1][0], S[2 * kk + 1][1]),
                              pack2<T>(S[2 * kk + 1][2], S[2 * kk + 1][3])};
      const uint32_t as[4] = {pack2<T>(dP[2 * kk][0], dP[2 * kk][1]), pack2<T>(dP[2 * kk][2], dP[2 * kk][3]),
                              pack2<T>(dP[2 * kk + 1][0], dP[2 * kk + 1][1]),
                              pack2<T>(dP[2 * kk + 1][2], dP[2 * kk + 1][3])};
      const int off = (16 * kk + (lane % 8) + 8 * ((lane / 8) & 1)) * kStride + d0 + 8 * (lane / 16);
      #pragma unroll
      for (int i = 0; i < kDW / 16; ++i) {
        uint32_t bo[4], bq[4];
        dev::ldmatrix_x4_trans(bo[0], bo[1], bo[2], bo[3], sdOs + off + 16 * i);
        dev::ldmatrix_x4_trans(bq[0], bq[1], bq[2], bq[3], sQs + off + 16 * i);
        mma16816<T>(dV[2 * i], ap, bo);
        mma16816<T>(dV[2 * i + 1], ap, bo + 2);
        mma16816<T>(dK[2 * i], as, bq);
        mma16816<T>(dK[2 * i + 1], as, bq + 2);
      }
      if (d0 == 0) {  // one warp per key group publishes dS^T for the dQ product
        #pragma unroll
        for (int r = 0; r < 2; ++r) {
          uint16_t* row = sdS + (16 * wk + g + 8 * r) * kDsStride + 16 * kk + 2 * t;
          *reinterpret_cast<uint32_t*>(row) = as[r];
          *reinterpret_cast<uint32_t*>(row + 8) = as[2 + r];
        }
      }
    }
    __syncthreads();

    // dQ (kBlockM x kD) += dS K over this block's 64 keys: 16 x 16 tiles
    // shared out among the warps; A = dS from dS^T via ldmatrix.trans.
    for (int unit = warp; unit < (kBlockM / 16) * (kD / 16); unit += kThreads / 32) {
      const int qg = unit / (kD / 16), dc = unit % (kD / 16);
      float acc[2][4] = {};
      #pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        uint32_t a[4], bk[4];
        dev::ldmatrix_x4_trans(a[0], a[1], a[2], a[3],
                               sdS + (16 * kk + (lane % 8) + 8 * (lane / 16)) * kDsStride + 16 * qg +
                                   8 * ((lane / 8) & 1));
        dev::ldmatrix_x4_trans(bk[0], bk[1], bk[2], bk[3],
                               sK + (16 * kk + (lane % 8) + 8 * ((lane / 8) & 1)) * kStride + 16 * dc +
                                   8 * (lane / 16));
        mma16816<T>(acc[0], a, bk);
        mma16816<T>(acc[1], a, bk + 2);
      }
      #pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int row = m0 + 16 * qg + g + 8 * ((e & 3) >> 1), col = 16 * dc + 8 * (e >> 2) + 2 * t + (e & 1);
        if (row < Sq && col < D)
          atomicAdd(ws.dq_accum + row_index(p, b, h, sv, row) * D + col, acc[e >> 2][e & 3]);
      }
    }
    __syncthreads();  // sdS and this stage are overwritten next step
  }
  dev::cp_async_wait<0>();

  // dK and dV (already scaled: dS carries the scale) in k's dtype.
  #pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int key = n0 + 16 * wk + g + 8 * r;
    if (key >= Skv) continue;
    const int64_t kr = sv.k_row0 + key;
    uint16_t* dk = static_cast<uint16_t*>(p.dk) + b * p.dk_stride[0] + hk * p.dk_stride[1] + kr * p.dk_stride[2];
    uint16_t* dv = static_cast<uint16_t*>(p.dv) + b * p.dv_stride[0] + hk * p.dv_stride[1] + kr * p.dv_stride[2];
    #pragma unroll
    for (int i = 0; i < kDW / 8; ++i) {
      const int col = d0 + 8 * i + 2 * t;
      if (col >= D) continue;
      *reinterpret_cast<uint32_t*>(dk + col) = pack2<T>(dK[i][2 * r], dK[i][2 * r + 1]);
      *reinterpret_cast<uint32_t*>(dv + col) = pack2<T>(dV[i][2 * r], dV[i][2 * r + 1]);
    }
  }
}

template <typename T, int kD>
cudaError_t launch_attention_bwd(const AttentionParams& p, const AttentionBwdWorkspace& ws, cudaStream_t stream) {
  using Tile = BwdTile<kD>;
  const int64_t rows = (p.cu_seqlens_q ? p.total_q : p.batch * p.seqlen_q) * p.heads_q;
  cudaError_t err = BK_LAUNCH((attention_bwd_preprocess_kernel<T>), dim3(unsigned((rows + 3) / 4)), dim3(128), 0,
                              stream, p, ws);
  if (err != cudaSuccess) return err;
#if defined(__CUDACC__)
  if (Tile::kSmemBytes > 48 * 1024) {
    err = cudaFuncSetAttribute(attention_bwd_kernel<T, kD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               int(Tile::kSmemBytes));
    if (err != cudaSuccess) return err;
  }
#endif
  const dim3 grid(unsigned((p.seqlen_kv + Tile::kBlockN - 1) / Tile::kBlockN), unsigned(p.heads_kv),
                  unsigned(p.batch));
  err = BK_LAUNCH((attention_bwd_kernel<T, kD>), grid, dim3(Tile::kThreads), Tile::kSmemBytes, stream, p, ws);
  if (err != cudaSuccess) return err;
  int64_t blocks = (rows * p.head_dim + 1023) / 1024;
  if (blocks > 65535) blocks = 65535;
  return BK_LAUNCH((attention_bwd_convert_dq_kernel<T>), dim3(unsigned(blocks)), dim3(256), 0, stream, p, ws);
}

}  // namespace attn
}  // namespace cuda
}  // namespace bk

#define BK_INSTANTIATE_ATTENTION_BWD(KD)                                                                      \
  template cudaError_t bk::cuda::attn::launch_attention_bwd<__half, KD>(                                      \
      const bk::AttentionParams&, const bk::cuda::AttentionBwdWorkspace&, cudaStream_t);                      \
  template cudaError_t bk::cuda::attn::launch_attention_bwd<__nv_bfloat16, KD>(                               \
      const bk::AttentionParams&, const bk::cuda::AttentionBwdWorkspace&, cudaStream_t);
