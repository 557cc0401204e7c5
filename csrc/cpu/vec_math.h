// Branch-free float approximations of exp, erf and tanh that GCC/Clang
// auto-vectorise (libm's calls stop a loop from vectorising). Double stays
// on libm: fp64 is the accuracy path, not the speed path.
//
// Accuracy (float): exp ~1 ulp (Cephes polynomial, inputs clamped to
// [-87.3, 88]); erf abs error <= 1.5e-7 (Abramowitz & Stegun 7.1.26); tanh
// abs error ~1e-7. torch's own fp32 kernels are within ~1e-7 of float64, and
// our tolerance floor for fp32 is 2e-5.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/activation.h"

namespace bk {
namespace cpu {

BK_HD float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
  // n = round(x / ln2) with the 1.5 * 2^23 trick (no libm call, vectorises).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 split hi/lo (Cody-Waite)
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  float scale;
  memcpy(&scale, &bits, sizeof(scale));
  return e * scale;
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
