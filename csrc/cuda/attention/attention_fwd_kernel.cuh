// FlashAttention-2-style forward: one block of 4 warps owns 64 query rows
// (16 per warp) of one (batch, query head); K/V tiles stream through shared
// memory with cp.async (2 stages); S = Q K^T and O += P V run on mma.sync
// m16n8k16 (fp16/bf16 in, fp32 accumulation); the online softmax works in
// base 2 with scale * log2(e) folded into one multiply.
//
// Dropout (common/attention_philox.h, the same keep decisions as every
// backend): the row sums use the undropped P, the dropped P feeds P V, and
// 1 / (1 - p) is applied once in the epilogue.
//
// Head dims: kD is the padded head dim (a multiple of 16); the columns
// between the real head dim and kD are zero-filled by cp.async, so they add
// nothing to Q K^T and produce output columns that are never stored.
#pragma once
#include <string.h>

#include <type_traits>

#include "common/attention_philox.h"
#include "cuda/attention/attention_fwd_launch.h"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace attn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

template <int kD>
struct FwdTile {
  static_assert(kD % 16 == 0 && kD <= 256, "padded head dim: a multiple of 16, at most 256");
  static constexpr int kBlockM = 64;                     // 4 warps x 16 rows
  static constexpr int kBlockN = kD <= 128 ? 64 : 32;    // keeps acc + S within the register budget
  static constexpr int kThreads = 128;
  static constexpr int kStride = kD + 8;                 // halves: 16-byte rows, 8 ldmatrix rows on distinct banks
  static constexpr bool kQInRegs = kD <= 128;            // else Q fragments are re-read from shared memory
  static constexpr size_t kSmemBytes = size_t(kBlockM + 4 * kBlockN) * kStride * 2;  // Q + 2 stages of K and V
};

template <typename T>
BK_DEVICE uint32_t pack2(float lo, float hi) {
  uint32_t u;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    memcpy(&u, &h, 4);
  } else {
    const __half2 h = __floats2half2_rn(lo, hi);
    memcpy(&u, &h, 4);
  }
  return u;
}

// One sequence's view of the batch: dense (every sequence Sq x Skv), varlen
// (packed rows, per-sequence lengths from cu_seqlens; lse and the backward's
// row scratch laid out (Hq, total_q)) or decode (seqused_k keys of a cache).
struct SeqView {
  int sq, skv;
  int64_t q_row0, k_row0;  // first packed row (varlen), else 0
};

BK_DEVICE SeqView seq_view(const AttentionParams& p, int b) {
  if (p.cu_seqlens_q)
    return {int(p.cu_seqlens_q[b + 1] - p.cu_seqlens_q[b]), int(p.cu_seqlens_k[b + 1] - p.cu_seqlens_k[b]),
            p.cu_seqlens_q[b], p.cu_seqlens_k[b]};
  if (p.seqused_k) return {int(p.seqlen_q), int(p.seqused_k[b]), 0, 0};
  return {int(p.seqlen_q), int(p.seqlen_kv), 0, 0};
}

// Index of query row i of (b, h) in lse-shaped (row) arrays.
BK_DEVICE int64_t row_index(const AttentionParams& p, int b, int h, const SeqView& sv, int i) {
  if (p.cu_seqlens_q) return h * p.total_q + sv.q_row0 + i;
  return (int64_t(b) * p.heads_q + h) * sv.sq + i;
}

template <typename T>
BK_DEVICE void mma16816(float* d, const uint32_t* a, const uint32_t* b) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) dev::mma_m16n8k16_bf16f32(d, a, b, d);
  else dev::mma_m16n8k16_f16f32(d, a, b, d);
}

// rows x kD tile of a row-major matrix (row stride `ld` elements) into shared
// rows of kStride halves; rows >= `valid_rows` and columns >= head_dim are
// zero-filled (16-byte chunks: head_dim is a multiple of 8).
template <int kRows, int kD, int kThreads>
BK_DEVICE void load_tile(uint16_t* dst, const uint16_t* src, int64_t ld, int valid_rows, int head_dim) {
  constexpr int kChunks = kD / 8, kStride = kD + 8;
  for (int c = threadIdx.x; c < kRows * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool valid = r < valid_rows && col < head_dim;
    dev::cp_async_16(dst + r * kStride + col, valid ? src + r * ld + col : src, valid);
  }
}

