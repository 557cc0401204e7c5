// Persistent LSTM forward on tensor cores (fp16/bf16 storage): per step the
// block computes its gate pre-activations [16 rows per m-tile] x [batch] as
// mma.sync m16n8k16 with fp32 accumulation. A = the block's W_hh rows,
// resident in shared memory for all T steps, ordered so that one m16 tile
// holds the 4 gates of 4 units (row = 4 gate + unit); B = h_{t-1} staged in
// shared memory in the storage type each step (the GEMM input is rounded to
// fp16/bf16, as cuDNN's fp16 LSTM does; h and c themselves stay fp32).
// Epilogue: a lane holds rows g (gate i or f) and g+8 (gate g or o) of unit
// g % 4 for two batch columns; lanes 16-31 hand f and o to lanes 0-15 with one
// shuffle, which then apply the cell (cell_update, shared with the FMA path;
// the epilogue, mma_tile_cells in lstm_mma.cuh, with the per-step mma kernel).
#include "cuda/lstm/lstm_forward.cuh"
#include "cuda/lstm/lstm_forward_mma.h"
#include "cuda/lstm/lstm_mma.cuh"

namespace bk {
namespace cuda {
namespace lstm {
namespace {

template <typename T, bool kProj>
BK_DEVICE void mma_gates_phase(const Args& a, int64_t s, const T* ws, const T* hs, const MmaLayout& L, int64_t u0,
                               int nU) {
  const int64_t ld = L.ld, k_end = ld - 8, n_tiles = L.n_rows / 8;
  const int lane = lane_id();
  for (int64_t tile = warp_id(); tile < L.m_tiles * n_tiles; tile += num_warps()) {
    const int64_t mt = tile % L.m_tiles, nt = tile / L.m_tiles;
    float acc[4] = {0.f, 0.f, 0.f, 0.f};
    const T* arow = ws + (mt * 16 + lane % 8 + 8 * ((lane / 8) & 1)) * ld + 8 * (lane / 16);
    const T* brow = hs + (nt * 8 + lane % 8) * ld + 8 * ((lane / 8) & 1);
    for (int64_t kk = 0; kk < k_end; kk += 16) {
      uint32_t af[4], bf[2];
      dev::ldmatrix_x4(af[0], af[1], af[2], af[3], arow + kk);
      dev::ldmatrix_x2(bf[0], bf[1], brow + kk);
      mma16816<T>(acc, af, bf);
    }
    mma_tile_cells<T, kProj>(a, s, acc, mt, nt * 8, u0, nU);
  }
}

template <typename T, bool kProj>
BK_GLOBAL void __launch_bounds__(kLstmThreads, 1) lstm_fwd_persistent_mma(Dirs<Args> g) {
  int64_t blk;
  const Args& a = my_dir(g, &blk);
  const LstmParams& p = a.p;
  BK_SHARED_DYNAMIC(T, smem);
  const int64_t H = p.H, P = p.P, B = p.B, u0 = blk * a.units;
  const int64_t p0 = blk * a.proj_rows;
  const int nU = clamp_count(H, u0, a.units), nPr = kProj ? clamp_count(P, p0, a.proj_rows) : 0;
  const MmaLayout L = MmaLayout::make(a.units, P, B);
  const int64_t ld = L.ld;
  T* ws = smem;                      // [m_tiles * 16][ld] W_hh rows, zero padded
  T* hs = ws + L.weights();          // [n_rows][ld] h_{t-1}, zero padded
  T* wr_s = hs + L.n_rows * ld;      // [proj_rows][H] W_hr rows
  const T zero = dev::from_float<T>(0.f);
  const T* whh = static_cast<const T*>(p.w_hh);
  for (int64_t e = threadIdx.x; e < L.weights(); e += blockDim.x) {
    const int64_t r = e / ld, k = e % ld, q = (r % 16) / 4, j = (r / 16) * 4 + r % 4;
    ws[e] = j < nU && k < P ? whh[(q * H + u0 + j) * P + k] : zero;
  }
  for (int64_t e = threadIdx.x; e < L.n_rows * ld; e += blockDim.x) hs[e] = zero;  // the padding stays zero
  if constexpr (kProj) {
    const T* whr = static_cast<const T*>(p.w_hr) + p0 * H;
    for (int64_t e = threadIdx.x; e < nPr * H; e += blockDim.x) wr_s[e] = whr[e];
  }
  __syncthreads();
  for (int64_t s = 0; s < p.T; ++s) {
    const float* hprev = s == 0 ? a.w.h0 : a.w.hbuf + ((s - 1) & 1) * B * P;
    for (int64_t e = threadIdx.x; e < B * P; e += blockDim.x) hs[(e / P) * ld + e % P] = dev::from_float<T>(hprev[e]);
    __syncthreads();
    mma_gates_phase<T, kProj>(a, s, ws, hs, L, u0, nU);
    if constexpr (kProj) {
      dev::grid_sync();  // m_t of every unit written
      proj_phase<T>(a, s, WView<T>{wr_s, 0, H, 1}, p0, nPr);
    }
    dev::grid_sync();  // h_t complete (and every warp done with hs) before the next step
  }
}

}  // namespace

template <typename T, bool kProj>
cudaError_t launch_fwd_mma(const Dirs<Args>& g, int grid, size_t smem, cudaStream_t stream) {
  return launch_persistent<lstm_fwd_persistent_mma<T, kProj>>(grid, smem, stream, g);
}

template cudaError_t launch_fwd_mma<__half, false>(const Dirs<Args>&, int, size_t, cudaStream_t);
template cudaError_t launch_fwd_mma<__half, true>(const Dirs<Args>&, int, size_t, cudaStream_t);
template cudaError_t launch_fwd_mma<__nv_bfloat16, false>(const Dirs<Args>&, int, size_t, cudaStream_t);
template cudaError_t launch_fwd_mma<__nv_bfloat16, true>(const Dirs<Args>&, int, size_t, cudaStream_t);

}  // namespace lstm
}  // namespace cuda
}  // namespace bk
