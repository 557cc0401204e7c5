// The per-step fp16/bf16 LSTM forward on tensor cores (lstm_step_mma.cu): one
// launch per step, W_hh streamed from global memory; the plan's per-step
// path for fp16/bf16 storage (fp32 keeps the FMA kernel lstm_fwd_gates_step).
#pragma once
#include "cuda/lstm/lstm_step.cuh"

namespace bk {
namespace cuda {
namespace lstm {

// Hidden units per block: 8 units x 4 gates = two m16 tiles. Small, so that
// the grid has ceil(H / 8) blocks along the units (192 at H = 1536, above the
// 132 SMs of an H100) to spread the W_hh stream over every SM.
constexpr int kStepMmaUnits = 8;
// Batch columns per block (4 n8 tiles); grid.y = ceil(B / kStepMmaCols).
constexpr int kStepMmaCols = 32;

// Gates of step s (plan.units == kStepMmaUnits, plan.blocks == ceil(H / units));
// grid: the unit blocks of all of g's directions (n x plan.blocks).
template <typename T, bool kProj>
cudaError_t launch_fwd_step_mma(const Dirs<Args>& g, int grid, int64_t s, cudaStream_t stream);

}  // namespace lstm
}  // namespace cuda
}  // namespace bk
