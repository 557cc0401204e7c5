// Per-step LSTM forward on tensor cores (fp16/bf16 storage), for hidden sizes
// whose weights do not stay on chip: one launch per step computes
//   z = x_proj[t] + W_hh h_{t-1}
// for a block's 8 units (all 4 gates: two m16 tiles ordered as in the
// persistent kernel, lstm_mma.cuh) x 32 batch columns (4 n8 tiles), then the
// gates, c and h in the same launch (cell_update, as every LSTM path).
// W_hh (A) and h_{t-1} (B) stream through shared memory in K chunks of 64
// with cp.async, 4 stages, one barrier per chunk (the conv kernels' pipeline).
// h_{t-1} is read from y[t_prev], which already holds it in the storage type
// (rounded exactly as the persistent kernel rounds its h tile); the first step
// converts h0 from fp32. Warp w: m tile w % 2, n tiles 2 (w / 2) and +1, so
// at B <= 16 two warps do the mma while all four copy: a step at small batch
// is bound by reading W_hh, not by the tensor cores.
// Rows of W_hh and y are P elements long: cp.async moves 16, 8 or 4 bytes as
// P's alignment allows; odd P falls back to plain loads (same pipeline).
#include "cuda/lstm/lstm_mma.cuh"
#include "cuda/lstm/lstm_step_mma.h"

