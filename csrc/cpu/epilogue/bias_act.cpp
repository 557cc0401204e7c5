// CPU fused epilogue: one pass over memory instead of torch's add, add and
// activation (three reads and writes of the tensor each). Each thread walks
// its range in chunks of kChunk elements that share a channel pattern: z is
// assembled in an L1-resident float buffer by straight loops (branches only
// per chunk), then one branch-free loop applies the activation with the
// vectorisable math of vec_math.h. The whole body is stamped out for
// AVX-512, AVX2 and the baseline ISA and chosen at run time (isa.h).
#include "cpu/epilogue/bias_act.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>

#include "cpu/isa.h"
#include "cpu/vec_math.h"

namespace bk {
namespace cpu {
namespace {

template <typename T> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

constexpr int64_t kChunk = 512;   // 2 KiB of fp32 per buffer: stays in L1
constexpr int64_t kGrain = 16384;  // elements per parallel task, amortises the task overhead

template <typename T, Act A, bool Backward>
__attribute__((always_inline)) inline void run_range(const BiasActParams& p, int64_t begin, int64_t end) {
  using F = typename Compute<T>::type;
  const T* x = static_cast<const T*>(p.x);
  const T* bias = static_cast<const T*>(p.bias);
  const T* res = static_cast<const T*>(p.residual);
  const T* gy = static_cast<const T*>(p.grad_y);
  T* out = static_cast<T*>(Backward ? p.grad_z : p.y);
  const F alpha = F(p.alpha);
  const int64_t C = p.channels, inner = p.inner;
  const int64_t period = inner > 1 ? inner : C;  // elements before the channel pattern repeats
  F z[kChunk];

  for (int64_t i = begin; i < end;) {
    const int64_t pos = i % period;
    const int64_t n = std::min({end - i, period - pos, kChunk});
    for (int64_t j = 0; j < n; ++j) z[j] = F(x[i + j]);
    if (bias && inner > 1) {
      const F b = F(bias[(i / inner) % C]);
      for (int64_t j = 0; j < n; ++j) z[j] += b;
    } else if (bias) {
      const T* b = bias + pos;
      for (int64_t j = 0; j < n; ++j) z[j] += F(b[j]);
    }
    if (res) {
      for (int64_t j = 0; j < n; ++j) z[j] += F(res[i + j]);
    }
    if constexpr (Backward) {
      for (int64_t j = 0; j < n; ++j) out[i + j] = T(F(gy[i + j]) * act_derivative<A, F, FastMath>(z[j], alpha));
    } else {
      for (int64_t j = 0; j < n; ++j) out[i + j] = T(act_forward<A, F, FastMath>(z[j], alpha));
    }
    i += n;
  }
}

template <typename T, Act A, bool B>
void run_base(const BiasActParams& p, int64_t b, int64_t e) { run_range<T, A, B>(p, b, e); }
#if BK_HAS_ISA_CLONES
template <typename T, Act A, bool B>
BK_TARGET_AVX2 void run_avx2(const BiasActParams& p, int64_t b, int64_t e) { run_range<T, A, B>(p, b, e); }
template <typename T, Act A, bool B>
BK_TARGET_AVX512 void run_avx512(const BiasActParams& p, int64_t b, int64_t e) { run_range<T, A, B>(p, b, e); }
#endif

template <typename T, Act A, bool B>
void run(const BiasActParams& p) {
  auto fn = &run_base<T, A, B>;
#if BK_HAS_ISA_CLONES
  switch (best_isa()) {
    case Isa::Avx512: fn = &run_avx512<T, A, B>; break;
    case Isa::Avx2: fn = &run_avx2<T, A, B>; break;
    case Isa::Base: break;
  }
#endif
  at::parallel_for(0, p.numel, kGrain, [&](int64_t begin, int64_t end) { fn(p, begin, end); });
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
