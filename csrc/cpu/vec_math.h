// Branch-free float approximations of exp, erf and tanh that GCC/Clang
// auto-vectorise (libm's calls stop a loop from vectorising). Double stays
// on libm: fp64 is the accuracy path, not the speed path.
//
// Accuracy (float): exp ~1 ulp (inputs above 88 clamped, below -87.3 -> 0); erf abs error <= 1.5e-7 (Abramowitz & Stegun 7.1.26); tanh
// abs error ~1e-7. torch's own fp32 kernels are within ~1e-7 of float64, and
// our tolerance floor for fp32 is 2e-5.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/activation.h"

namespace bk {
namespace cpu {

// exp(x) = 2^n e^r with n = round(x / ln2), |r| <= ln2/2, e^r by a degree-6
// Taylor polynomial (truncation (ln2/2)^7/7! = 1.2e-7 relative, ~1 ulp). No
// calls, no branches (rounding by adding 1.5 * 2^23; 2^n built in the
// exponent bits), so loops around it vectorise. Below -87.3 the result would
// be subnormal: it is flushed to 0, which also maps -inf (masked attention
// scores) to exactly 0; NaN stays NaN. One implementation for every CPU
// family (epilogue, attention softmax, LSTM/GRU gates).
BK_HD float fast_exp(float x) {
  const float xc = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  const float r = xc - n * 0.693145751953125f - n * 1.42860682030941723e-6f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // t's low mantissa bits hold n + 0x400000 (0x4B400000 is 1.5 * 2^23).
  int32_t tb;
  memcpy(&tb, &t, sizeof(tb));
  const int32_t bits = (tb - 0x4B400000 + 127) << 23;
  float two_n;
  memcpy(&two_n, &bits, sizeof(two_n));
  return x < -87.3f ? 0.0f : p * two_n;
}

BK_HD float fast_erf(float x) {
  const float a = x < 0.f ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float y = 1.0f - p * t * fast_exp(-a * a);
  return x < 0.f ? -y : y;
}

BK_HD float fast_tanh(float x) {
  // 1 - 2 / (e^{2x} + 1) loses relative precision near 0, where the odd
  // series (to x^7, error < 3e-11 for |x| < 0.1) is exact enough.
  const float big = 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f);
  const float x2 = x * x;
  const float small = x * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * -0.053968254f)));
  return (x < 0.1f && x > -0.1f) ? small : big;
}

struct FastMath {
  BK_HD static float Exp(float x) { return fast_exp(x); }
  BK_HD static float Erf(float x) { return fast_erf(x); }
  BK_HD static float Tanh(float x) { return fast_tanh(x); }
  BK_HD static double Exp(double x) { return exp(x); }
  BK_HD static double Erf(double x) { return erf(x); }
  BK_HD static double Tanh(double x) { return tanh(x); }
};

}  // namespace cpu
}  // namespace bk