// O += P V for one warp's 16 rows and a kBlockN-key tile of V in shared
// memory (rows of kD + 8 halves): P's accumulator layout is the A fragment of
// the next mma (keys 16kk..16kk+15 = S tiles 2kk, 2kk+1); V through ldmatrix.trans.
template <typename T, int kD, int kBlockN>
BK_DEVICE void pv_accumulate(float (&acc)[kD / 8][4], const float (&S)[kBlockN / 8][4], const uint16_t* sV,
                             int lane) {
  constexpr int kStride = kD + 8;
  #pragma unroll
  for (int kk = 0; kk < kBlockN / 16; ++kk) {
    const uint32_t a[4] = {pack2<T>(S[2 * kk][0], S[2 * kk][1]), pack2<T>(S[2 * kk][2], S[2 * kk][3]),
                           pack2<T>(S[2 * kk + 1][0], S[2 * kk + 1][1]),
                           pack2<T>(S[2 * kk + 1][2], S[2 * kk + 1][3])};
    const uint16_t* v_row = sV + (16 * kk + (lane % 8) + 8 * ((lane / 8) & 1)) * kStride + 8 * (lane / 16);
    #pragma unroll
    for (int i = 0; i < kD / 16; ++i) {
      uint32_t bv[4];
      dev::ldmatrix_x4_trans(bv[0], bv[1], bv[2], bv[3], v_row + 16 * i);
      mma16816<T>(acc[2 * i], a, bv);
      mma16816<T>(acc[2 * i + 1], a, bv + 2);
    }
  }
}

