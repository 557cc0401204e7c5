#include "cpu/attention/rowops.h"

#include <algorithm>
#include <bit>

#include "cpu/vec_math.h"
#include <cstdint>

#define BK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

namespace bk {
namespace cpu {
namespace rowops {
namespace {

using ::bk::cpu::fast_exp;  // csrc/cpu/vec_math.h: exp(-inf) = 0 exactly

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
