// Implicit-GEMM data gradient on tensor cores, per group g:
//   dX[m, c] = sum_{r, s, k} dZ[n, (h + ph - r*dh) / sh, (w + pw - s*dw) / sw, g*Kg + k] * W[g*Kg + k, r, s, c]
// m = (n, h, w) an input pixel (M = N*H*W), c its channel in the group; a
// tap contributes only where the division is exact and in range (else
// cp.async zero-fills the row: with stride 2, 3 of 4 taps are zeros; a
// stride-aware tiling as CUTLASS's would skip them). A (dZ rows, k
// contiguous) as in the forward; B = W read as [k][c] rows (c contiguous in
// KRSC), fed to the tensor cores through ldmatrix.trans. Tile 64 pixels x 64
// channels, BK = 32 output channels of one tap per step, 3 cp.async stages.
// kAct: dZ = dY * act'(saved) formed in shared memory (grad_tile.cuh), the
// saved tile gathered beside dY's (a second instantiation: the plain one
// keeps its smaller shared memory).
#include "cuda/conv/conv_bwd.h"
#include "cuda/conv/grad_tile.cuh"
#include "cuda/conv/mma_tile.cuh"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

constexpr int kBM = 64, kBN = 64, kBK = 32, kThreads = 128, kStages = 3;
constexpr int kLdA = kBK + 8, kLdB = kBN + 8;  // padded rows: 16-byte aligned, fewer bank conflicts

template <typename T, bool kAct>
BK_GLOBAL void __launch_bounds__(kThreads) conv_dgrad_kernel(ConvParams p) {
  BK_SHARED(uint16_t, As, [kStages][kBM][kLdA]);
  BK_SHARED(uint16_t, Bs, [kStages][kBK][kLdB]);
  BK_SHARED(uint16_t, Ss, [kAct ? kStages : 1][kAct ? kBM : 1][kLdA]);  // the saved tile
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int cg = p.c / p.groups, kg = p.k / p.groups, grp = blockIdx.z;
  const int64_t hw = int64_t(p.h) * p.w_in, M = p.n * hw;
  const int64_t m0 = int64_t(blockIdx.x) * kBM;
  const int n0 = blockIdx.y * kBN;
  const uint16_t* gz = static_cast<const uint16_t*>(p.grad_z);
  const uint16_t* w = static_cast<const uint16_t*>(p.w);
  const uint16_t* sv = static_cast<const uint16_t*>(p.saved);

  // A: rows tid/4 and tid/4 + 32, chunk (tid%4)*8 of k. B: rows tid/8 and
  // tid/8 + 16 (k), chunk (tid%8)*8 of c.
  const int a_kc = (threadIdx.x % 4) * 8, a_row = threadIdx.x / 4;
  const int b_cc = (threadIdx.x % 8) * 8, b_row = threadIdx.x / 8;
  int64_t a_img[2];
  int a_h[2], a_w[2];
  bool a_ok[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t m = m0 + a_row + 32 * i;
    a_ok[i] = m < M;
    const int64_t mm = a_ok[i] ? m : 0, rem = mm % hw;
    a_img[i] = mm / hw;
    a_h[i] = int(rem / p.w_in) + p.pad_h;
    a_w[i] = int(rem % p.w_in) + p.pad_w;
  }
  const int kblocks = (kg + kBK - 1) / kBK, KT = p.r * p.s * kblocks;
  const bool b_c_ok = n0 + b_cc < cg;

  auto load = [&](int stage, int kt) {
    const int tap = kt / kblocks, k0 = (kt % kblocks) * kBK;
    const int r = tap / p.s, s = tap % p.s;
    for (int i = 0; i < 2; ++i) {
      const int ph = a_h[i] - r * p.dil_h, pw = a_w[i] - s * p.dil_w;
      const int oh = ph / p.stride_h, ow = pw / p.stride_w;
      const bool valid = a_ok[i] && k0 + a_kc < kg && ph >= 0 && pw >= 0 && oh * p.stride_h == ph &&
                         ow * p.stride_w == pw && oh < p.p && ow < p.q;
      const int64_t off = valid ? ((a_img[i] * p.p + oh) * p.q + ow) * p.k + grp * kg + k0 + a_kc : 0;
      dev::cp_async_16(&As[stage][a_row + 32 * i][a_kc], gz + off, valid);
      if constexpr (kAct) dev::cp_async_16(&Ss[stage][a_row + 32 * i][a_kc], sv + off, valid);
    }
    for (int i = 0; i < 2; ++i) {
      const int k = k0 + b_row + 16 * i;
      const bool valid = b_c_ok && k < kg;
      const uint16_t* src = valid ? w + ((int64_t(grp * kg + k) * p.r + r) * p.s + s) * cg + n0 + b_cc : w;
      dev::cp_async_16(&Bs[stage][b_row + 16 * i][b_cc], src, valid);
    }
  };

  float acc[2][4][4] = {};
  for (int st = 0; st < kStages - 1; ++st) {
    if (st < KT) load(st, st);
    dev::cp_async_commit();
  }
  for (int kt = 0; kt < KT; ++kt) {
    dev::cp_async_wait<kStages - 2>();
    if constexpr (kAct)  // this thread's own chunks of step kt (zero-filled ones stay 0)
      for (int i = 0; i < 2; ++i)
        tile::act_backward_chunk<T>(&As[kt % kStages][a_row + 32 * i][a_kc], &Ss[kt % kStages][a_row + 32 * i][a_kc],
                                    p.act, p.alpha);
    __syncthreads();  // step kt landed for all; step kt-1's stage is free to refill
    if (kt + kStages - 1 < KT) load((kt + kStages - 1) % kStages, kt + kStages - 1);
    dev::cp_async_commit();
    const int st = kt % kStages;
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t a[2][4], b[4][2];
      tile::load_a<kLdA>(a, As[st], wm, kk, lane);
      tile::load_b_trans<kLdB>(b, Bs[st], wn, kk, lane);
      tile::mma<T>(acc, a, b);
    }
  }
  dev::cp_async_wait<0>();

  T* gx = static_cast<T*>(p.grad_x);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int v = 0; v < 4; ++v) {
        const int64_t m = m0 + wm + tile::acc_row(lane, i, v);
        const int c = n0 + wn + tile::acc_col(lane, j, v);
        if (m < M && c < cg) gx[m * p.c + grp * cg + c] = dev::from_float<T>(acc[i][j][v]);
      }
}

}  // namespace

