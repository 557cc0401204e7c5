// Row operations of the attention tiles (softmax pieces and the backward's
// dS). float versions are compiled for AVX-512, AVX2 and baseline x86-64 and
// picked at load time (target_clones): the extension is built without -march,
// and the exp of the online softmax would otherwise run on SSE2.
#pragma once
#include <stdint.h>

#include <cmath>
#include <limits>

namespace bk {
namespace cpu {
namespace rowops {

float max(const float* s, int64_t n);
// s[c] = exp(s[c] - m); returns the sum. exp(-inf) = 0 exactly.
float exp_sub_sum(float* s, int64_t n, float m);
// s[c] = exp(s[c] - m) (backward: P from the saved log-sum-exp).
void exp_sub(float* s, int64_t n, float m);
void scale(float* x, int64_t n, float a);
// p[c] = p[c] * (dp[c] - delta): dS of softmax.
void softmax_grad(float* p, const float* dp, int64_t n, float delta);
float dot(const float* a, const float* b, int64_t n);

inline double max(const double* s, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t c = 0; c < n; ++c) m = s[c] > m ? s[c] : m;
  return m;
}
inline double exp_sub_sum(double* s, int64_t n, double m) {
  double sum = 0;
  for (int64_t c = 0; c < n; ++c) sum += (s[c] = std::exp(s[c] - m));
  return sum;
}
inline void exp_sub(double* s, int64_t n, double m) {
  for (int64_t c = 0; c < n; ++c) s[c] = std::exp(s[c] - m);
}
inline void scale(double* x, int64_t n, double a) {
  for (int64_t c = 0; c < n; ++c) x[c] *= a;
}
inline void softmax_grad(double* p, const double* dp, int64_t n, double delta) {
  for (int64_t c = 0; c < n; ++c) p[c] *= dp[c] - delta;
}
inline double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t c = 0; c < n; ++c) s += a[c] * b[c];
  return s;
}

}  // namespace rowops
}  // namespace cpu
}  // namespace bk
