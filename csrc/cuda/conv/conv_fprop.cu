// Implicit-GEMM convolution forward on tensor cores, per group g:
//   D[m, k] = sum_{r, s, c} X[n, p*sh - ph + r*dh, q*sw - pw + s*dw, g*Cg + c] * W[g*Kg + k, r, s, c]
// with m = (n, p, q) the output pixel (M = N*P*Q rows) and k the output
// channel of the group (Kg columns). NHWC makes each (pixel, tap) row of the
// A tile BK contiguous channels, so A is gathered straight from x with 16-byte
// cp.async (no im2col buffer); padding and out-of-range rows are cp.async's
// zero-fill. KRSC weights make B rows contiguous the same way.
// Tile: 64 pixels x 64 channels per block of 4 warps (2x2, 32x32 each), BK =
// 32 channels of one tap per step, 3 cp.async stages (one barrier per step).
// Epilogue in registers: + bias + residual, optional pre-activation store,
// activation (a runtime switch: it runs once per output element against
// R*S*Cg MACs, and one instantiation per dtype keeps builds small).
#include "cuda/conv/conv_fprop.h"
#include "cuda/conv/act_switch.cuh"
#include "device/launch.cuh"

#include <type_traits>

namespace bk {
namespace cuda {
namespace {

constexpr int kBM = kConvFpropTileM, kBN = 64, kBK = 32, kPad = 40, kThreads = 128, kStages = 3;

// Sum over the tile's 64 rows of this thread's 4 values per column (j, b):
// lanes with the same lane % 4 share columns (xor 4, 8, 16), then the two
// warps of a column half through shared memory; fixed order throughout.
BK_DEVICE void tile_column_sums(float (&v)[4][2], float (&red)[2][kBN], float (&out)[4][2], int warp, int lane,
                                int wn) {
  for (int j = 0; j < 4; ++j)
    for (int b = 0; b < 2; ++b) {
      float s = v[j][b];
      s += __shfl_xor_sync(0xffffffffu, s, 4);
      s += __shfl_xor_sync(0xffffffffu, s, 8);
      s += __shfl_xor_sync(0xffffffffu, s, 16);
      if (lane < 4) red[warp / 2][wn + 8 * j + 2 * lane + b] = s;
    }
  __syncthreads();
  for (int j = 0; j < 4; ++j)
    for (int b = 0; b < 2; ++b) out[j][b] = red[0][wn + 8 * j + 2 * (lane % 4) + b] + red[1][wn + 8 * j + 2 * (lane % 4) + b];
  __syncthreads();  // red is reused by the next call
}

// The block's BN partials: per channel, the mean of its tile's stored y and
// M2 about that mean (two passes over registers: no cancellation), written
// to stats_partial[tile][0 / 1][k]. Rows past M count as absent.
BK_DEVICE void stats_epilogue(const ConvParams& p, float (&acc)[2][4][4], float (&red)[2][kBN], int64_t m0, int n0,
                              int grp, int warp, int lane, int wm, int wn) {
  const int64_t M = int64_t(p.n) * p.p * p.q;
  const int kg = p.k / p.groups, rows = int(M - m0 < kBM ? M - m0 : kBM);
  auto valid = [&](int i, int v) { return wm + 16 * i + lane / 4 + 8 * (v >> 1) < rows; };
  float part[4][2] = {}, mean[4][2], m2[4][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int v = 0; v < 4; ++v)
        if (valid(i, v)) part[j][v & 1] += acc[i][j][v];
  tile_column_sums(part, red, mean, warp, lane, wn);
  for (int j = 0; j < 4; ++j)
    for (int b = 0; b < 2; ++b) mean[j][b] /= float(rows), part[j][b] = 0.f;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int v = 0; v < 4; ++v)
        if (valid(i, v)) {
          const float d = acc[i][j][v] - mean[j][v & 1];
          part[j][v & 1] += d * d;
        }
  tile_column_sums(part, red, m2, warp, lane, wn);
  if (wm == 0 && lane < 4)  // one writer per column: the upper warp of each column half
    for (int j = 0; j < 4; ++j)
      for (int b = 0; b < 2; ++b) {
        const int kk = n0 + wn + 8 * j + 2 * lane + b;
        if (kk >= kg) continue;
        float* out = p.stats_partial + int64_t(blockIdx.x) * 2 * p.k + grp * kg + kk;
        out[0] = mean[j][b];
        out[p.k] = m2[j][b];
      }
}

template <typename T>
BK_GLOBAL void __launch_bounds__(kThreads) conv_fprop_kernel(ConvParams p) {
  BK_SHARED(uint16_t, As, [kStages][kBM][kPad]);
  BK_SHARED(uint16_t, Bs, [kStages][kBN][kPad]);
  BK_SHARED(float, stats_red, [2][kBN]);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int cg = p.c / p.groups, kg = p.k / p.groups, grp = blockIdx.z;
  const int64_t pq = int64_t(p.p) * p.q, M = p.n * pq;
  const int64_t m0 = int64_t(blockIdx.x) * kBM;
  const int n0 = blockIdx.y * kBN;
  const uint16_t* x = static_cast<const uint16_t*>(p.x);
  const uint16_t* w = static_cast<const uint16_t*>(p.w);

  // Each thread copies rows tid/4 and tid/4 + 32 of both tiles, chunk kc:
  // the pixel of its A rows is decoded once, not per step.
  const int kc = (threadIdx.x % 4) * 8, row0 = threadIdx.x / 4;
  int64_t a_img[2];
  int a_h[2], a_w[2];
  bool a_ok[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t m = m0 + row0 + 32 * i;
    a_ok[i] = m < M;
    const int64_t mm = a_ok[i] ? m : 0, rem = mm % pq;
    a_img[i] = mm / pq;
    a_h[i] = int(rem / p.q) * p.stride_h - p.pad_h;
    a_w[i] = int(rem % p.q) * p.stride_w - p.pad_w;
  }
  const int cblocks = (cg + kBK - 1) / kBK, KT = p.r * p.s * cblocks;

  auto load = [&](int stage, int kt) {
    const int tap = kt / cblocks, c = (kt % cblocks) * kBK + kc;
    const int r = tap / p.s, s = tap % p.s;
    const bool c_ok = c < cg;  // cg % 8 == 0: a chunk is wholly in or out
    for (int i = 0; i < 2; ++i) {
      const int hi = a_h[i] + r * p.dil_h, wi = a_w[i] + s * p.dil_w;
      const bool valid = a_ok[i] && c_ok && hi >= 0 && hi < p.h && wi >= 0 && wi < p.w_in;
      const uint16_t* src = valid ? x + ((a_img[i] * p.h + hi) * p.w_in + wi) * p.c + grp * cg + c : x;
      dev::cp_async_16(&As[stage][row0 + 32 * i][kc], src, valid);
    }
    for (int i = 0; i < 2; ++i) {
      const int kk = n0 + row0 + 32 * i;
      const bool valid = c_ok && kk < kg;
      const uint16_t* src = valid ? w + ((int64_t(grp * kg + kk) * p.r + r) * p.s + s) * cg + c : w;
      dev::cp_async_16(&Bs[stage][row0 + 32 * i][kc], src, valid);
    }
  };

  float acc[2][4][4] = {};
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < KT) load(st, st);
    dev::cp_async_commit();  // possibly empty: keeps the group count uniform
  }
  for (int kt = 0; kt < KT; ++kt) {
    dev::cp_async_wait<kStages - 2>();  // step kt's group has landed (for this thread)
    __syncthreads();  // ... for every thread; and step kt-1's stage is free to refill
    if (kt + kStages - 1 < KT) load((kt + kStages - 1) % kStages, kt + kStages - 1);
    dev::cp_async_commit();
    const int st = kt % kStages;
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t a[2][4], b[4][2];
      // A 16x16: matrix j = lane/8 covers rows +8*(j&1), cols +8*(j>>1).
      for (int i = 0; i < 2; ++i)
        dev::ldmatrix_x4(a[i][0], a[i][1], a[i][2], a[i][3],
                         &As[st][wm + 16 * i + (lane % 8) + 8 * ((lane / 8) & 1)][kk + 8 * (lane / 16)]);
      // B^T rows are output channels: matrix j covers n +8*(j>>1), k +8*(j&1).
      for (int j = 0; j < 2; ++j)
        dev::ldmatrix_x4(b[2 * j][0], b[2 * j][1], b[2 * j + 1][0], b[2 * j + 1][1],
                         &Bs[st][wn + 16 * j + (lane % 8) + 8 * (lane / 16)][kk + 8 * ((lane / 8) & 1)]);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 4; ++j) {
          if constexpr (std::is_same<T, __nv_bfloat16>::value)
            dev::mma_m16n8k16_bf16f32(acc[i][j], a[i], b[j], acc[i][j]);
          else
            dev::mma_m16n8k16_f16f32(acc[i][j], a[i], b[j], acc[i][j]);
        }
    }
  }
  dev::cp_async_wait<0>();  // no copy may be in flight when the block exits

  const T* bias = static_cast<const T*>(p.bias);
  const T* res = static_cast<const T*>(p.residual);
  T* y = static_cast<T*>(p.y);
  T* z = static_cast<T*>(p.z);
  const int g = lane / 4, t = lane % 4;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int v = 0; v < 4; ++v) {
        const int64_t m = m0 + wm + 16 * i + g + 8 * (v >> 1);
        const int kk = n0 + wn + 8 * j + 2 * t + (v & 1);
        if (m >= M || kk >= kg) continue;
        const int kout = grp * kg + kk;
        const int64_t off = m * p.k + kout;  // NHWC: row m of an [M, K] matrix
        float val = acc[i][j][v];
        if (bias) val += dev::to_float(bias[kout]);
        if (res) val += dev::to_float(res[off]);
        if (z) z[off] = dev::from_float<T>(val);
        const T out = dev::from_float<T>(apply_act(p.act, val, p.alpha));
        y[off] = out;
        acc[i][j][v] = dev::to_float(out);  // kept for the statistics
      }
  if (p.stats_partial) stats_epilogue(p, acc, stats_red, m0, n0, grp, warp, lane, wm, wn);
}

}  // namespace

