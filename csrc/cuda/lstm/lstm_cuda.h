// Host entry points of the whole-layer LSTM CUDA kernels (forward and backward
// through time). Torch-free: LstmParams (csrc/common/lstm_params.h) plus the
// fp32 workspaces below, on the caller's stream.
//
// Two paths, chosen by lstm_plan():
//  - persistent: one cooperative launch for all T steps; each block owns a
//    slice of hidden units (all four gates), keeps its W_hh (and W_hr) slice in
//    shared memory for the whole sequence; h_t is exchanged through global
//    memory (double-buffered) after bk::dev::grid_sync(); the fp16/bf16
//    forward runs its step GEMM on tensor cores (lstm_forward_mma.cu);
//  - per-step: the same step code, weights read from global memory, one launch
//    per step (two with a projection): no host sync or allocation between
//    launches, so a CUDA graph can capture the loop.
// Bidirectional layers (lstm_*_bidir): both directions in one launch, the
// grid split in halves (direction = half) sharing one grid_sync per step,
// when twice the blocks fit co-resident; else one direction after the other.
#pragma once
#include "common/gru_params.h"
#include "common/lstm_params.h"

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {

// fp32 workspaces the glue allocates (the recurrence runs in fp32 whatever the
// storage dtype, as cuDNN does). x_proj, w_hh, w_hr, y and grad_y are in the
// storage type; gates, cs and everything below are fp32.
struct LstmCudaWork {
  DType storage = DType::F32;  // F32, F16 or BF16 (x_proj, w_hh, w_hr, y, grad_y)
  // forward
  const float* h0 = nullptr;  // [B, P] fp32
  const float* c0 = nullptr;  // [B, H] fp32
  float* hbuf = nullptr;      // [2, B, P] h_t double buffer (h_T = hbuf[(T-1) % 2])
  float* cstate = nullptr;    // [B, H] running cell state (ends as c_T)
  float* mbuf = nullptr;      // [B, H] m_t before the projection (proj only)
  // backward (p.gates, p.cs fp32)
  const float* grad_hT = nullptr;  // [B, P] fp32
  const float* grad_cT = nullptr;  // [B, H] fp32
  float* dz = nullptr;             // [T, B, 4H] fp32 = dL/dx_proj
  float* dc = nullptr;             // [B, H] running dL/dc (ends as grad_c0)
  float* dh_all = nullptr;         // [T, B, P] dL/dh_t (proj only: dW_hr = dh^T m)
};

// PersistentFma: the persistent path without tensor cores (tests; fp32 never uses them).
enum class LstmPath { Auto = -1, PerStep = 0, Persistent = 1, PersistentFma = 2 };

struct LstmPlan {
  bool persistent = false;
  bool mma = false;      // fp16/bf16 forward with mma.sync m16n8k16 (persistent, or per-step: lstm_step_mma.cu)
  int blocks = 0;        // grid size
  int units = 0;         // hidden units per block (all four gates of each)
  int proj_rows = 0;     // projection rows per block (0 without projection)
  size_t smem = 0;       // dynamic shared memory of the persistent kernel, bytes
  int max_blocks = 0;    // SMs
  int per_sm = 0;        // co-resident blocks per SM (threads, shared memory; the launch checks registers)
  size_t max_smem = 0;   // per-block shared memory limit used
  int dirs = 1;          // directions one launch runs: 2 only when asked for and 2 x blocks fit co-resident
};

constexpr int kLstmThreads = 128;  // 4 warps: one (unit, batch) dot product per warp at a time

// The rule: the persistent kernel is used when ceil(H / units) blocks of
// kLstmThreads threads fit co-resident (one per SM: units = ceil(H / SMs)) and
// their weight slices fit the per-block shared-memory limit; otherwise per-step.
// fp16/bf16 forward: tensor cores when their padded tiles fit as well (plan.mma).
// dirs = 2 (bidirectional): plan.dirs = 2 when 2 x blocks <= SMs x per_sm (the
// per-step path always runs both per launch), else 1: one direction after the other.
LstmPlan lstm_plan(const LstmParams& p, DType storage, bool backward, LstmPath force, int dirs = 1);

// p[0]/w[0] forward, p[1]/w[1] reverse, with equal sizes, storage and projection.
bool lstm_bidir_compatible(const LstmParams p[2], const LstmCudaWork w[2]);

// The GRU's rule, same form: 3 gates per unit, smem = 3 units H x sizeof(storage).
LstmPlan gru_plan(const GruParams& p, DType storage, LstmPath force, int dirs = 1);

cudaError_t lstm_forward(const LstmParams& p, const LstmCudaWork& w, LstmPath force, cudaStream_t stream);
cudaError_t lstm_backward(const LstmParams& p, const LstmCudaWork& w, LstmPath force, cudaStream_t stream);
// Both directions of a bidirectional layer (cudaErrorInvalidValue unless lstm_bidir_compatible).
cudaError_t lstm_forward_bidir(const LstmParams p[2], const LstmCudaWork w[2], LstmPath force, cudaStream_t stream);
cudaError_t lstm_backward_bidir(const LstmParams p[2], const LstmCudaWork w[2], LstmPath force, cudaStream_t stream);

}  // namespace cuda
}  // namespace bk
