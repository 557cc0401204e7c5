// BN per-channel reductions, two levels and no atomics (deterministic):
//  1. grid (channel blocks, splits): each block sums its split of the rows
//     of its channels in double (memory-bound: the fp64 adds are free) and
//     writes one partial per channel; channels-last puts 32 channels on a
//     warp's lanes (coalesced) and 8 row stripes on the warps, NCHW one
//     channel per block over 256 stripes of its N x (H*W) elements.
//  2. one thread per channel adds the partials in split order and finishes:
//     mean / biased variance (statistics: shifted sums, shift = the channel's
//     first element, so the variance does not cancel when |mean| >> std), or
//     sum(g), sum(g * xhat) and the backward's per-channel k0, k1.
#include "cuda/conv/act_switch.cuh"
#include "cuda/conv/bn_act.h"
#include "cuda/conv/bn_common.cuh"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

using bn::kThreads;

template <typename T, bool Backward, bool NHWC>
BK_GLOBAL void __launch_bounds__(kThreads) bn_partial_kernel(BnActParams p, int splits) {
  using F = typename bn::Compute<T>::type;
  BK_SHARED(double, part, [2][kThreads]);
  const T* z = static_cast<const T*>(p.z);
  const T* res = static_cast<const T*>(p.residual);
  const T* gy = static_cast<const T*>(p.grad_y);
  const int64_t C = p.channels, inner = p.inner, rows = p.numel / C;
  constexpr int lanes = NHWC ? 32 : 1, stripes = kThreads / lanes;
  const int64_t c = NHWC ? int64_t(blockIdx.x) * 32 + threadIdx.x % 32 : blockIdx.x;
  const int stripe = NHWC ? threadIdx.x / 32 : threadIdx.x;
  const int64_t chunk = (rows + splits - 1) / splits, begin = blockIdx.y * chunk;
  const int64_t end = begin + chunk < rows ? begin + chunk : rows;
  double s0 = 0, s1 = 0;
  if (c < C) {
    F k = 0, sc = 0, sh = 0, mu = 0, is = 0;
    const F alpha = F(p.alpha);
    if constexpr (Backward) {
      sc = static_cast<const F*>(p.scale)[c], sh = static_cast<const F*>(p.shift)[c];
      mu = static_cast<const F*>(p.mean)[c], is = static_cast<const F*>(p.invstd)[c];
    } else {
      k = bn::load<T, F>(z, c * inner);
    }
    // Row r of channel c: (r, c) in NHWC; (n, j) = (r / inner, r % inner) in
    // NCHW, divided out once and stepped by `stripes` (no division per element).
    int64_t n = (begin + stripe) / inner, j = (begin + stripe) % inner;
    const int64_t step_n = stripes / inner, step_j = stripes % inner;
    for (int64_t r = begin + stripe; r < end; r += stripes) {
      const int64_t i = NHWC ? r * C + c : (n * C + c) * inner + j;
      if constexpr (!NHWC) {
        j += step_j;
        n += step_n + (j >= inner);
        if (j >= inner) j -= inner;
      }
      const F zf = bn::load<T, F>(z, i);
      if constexpr (Backward) {
        F v = zf * sc + sh;
        if (res) v += bn::load<T, F>(res, i);
        const F g = bn::load<T, F>(gy, i) * apply_act_derivative<F>(p.act, v, alpha);
        s0 += double(g);
        s1 += double(g * ((zf - mu) * is));
      } else {
        const double d = double(zf - k);
        s0 += d;
        s1 += d * d;
      }
    }
  }
  part[0][threadIdx.x] = s0;
  part[1][threadIdx.x] = s1;
  __syncthreads();
  for (int step = stripes / 2; step >= 1; step /= 2) {  // fixed-order tree over the stripes
    if (threadIdx.x < step * lanes) {
      part[0][threadIdx.x] += part[0][threadIdx.x + step * lanes];
      part[1][threadIdx.x] += part[1][threadIdx.x + step * lanes];
    }
    __syncthreads();
  }
  if (threadIdx.x < lanes && c < C) {
    p.workspace[int64_t(blockIdx.y) * C + c] = part[0][threadIdx.x];
    p.workspace[(int64_t(splits) + blockIdx.y) * C + c] = part[1][threadIdx.x];
  }
}

