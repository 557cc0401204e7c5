// Depthwise convolution forward, direct: one thread per output element, in
// the output's memory order (coalesced stores in NCHW and NHWC alike), the
// R x S taps accumulated in fp32 straight from global memory (neighbouring
// threads read neighbouring or identical input values: the taps' reuse is
// served by L1). Epilogue: + bias + residual, pre-activation, activation.
#include <algorithm>

#include "cuda/conv/act_switch.cuh"
#include "cuda/conv/depthwise.h"
#include "cuda/conv/depthwise_index.cuh"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T, bool NHWC>
BK_GLOBAL void __launch_bounds__(kThreads) depthwise_fwd_kernel(ConvParams p) {
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.w);
  const T* bias = static_cast<const T*>(p.bias);
  const T* res = static_cast<const T*>(p.residual);
  T* y = static_cast<T*>(p.y);
  T* z = static_cast<T*>(p.z);
  const int mult = p.k / p.c, n = blockIdx.y, per_image = p.k * p.p * p.q;
  const T* xn = x + int64_t(n) * p.c * p.h * p.w_in;
  const int64_t base = int64_t(n) * per_image;
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < per_image; j += gridDim.x * blockDim.x) {
    const int64_t i = base + j;
    const Coord o = decode<NHWC>(j, p.k, p.p, p.q);  // o.c: the output channel
    const int ci = o.c / mult;
    const T* wk = w + int64_t(o.c) * p.r * p.s;
    const int h0 = o.h * p.stride_h - p.pad_h, w0 = o.w * p.stride_w - p.pad_w;
    float acc = 0.f;
    for (int r = 0; r < p.r; ++r) {
      const int hi = h0 + r * p.dil_h;
      if (hi < 0 || hi >= p.h) continue;
      for (int s = 0; s < p.s; ++s) {
        const int wi = w0 + s * p.dil_w;
        if (wi < 0 || wi >= p.w_in) continue;
        acc += load(xn, offset<NHWC>(0, ci, hi, wi, p.c, p.h, p.w_in)) * load(wk, r * p.s + s);
      }
    }
    if (bias) acc += load(bias, o.c);
    if (res) acc += load(res, i);
    if (z) z[i] = dev::from_float<T>(acc);
    y[i] = dev::from_float<T>(apply_act(p.act, acc, p.alpha));
  }
}

template <typename T>
cudaError_t launch(const ConvParams& p, cudaStream_t stream) {
  const int64_t per_image = int64_t(p.k) * p.p * p.q;
  // grid.y = image; x: a few waves on a 132-SM GPU before the grid-stride loop wraps.
  const dim3 grid(unsigned(std::min<int64_t>((per_image + kThreads - 1) / kThreads, 132 * 64 / std::min(p.n, 64) + 1)),
                  unsigned(p.n));
  if (p.channels_last) return BK_LAUNCH((depthwise_fwd_kernel<T, true>), grid, dim3(kThreads), 0, stream, p);
  return BK_LAUNCH((depthwise_fwd_kernel<T, false>), grid, dim3(kThreads), 0, stream, p);
}

}  // namespace

bool depthwise_supported(const ConvParams& p) {
  const int64_t limit = int64_t(1) << 31;  // 32-bit index arithmetic within an image, and over N*P*Q
  // grid.y: the image (forward, data gradient) or the channel (weight gradient, NCHW)
  return p.dtype != DType::F64 && p.groups == p.c && p.c > 0 && p.k % p.c == 0 && p.k <= 65535 && p.n > 0 &&
         p.n <= 65535 &&
         p.p > 0 && p.q > 0 && p.r > 0 && p.s > 0 && int64_t(p.c) * p.h * p.w_in < limit &&
         int64_t(p.k) * p.p * p.q < limit && int64_t(p.n) * p.p * p.q < limit;
}

cudaError_t depthwise_forward(const ConvParams& p, cudaStream_t stream) {
  if (!depthwise_supported(p)) return cudaErrorInvalidValue;
  switch (p.dtype) {
    case DType::F32: return launch<float>(p, stream);
    case DType::F16: return launch<__half>(p, stream);
    case DType::BF16: return launch<__nv_bfloat16>(p, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace bk
