// Split-KV decode (flash-decoding): a few new queries against a long KV
// cache. The query rows of a whole GQA group are packed into one 64-row tile
// (row r = head-in-group r / Sq, query r % Sq), so each K/V tile is read once
// per kv head; the cache is split along the keys over grid.x so that small
// batches still fill the GPU. Each split runs the forward's online softmax
// over its key range and writes its normalised partial output and lse
// (fp32); a combine kernel merges the splits: lse = log sum_s exp(lse_s),
// o = sum_s exp(lse_s - lse) o_s. With one split the tile writes o directly.
// Cache append: the new keys/values (positions Skv - Sn .. Skv - 1) are read
// from k_new/v_new by every block that needs them, and stored into the cache
// by the first query tile of the split whose key range holds them: each
// position has one writer, and no block reads a position another one writes.
#pragma once
#include "cuda/attention/attention_decode_launch.h"
#include "cuda/attention/attention_fwd_kernel.cuh"

namespace bk {
namespace cuda {
namespace attn {

// One of K or V for a decode block: cache rows below `fresh_from`, the new
// rows (k_new/v_new, row j - fresh_from) from there on.
struct KvRows {
  const uint16_t* cache;
  int64_t cache_ld;
  const uint16_t* fresh;
  int64_t fresh_ld;
  int fresh_from;
  BK_DEVICE const uint16_t* row(int j) const {
    return j < fresh_from ? cache + j * cache_ld : fresh + (j - fresh_from) * fresh_ld;
  }
};

// kRows x kD tile of keys n0.. (valid below n_hi) into shared rows of kD + 8
// halves, as load_tile, each row from the cache or the new rows.
template <int kRows, int kD, int kThreads>
BK_DEVICE void load_kv_tile(uint16_t* dst, const KvRows& src, int n0, int n_hi, int head_dim) {
  constexpr int kChunks = kD / 8, kStride = kD + 8;
  for (int c = threadIdx.x; c < kRows * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool valid = n0 + r < n_hi && col < head_dim;
    dev::cp_async_16(dst + r * kStride + col, valid ? src.row(n0 + r) + col : src.cache, valid);
  }
}

// The new rows in [lo, hi) of one of K or V into the cache, 16 bytes a copy.
struct alignas(16) Chunk16 {
  uint32_t w[4];
};
BK_DEVICE void store_fresh_rows(uint16_t* cache, int64_t cache_ld, const KvRows& src, int lo, int hi,
                                int head_dim) {
  const int chunks = head_dim / 8;
  for (int c = threadIdx.x; c < (hi - lo) * chunks; c += blockDim.x) {
    const int j = lo + c / chunks, col = (c % chunks) * 8;
    *reinterpret_cast<Chunk16*>(cache + j * cache_ld + col) = *reinterpret_cast<const Chunk16*>(src.row(j) + col);
  }
}

template <typename T, int kD>
__global__ void __launch_bounds__(128)
    attention_decode_kernel(const AttentionParams p, const AttentionDecodeWorkspace ws, const AttentionCacheAppend ap) {
  using Tile = FwdTile<kD>;
  constexpr int kBlockM = Tile::kBlockM, kBlockN = Tile::kBlockN, kStride = Tile::kStride;
  constexpr int kThreads = Tile::kThreads, kNT = kBlockN / 8, kDT = kD / 8;
  BK_SHARED_DYNAMIC(uint16_t, smem);
  uint16_t* sQ = smem;
  uint16_t* sK = sQ + kBlockM * kStride;
  uint16_t* sV = sK + 2 * kBlockN * kStride;

  const int splits = ws.num_splits, split = blockIdx.x % splits, m0 = (blockIdx.x / splits) * kBlockM;
  const int hk = blockIdx.y, b = blockIdx.z;
  const int group = int(p.heads_q / p.heads_kv), Sq = int(p.seqlen_q), rows = group * Sq;
  const int Skv = int(p.seqused_k[b]), D = int(p.head_dim), diag = Skv - Sq;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;

  // This split's keys; the last query (Sq - 1) sees all Skv of them.
  const int chunk = ws.keys_per_split;
  const int n_lo = split * chunk, n_hi = n_lo + chunk < Skv ? n_lo + chunk : Skv;
  const int n_blocks = rows > 0 && n_hi > n_lo ? (n_hi - n_lo + kBlockN - 1) / kBlockN : 0;  // rows 0: append only

  // Q rows of the packed tile: each row has its own head and position.
  constexpr int kChunks = kD / 8;
  for (int c = threadIdx.x; c < kBlockM * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8, row = m0 + r;
    const bool valid = row < rows && col < D;
    const int h = hk * group + (valid ? row / Sq : 0), i = valid ? row % Sq : 0;
    const uint16_t* src = static_cast<const uint16_t*>(p.q) + b * p.q_stride[0] + h * p.q_stride[1] +
                          i * p.q_stride[2] + (valid ? col : 0);
    dev::cp_async_16(sQ + r * kStride + col, src, valid);
  }
  const bool append = ap.seqlen_new > 0;
  const int fresh_from = Skv - int(ap.seqlen_new);
  const KvRows k{static_cast<const uint16_t*>(p.k) + b * p.k_stride[0] + hk * p.k_stride[1], p.k_stride[2],
                 append ? static_cast<const uint16_t*>(ap.k_new) + b * ap.k_new_stride[0] + hk * ap.k_new_stride[1]
                        : nullptr,
                 ap.k_new_stride[2], fresh_from};
  const KvRows v{static_cast<const uint16_t*>(p.v) + b * p.v_stride[0] + hk * p.v_stride[1], p.v_stride[2],
                 append ? static_cast<const uint16_t*>(ap.v_new) + b * ap.v_new_stride[0] + hk * ap.v_new_stride[1]
                        : nullptr,
                 ap.v_new_stride[2], fresh_from};
  if (n_blocks > 0) {
    load_kv_tile<kBlockN, kD, kThreads>(sK, k, n_lo, n_hi, D);
    load_kv_tile<kBlockN, kD, kThreads>(sV, v, n_lo, n_hi, D);
  }
  dev::cp_async_commit();
  // The append: this split's share of the new rows, by its first query tile.
  const int fresh_lo = fresh_from > n_lo ? fresh_from : n_lo;
  if (append && m0 == 0 && fresh_lo < n_hi) {
    store_fresh_rows(static_cast<uint16_t*>(ap.k_cache) + b * p.k_stride[0] + hk * p.k_stride[1], p.k_stride[2], k,
                     fresh_lo, n_hi, D);
    store_fresh_rows(static_cast<uint16_t*>(ap.v_cache) + b * p.v_stride[0] + hk * p.v_stride[1], p.v_stride[2], v,
                     fresh_lo, n_hi, D);
  }

  const float scale_log2 = float(p.scale) * kLog2e;
  int row_pos[2];  // query position of this thread's two rows (causal)
#pragma unroll
  for (int r = 0; r < 2; ++r) row_pos[r] = Sq > 0 ? (m0 + warp * 16 + g + 8 * r) % Sq : 0;
  float acc[kDT][4];
#pragma unroll
  for (int i = 0; i < kDT; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[i][e] = 0.f;
  float row_max[2] = {-INFINITY, -INFINITY}, row_sum[2] = {0.f, 0.f};
  const uint16_t* q_frag_row = sQ + (warp * 16 + (lane % 8) + 8 * ((lane / 8) & 1)) * kStride + 8 * (lane / 16);

  for (int nb = 0; nb < n_blocks; ++nb) {
    const int s = nb & 1, n0 = n_lo + nb * kBlockN;
    if (nb + 1 < n_blocks) {
      const int n1 = n0 + kBlockN;
      load_kv_tile<kBlockN, kD, kThreads>(sK + (s ^ 1) * kBlockN * kStride, k, n1, n_hi, D);
      load_kv_tile<kBlockN, kD, kThreads>(sV + (s ^ 1) * kBlockN * kStride, v, n1, n_hi, D);
    }
    dev::cp_async_commit();
    dev::cp_async_wait<1>();
    __syncthreads();
    const uint16_t* sKs = sK + s * kBlockN * kStride;
    const uint16_t* sVs = sV + s * kBlockN * kStride;

    float S[kNT][4];
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) S[j][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      uint32_t a[4];
      dev::ldmatrix_x4(a[0], a[1], a[2], a[3], q_frag_row + 16 * kk);
#pragma unroll
      for (int j = 0; j < kNT / 2; ++j) {
        uint32_t bk[4];
        dev::ldmatrix_x4(bk[0], bk[1], bk[2], bk[3],
                         sKs + (16 * j + (lane % 8) + 8 * (lane / 16)) * kStride + 16 * kk + 8 * ((lane / 8) & 1));
        mma16816<T>(S[2 * j], a, bk);
        mma16816<T>(S[2 * j + 1], a, bk + 2);
      }
    }
    // Keys past this split's range, and causal (query i sees j <= i + diag).
    const bool edge = n0 + kBlockN > n_hi || n0 + kBlockN - 1 > diag;
#pragma unroll
    for (int j = 0; j < kNT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = n0 + 8 * j + 2 * t + (e & 1);
        const bool keep = !edge || (col < n_hi && col <= row_pos[e >> 1] + diag);
        S[j][e] = keep ? S[j][e] * scale_log2 : -INFINITY;
      }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float mx = row_max[r];
#pragma unroll
      for (int j = 0; j < kNT; ++j) mx = fmaxf(mx, fmaxf(S[j][2 * r], S[j][2 * r + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -INFINITY ? 0.f : mx;
      const float alpha = exp2f(row_max[r] - base);
      row_max[r] = mx;
      float sum = 0.f;
#pragma unroll
      for (int j = 0; j < kNT; ++j)
#pragma unroll
        for (int e = 2 * r; e < 2 * r + 2; ++e) {
          S[j][e] = exp2f(S[j][e] - base);
          sum += S[j][e];
        }
      row_sum[r] = row_sum[r] * alpha + sum;
#pragma unroll
      for (int i = 0; i < kDT; ++i) {
        acc[i][2 * r] *= alpha;
        acc[i][2 * r + 1] *= alpha;
      }
    }
    pv_accumulate<T, kD, kBlockN>(acc, S, sVs, lane);
    __syncthreads();
  }
  dev::cp_async_wait<0>();

  // Epilogue: o directly (one split) or this split's normalised partial + lse.
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = row_sum[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int row = m0 + warp * 16 + g + 8 * r;
    if (row >= rows) continue;
    const int h = hk * group + row / Sq, i = row % Sq;
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const float lse = l > 0.f ? (row_max[r] + log2f(l)) * kLn2 : -INFINITY;
    const int64_t row_id = (int64_t(b) * p.heads_q + h) * Sq + i;  // (B, Hq, Sq)
    if (splits == 1) {
      uint16_t* o = static_cast<uint16_t*>(p.o) + b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
#pragma unroll
      for (int c = 0; c < kDT; ++c) {
        const int col = 8 * c + 2 * t;
        if (col < D) *reinterpret_cast<uint32_t*>(o + col) = pack2<T>(acc[c][2 * r] * inv, acc[c][2 * r + 1] * inv);
      }
      if (t == 0) static_cast<float*>(p.lse)[row_id] = lse;
    } else {
      const int64_t part = int64_t(split) * p.batch * p.heads_q * Sq + row_id;  // (splits, B, Hq, Sq)
      float* o = ws.o_partial + part * D;
#pragma unroll
      for (int c = 0; c < kDT; ++c) {
        const int col = 8 * c + 2 * t;
        if (col < D) {
          o[col] = acc[c][2 * r] * inv;
          o[col + 1] = acc[c][2 * r + 1] * inv;
        }
      }
      if (t == 0) ws.lse_partial[part] = lse;
    }
  }
}

// One warp per (b, h, i) row: merge the splits' partials by their lse.
template <typename T>
__global__ void __launch_bounds__(128) attention_decode_combine_kernel(const AttentionParams p,
                                                                        const AttentionDecodeWorkspace ws) {
  // 32-bit row arithmetic (the dispatcher checks B Hq Sq < 2^31): 64-bit
  // division is a call whose ABI costs stack spills.
  const int rows = int(p.batch * p.heads_q * p.seqlen_q), Sq = int(p.seqlen_q), Hq = int(p.heads_q);
  const int row = blockIdx.x * 4 + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (row >= rows) return;
  float lse_max = -INFINITY;
  for (int s = 0; s < ws.num_splits; ++s) lse_max = fmaxf(lse_max, ws.lse_partial[int64_t(s) * rows + row]);
  float total = 0.f;
  for (int s = 0; s < ws.num_splits; ++s) {
    const float l = ws.lse_partial[int64_t(s) * rows + row];
    total += l == -INFINITY ? 0.f : expf(l - lse_max);
  }
  const int i = row % Sq, bh = row / Sq, h = bh % Hq, b = bh / Hq;
  T* o = static_cast<T*>(p.o) + b * p.o_stride[0] + h * p.o_stride[1] + i * p.o_stride[2];
  for (int d = lane; d < p.head_dim; d += 32) {
    float x = 0.f;
    for (int s = 0; s < ws.num_splits; ++s) {
      const float l = ws.lse_partial[int64_t(s) * rows + row];
      if (l != -INFINITY) x += expf(l - lse_max) / total * ws.o_partial[(int64_t(s) * rows + row) * p.head_dim + d];
    }
    o[d] = dev::from_float<T>(x);
  }
  if (lane == 0) static_cast<float*>(p.lse)[row] = total > 0.f ? lse_max + logf(total) : -INFINITY;
}

template <typename T, int kD>
cudaError_t launch_attention_decode(const AttentionParams& p, const AttentionDecodeWorkspace& ws,
                                    const AttentionCacheAppend& append, cudaStream_t stream) {
  using Tile = FwdTile<kD>;
  const int64_t rows = (p.heads_q / p.heads_kv) * p.seqlen_q;
  const int64_t tiles = rows > 0 ? (rows + Tile::kBlockM - 1) / Tile::kBlockM : 1;  // >= 1: the append
  const dim3 grid(unsigned(tiles * ws.num_splits), unsigned(p.heads_kv), unsigned(p.batch));
#if defined(__CUDACC__)
  if (Tile::kSmemBytes > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(attention_decode_kernel<T, kD>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, int(Tile::kSmemBytes));
    if (err != cudaSuccess) return err;
  }
#endif
  cudaError_t err =
      BK_LAUNCH((attention_decode_kernel<T, kD>), grid, dim3(Tile::kThreads), Tile::kSmemBytes, stream, p, ws, append);
  const int64_t all_rows = p.batch * p.heads_q * p.seqlen_q;
  if (err != cudaSuccess || ws.num_splits == 1 || all_rows == 0) return err;
  return BK_LAUNCH((attention_decode_combine_kernel<T>), dim3(unsigned((all_rows + 3) / 4)), dim3(128), 0, stream,
                   p, ws);
}

}  // namespace attn
}  // namespace cuda
}  // namespace bk

#define BK_INSTANTIATE_ATTENTION_DECODE(KD)                                                                    \
  template cudaError_t bk::cuda::attn::launch_attention_decode<__half, KD>(                                    \
      const bk::AttentionParams&, const bk::cuda::AttentionDecodeWorkspace&,                                   \
      const bk::cuda::AttentionCacheAppend&, cudaStream_t);                                                    \
  template cudaError_t bk::cuda::attn::launch_attention_decode<__nv_bfloat16, KD>(                             \
      const bk::AttentionParams&, const bk::cuda::AttentionDecodeWorkspace&,                                   \
      const bk::cuda::AttentionCacheAppend&, cudaStream_t);
