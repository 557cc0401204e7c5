// A weight matrix multiplied from the right at every timestep:
// C[M,N] = A[M,K] op(W), op(W) = W^T (W stored [N,K]) or W (stored [K,N]).
// With MKL (torch's x86 wheels export its packed-GEMM API) W is packed once
// per layer call into MKL's internal panel layout and every step runs
// cblas_sgemm_compute on it: the per-step GEMMs have small M (the batch)
// and the same W, the case packed GEMM exists for. Otherwise, and for
// float64, each step is a plain gemm_rm.
#pragma once
#include <stdint.h>

namespace bk {
namespace cpu {

template <typename T>
class PackedWeight {
 public:
  PackedWeight(const T* w, bool transposed, int64_t N, int64_t K, int64_t max_m);
  ~PackedWeight();
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;
  // C[M,N] = A[M,K] op(W) (+ C if accumulate)
  void mul(int64_t M, const T* A, T* C, bool accumulate = false) const;

 private:
  const T* w_;
  bool trans_;
  int64_t N_, K_;
  void* packed_ = nullptr;
};

// Per-step GEMMs below ~1 MFLOP (batch 1-2 at H = 256: a GEMV over weights
// that stay in cache) lose more to MKL's thread fork/join per call (a few us,
// far worse on a loaded machine) than a second core gains: run them on the
// calling thread for the scope of one layer call (mkl_set_num_threads_local;
// a no-op without MKL).
class SmallGemmThreads {
 public:
  explicit SmallGemmThreads(double flops_per_step);
  ~SmallGemmThreads();

 private:
  int saved_ = -1;
};

}  // namespace cpu
}  // namespace bk
