// Implicit-GEMM weight gradient on tensor cores, per group g and tap (r, s):
//   dW[g*Kg + k, r, s, c] = sum_{pixels (n, p, q)} dZ[n, p, q, g*Kg + k] * X[n, p*sh - ph + r*dh, q*sw - pw + s*dw, g*Cg + c]
// a GEMM of Kg x Cg over the N*P*Q output pixels. Both operands are stored
// pixel-major (k resp. c contiguous, as NHWC has them), so both reach the
// tensor cores through ldmatrix.trans. The pixel reduction is long and the
// output small, so it is split: each block sums one range of pixels into an
// fp32 partial, and a second kernel adds the partials in split order (no
// atomics: the same bits on every run and schedule). Tile 64 k x 64 c, 32
// pixels per step, 3 cp.async stages.
// kAct: dZ = dY * act'(saved) formed in shared memory (grad_tile.cuh). The
// blocks of tap 0 and the first c tile (one per k tile and split) see every
// dZ element exactly once, so they also write dZ for the residual's gradient
// (p.grad_preact) and per-split partial sums for the bias gradient, which
// the sum kernel adds in split order like the weights'.
#include <algorithm>

#include "cuda/conv/conv_bwd.h"
#include "cuda/conv/grad_tile.cuh"
#include "cuda/conv/mma_tile.cuh"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 32, kThreads = 128, kStages = 3, kLd = 64 + 8;

int splits_for(const ConvParams& p) {
  const int64_t kg = p.k / p.groups, cg = p.c / p.groups, npq = int64_t(p.n) * p.p * p.q;
  const int64_t base = ((kg + kBM - 1) / kBM) * ((cg + kBN - 1) / kBN) * p.groups * p.r * p.s;
  int64_t splits = (264 + base - 1) / base;                   // about 2 blocks per SM of a 132-SM GPU
  splits = std::min<int64_t>(splits, (npq + 255) / 256);      // >= 256 pixels per split
  splits = std::min<int64_t>(splits, 65535 / (int64_t(p.groups) * p.r * p.s));
  return int(std::max<int64_t>(splits, 1));
}

template <typename T, bool kAct>
BK_GLOBAL void __launch_bounds__(kThreads) conv_wgrad_kernel(ConvParams p, float* partial, int splits) {
  BK_SHARED(uint16_t, As, [kStages][kBK][kLd]);
  BK_SHARED(uint16_t, Bs, [kStages][kBK][kLd]);
  BK_SHARED(uint16_t, Ss, [kAct ? kStages : 1][kAct ? kBK : 1][kLd]);  // the saved tile
  BK_SHARED(float, bias_red, [kThreads / 32][kBM]);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int cg = p.c / p.groups, kg = p.k / p.groups;
  const int split = blockIdx.z % splits, rest = blockIdx.z / splits;
  const int tap = rest % (p.r * p.s), grp = rest / (p.r * p.s), r = tap / p.s, s = tap % p.s;
  const int m0 = blockIdx.x * kBM, n0 = blockIdx.y * kBN;
  const int pq = p.p * p.q, npq = p.n * pq;
  const int steps = (npq + kBK - 1) / kBK, per_split = (steps + splits - 1) / splits;
  const int step0 = split * per_split, step1 = steps < step0 + per_split ? steps : step0 + per_split;
  const uint16_t* gz = static_cast<const uint16_t*>(p.grad_z);
  const uint16_t* x = static_cast<const uint16_t*>(p.x);
  const uint16_t* sv = static_cast<const uint16_t*>(p.saved);
  // Rows tid/8 and tid/8 + 16 (pixels), chunk (tid%8)*8 of k (A) and c (B).
  const int row = threadIdx.x / 8, ch = (threadIdx.x % 8) * 8;
  const bool a_ok = m0 + ch < kg, b_ok = n0 + ch < cg;
  const bool writer = blockIdx.y == 0 && tap == 0;  // block-uniform
  const bool want_bias = writer && p.grad_bias;
  uint16_t* gpre = writer ? static_cast<uint16_t*>(p.grad_preact) : nullptr;
  float bsum[8] = {};  // this thread's column chunk of the bias gradient

  auto load = [&](int stage, int step) {
    for (int i = 0; i < 2; ++i) {
      const int pix = step * kBK + row + 16 * i;
      const bool in = pix < npq;
      const int n = pix / pq, oh = pix % pq / p.q, ow = pix % p.q;
      const bool va = in && a_ok;
      const int64_t off = va ? int64_t(pix) * p.k + grp * kg + m0 + ch : 0;
      dev::cp_async_16(&As[stage][row + 16 * i][ch], gz + off, va);
      if constexpr (kAct) dev::cp_async_16(&Ss[stage][row + 16 * i][ch], sv + off, va);
      const int hi = oh * p.stride_h - p.pad_h + r * p.dil_h, wi = ow * p.stride_w - p.pad_w + s * p.dil_w;
      const bool vb = in && b_ok && hi >= 0 && hi < p.h && wi >= 0 && wi < p.w_in;
      const uint16_t* sb = vb ? x + ((int64_t(n) * p.h + hi) * p.w_in + wi) * p.c + grp * cg + n0 + ch : x;
      dev::cp_async_16(&Bs[stage][row + 16 * i][ch], sb, vb);
    }
  };

  float acc[2][4][4] = {};
  const int KT = step1 - step0;
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < KT) load(st, step0 + st);
    dev::cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    dev::cp_async_wait<kStages - 2>();
    for (int i = 0; i < 2; ++i) {  // this thread's own chunks of step kt (zero-filled ones stay 0)
      uint16_t* g = &As[kt % kStages][row + 16 * i][ch];
      if constexpr (kAct) tile::act_backward_chunk<T>(g, &Ss[kt % kStages][row + 16 * i][ch], p.act, p.alpha);
      const int pix = (step0 + kt) * kBK + row + 16 * i;
      if (want_bias)
        for (int e = 0; e < 8; ++e) bsum[e] += tile::bits_to_float<T>(g[e]);
      if (gpre && pix < npq && a_ok)
        for (int e = 0; e < 8; ++e) gpre[int64_t(pix) * p.k + grp * kg + m0 + ch + e] = g[e];
    }
    __syncthreads();  // step kt landed for all; step kt-1's stage is free to refill
    if (kt + kStages - 1 < KT) load((kt + kStages - 1) % kStages, step0 + kt + kStages - 1);
    dev::cp_async_commit();
    const int st = kt % kStages;
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t a[2][4], b[4][2];
      tile::load_a_trans<kLd>(a, As[st], wm, kk, lane);
      tile::load_b_trans<kLd>(b, Bs[st], wn, kk, lane);
      tile::mma<T>(acc, a, b);
    }
  }
  dev::cp_async_wait<0>();

  if (want_bias) {  // fixed order: lanes 8 and 16 apart (same column chunk), then the 4 warps
    for (int e = 0; e < 8; ++e) {
      bsum[e] += __shfl_xor_sync(0xffffffffu, bsum[e], 8);
      bsum[e] += __shfl_xor_sync(0xffffffffu, bsum[e], 16);
    }
    if (lane < 8)
      for (int e = 0; e < 8; ++e) bias_red[warp][ch + e] = bsum[e];
    __syncthreads();
    if (threadIdx.x < kBM && m0 + int(threadIdx.x) < kg) {
      float sum = 0.f;
      for (int w = 0; w < kThreads / 32; ++w) sum += bias_red[w][threadIdx.x];
      // bias partials follow the weight partials: [split][K]
      partial[int64_t(splits) * p.k * p.r * p.s * cg + int64_t(split) * p.k + grp * kg + m0 + threadIdx.x] = sum;
    }
  }
  // partial[split][K][R][S][Cg] (an empty split writes its zeros too).
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int v = 0; v < 4; ++v) {
        const int k = m0 + wm + tile::acc_row(lane, i, v), c = n0 + wn + tile::acc_col(lane, j, v);
        if (k < kg && c < cg)
          partial[(((int64_t(split) * p.k + grp * kg + k) * p.r + r) * p.s + s) * cg + c] = acc[i][j][v];
      }
}

