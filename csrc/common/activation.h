// Activation functions shared by the CUDA kernels, the CPU kernels and the
// emulator. Torch-free: plain floats, usable on host and device.
#pragma once
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define BK_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// always_inline: the CPU kernels inline these into ISA-specific clones
// (AVX2, AVX-512), where the loops around them vectorise.
#define BK_HD inline __attribute__((always_inline))
#else
#define BK_HD inline
#endif

namespace bk {

// The transcendental functions the activations need. Kernels pick the
// implementation: libm/CUDA's own here, branch-free vectorisable
// approximations on the CPU (csrc/cpu/vec_math.h).
struct StdMath {
  template <typename F> BK_HD static F Exp(F x) { return exp(x); }
  template <typename F> BK_HD static F Erf(F x) { return erf(x); }
  template <typename F> BK_HD static F Tanh(F x) { return tanh(x); }
};

// Order matches bigkernels/ops/activation.py ACTIVATIONS; the integer is part
// of the ABI between the Python glue and every kernel.
enum class Act : int32_t {
  None = 0,
  Relu = 1,
  Relu6 = 2,
  LeakyRelu = 3,
  Silu = 4,
  Gelu = 5,
  GeluTanh = 6,
  Hardswish = 7,
  Sigmoid = 8,
  Tanh = 9,
};
constexpr int32_t kNumActs = 10;

template <typename M, typename F>
BK_HD F act_sigmoid(F z) { return F(1) / (F(1) + M::Exp(-z)); }

// y = act(z). `alpha` is leaky_relu's negative slope, ignored elsewhere.
template <Act A, typename F, typename M = StdMath>
BK_HD F act_forward(F z, F alpha) {
  if constexpr (A == Act::None) return z;
  if constexpr (A == Act::Relu) return z > F(0) ? z : F(0);
  if constexpr (A == Act::Relu6) return z > F(0) ? (z < F(6) ? z : F(6)) : F(0);
  if constexpr (A == Act::LeakyRelu) return z > F(0) ? z : z * alpha;
  if constexpr (A == Act::Silu) return z * act_sigmoid<M>(z);
  if constexpr (A == Act::Gelu) return F(0.5) * z * (F(1) + M::Erf(z * F(0.70710678118654752440)));
  if constexpr (A == Act::GeluTanh) {
    const F k = F(0.79788456080286535588);  // sqrt(2/pi)
    return F(0.5) * z * (F(1) + M::Tanh(k * (z + F(0.044715) * z * z * z)));
  }
  if constexpr (A == Act::Hardswish) {
    F r = z + F(3);
    r = r > F(0) ? (r < F(6) ? r : F(6)) : F(0);
    return z * r / F(6);
  }
  if constexpr (A == Act::Sigmoid) return act_sigmoid<M>(z);
  if constexpr (A == Act::Tanh) return M::Tanh(z);
  return z;
}

// d act(z) / dz, with torch's conventions at the kinks (relu'(0) = 0,
// relu6 and hardswish as torch's hardtanh/hardswish backward).
template <Act A, typename F, typename M = StdMath>
BK_HD F act_derivative(F z, F alpha) {
  if constexpr (A == Act::None) return F(1);
  if constexpr (A == Act::Relu) return z > F(0) ? F(1) : F(0);
  if constexpr (A == Act::Relu6) return (z > F(0) && z < F(6)) ? F(1) : F(0);
  if constexpr (A == Act::LeakyRelu) return z > F(0) ? F(1) : alpha;
  if constexpr (A == Act::Silu) {
    F s = act_sigmoid<M>(z);
    return s * (F(1) + z * (F(1) - s));
  }
  if constexpr (A == Act::Gelu) {
    const F inv_sqrt_2pi = F(0.39894228040143267794);
    return F(0.5) * (F(1) + M::Erf(z * F(0.70710678118654752440))) + z * inv_sqrt_2pi * M::Exp(F(-0.5) * z * z);
  }
  if constexpr (A == Act::GeluTanh) {
    const F k = F(0.79788456080286535588);
    F inner = k * (z + F(0.044715) * z * z * z);
    F t = M::Tanh(inner);
    return F(0.5) * (F(1) + t) + F(0.5) * z * (F(1) - t * t) * k * (F(1) + F(3) * F(0.044715) * z * z);
  }
  if constexpr (A == Act::Hardswish) return z <= F(-3) ? F(0) : (z < F(3) ? z / F(3) + F(0.5) : F(1));
  if constexpr (A == Act::Sigmoid) {
    F s = act_sigmoid<M>(z);
    return s * (F(1) - s);
  }
  if constexpr (A == Act::Tanh) {
    F t = M::Tanh(z);
    return F(1) - t * t;
  }
  return F(1);
}

}  // namespace bk