bool conv2d_fprop_supported(const ConvParams& p) {
  if (p.dtype != DType::F16 && p.dtype != DType::BF16) return false;
  if (p.groups < 1 || p.c % p.groups || p.k % p.groups || (p.c / p.groups) % 8) return false;
  if ((reinterpret_cast<uintptr_t>(p.x) | reinterpret_cast<uintptr_t>(p.w)) % 16) return false;
  return p.n > 0 && p.k > 0 && p.r > 0 && p.s > 0 && p.p > 0 && p.q > 0;
}

cudaError_t conv2d_fprop(const ConvParams& p, cudaStream_t stream) {
  if (!conv2d_fprop_supported(p)) return cudaErrorInvalidValue;
  const int64_t M = int64_t(p.n) * p.p * p.q;
  const int kg = p.k / p.groups;
  const dim3 grid(unsigned((M + kBM - 1) / kBM), unsigned((kg + kBN - 1) / kBN), unsigned(p.groups));
  if (grid.y > 65535 || grid.z > 65535) return cudaErrorInvalidValue;
  if (p.dtype == DType::BF16) return BK_LAUNCH(conv_fprop_kernel<__nv_bfloat16>, grid, dim3(kThreads), 0, stream, p);
  return BK_LAUNCH(conv_fprop_kernel<__half>, grid, dim3(kThreads), 0, stream, p);
}

}  // namespace cuda
}  // namespace bk