bool conv2d_bwd_supported(const ConvParams& p) {
  if (p.dtype != DType::F16 && p.dtype != DType::BF16) return false;
  if (p.groups < 1 || p.c % p.groups || p.k % p.groups || (p.c / p.groups) % 8 || (p.k / p.groups) % 8) return false;
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p.x) | reinterpret_cast<uintptr_t>(p.w) |
                         reinterpret_cast<uintptr_t>(p.grad_z) | reinterpret_cast<uintptr_t>(p.saved);
  const int64_t npq = int64_t(p.n) * p.p * p.q;  // wgrad's 32-bit pixel index
  return addr % 16 == 0 && p.n > 0 && p.k > 0 && p.r > 0 && p.s > 0 && p.p > 0 && p.q > 0 && p.groups <= 65535 &&
         npq < (int64_t(1) << 31) - 64 && int64_t(p.groups) * p.r * p.s <= 65535;
}

cudaError_t conv2d_dgrad(const ConvParams& p, cudaStream_t stream) {
  if (!conv2d_bwd_supported(p) || !p.grad_x) return cudaErrorInvalidValue;
  const int64_t M = int64_t(p.n) * p.h * p.w_in;
  const dim3 grid(unsigned((M + kBM - 1) / kBM), unsigned((p.c / p.groups + kBN - 1) / kBN), unsigned(p.groups));
  if (grid.y > 65535) return cudaErrorInvalidValue;
  const bool act = p.saved && p.act != Act::None;
  if (p.dtype == DType::BF16)
    return act ? BK_LAUNCH((conv_dgrad_kernel<__nv_bfloat16, true>), grid, dim3(kThreads), 0, stream, p)
               : BK_LAUNCH((conv_dgrad_kernel<__nv_bfloat16, false>), grid, dim3(kThreads), 0, stream, p);
  return act ? BK_LAUNCH((conv_dgrad_kernel<__half, true>), grid, dim3(kThreads), 0, stream, p)
             : BK_LAUNCH((conv_dgrad_kernel<__half, false>), grid, dim3(kThreads), 0, stream, p);
}

}  // namespace cuda
}  // namespace bk
