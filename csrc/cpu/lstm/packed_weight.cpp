#include "cpu/lstm/packed_weight.h"

#include <stdlib.h>

#include "cpu/lstm/gemm.h"

// MKL's CBLAS packed-GEMM entry points and enum values (mkl_cblas.h), declared
// weak: absent symbols leave the plain GEMM path.
extern "C" {
size_t cblas_sgemm_pack_get_size(int identifier, int m, int n, int k) __attribute__((weak));
void cblas_sgemm_pack(int layout, int identifier, int trans, int m, int n, int k, float alpha, const float* src,
                      int ld, float* dest) __attribute__((weak));
void cblas_sgemm_compute(int layout, int transa, int transb, int m, int n, int k, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc) __attribute__((weak));
// mkl_service.h maps mkl_set_num_threads_local to this C entry point; the
// lower-case export is the Fortran one (int* argument).
int MKL_Set_Num_Threads_Local(int n) __attribute__((weak));
}

namespace bk {
namespace cpu {
namespace {
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112, kPacked = 151, kBMatrix = 162;

bool have_packed_gemm() {
  return cblas_sgemm_pack_get_size != nullptr && cblas_sgemm_pack != nullptr && cblas_sgemm_compute != nullptr;
}
}  // namespace

template <typename T>
PackedWeight<T>::PackedWeight(const T* w, bool transposed, int64_t N, int64_t K, int64_t max_m)
    : w_(w), trans_(transposed), N_(N), K_(K) {
  if constexpr (sizeof(T) == sizeof(float)) {
    if (have_packed_gemm() && N > 0 && K > 0 && max_m > 0) {
      const size_t bytes = cblas_sgemm_pack_get_size(kBMatrix, int(max_m), int(N), int(K));
      packed_ = aligned_alloc(64, (bytes + 63) / 64 * 64);
      if (packed_) {
        cblas_sgemm_pack(kRowMajor, kBMatrix, trans_ ? kTrans : kNoTrans, int(max_m), int(N), int(K), 1.0f,
                         reinterpret_cast<const float*>(w), int(trans_ ? K : N), static_cast<float*>(packed_));
      }
    }
  }
}

template <typename T>
PackedWeight<T>::~PackedWeight() {
  free(packed_);
}

template <typename T>
void PackedWeight<T>::mul(int64_t M, const T* A, T* C, bool accumulate) const {
  if (M == 0) return;
  if constexpr (sizeof(T) == sizeof(float)) {
    if (packed_) {
      cblas_sgemm_compute(kRowMajor, kNoTrans, kPacked, int(M), int(N_), int(K_), reinterpret_cast<const float*>(A),
                          int(K_), static_cast<const float*>(packed_), int(N_), accumulate ? 1.0f : 0.0f,
                          reinterpret_cast<float*>(C), int(N_));
      return;
    }
  }
  gemm_rm<T>(false, trans_, M, N_, K_, T(1), A, K_, w_, trans_ ? K_ : N_, accumulate ? T(1) : T(0), C, N_);
}

SmallGemmThreads::SmallGemmThreads(double flops_per_step) {
  if (MKL_Set_Num_Threads_Local != nullptr && flops_per_step < 1e6) saved_ = MKL_Set_Num_Threads_Local(1);
}

SmallGemmThreads::~SmallGemmThreads() {
  if (saved_ >= 0) MKL_Set_Num_Threads_Local(saved_);
}

template class PackedWeight<float>;
template class PackedWeight<double>;

}  // namespace cpu
}  // namespace bk
