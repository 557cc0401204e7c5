// CPU fused epilogue: one pass over memory instead of torch's add, add, act
// (three reads and writes of the tensor). Work is split into runs of
// elements that share a channel pattern, so the inner loop is a straight
// vectorisable loop over contiguous memory with the activation inlined.
#include "cpu/epilogue/bias_act.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>

namespace bk {
namespace cpu {
namespace {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

// Elements per parallel task: ~32 KiB of fp32, large enough to amortise the
// task overhead, small enough to balance two to dozens of cores.
constexpr int64_t kGrain = 8192;

template <typename T, Act A, bool Backward>
void run(const BiasActParams& p) {
  using F = typename Compute<T>::type;
  const T* x = static_cast<const T*>(p.x);
  const T* bias = static_cast<const T*>(p.bias);
  const T* res = static_cast<const T*>(p.residual);
  const T* gy = static_cast<const T*>(p.grad_y);
  T* out = static_cast<T*>(Backward ? p.grad_z : p.y);
  const F alpha = F(p.alpha);
  const int64_t C = p.channels, inner = p.inner;

  at::parallel_for(0, p.numel, kGrain, [&](int64_t begin, int64_t end) {
    int64_t i = begin;
    while (i < end) {
      // A run of elements with a constant channel (inner > 1), or one row
      // of C channels (inner == 1); both end at a pattern boundary.
      const int64_t pos = inner > 1 ? i % inner : i % C;
      const int64_t run_len = std::min(end - i, (inner > 1 ? inner : C) - pos);
      const F b_const = (bias && inner > 1) ? F(bias[(i / inner) % C]) : F(0);
      const T* b_row = (bias && inner == 1) ? bias + pos : nullptr;
#pragma omp simd
      for (int64_t j = 0; j < run_len; ++j) {
        F z = F(x[i + j]) + b_const;
        if (b_row) z += F(b_row[j]);
        if (res) z += F(res[i + j]);
        if constexpr (Backward) {
          out[i + j] = T(F(gy[i + j]) * act_derivative<A, F>(z, alpha));
        } else {
          out[i + j] = T(act_forward<A, F>(z, alpha));
        }
      }
      i += run_len;
    }
  });
}

template <typename T, bool Backward>
void dispatch_act(const BiasActParams& p) {
  switch (p.act) {
#define BK_CASE(a) \
  case Act::a: return run<T, Act::a, Backward>(p);
    BK_CASE(None) BK_CASE(Relu) BK_CASE(Relu6) BK_CASE(LeakyRelu) BK_CASE(Silu)
    BK_CASE(Gelu) BK_CASE(GeluTanh) BK_CASE(Hardswish) BK_CASE(Sigmoid) BK_CASE(Tanh)
#undef BK_CASE
  }
}

template <bool Backward>
void dispatch(const BiasActParams& p) {
  switch (p.dtype) {
    case DType::F32: return dispatch_act<float, Backward>(p);
    case DType::F16: return dispatch_act<c10::Half, Backward>(p);
    case DType::BF16: return dispatch_act<c10::BFloat16, Backward>(p);
    case DType::F64: return dispatch_act<double, Backward>(p);
  }
}

}  // namespace

void bias_act_forward(const BiasActParams& p) { dispatch<false>(p); }
void bias_act_backward(const BiasActParams& p) { dispatch<true>(p); }

}  // namespace cpu
}  // namespace bk
