// Vectorisable sigmoid/tanh for the CPU recurrent kernels. glibc's expf
// does not vectorise without -ffast-math, and a scalar expf costs ~5 ns:
// at B=16, H=256 the five transcendentals per element of a step would take
// ~100 us against ~80 us for the step's GEMM. This Cephes-style expf
// (degree-6 polynomial, exponent by bit arithmetic) vectorises under
// `#pragma omp simd` and is within 2 ulp on [-88, 88].
#pragma once
#include <stdint.h>
#include <string.h>

#include <cmath>

#include "cpu/vec_math.h"  // fast_exp

#define BK_INLINE inline __attribute__((always_inline))

namespace bk {
namespace cpu {

BK_INLINE float sigmoid_(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
// tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7 near 0 (what the
// tolerance rule's fp32 floor, 2e-5, measures), exact limits at +-inf.
BK_INLINE float tanh_(float x) { return 2.0f / (1.0f + fast_exp(-2.0f * x)) - 1.0f; }

BK_INLINE double sigmoid_(double x) { return 1.0 / (1.0 + std::exp(-x)); }
BK_INLINE double tanh_(double x) { return std::tanh(x); }

}  // namespace cpu
}  // namespace bk
