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
#include "cpu/isa.h"

namespace bk {
namespace cpu {
namespace {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

constexpr int64_t kGrain = 8192;

// Lambdas called in vectorised loops must be inlined there, or the loop is
// scalar with a call per element. Every kernel body below is always_inline
// and runs through on_best_isa (cpu/isa.h), one call per parallel task: the
// file is compiled for baseline x86-64, so without the clones every loop
// here was SSE2 (docs/conv.md, "The CPU kernels per ISA": benchmarks/
// bn_act_routing.py before and after).
#define BK_INLINE __attribute__((always_inline))

// Calls body(i, len, c, pos) over the runs of elements in [begin, end) that
// share a channel (inner > 1: c is that channel) or make one row of channels
// (inner == 1, c = -1: the channel of i + j is pos + j).
template <typename Body>
BK_INLINE inline void runs(const BnActParams& p, int64_t begin, int64_t end, const Body& body) {
  const int64_t C = p.channels, inner = p.inner;
  int64_t i = begin;
  while (i < end) {
    const int64_t pos = inner > 1 ? i % inner : i % C;
    const int64_t len = std::min(end - i, (inner > 1 ? inner : C) - pos);
    body(i, len, inner > 1 ? (i / inner) % C : -1, pos);
    i += len;
  }
}

// act_derivative with the kinks written as 0/1 arithmetic: GCC turns
// `z > 0 ? 1 : 0` inside these reductions into a branch, mispredicted half
// the time on conv outputs (measured: relu backward 11.6 ms vs 1.5 ms for
// no activation, 8x64x56x56 fp32, one core).
template <Act A, typename F>
BK_INLINE inline F derivative(F v, F alpha) {
  if constexpr (A == Act::Relu) return F(v > F(0));
  if constexpr (A == Act::Relu6) return F(v > F(0)) * F(v < F(6));
  if constexpr (A == Act::LeakyRelu) return alpha + (F(1) - alpha) * F(v > F(0));
  return act_derivative<A, F>(v, alpha);
}

// Sums of two per-element terms per channel into p.out0/p.out1: NCHW split
// over channels, channels-last over rows (per-task totals merged under a
// lock). Planes::run(&p, extra..., cb, ce) and
// Rows::run(&p, extra..., rb, re, d0, d1, scratch0, scratch1) are the tasks.
template <class Planes, class Rows, typename F, typename... X>
void channel_sums(const BnActParams& p, X... extra) {
  const int64_t C = p.channels;
  std::fill(p.out0, p.out0 + C, 0.0);
  std::fill(p.out1, p.out1 + C, 0.0);
  if (p.numel == 0) return;
  if (p.inner > 1) {
    at::parallel_for(0, C, 1, [&](int64_t cb, int64_t ce) { on_best_isa<Planes>(&p, extra..., cb, ce); });
    return;
  }
  std::mutex merge;
  at::parallel_for(0, p.numel / C, std::max<int64_t>(1, 16384 / C), [&](int64_t rb, int64_t re) {
    std::vector<double> d0(C, 0.0), d1(C, 0.0);
    std::vector<F> s0(C), s1(C);
    on_best_isa<Rows>(&p, extra..., rb, re, d0.data(), d1.data(), s0.data(), s1.data());
    std::lock_guard<std::mutex> lock(merge);
    for (int64_t c = 0; c < C; ++c) {
      p.out0[c] += d0[c];
      p.out1[c] += d1[c];
    }
  });
}

// ------------------------------------------------------------ statistics
// Shifted sums: each channel's first element as the shift k, so that the
// variance does not cancel when |mean| >> std.
template <typename T, typename F = typename Compute<T>::type>
struct StatsPlanes {
  static BK_INLINE inline void run(const BnActParams* p, const F* k, int64_t cb, int64_t ce) {
    const T* z = static_cast<const T*>(p->z);
    const int64_t C = p->channels, inner = p->inner;
    reduce_planes<F>(p->numel / (C * inner), C, inner, cb, ce, p->out0, p->out1, [=](int64_t c) BK_INLINE {
      const F kc = k[c];
      return [=](int64_t i) BK_INLINE {
        const F d = F(z[i]) - kc;
        return Pair2<F>{d, d * d};
      };
    });
  }
};

template <typename T, typename F = typename Compute<T>::type>
struct StatsRows {
  static BK_INLINE inline void run(const BnActParams* p, const F* k, int64_t rb, int64_t re, double* d0, double* d1,
                                   F* s0, F* s1) {
    const T* z = static_cast<const T*>(p->z);
    reduce_rows<F>(p->channels, rb, re, d0, d1, s0, s1, [=](int64_t i, int64_t c) BK_INLINE {
      const F d = F(z[i]) - k[c];
      return Pair2<F>{d, d * d};
    });
  }
};

template <typename T>
void stats(const BnActParams& p) {
  using F = typename Compute<T>::type;
  const T* z = static_cast<const T*>(p.z);
  const int64_t C = p.channels, inner = p.inner;
  const int64_t count = p.numel / C;
  // (the shift rounded to the compute type, so that it is exact in the loop)
  std::vector<F> k(C);
  for (int64_t c = 0; c < C; ++c) k[c] = count ? F(z[c * inner]) : F(0);
  channel_sums<StatsPlanes<T>, StatsRows<T>, F>(p, static_cast<const F*>(k.data()));
  for (int64_t c = 0; c < C; ++c) {
    const double m = count ? p.out0[c] / count : 0.0;
    p.out0[c] = double(k[c]) + m;
    p.out1[c] = count ? std::max(p.out1[c] / count - m * m, 0.0) : 0.0;
  }
}

// ------------------------------------------------------------ forward
template <typename T, Act A>
struct ForwardRange {
  static BK_INLINE inline void run(const BnActParams* pp, int64_t begin, int64_t end) {
    using F = typename Compute<T>::type;
    const BnActParams& p = *pp;
    const T* z = static_cast<const T*>(p.z);
    const T* res = static_cast<const T*>(p.residual);
    const F* scale = static_cast<const F*>(p.scale);
    const F* shift = static_cast<const F*>(p.shift);
    T* y = static_cast<T*>(p.y);
    const F alpha = F(p.alpha);
    runs(p, begin, end, [&](int64_t i, int64_t len, int64_t c, int64_t pos) BK_INLINE {
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
};

template <typename T, Act A>
void forward(const BnActParams& p) {
  at::parallel_for(0, p.numel, kGrain,
                   [&](int64_t begin, int64_t end) { on_best_isa<ForwardRange<T, A>>(&p, begin, end); });
}

// ------------------------------------------------------------ backward
// The backward passes' inputs, and g = dL/d(pre-activation), recomputed from
// z in both passes: cheaper than writing and re-reading it (one tensor of
// traffic each way). Captured by value in the loops' lambdas: local pointer
// copies, which the vectoriser can prove unaliased.
template <typename T, Act A, bool HasRes, typename F = typename Compute<T>::type>
struct GradInputs {
  const T* z;
  const T* res;
  const T* gy;
  const F* scale;
  const F* shift;
  const F* mean;
  const F* invstd;
  F alpha;

  explicit GradInputs(const BnActParams& p)
      : z(static_cast<const T*>(p.z)), res(static_cast<const T*>(p.residual)), gy(static_cast<const T*>(p.grad_y)),
        scale(static_cast<const F*>(p.scale)), shift(static_cast<const F*>(p.shift)),
        mean(static_cast<const F*>(p.mean)), invstd(static_cast<const F*>(p.invstd)), alpha(F(p.alpha)) {}

  BK_INLINE inline F g(int64_t i, F zf, F sc, F sh) const {
    F v = zf * sc + sh;
    if constexpr (HasRes) v += F(res[i]);
    return F(gy[i]) * derivative<A, F>(v, alpha);
  }
};

// Pass 1: sum(g) and sum(g * xhat) per channel.
template <typename T, Act A, bool HasRes, typename F = typename Compute<T>::type>
struct GradSumsPlanes {
  static BK_INLINE inline void run(const BnActParams* p, int64_t cb, int64_t ce) {
    const GradInputs<T, A, HasRes> d(*p);
    const int64_t C = p->channels, inner = p->inner;
    reduce_planes<F>(p->numel / (C * inner), C, inner, cb, ce, p->out0, p->out1, [=](int64_t c) BK_INLINE {
      const F sc = d.scale[c], sh = d.shift[c], mu = d.mean[c], is = d.invstd[c];
      return [=](int64_t i) BK_INLINE {
        const F zf = F(d.z[i]);
        const F g = d.g(i, zf, sc, sh);
        return Pair2<F>{g, g * ((zf - mu) * is)};
      };
    });
  }
};

template <typename T, Act A, bool HasRes, typename F = typename Compute<T>::type>
struct GradSumsRows {
  static BK_INLINE inline void run(const BnActParams* p, int64_t rb, int64_t re, double* d0, double* d1, F* s0,
                                   F* s1) {
    const GradInputs<T, A, HasRes> d(*p);
    reduce_rows<F>(p->channels, rb, re, d0, d1, s0, s1, [=](int64_t i, int64_t c) BK_INLINE {
      const F zf = F(d.z[i]);
      const F g = d.g(i, zf, d.scale[c], d.shift[c]);
      return Pair2<F>{g, g * ((zf - d.mean[c]) * d.invstd[c])};
    });
  }
};

// Pass 2: dz = scale * (g - mean(g) - xhat * mean(g * xhat)), xhat = (z - mean) * invstd
//            = scale * g - k0 - k1 * (z - mean), k0 = scale * mean(g), k1 = scale * invstd * mean(g xhat)
// ((z - mean) rather than expanding it: no cancellation when |mean| >> std).
template <typename T, Act A, bool HasRes, typename F = typename Compute<T>::type>
struct GradRange {
  static BK_INLINE inline void run(const BnActParams* p, const F* k0p, const F* k1p, int64_t begin, int64_t end) {
    const GradInputs<T, A, HasRes> d(*p);
    T* gz = static_cast<T*>(p->grad_z);
    T* gres = static_cast<T*>(p->grad_residual);
    runs(*p, begin, end, [=](int64_t i, int64_t len, int64_t c, int64_t pos) BK_INLINE {
      if (c >= 0) {
        const F sc = d.scale[c], sh = d.shift[c], a = k1p[c], b = k0p[c], mu = d.mean[c];
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) {
          const F zf = F(d.z[i + j]);
          const F g = d.g(i + j, zf, sc, sh);
          if (gres) gres[i + j] = T(g);
          if (gz) gz[i + j] = T(sc * g - b - a * (zf - mu));
        }
      } else {
        const F* sc = d.scale + pos;
        const F* sh = d.shift + pos;
        const F* a = k1p + pos;
        const F* b = k0p + pos;
        const F* mu = d.mean + pos;
#pragma omp simd
        for (int64_t j = 0; j < len; ++j) {
          const F zf = F(d.z[i + j]);
          const F g = d.g(i + j, zf, sc[j], sh[j]);
          if (gres) gres[i + j] = T(g);
          if (gz) gz[i + j] = T(sc[j] * g - b[j] - a[j] * (zf - mu[j]));
        }
      }
    });
  }
};

template <typename T, Act A, bool HasRes>
void backward_impl(const BnActParams& p) {
  using F = typename Compute<T>::type;
  const int64_t C = p.channels;
  channel_sums<GradSumsPlanes<T, A, HasRes>, GradSumsRows<T, A, HasRes>, F>(p);
  if (!p.grad_z && !p.grad_residual) return;
  const F* scale = static_cast<const F*>(p.scale);
  const F* invstd = static_cast<const F*>(p.invstd);
  const double count = double(p.numel / std::max<int64_t>(C, 1));
  std::vector<F> k0(C), k1(C);
  for (int64_t c = 0; c < C; ++c) {
    const double mg = p.batch_stats && count > 0 ? p.out0[c] / count : 0.0;
    const double mgx = p.batch_stats && count > 0 ? p.out1[c] / count : 0.0;
    k0[c] = F(double(scale[c]) * mg);
    k1[c] = F(double(scale[c]) * double(invstd[c]) * mgx);
  }
  const F* k0p = k0.data();
  const F* k1p = k1.data();
  at::parallel_for(0, p.numel, kGrain, [&](int64_t begin, int64_t end) {
    on_best_isa<GradRange<T, A, HasRes>>(&p, k0p, k1p, begin, end);
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
