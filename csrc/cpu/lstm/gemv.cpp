// At batch 1 each step is a GEMV over the whole W_hh (1 MiB at H = 256):
// memory-bound, so the loops only need to stream W once at full vector
// width. MKL's GEMM entry (packed or not) with M = 1 measured ~25% slower
// per step than these loops on the CI machine (docs/lstm.md). Four rows per
// pass share each load of h; target_clones compiles AVX-512/AVX2/baseline.
#include "cpu/lstm/gemv.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BK_CLONES
#endif

namespace bk {
namespace cpu {

BK_CLONES void gemv_n(const float* W, const float* h, float* z, int64_t N, int64_t K) {
  int64_t r = 0;
  for (; r + 4 <= N; r += 4) {
    const float *w0 = W + r * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
    float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (int64_t k = 0; k < K; ++k) {
      a0 += w0[k] * h[k];
      a1 += w1[k] * h[k];
      a2 += w2[k] * h[k];
      a3 += w3[k] * h[k];
    }
    z[r] = a0;
    z[r + 1] = a1;
    z[r + 2] = a2;
    z[r + 3] = a3;
  }
  for (; r < N; ++r) {
    float a = 0.f;
#pragma omp simd reduction(+ : a)
    for (int64_t k = 0; k < K; ++k) a += W[r * K + k] * h[k];
    z[r] = a;
  }
}

BK_CLONES void gemv_t(const float* W, const float* g, float* d, int64_t N, int64_t K) {
  for (int64_t k = 0; k < K; ++k) d[k] = 0.f;
  int64_t r = 0;
  for (; r + 4 <= N; r += 4) {
    const float *w0 = W + r * K, *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
    const float g0 = g[r], g1 = g[r + 1], g2 = g[r + 2], g3 = g[r + 3];
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) d[k] += g0 * w0[k] + g1 * w1[k] + g2 * w2[k] + g3 * w3[k];
  }
  for (; r < N; ++r) {
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) d[k] += g[r] * W[r * K + k];
  }
}

}  // namespace cpu
}  // namespace bk
