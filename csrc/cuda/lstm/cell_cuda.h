// Host entry points of the fused single-step LSTM and GRU cells (one launch:
// both GEMMs, the biases and the gates), for step-by-step decoding.
// Torch-free: raw pointers, row-major dense tensors, the caller's stream.
#pragma once
#include "cuda/lstm/lstm_cuda.h"

namespace bk {
namespace cuda {

struct CellParams {
  int64_t B = 0, I = 0, H = 0;
  DType storage = DType::F32;  // x, h, c, weights, biases, h1, c1: F32, F16 or BF16
  const void* x = nullptr;     // [B, I]
  const void* h = nullptr;     // [B, H]
  const void* c = nullptr;     // [B, H] (LSTM only)
  const void* w_ih = nullptr;  // [G H, I], G = 4 (LSTM) or 3 (GRU)
  const void* w_hh = nullptr;  // [G H, H]
  const void* b_ih = nullptr;  // [G H] or null
  const void* b_hh = nullptr;  // [G H] or null
  void* h1 = nullptr;          // [B, H]
  void* c1 = nullptr;          // [B, H] (LSTM only)
  float* gates = nullptr;      // LSTM: [B, 4H] activated i, f, g, o; GRU: [B, 4H] r, z, n, W_hn h + b_hn; or null
  float* cs = nullptr;         // LSTM: [B, H] c1 in fp32 (for the backward), or null
};

cudaError_t lstm_cell_forward(const CellParams& p, cudaStream_t stream);
cudaError_t gru_cell_forward(const CellParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace bk
