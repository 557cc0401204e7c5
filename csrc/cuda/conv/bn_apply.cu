// BN elementwise passes, grid-stride over the flat index (one read of each
// input, one write of each output; math in the compute type):
//  forward:  y = act(z * scale[c] + shift[c] + residual)
//  backward: g = grad_y * act'(z * scale + shift + residual) (recomputed from
//            z: cheaper than writing and re-reading it), grad_residual = g,
//            grad_z = scale * g - k0[c] - k1[c] * (z - mean[c]), with k0, k1
//            left in p.workspace by the reduction that runs first.
#include <algorithm>

#include "cuda/conv/act_switch.cuh"
#include "cuda/conv/bn_act.h"
#include "cuda/conv/bn_common.cuh"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

using bn::kThreads;

template <typename T, bool Backward>
BK_GLOBAL void __launch_bounds__(kThreads) bn_apply_kernel(BnActParams p) {
  using F = typename bn::Compute<T>::type;
  const T* z = static_cast<const T*>(p.z);
  const T* res = static_cast<const T*>(p.residual);
  const F* scale = static_cast<const F*>(p.scale);
  const F* shift = static_cast<const F*>(p.shift);
  const F alpha = F(p.alpha);
  // The channel of i is (i / inner) % C. Two 64-bit divisions per element
  // would cost more than the memory traffic, so (c, j = i % inner) is
  // divided out once and then stepped by the grid stride S with carries.
  const int64_t stride = dev::global_thread_count(), first = dev::global_thread_index();
  const int64_t step_j = stride % p.inner, step_c = (stride / p.inner) % p.channels;
  int64_t j = first % p.inner, c = (first / p.inner) % p.channels;
  for (int64_t i = first; i < p.numel; i += stride) {
    const F zf = bn::load<T, F>(z, i), sc = scale[c];
    F v = zf * sc + shift[c];
    if (res) v += bn::load<T, F>(res, i);
    if constexpr (Backward) {
      const F g = bn::load<T, F>(static_cast<const T*>(p.grad_y), i) * apply_act_derivative<F>(p.act, v, alpha);
      if (p.grad_residual) bn::store<T, F>(static_cast<T*>(p.grad_residual), i, g);
      if (p.grad_z) {
        const F k0 = F(p.workspace[c]), k1 = F(p.workspace[p.channels + c]);
        const F mu = static_cast<const F*>(p.mean)[c];
        bn::store<T, F>(static_cast<T*>(p.grad_z), i, sc * g - k0 - k1 * (zf - mu));
      }
    } else {
      bn::store<T, F>(static_cast<T*>(p.y), i, apply_act<F>(p.act, v, alpha));
    }
    j += step_j;
    c += step_c + (j >= p.inner);
    if (j >= p.inner) j -= p.inner;
    if (c >= p.channels) c -= p.channels;
  }
}

template <bool Backward>
cudaError_t apply(const BnActParams& p, cudaStream_t stream) {
  if (p.numel == 0) return cudaSuccess;
  // 4 elements per thread before the grid-stride loop wraps, a few waves at most.
  const int64_t blocks = std::min<int64_t>((p.numel + kThreads * 4 - 1) / (kThreads * 4), 132 * 64);
  const dim3 grid{unsigned(blocks)}, block{kThreads};
  switch (p.dtype) {
    case DType::F32: return BK_LAUNCH((bn_apply_kernel<float, Backward>), grid, block, 0, stream, p);
    case DType::F16: return BK_LAUNCH((bn_apply_kernel<__half, Backward>), grid, block, 0, stream, p);
    case DType::BF16: return BK_LAUNCH((bn_apply_kernel<__nv_bfloat16, Backward>), grid, block, 0, stream, p);
    case DType::F64: return BK_LAUNCH((bn_apply_kernel<double, Backward>), grid, block, 0, stream, p);
  }
  return cudaErrorInvalidValue;
}

}  // namespace

cudaError_t bn_act_forward(const BnActParams& p, cudaStream_t stream) { return apply<false>(p, stream); }

cudaError_t bn_act_backward(const BnActParams& p, cudaStream_t stream) {
  cudaError_t err = bn_reduce_dispatch<true>(p, stream);
  if (err != cudaSuccess || (!p.grad_z && !p.grad_residual)) return err;
  return apply<true>(p, stream);
}

}  // namespace cuda
}  // namespace bk
