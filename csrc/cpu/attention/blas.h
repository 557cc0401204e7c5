// Row-major GEMM on raw pointers through the BLAS that libtorch_cpu exports
// (MKL's sgemm_/dgemm_ on x86 wheels; ATen's cpublas::gemm calls the same
// symbols but its float/double overloads are not exported to extensions).
// Called inside at::parallel_for: MKL then runs single-threaded per call.
// The symbols are weak: a torch build without a Fortran-ABI BLAS still loads
// bigkernels._C (every family's kernels) and these tiles take a plain loop.
#pragma once
#include <stdint.h>

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
}

namespace bk {
namespace cpu {

// C (m x n, ldc) = alpha * op(A) * op(B) + beta * C, all row-major. A row-major
// buffer read column-major is its transpose, so this is the column-major call
// C^T = op(B)^T op(A)^T with the operands swapped and the flags unchanged.
// Fallback without BLAS: C = alpha op(A) op(B) + beta C, row-major, plain loops.
template <typename T>
inline void loop_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* A, int64_t lda,
                      const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      T acc = 0;
      for (int64_t p = 0; p < k; ++p) acc += (ta ? A[p * lda + i] : A[i * lda + p]) * (tb ? B[j * ldb + p] : B[p * ldb + j]);
      C[i * ldc + j] = alpha * acc + (beta == T(0) ? T(0) : beta * C[i * ldc + j]);
    }
  }
}

inline void rm_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* A, int64_t lda,
                    const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (sgemm_ == nullptr) return loop_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  const char ca = tb ? 'T' : 'N', cb = ta ? 'T' : 'N';
  const int M = int(n), N = int(m), K = int(k), LA = int(ldb), LB = int(lda), LC = int(ldc);
  sgemm_(&ca, &cb, &M, &N, &K, &alpha, B, &LA, A, &LB, &beta, C, &LC);
}

inline void rm_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* A, int64_t lda,
                    const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (dgemm_ == nullptr) return loop_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  const char ca = tb ? 'T' : 'N', cb = ta ? 'T' : 'N';
  const int M = int(n), N = int(m), K = int(k), LA = int(ldb), LB = int(lda), LC = int(ldc);
  dgemm_(&ca, &cb, &M, &N, &K, &alpha, B, &LA, A, &LB, &beta, C, &LC);
}

}  // namespace cpu
}  // namespace bk
