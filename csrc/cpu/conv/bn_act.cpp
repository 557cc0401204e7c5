// CPU fused BN + residual + activation. Torch's training step runs BN
// (statistics pass + normalise pass), then add, then relu: four passes
// forward and three backward (relu, BN reduce, BN apply). Here: statistics,
// then one normalise+add+act pass; backward one reduction pass that applies
// the activation's derivative on the fly, then one elementwise pass.
#include "cpu/conv/bn_act.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/conv/channel_reduce.h"

namespace bk {
namespace cpu {
namespace {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

constexpr int64_t kGrain = 8192;  // as bias_act.cpp: ~32 KiB of fp32 per task

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

template <typename T>
void stats(const BnActParams& p) {
  const T* z = static_cast<const T*>(p.z);
  const int64_t C = p.channels, inner = p.inner;
  const int64_t count = p.numel / C;
  // Shifted sums: each channel's first element as the shift, so that the
  // variance does not cancel when |mean| >> std.
  std::vector<double> k(C);
  for (int64_t c = 0; c < C; ++c) k[c] = count ? double(z[c * inner]) : 0.0;
  const double* kp = k.data();
  channel_reduce2(p.numel, C, inner, p.out0, p.out1, [&](int64_t i, int64_t c, double& a0, double& a1) {
    const double d = double(z[i]) - kp[c];
    a0 += d;
    a1 += d * d;
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

template <typename T, Act A>
void backward(const BnActParams& p) {
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
  auto g_of = [&](int64_t i, int64_t c) {
    F v = F(z[i]) * scale[c] + shift[c];
    if (res) v += F(res[i]);
    return F(gy[i]) * act_derivative<A, F>(v, alpha);
  };
  channel_reduce2(p.numel, C, p.inner, p.out0, p.out1, [&](int64_t i, int64_t c, double& a0, double& a1) {
    const F g = g_of(i, c);
    a0 += double(g);
    a1 += double(g * ((F(z[i]) - mean[c]) * invstd[c]));
  });
  if (!gz && !gres) return;
  const double count = double(p.numel / std::max<int64_t>(C, 1));
  std::vector<F> mg(C), mgx(C);
  for (int64_t c = 0; c < C; ++c) {
    mg[c] = p.batch_stats && count > 0 ? F(p.out0[c] / count) : F(0);
    mgx[c] = p.batch_stats && count > 0 ? F(p.out1[c] / count) : F(0);
  }
  const F* mgp = mg.data();
  const F* mgxp = mgx.data();
  for_runs(p, [&](int64_t i, int64_t len, int64_t c0, int64_t pos) {
    for (int64_t j = 0; j < len; ++j) {
      const int64_t c = c0 >= 0 ? c0 : pos + j;
      const F g = g_of(i + j, c);
      if (gres) gres[i + j] = T(g);
      if (gz) {
        const F xhat = (F(z[i + j]) - mean[c]) * invstd[c];
        gz[i + j] = T(scale[c] * (g - mgp[c] - xhat * mgxp[c]));
      }
    }
  });
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