template <typename T, bool Backward>
BK_GLOBAL void __launch_bounds__(kThreads) bn_finish_kernel(BnActParams p, int splits) {
  using F = typename bn::Compute<T>::type;
  const int64_t C = p.channels, c = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (c >= C) return;
  double s0 = 0, s1 = 0;
  for (int s = 0; s < splits; ++s) {
    s0 += p.workspace[int64_t(s) * C + c];
    s1 += p.workspace[(int64_t(splits) + s) * C + c];
  }
  const double count = double(p.numel / C);
  if constexpr (Backward) {
    p.out0[c] = s0;
    p.out1[c] = s1;
    // dz = scale * g - k0 - k1 * (z - mean), k0 = scale * mean(g),
    // k1 = scale * invstd * mean(g * xhat); zero with fixed statistics.
    // Stored over this channel's own partials (slots c and C + c).
    const double sc = double(static_cast<const F*>(p.scale)[c]), is = double(static_cast<const F*>(p.invstd)[c]);
    p.workspace[c] = p.batch_stats ? sc * s0 / count : 0.0;
    p.workspace[C + c] = p.batch_stats ? sc * is * s1 / count : 0.0;
  } else {
    const double m = s0 / count, k = double(bn::load<T, F>(static_cast<const T*>(p.z), c * p.inner));
    p.out0[c] = k + m;
    const double var = s1 / count - m * m;
    p.out1[c] = var > 0 ? var : 0.0;
  }
}

template <typename T, bool Backward>
cudaError_t reduce(const BnActParams& p, cudaStream_t stream) {
  if (p.numel == 0 || p.channels == 0) return cudaSuccess;
  if (!p.workspace || !p.out0 || !p.out1) return cudaErrorInvalidValue;
  const int splits = bn::splits_for(p);
  const bool nhwc = p.inner == 1;
  const dim3 grid(unsigned(nhwc ? (p.channels + 31) / 32 : p.channels), unsigned(splits));
  cudaError_t err = nhwc ? BK_LAUNCH((bn_partial_kernel<T, Backward, true>), grid, dim3(kThreads), 0, stream, p, splits)
                         : BK_LAUNCH((bn_partial_kernel<T, Backward, false>), grid, dim3(kThreads), 0, stream, p, splits);
  if (err != cudaSuccess) return err;
  const dim3 fgrid(unsigned((p.channels + kThreads - 1) / kThreads));
  return BK_LAUNCH((bn_finish_kernel<T, Backward>), fgrid, dim3(kThreads), 0, stream, p, splits);
}

}  // namespace

int64_t bn_workspace_size(const BnActParams& p) { return 2 * int64_t(bn::splits_for(p)) * p.channels; }

template <bool Backward>
cudaError_t bn_reduce_dispatch(const BnActParams& p, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::F32: return reduce<float, Backward>(p, stream);
    case DType::F16: return reduce<__half, Backward>(p, stream);
    case DType::BF16: return reduce<__nv_bfloat16, Backward>(p, stream);
    case DType::F64: return reduce<double, Backward>(p, stream);
  }
  return cudaErrorInvalidValue;
}
template cudaError_t bn_reduce_dispatch<false>(const BnActParams&, cudaStream_t);
template cudaError_t bn_reduce_dispatch<true>(const BnActParams&, cudaStream_t);

cudaError_t bn_stats(const BnActParams& p, cudaStream_t stream) { return bn_reduce_dispatch<false>(p, stream); }

}  // namespace cuda
}  // namespace bk
