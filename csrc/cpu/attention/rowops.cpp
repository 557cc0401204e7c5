#include "cpu/attention/rowops.h"

#include <algorithm>
#include <bit>
#include <cstdint>

#define BK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

namespace bk {
namespace cpu {
namespace rowops {
namespace {

// exp(x) = 2^n * e^r with n = round(x / ln2), |r| <= ln2/2, e^r by a degree-6
// Taylor polynomial (truncation error (ln2/2)^7/7! = 1.2e-7 relative, about
// one fp32 ulp). No calls and no branches (rounding by adding 1.5 * 2^23, the
// 2^n by building the exponent bits), so the loops around it vectorise: a
// floorf or a library expf made GCC keep them scalar.
// Below -87.3 the result would be subnormal: flush to 0, which also maps
// -inf (masked scores) to 0.
inline float fast_exp(float x) {
  const float xc = std::min(std::max(x, -87.3f), 88.0f);
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
  const float two_n = std::bit_cast<float>((std::bit_cast<int32_t>(t) - 0x4B400000 + 127) << 23);
  return x < -87.3f ? 0.0f : p * two_n;
}

}  // namespace

BK_CLONES float max(const float* s, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t c = 0; c < n; ++c) m = s[c] > m ? s[c] : m;
  return m;
}

BK_CLONES float exp_sub_sum(float* s, int64_t n, float m) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < n; ++c) {
    const float e = fast_exp(s[c] - m);
    s[c] = e;
    sum += e;
  }
  return sum;
}

BK_CLONES void exp_sub(float* s, int64_t n, float m) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) s[c] = fast_exp(s[c] - m);
}

BK_CLONES void scale(float* x, int64_t n, float a) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) x[c] *= a;
}

BK_CLONES void softmax_grad(float* p, const float* dp, int64_t n, float delta) {
#pragma omp simd
  for (int64_t c = 0; c < n; ++c) p[c] *= dp[c] - delta;
}

BK_CLONES float dot(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

}  // namespace rowops
}  // namespace cpu
}  // namespace bk
