// CPU fused BN + residual + activation. Torch's training step runs BN
// (statistics pass + normalise pass), then add, then relu: four passes
// forward and three backward (relu, BN reduce, BN apply). Here: statistics,
// then one normalise+add+act pass; backward one reduction pass that applies
// the activation's derivative on the fly, then one elementwise pass.
// Without -fno-trapping-math GCC will not if-convert a float compare (it
// might trap), so `v > 0 ? 1 : 0` in a loop becomes a branch mispredicted on
// half of a conv output's elements: relu backward measured 18 ms vs 0.5 ms
// with the flag (1.6M fp32, one core). setup.py's flags are shared; this
// file asks for it itself (before any include, so inlined helpers get it).
#pragma GCC optimize("no-trapping-math")
#include "cpu/conv/bn_act.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "cpu/conv/channel_reduce.h"

namespace bk {
namespace cpu {
namespace {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

constexpr int64_t kGrain = 8192;

// Lambdas called in vectorised loops must be inlined there, or the loop is
// scalar with a call per element.
#define BK_INLINE __attribute__((always_inline))  // as bias_act.cpp: ~32 KiB of fp32 per task

// Calls body(i, j_begin, j_end, c_const) over runs of elements that share a
// channel (inner > 1) or make one row of channels (inner == 1, c_const = -1:
// the channel of i + j is (i + j) % C = pos + j).
template <typename Body>
void for_runs(const BnActParams& p, const Body& body) {
  const int64_t C = p.channels, inner = p.inner;
  at::parallel_for(0, p.numel, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    while (i < end) {
      const int64_t pos = inner > 1 ? i % inner : i % C;
      const int64_t len = std::min(end - i, (inner > 1 ? inner : C) - pos);
      body(i, len, inner > 1 ? (i / inner) % C : -1, pos);
      i += len;
    }
  });
}

// act_derivative with the kinks written as 0/1 arithmetic: GCC turns
// `z > 0 ? 1 : 0` inside these reductions into a branch, mispredicted half
// the time on conv outputs (measured: relu backward 11.6 ms vs 1.5 ms for
// no activation, 8x64x56x56 fp32, one core).
template <Act A, typename F>
__attribute__((always_inline)) inline F derivative(F v, F alpha) {
  if constexpr (A == Act::Relu) return F(v > F(0));
  if constexpr (A == Act::Relu6) return F(v > F(0)) * F(v < F(6));
  if constexpr (A == Act::LeakyRelu) return alpha + (F(1) - alpha) * F(v > F(0));
  return act_derivative<A, F>(v, alpha);
}

template <typename T>
void stats(const BnActParams& p) {
  const T* z = static_cast<const T*>(p.z);
  const int64_t C = p.channels, inner = p.inner;
  const int64_t count = p.numel / C;
  // Shifted sums: each channel's first element as the shift, so that the
  // variance does not cancel when |mean| >> std.
  std::vector<double> k(C);
  // (rounded to the compute type, so that the shift is exact in the loop)
  for (int64_t c = 0; c < C; ++c) k[c] = count ? double(typename Compute<T>::type(z[c * inner])) : 0.0;
  const double* kp = k.data();
  using F = typename Compute<T>::type;
  std::vector<F> kf(k.begin(), k.end());
  const F* kfp = kf.data();
  channel_reduce2<F>(p.numel, C, inner, p.out0, p.out1, [=](int64_t i, int64_t c) BK_INLINE {
    const F d = F(z[i]) - kfp[c];
    return Pair2<F>{d, d * d};
  });
  for (int64_t c = 0; c < C; ++c) {
    const double m = count ? p.out0[c] / count : 0.0;
    p.out0[c] = kp[c] + m;
    p.out1[c] = count ? std::max(p.out1[c] / count - m * m, 0.0) : 0.0;
  }
}

template <typename T, Act A>
void forward(const BnActParams& p) {
  using F = typename Compute<T>::type;
  const T* z = static_cast<const T*>(p.z);
  const T* res = static_cast<const T*>(p.residual);
  const F* scale = static_cast<const F*>(p.scale);
  const F* shift = static_cast<const F*>(p.shift);
  T* y = static_cast<T*>(p.y);
  const F alpha = F(p.alpha);
  for_runs(p, [&](int64_t i, int64_t len, int64_t c, int64_t pos) {
    if (c >= 0) {
      const F a = scale[c], b = shift[c];
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        F v = F(z[i + j]) * a + b;
        if (res) v += F(res[i + j]);
        y[i + j] = T(act_forward<A, F>(v, alpha));
      }
    } else {
      const F* a = scale + pos;
      const F* b = shift + pos;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        F v = F(z[i + j]) * a[j] + b[j];
        if (res) v += F(res[i + j]);
        y[i + j] = T(act_forward<A, F>(v, alpha));
      }
    }
  });
}

