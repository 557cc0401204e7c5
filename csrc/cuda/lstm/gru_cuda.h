// Host entry points of the whole-layer GRU CUDA kernels, same two paths as
// the LSTM (lstm_cuda.h): persistent (W_hh slice resident in shared memory,
// grid sync per step) or one launch per step. GruParams from
// csrc/common/gru_params.h plus the fp32 workspaces below.
#pragma once
#include "cuda/lstm/lstm_cuda.h"

namespace bk {
namespace cuda {

struct GruCudaWork {
  DType storage = DType::F32;  // x_proj, w_hh, y, grad_y: F32, F16 or BF16
  const float* b_hh = nullptr;  // [3H] fp32 or null
  // forward (p.ws [T, B, 4H] fp32: r, z, n, W_hn h + b_hn)
  const float* h0 = nullptr;    // [B, H]
  float* hbuf = nullptr;        // [2, B, H] h_t double buffer
  // backward
  const float* h_prev = nullptr;   // [T, B, H] h_{t-1} of every step (h0 or y of the forward predecessor)
  const float* grad_hT = nullptr;  // [B, H]
  float* dx = nullptr;             // [T, B, 3H] dL/dx_proj
  float* da = nullptr;             // [T, B, 3H] dL/d(W_hh h + b_hh)
  float* dd = nullptr;             // [B, H] the direct part z * dh of dL/dh_{t-1}
};

cudaError_t gru_forward(const GruParams& p, const GruCudaWork& w, LstmPath force, cudaStream_t stream);
cudaError_t gru_backward(const GruParams& p, const GruCudaWork& w, LstmPath force, cudaStream_t stream);
// Both directions of a bidirectional layer (p[0] forward, p[1] reverse), in one
// launch when 2 x blocks fit co-resident (lstm_plan's rule); cudaErrorInvalidValue
// unless the two agree in T, B, H and storage.
cudaError_t gru_forward_bidir(const GruParams p[2], const GruCudaWork w[2], LstmPath force, cudaStream_t stream);
cudaError_t gru_backward_bidir(const GruParams p[2], const GruCudaWork w[2], LstmPath force, cudaStream_t stream);

}  // namespace cuda
}  // namespace bk
