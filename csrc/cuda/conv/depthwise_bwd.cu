// Depthwise convolution backward, from grad_z (the activation's backward
// already applied). No atomics anywhere, so every schedule gives the same bits.
//  data:   one thread per input element (x's memory order) gathers the
//          outputs whose window covers it: q = (w + pad - s*dil) / stride
//          when that divides, for each of the channel's `mult` outputs.
//  weight: one block per (tap, channels): NHWC puts 32 channels on a warp's
//          lanes (coalesced) and 8 pixel stripes on the warps; NCHW one
//          channel, 256 pixel stripes. Partial sums are reduced in shared
//          memory in a fixed order.
#include <algorithm>

#include "cuda/conv/depthwise.h"
#include "cuda/conv/depthwise_index.cuh"
#include "device/launch.cuh"

namespace bk {
namespace cuda {
namespace {

constexpr int kThreads = 256;

template <typename T, bool NHWC>
BK_GLOBAL void __launch_bounds__(kThreads) depthwise_dgrad_kernel(ConvParams p) {
  const T* gz = static_cast<const T*>(p.grad_z);
  const T* w = static_cast<const T*>(p.w);
  T* gx = static_cast<T*>(p.grad_x);
  const int mult = p.k / p.c, n = blockIdx.y, per_image = p.c * p.h * p.w_in;
  const T* gzn = gz + int64_t(n) * p.k * p.p * p.q;
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < per_image; j += gridDim.x * blockDim.x) {
    const Coord a = decode<NHWC>(j, p.c, p.h, p.w_in);
    // Output row oh = (h + pad_h - r*dil_h) / stride_h when that divides,
    // stepped from r = 0 without dividing in the loop: (oh, rem) with
    // rem in [0, stride) goes down by (dil / stride, dil % stride) per tap.
    const int oh0 = (a.h + p.pad_h) / p.stride_h, rh0 = (a.h + p.pad_h) % p.stride_h;
    const int ow0 = (a.w + p.pad_w) / p.stride_w, rw0 = (a.w + p.pad_w) % p.stride_w;
    const int dqh = p.dil_h / p.stride_h, drh = p.dil_h % p.stride_h;
    const int dqw = p.dil_w / p.stride_w, drw = p.dil_w % p.stride_w;
    float acc = 0.f;
    for (int m = 0; m < mult; ++m) {
      const int k = a.c * mult + m;
      const T* wk = w + int64_t(k) * p.r * p.s;
      int oh = oh0, rh = rh0;
      for (int r = 0; r < p.r; ++r, oh -= dqh, rh -= drh) {
        if (rh < 0) rh += p.stride_h, --oh;
        if (oh < 0) break;  // only decreases from here
        if (rh != 0 || oh >= p.p) continue;
        int ow = ow0, rw = rw0;
        for (int s = 0; s < p.s; ++s, ow -= dqw, rw -= drw) {
          if (rw < 0) rw += p.stride_w, --ow;
          if (ow < 0) break;
          if (rw != 0 || ow >= p.q) continue;
          acc += load(gzn, offset<NHWC>(0, k, oh, ow, p.k, p.p, p.q)) * load(wk, r * p.s + s);
        }
      }
    }
    gx[int64_t(n) * per_image + j] = dev::from_float<T>(acc);
  }
}

template <typename T, bool NHWC>
BK_GLOBAL void __launch_bounds__(kThreads) depthwise_wgrad_kernel(ConvParams p) {
  BK_SHARED(float, partial, [kThreads]);
  const T* gz = static_cast<const T*>(p.grad_z);
  const T* x = static_cast<const T*>(p.x);
  const int r = blockIdx.x / p.s, s = blockIdx.x % p.s, mult = p.k / p.c;
  // NHWC: lane = channel within the block's 32, warp = pixel stripe.
  const int lanes = NHWC ? 32 : 1, stripes = kThreads / lanes;
  const int k = NHWC ? blockIdx.y * 32 + threadIdx.x % 32 : blockIdx.y;
  const int stripe = NHWC ? threadIdx.x / 32 : threadIdx.x;
  const int pq = p.p * p.q, npq = p.n * pq;
  float acc = 0.f;
  if (k < p.k) {
    const int ci = k / mult;
    for (int j = stripe; j < npq; j += stripes) {
      const int n = j / pq, oh = j % pq / p.q, ow = j % p.q;
      const int hi = oh * p.stride_h - p.pad_h + r * p.dil_h, wi = ow * p.stride_w - p.pad_w + s * p.dil_w;
      if (hi < 0 || hi >= p.h || wi < 0 || wi >= p.w_in) continue;
      acc += load(gz, offset<NHWC>(n, k, oh, ow, p.k, p.p, p.q)) *
             load(x, offset<NHWC>(n, ci, hi, wi, p.c, p.h, p.w_in));
    }
  }
  partial[threadIdx.x] = acc;
  __syncthreads();
  // Fixed-order reduction over the stripes of each lane.
  for (int step = stripes / 2; step >= 1; step /= 2) {
    if (threadIdx.x < step * lanes) partial[threadIdx.x] += partial[threadIdx.x + step * lanes];
    __syncthreads();
  }
  if (threadIdx.x < lanes && k < p.k)
    static_cast<T*>(p.grad_w)[int64_t(k) * p.r * p.s + blockIdx.x] = dev::from_float<T>(partial[threadIdx.x]);
}

template <typename T, bool NHWC>
cudaError_t launch_dgrad(const ConvParams& p, cudaStream_t stream) {
  const int64_t per_image = int64_t(p.c) * p.h * p.w_in;
  const dim3 grid(unsigned(std::min<int64_t>((per_image + kThreads - 1) / kThreads, 132 * 64 / std::min(p.n, 64) + 1)),
                  unsigned(p.n));
  return BK_LAUNCH((depthwise_dgrad_kernel<T, NHWC>), grid, dim3(kThreads), 0, stream, p);
}

template <typename T, bool NHWC>
cudaError_t launch_wgrad(const ConvParams& p, cudaStream_t stream) {
  const dim3 grid(unsigned(p.r * p.s), unsigned(NHWC ? (p.k + 31) / 32 : p.k));
  if (grid.y > 65535) return cudaErrorInvalidValue;
  return BK_LAUNCH((depthwise_wgrad_kernel<T, NHWC>), grid, dim3(kThreads), 0, stream, p);
}

template <bool Weight>
cudaError_t dispatch(const ConvParams& p, cudaStream_t stream) {
  if (!depthwise_supported(p)) return cudaErrorInvalidValue;
#define BK_LAYOUTS(T) \
  return p.channels_last ? (Weight ? launch_wgrad<T, true>(p, stream) : launch_dgrad<T, true>(p, stream)) \
                         : (Weight ? launch_wgrad<T, false>(p, stream) : launch_dgrad<T, false>(p, stream));
  switch (p.dtype) {
    case DType::F32: BK_LAYOUTS(float)
    case DType::F16: BK_LAYOUTS(__half)
    case DType::BF16: BK_LAYOUTS(__nv_bfloat16)
    default: return cudaErrorInvalidValue;
  }
#undef BK_LAYOUTS
}

}  // namespace

cudaError_t depthwise_backward_data(const ConvParams& p, cudaStream_t stream) { return dispatch<false>(p, stream); }
cudaError_t depthwise_backward_weight(const ConvParams& p, cudaStream_t stream) { return dispatch<true>(p, stream); }

}  // namespace cuda
}  // namespace bk