template <typename T, Act A, bool HasRes>
void backward_impl(const BnActParams& p) {
  using F = typename Compute<T>::type;
  const T* z = static_cast<const T*>(p.z);
  const T* res = static_cast<const T*>(p.residual);
  const T* gy = static_cast<const T*>(p.grad_y);
  const F* scale = static_cast<const F*>(p.scale);
  const F* shift = static_cast<const F*>(p.shift);
  const F* mean = static_cast<const F*>(p.mean);
  const F* invstd = static_cast<const F*>(p.invstd);
  T* gz = static_cast<T*>(p.grad_z);
  T* gres = static_cast<T*>(p.grad_residual);
  const F alpha = F(p.alpha);
  const int64_t C = p.channels;
  // g = dL/d(pre-activation), recomputed from z in both passes: cheaper than
  // writing and re-reading it (one tensor of traffic each way).
  // by-value captures: local pointer copies, which the vectoriser can prove unaliased
  auto g_of = [=](int64_t i, F zf, F sc, F sh) BK_INLINE {
    F v = zf * sc + sh;
    if constexpr (HasRes) v += F(res[i]);
    return F(gy[i]) * derivative<A, F>(v, alpha);
  };
  // Pass 1: sum(g) and sum(g * xhat) per channel. Written out per layout
  // (not through channel_reduce2's callback) with the channel's constants as
  // scalars: the callback form stayed scalar for relu (measured 10x slower).
  const int64_t inner = p.inner;
  std::fill(p.out0, p.out0 + C, 0.0);
  std::fill(p.out1, p.out1 + C, 0.0);
  if (inner > 1) {
    const int64_t N = p.numel / (C * inner);
    at::parallel_for(0, C, 1, [&](int64_t cb, int64_t ce) {
      for (int64_t c = cb; c < ce; ++c) {
        const F sc = scale[c], sh = shift[c], mu = mean[c], is = invstd[c];
        double s0 = 0, s1 = 0;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t base = (n * C + c) * inner;
          // 16 independent lanes instead of `omp simd reduction`, which GCC
          // compiled to a scalar loop with a branch here (disassembled).
          constexpr int64_t L = 16;
          F l0[L] = {}, l1[L] = {};
          int64_t j = 0;
          for (; j + L <= inner; j += L) {
            for (int64_t l = 0; l < L; ++l) {
              const F zf = F(z[base + j + l]);
              const F g = g_of(base + j + l, zf, sc, sh);
              l0[l] += g;
              l1[l] += g * ((zf - mu) * is);
            }
          }
          for (; j < inner; ++j) {
            const F zf = F(z[base + j]);
            const F g = g_of(base + j, zf, sc, sh);
            l0[0] += g;
            l1[0] += g * ((zf - mu) * is);
          }
          F a0 = 0, a1 = 0;
          for (int64_t l = 0; l < L; ++l) {
            a0 += l0[l];
            a1 += l1[l];
          }
          s0 += a0;
          s1 += a1;
        }
        p.out0[c] = s0;
        p.out1[c] = s1;
      }
    });
  } else if (p.numel > 0) {
    const int64_t rows = p.numel / C;
    std::mutex merge;
    at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / C), [&](int64_t rb, int64_t re) {
      std::vector<double> d0(C, 0.0), d1(C, 0.0);
      std::vector<F> a0(C), a1(C);
      F* __restrict__ p0 = a0.data();
      F* __restrict__ p1 = a1.data();
      for (int64_t r0 = rb; r0 < re; r0 += 64) {  // flush float partials to float64 every 64 rows
        std::fill(a0.begin(), a0.end(), F(0));
        std::fill(a1.begin(), a1.end(), F(0));
        for (int64_t r = r0; r < std::min(re, r0 + 64); ++r) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            const F zf = F(z[r * C + c]);
            const F g = g_of(r * C + c, zf, scale[c], shift[c]);
            p0[c] += g;
            p1[c] += g * ((zf - mean[c]) * invstd[c]);
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          d0[c] += p0[c];
          d1[c] += p1[c];
        }
      }
      std::lock_guard<std::mutex> lock(merge);
      for (int64_t c = 0; c < C; ++c) {
        p.out0[c] += d0[c];
        p.out1[c] += d1[c];
      }
    });
  }
  if (!gz && !gres) return;
  const double count = double(p.numel / std::max<int64_t>(C, 1));
  // dz = scale * (g - mean(g) - xhat * mean(g * xhat)), xhat = (z - mean) * invstd
  //    = scale * g - k0 - k1 * (z - mean), k0 = scale * mean(g), k1 = scale * invstd * mean(g xhat)
  // ((z - mean) rather than expanding it: no cancellation when |mean| >> std).
  std::vector<F> k0(C), k1(C);
  for (int64_t c = 0; c < C; ++c) {
    const double mg = p.batch_stats && count > 0 ? p.out0[c] / count : 0.0;
    const double mgx = p.batch_stats && count > 0 ? p.out1[c] / count : 0.0;
    k0[c] = F(double(scale[c]) * mg);
    k1[c] = F(double(scale[c]) * double(invstd[c]) * mgx);
  }
  const F* k0p = k0.data();
  const F* k1p = k1.data();
  for_runs(p, [&](int64_t i, int64_t len, int64_t c, int64_t pos) {
    if (c >= 0) {
      const F sc = scale[c], sh = shift[c], a = k1p[c], b = k0p[c], mu = mean[c];
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const F zf = F(z[i + j]);
        const F g = g_of(i + j, zf, sc, sh);
        if (gres) gres[i + j] = T(g);
        if (gz) gz[i + j] = T(sc * g - b - a * (zf - mu));
      }
    } else {
      const F* sc = scale + pos;
      const F* sh = shift + pos;
      const F* a = k1p + pos;
      const F* b = k0p + pos;
      const F* mu = mean + pos;
#pragma omp simd
      for (int64_t j = 0; j < len; ++j) {
        const F zf = F(z[i + j]);
        const F g = g_of(i + j, zf, sc[j], sh[j]);
        if (gres) gres[i + j] = T(g);
        if (gz) gz[i + j] = T(sc[j] * g - b[j] - a[j] * (zf - mu[j]));
      }
    }
  });
}

