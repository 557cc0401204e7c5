// Shared by every CPU family (attention tiles, LSTM/GRU/RNN steps and weight gradients).
// Row-major GEMM over ATen's CPU BLAS (MKL sgemm/dgemm in torch's wheels):
// C[M,N] = alpha op(A) op(B) + beta C, where op(A) is [M,K] (A stored
// [K,M] when ta) and op(B) is [K,N] (B stored [N,K] when tb).
#pragma once
#include <stdint.h>

namespace bk {
namespace cpu {
template <typename T>
void gemm_rm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
             int64_t ldb, T beta, T* C, int64_t ldc);
}  // namespace cpu
}  // namespace bk