namespace bk {
namespace cuda {
namespace lstm {
namespace {

constexpr int kBK = 64, kLd = kBK + 8, kStages = 4;  // kLd: 144-byte rows, 16-byte aligned, conflict-free ldmatrix
constexpr int kRows = 4 * kStepMmaUnits, kCols = kStepMmaCols;
static_assert(kBK == 1 << 6, "the copy loops index a chunk row with shifts");

// log2 of the widest copy, in elements (3: 16 bytes .. 0: one element, no
// cp.async) that P and the base addresses of W_hh and y allow.
BK_DEVICE int copy_log2(int64_t P, const void* w, const void* y) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(w) | reinterpret_cast<uintptr_t>(y);
  for (int l = 3; l > 0; --l)
    if (P % (1 << l) == 0 && addr % (2u << l) == 0) return l;
  return 0;
}

// 1 << lv elements from src, or zeros when !valid (src must stay aligned).
template <typename T>
BK_DEVICE void copy_elems(uint16_t* dst, const T* src, bool valid, int lv) {
  switch (lv) {
    case 3: dev::cp_async_16(dst, src, valid); break;
    case 2: dev::cp_async_8(dst, src, valid); break;
    case 1: dev::cp_async_4(dst, src, valid); break;
    default: *reinterpret_cast<T*>(dst) = valid ? *src : dev::from_float<T>(0.f);
  }
}

template <typename T, bool kProj>
BK_GLOBAL void __launch_bounds__(kLstmThreads) lstm_fwd_step_mma(Dirs<Args> g, int64_t s) {
  int64_t blk;
  const Args& a = my_dir(g, &blk);
  BK_SHARED(uint16_t, Ws, [kStages][kRows][kLd]);
  BK_SHARED(uint16_t, Hs, [kStages][kCols][kLd]);
  const LstmParams& p = a.p;
  const int64_t H = p.H, P = p.P, B = p.B;
  const int64_t u0 = blk * kStepMmaUnits, b0 = int64_t(blockIdx.y) * kCols;
  const int nU = clamp_count(H, u0, kStepMmaUnits);
  const int n_tiles = (clamp_count(B, b0, kCols) + 7) / 8;  // live n8 tiles of this block
  const T* whh = static_cast<const T*>(p.w_hh);
  const T* y = static_cast<const T*>(p.y);
  const T* hprev = s == 0 ? nullptr : y + fwd_t(p, s - 1) * B * P;  // null: convert h0 (fp32)
  const int lv = copy_log2(P, whh, y), row_log2 = 6 - lv, per_row = kBK >> lv;

  auto load = [&](int st, int kt) {
    const int64_t k0 = int64_t(kt) * kBK;
    for (int c = threadIdx.x; c < kRows * per_row; c += kLstmThreads) {
      const int r = c >> row_log2, kc = (c & (per_row - 1)) << lv;
      const int64_t j = mma_row_unit(r), k = k0 + kc;
      const bool valid = j < nU && k < P;  // P % (1 << lv) == 0: a group is wholly in or out
      copy_elems<T>(&Ws[st][r][kc], valid ? whh + (mma_row_gate(r) * H + u0 + j) * P + k : whh, valid, lv);
    }
    for (int c = threadIdx.x; c < n_tiles * 8 * per_row; c += kLstmThreads) {
      const int r = c >> row_log2, kc = (c & (per_row - 1)) << lv;
      const int64_t b = b0 + r, k = k0 + kc;
      const bool valid = b < B && k < P;
      if (hprev) {
        copy_elems<T>(&Hs[st][r][kc], valid ? hprev + b * P + k : y, valid, lv);
      } else {
        T* d = reinterpret_cast<T*>(&Hs[st][r][kc]);
        for (int e = 0; e < (1 << lv); ++e) d[e] = dev::from_float<T>(valid ? a.w.h0[b * P + k + e] : 0.f);
      }
    }
  };

  const int lane = lane_id(), w = warp_id(), mt = w % 2, nt0 = 2 * (w / 2);
  const bool m_live = mt * 4 < nU;
  const int KT = int((P + kBK - 1) / kBK);
  float acc[2][4] = {};
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < KT) load(st, st);
    dev::cp_async_commit();  // possibly empty: keeps the group count uniform
  }
  for (int kt = 0; kt < KT; ++kt) {
    dev::cp_async_wait<kStages - 2>();  // chunk kt has landed (for this thread)
    __syncthreads();                    // ... for every thread; and chunk kt-1's stage is free to refill
    if (kt + kStages - 1 < KT) load((kt + kStages - 1) % kStages, kt + kStages - 1);
    dev::cp_async_commit();
    const int st = kt % kStages;
    const int64_t k_end = P - int64_t(kt) * kBK < kBK ? (P - int64_t(kt) * kBK + 15) / 16 * 16 : kBK;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      if (!m_live || kk >= k_end) break;  // a ragged last chunk stops at round_up(P, 16)
      uint32_t af[4];
      dev::ldmatrix_x4(af[0], af[1], af[2], af[3],
                       &Ws[st][mt * 16 + lane % 8 + 8 * ((lane / 8) & 1)][kk + 8 * (lane / 16)]);
      for (int i = 0; i < 2; ++i) {
        if (nt0 + i >= n_tiles) break;
        uint32_t bf[2];
        dev::ldmatrix_x2(bf[0], bf[1], &Hs[st][(nt0 + i) * 8 + lane % 8][kk + 8 * ((lane / 8) & 1)]);
        mma16816<T>(acc[i], af, bf);
      }
    }
  }
  dev::cp_async_wait<0>();  // no copy may be in flight when the block exits
  for (int i = 0; i < 2; ++i)
    if (m_live && nt0 + i < n_tiles) mma_tile_cells<T, kProj>(a, s, acc[i], mt, b0 + (nt0 + i) * 8, u0, nU);
}

}  // namespace

template <typename T, bool kProj>
cudaError_t launch_fwd_step_mma(const Dirs<Args>& g, int grid, int64_t s, cudaStream_t stream) {
  const dim3 blocks{unsigned(grid), unsigned((g.d[0].p.B + kCols - 1) / kCols)}, block{kLstmThreads};
  return BK_LAUNCH((lstm_fwd_step_mma<T, kProj>), blocks, block, 0, stream, g, s);
}

template cudaError_t launch_fwd_step_mma<__half, false>(const Dirs<Args>&, int, int64_t, cudaStream_t);
template cudaError_t launch_fwd_step_mma<__half, true>(const Dirs<Args>&, int, int64_t, cudaStream_t);
template cudaError_t launch_fwd_step_mma<__nv_bfloat16, false>(const Dirs<Args>&, int, int64_t, cudaStream_t);
template cudaError_t launch_fwd_step_mma<__nv_bfloat16, true>(const Dirs<Args>&, int, int64_t, cudaStream_t);

}  // namespace lstm
}  // namespace cuda
}  // namespace bk