template <typename T, Act A>
void backward(const BnActParams& p) {
  if (p.residual) return backward_impl<T, A, true>(p);
  backward_impl<T, A, false>(p);
}

template <typename T, bool Backward>
void dispatch_act(const BnActParams& p) {
  switch (p.act) {
#define BK_CASE(a) \
  case Act::a: return Backward ? backward<T, Act::a>(p) : forward<T, Act::a>(p);
    BK_CASE(None) BK_CASE(Relu) BK_CASE(Relu6) BK_CASE(LeakyRelu) BK_CASE(Silu)
    BK_CASE(Gelu) BK_CASE(GeluTanh) BK_CASE(Hardswish) BK_CASE(Sigmoid) BK_CASE(Tanh)
#undef BK_CASE
  }
}

template <bool Backward>
void dispatch(const BnActParams& p) {
  switch (p.dtype) {
    case DType::F32: return dispatch_act<float, Backward>(p);
    case DType::F16: return dispatch_act<c10::Half, Backward>(p);
    case DType::BF16: return dispatch_act<c10::BFloat16, Backward>(p);
    case DType::F64: return dispatch_act<double, Backward>(p);
  }
}

}  // namespace

void bn_stats(const BnActParams& p) {
  switch (p.dtype) {
    case DType::F32: return stats<float>(p);
    case DType::F16: return stats<c10::Half>(p);
    case DType::BF16: return stats<c10::BFloat16>(p);
    case DType::F64: return stats<double>(p);
  }
}
void bn_act_forward(const BnActParams& p) { dispatch<false>(p); }
void bn_act_backward(const BnActParams& p) { dispatch<true>(p); }

}  // namespace cpu
}  // namespace bk
