// BLAS is column-major: a row-major C = op(A) op(B) is the column-major
// C^T = op(B)^T op(A)^T, so the operands swap and keep their transposes.
//
// ATen's cpublas::gemm(float/double) overloads (which call MKL) are not
// exported from libtorch_cpu 2.13 (nor is DispatchStubImpl::get_call_ptr,
// which its gemm_stub needs). Torch's x86 wheels do export MKL's Fortran
// sgemm_/dgemm_ (what cpublas calls), so we call them, declared weak: a
// torch built without them falls back to a plain loop instead of failing
// to load (correct, but slow: the router's auto order should then prefer
// the torch backend).
#include "cpu/blas/gemm.h"


extern "C" {
void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
            const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
            const int* ldc) __attribute__((weak));
void dgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc) __attribute__((weak));
}

namespace bk {
namespace cpu {
namespace {

void blas(char ta, char tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b, int ldb,
          float beta, float* c, int ldc) {
  sgemm_(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}
void blas(char ta, char tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b, int ldb,
          double beta, double* c, int ldc) {
  dgemm_(&ta, &tb, &m, &n, &k, &alpha, a, &lda, b, &ldb, &beta, c, &ldc);
}
template <typename T> bool have_blas();
template <> bool have_blas<float>() { return sgemm_ != nullptr; }
template <> bool have_blas<double>() { return dgemm_ != nullptr; }

}  // namespace

template <typename T>
void gemm_rm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
             int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // BLAS leaves C untouched only for beta == 1
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  if (have_blas<T>()) {
    blas(tb ? 'T' : 'N', ta ? 'T' : 'N', int(N), int(M), int(K), alpha, B, int(ldb), A, int(lda), beta, C, int(ldc));
    return;
  }
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j) c[j] = beta == T(0) ? T(0) : beta * c[j];
    for (int64_t k = 0; k < K; ++k) {
      const T a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
      if (tb) {
        for (int64_t j = 0; j < N; ++j) c[j] += a * B[j * ldb + k];
      } else {
        for (int64_t j = 0; j < N; ++j) c[j] += a * B[k * ldb + j];
      }
    }
  }
}

template void gemm_rm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                             int64_t, float, float*, int64_t);
template void gemm_rm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t, const double*,
                              int64_t, double, double*, int64_t);

}  // namespace cpu
}  // namespace bk
