// The tensor-core persistent forward (lstm_forward_mma.cu), instantiated for
// __half and __nv_bfloat16 storage, with and without projection.
#pragma once
#include "cuda/lstm/lstm_step.cuh"

#if defined(__CUDACC__)
#define BK_LSTM_HD __host__ __device__ __forceinline__
#else
#define BK_LSTM_HD inline
#endif

namespace bk {
namespace cuda {
namespace lstm {

// Shared-memory layout of the mma kernel, in 16-bit elements. Rows are
// padded to round_up(P, 16) + 8 halves: 16-byte aligned for ldmatrix, and the
// 8 rows of an 8x8 matrix land on different banks.
struct MmaLayout {
  int64_t ld, m_tiles, n_rows;  // row stride; m16 tiles of 4 units x 4 gates; batch rows padded to 8
  BK_LSTM_HD static MmaLayout make(int64_t units, int64_t P, int64_t B) {
    return MmaLayout{(P + 15) / 16 * 16 + 8, (units + 3) / 4, (B + 7) / 8 * 8};
  }
  BK_LSTM_HD int64_t weights() const { return m_tiles * 16 * ld; }
  BK_LSTM_HD int64_t total(int64_t proj_rows, int64_t H) const { return weights() + n_rows * ld + proj_rows * H; }
};

// grid: blocks of all the launch's directions.
template <typename T, bool kProj>
cudaError_t launch_fwd_mma(const Dirs<Args>& g, int grid, size_t smem, cudaStream_t stream);

}  // namespace lstm
}  // namespace cuda
}  // namespace bk