template <typename T, int kD>
__global__ void __launch_bounds__(128) attention_fwd_kernel(const AttentionParams p) {
  using Tile = FwdTile<kD>;
  constexpr int kBlockM = Tile::kBlockM, kBlockN = Tile::kBlockN, kStride = Tile::kStride;
  constexpr int kThreads = Tile::kThreads, kNT = kBlockN / 8, kDT = kD / 8;
  BK_SHARED_DYNAMIC(uint16_t, smem);
  uint16_t* sQ = smem;
  uint16_t* sK = sQ + kBlockM * kStride;  // [2][kBlockN][kStride]
  uint16_t* sV = sK + 2 * kBlockN * kStride;

  const int m0 = blockIdx.x * kBlockM, h = blockIdx.y, b = blockIdx.z;
  const int hk = h / int(p.heads_q / p.heads_kv);
  const SeqView sv = seq_view(p, b);
  const int Sq = sv.sq, Skv = sv.skv, D = int(p.head_dim);
  if (m0 >= Sq) return;  // varlen: the grid covers the longest sequence
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const uint16_t* q = static_cast<const uint16_t*>(p.q) + b * p.q_stride[0] + h * p.q_stride[1] +
                      (sv.q_row0 + m0) * p.q_stride[2];
  const uint16_t* k = static_cast<const uint16_t*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1] +
                      sv.k_row0 * p.k_stride[2];
  const uint16_t* v = static_cast<const uint16_t*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1] +
                      sv.k_row0 * p.v_stride[2];

  // Causal (bottom-right): query i sees keys j <= i + Skv - Sq; the block's
  // last row bounds the keys it needs. n_blocks == 0: every row sees nothing.
  const int diag = Skv - Sq;
  const int n_end = p.causal && m0 + kBlockM + diag < Skv ? m0 + kBlockM + diag : Skv;
  const int n_blocks = n_end > 0 ? (n_end + kBlockN - 1) / kBlockN : 0;

  load_tile<kBlockM, kD, kThreads>(sQ, q, p.q_stride[2], Sq - m0, D);
  if (n_blocks > 0) {
    load_tile<kBlockN, kD, kThreads>(sK, k, p.k_stride[2], Skv, D);
    load_tile<kBlockN, kD, kThreads>(sV, v, p.v_stride[2], Skv, D);
  }
  dev::cp_async_commit();

  const float scale_log2 = float(p.scale) * kLog2e;
  const int row_base = m0 + warp * 16 + g;  // this thread's rows: row_base and row_base + 8
  const unsigned char* mask_b = nullptr;
  const float* mask_f = nullptr;
  if (p.mask_kind != AttnMask::None) {
    const int64_t off = b * p.mask_stride[0] + h * p.mask_stride[1];
    if (p.mask_kind == AttnMask::Bool) mask_b = static_cast<const unsigned char*>(p.mask) + off;
    else mask_f = static_cast<const float*>(p.mask) + off;
  }

  float acc[kDT][4];
  #pragma unroll
  for (int i = 0; i < kDT; ++i)
    #pragma unroll
    for (int e = 0; e < 4; ++e) acc[i][e] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};
  uint32_t qf[Tile::kQInRegs ? kD / 16 : 1][4];
  // Dropout: element (b, h, i, j) uses Philox counter offset + ((b Hq + h) Sq + i) Skv + j.
  const int64_t drop_threshold = p.dropout_p > 0.0 ? dropout_threshold(p.dropout_p) : 0;
  const uint64_t drop_row0 = p.offset + (uint64_t(b) * p.heads_q + h) * uint64_t(Sq) * uint64_t(Skv);
  const float keep_scale = p.dropout_p > 0.0 ? float(1.0 / (1.0 - p.dropout_p)) : 1.f;
  const uint16_t* q_frag_row = sQ + (warp * 16 + (lane % 8) + 8 * ((lane / 8) & 1)) * kStride + 8 * (lane / 16);

  for (int nb = 0; nb < n_blocks; ++nb) {
    const int s = nb & 1, n0 = nb * kBlockN;
    if (nb + 1 < n_blocks) {
      const int n1 = n0 + kBlockN;
      load_tile<kBlockN, kD, kThreads>(sK + (s ^ 1) * kBlockN * kStride, k + n1 * p.k_stride[2], p.k_stride[2],
                                       Skv - n1, D);
      load_tile<kBlockN, kD, kThreads>(sV + (s ^ 1) * kBlockN * kStride, v + n1 * p.v_stride[2], p.v_stride[2],
                                       Skv - n1, D);
    }
    dev::cp_async_commit();  // possibly empty: keeps the group count uniform
    dev::cp_async_wait<1>();
    __syncthreads();
    if constexpr (Tile::kQInRegs) {
      if (nb == 0)
        #pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk)
          dev::ldmatrix_x4(qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3], q_frag_row + 16 * kk);
    }
    const uint16_t* sKs = sK + s * kBlockN * kStride;
    const uint16_t* sVs = sV + s * kBlockN * kStride;

    // S = Q K^T: this warp's 16 rows x kBlockN keys.
    float S[kNT][4];
    #pragma unroll
    for (int j = 0; j < kNT; ++j)
      #pragma unroll
      for (int e = 0; e < 4; ++e) S[j][e] = 0.f;
    #pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t a[4];
      if constexpr (Tile::kQInRegs) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) a[e] = qf[kk][e];
      } else {
        dev::ldmatrix_x4(a[0], a[1], a[2], a[3], q_frag_row + 16 * kk);
      }
      #pragma unroll
      for (int j = 0; j < kNT / 2; ++j) {
        uint32_t bk[4];
        dev::ldmatrix_x4(bk[0], bk[1], bk[2], bk[3],
                         sKs + (16 * j + (lane % 8) + 8 * (lane / 16)) * kStride + 16 * kk + 8 * ((lane / 8) & 1));
        mma16816<T>(S[2 * j], a, bk);
        mma16816<T>(S[2 * j + 1], a, bk + 2);
      }
    }

    // Scale into base 2, then the masks: keys past Skv, causal, bool, additive.
    const bool edge = n0 + kBlockN > Skv || (p.causal && n0 + kBlockN - 1 > m0 + diag) ||
                      p.mask_kind != AttnMask::None;
    #pragma unroll
    for (int j = 0; j < kNT; ++j)
      #pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = S[j][e] * scale_log2;
        if (edge) {
          const int row = row_base + 8 * (e >> 1), col = n0 + 8 * j + 2 * t + (e & 1);
          bool keep = col < Skv && (!p.causal || col <= row + diag);
          if (keep && row < Sq) {
            const int64_t at = row * p.mask_stride[2] + col * p.mask_stride[3];
            if (mask_b) keep = mask_b[at] != 0;
            else if (mask_f) x += mask_f[at] * kLog2e;
          }
          x = keep ? x : -INFINITY;
        }
        S[j][e] = x;
      }

    // Online softmax, per row (a row's 16 values live in the 4 lanes of a quad).
    #pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row_base + 8 * r;
      float mx = row_max[r];
      #pragma unroll
      for (int j = 0; j < kNT; ++j) mx = fmaxf(mx, fmaxf(S[j][2 * r], S[j][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -INFINITY ? 0.f : mx;  // a row with nothing visible yet: exp2(-inf) = 0
      const float alpha = exp2f(row_max[r] - base);
      row_max[r] = mx;
      float sum = 0.f;
      #pragma unroll
      for (int j = 0; j < kNT; ++j)
        #pragma unroll
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          S[j][e] = exp2f(S[j][e] - base);
          sum += S[j][e];
          if (drop_threshold > 0 &&
              !dropout_keep(p.seed, drop_row0 + uint64_t(row) * Skv + (n0 + 8 * j + 2 * t + (e & 1)), drop_threshold))
            S[j][e] = 0.f;
        }
      row_sum[r] = row_sum[r] * alpha + sum;  // per-lane partial; the quad is reduced at the end
      #pragma unroll
      for (int i = 0; i < kDT; ++i) {
        acc[i][2 * r] *= alpha;
        acc[i][2 * r + 1] *= alpha;
      }
    }

    pv_accumulate<T, kD, kBlockN>(acc, S, sVs, lane);
    __syncthreads();  // the next iteration's cp.async refills the other stage, the one after this one
  }
  dev::cp_async_wait<0>();

  // Epilogue: O / l, lse = ln(sum exp(scaled scores)) = (max2 + log2 l) ln 2.
  #pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = row_sum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = row_base + 8 * r;
    if (row >= Sq) continue;
    const float inv = l > 0.f ? keep_scale / l : 0.f;
    uint16_t* o = static_cast<uint16_t*>(p.o) + b * p.o_stride[0] + h * p.o_stride[1] +
                  (sv.q_row0 + row) * p.o_stride[2];
    #pragma unroll
    for (int i = 0; i < kDT; ++i) {
      const int col = 8 * i + 2 * t;
      if (col < D) *reinterpret_cast<uint32_t*>(o + col) = pack2<T>(acc[i][2 * r] * inv, acc[i][2 * r + 1] * inv);
    }
    if (t == 0) {
      float* lse = static_cast<float*>(p.lse) + row_index(p, b, h, sv, row);
      *lse = l > 0.f ? (row_max[r] + log2f(l)) * kLn2 : -INFINITY;
    }
  }
}

template <typename T, int kD>
cudaError_t launch_attention_fwd(const AttentionParams& p, cudaStream_t stream) {
  using Tile = FwdTile<kD>;
  const dim3 grid(unsigned((p.seqlen_q + Tile::kBlockM - 1) / Tile::kBlockM), unsigned(p.heads_q),
                  unsigned(p.batch));
#if defined(__CUDACC__)
  if (Tile::kSmemBytes > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(attention_fwd_kernel<T, kD>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, int(Tile::kSmemBytes));
    if (err != cudaSuccess) return err;
  }
#endif
  return BK_LAUNCH((attention_fwd_kernel<T, kD>), grid, dim3(Tile::kThreads), Tile::kSmemBytes, stream, p);
}

}  // namespace attn
}  // namespace cuda
}  // namespace bk

#define BK_INSTANTIATE_ATTENTION_FWD(KD)                                                                    \
  template cudaError_t bk::cuda::attn::launch_attention_fwd<__half, KD>(const bk::AttentionParams&,          \
                                                                         cudaStream_t);                     \
  template cudaError_t bk::cuda::attn::launch_attention_fwd<__nv_bfloat16, KD>(const bk::AttentionParams&,   \
                                                                                cudaStream_t);