template <typename T>
BK_GLOBAL void __launch_bounds__(256) conv_wgrad_sum_kernel(ConvParams p, const float* partial, int splits) {
  const int64_t total = int64_t(p.k) * p.r * p.s * (p.c / p.groups);
  for (int64_t i = dev::global_thread_index(); i < total; i += dev::global_thread_count()) {
    float sum = 0.f;
    for (int s = 0; s < splits; ++s) sum += partial[s * total + i];
    static_cast<T*>(p.grad_w)[i] = dev::from_float<T>(sum);
  }
  if (!p.grad_bias) return;
  for (int64_t i = dev::global_thread_index(); i < p.k; i += dev::global_thread_count()) {
    float sum = 0.f;
    for (int s = 0; s < splits; ++s) sum += partial[splits * total + s * p.k + i];
    static_cast<T*>(p.grad_bias)[i] = dev::from_float<T>(sum);
  }
}

template <typename T>
cudaError_t launch(const ConvParams& p, float* workspace, cudaStream_t stream) {
  const int splits = splits_for(p);
  const dim3 grid(unsigned((p.k / p.groups + kBM - 1) / kBM), unsigned((p.c / p.groups + kBN - 1) / kBN),
                  unsigned(p.groups * p.r * p.s * splits));
  if (grid.y > 65535 || grid.z > 65535) return cudaErrorInvalidValue;
  cudaError_t err = p.saved && p.act != Act::None
                        ? BK_LAUNCH((conv_wgrad_kernel<T, true>), grid, dim3(kThreads), 0, stream, p, workspace, splits)
                        : BK_LAUNCH((conv_wgrad_kernel<T, false>), grid, dim3(kThreads), 0, stream, p, workspace, splits);
  if (err != cudaSuccess) return err;
  const int64_t total = int64_t(p.k) * p.r * p.s * (p.c / p.groups);
  const unsigned blocks = unsigned(std::min<int64_t>((total + 255) / 256, 132 * 16));
  return BK_LAUNCH(conv_wgrad_sum_kernel<T>, dim3(blocks), dim3(256), 0, stream, p,
                   static_cast<const float*>(workspace), splits);
}

}  // namespace

int64_t conv2d_wgrad_workspace(const ConvParams& p) {
  return int64_t(splits_for(p)) * p.k * (int64_t(p.r) * p.s * (p.c / p.groups) + 1);  // weights, then bias
}

cudaError_t conv2d_wgrad(const ConvParams& p, float* workspace, cudaStream_t stream) {
  if (!conv2d_bwd_supported(p) || !p.grad_w || !workspace) return cudaErrorInvalidValue;
  if (p.dtype == DType::BF16) return launch<__nv_bfloat16>(p, workspace, stream);
  return launch<__half>(p, workspace, stream);
}

}  // namespace cuda
}  // namespace bk
