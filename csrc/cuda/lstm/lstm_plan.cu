// Persistent vs per-step: the one rule (docs/lstm.md, "CUDA kernels").
//   units  = ceil(H / SMs)            one block per SM, each owning `units` hidden units
//   blocks = ceil(H / units)          <= SMs by construction
//   smem   = forward:  (4 units P + proj_rows H) x sizeof(storage)
//            backward: (4H units + 4H proj_rows + P units) x sizeof(storage) with a projection,
//                      4H units x sizeof(storage) without
//   GRU: 3 units H x sizeof(storage), forward and backward
//   fp16/bf16 forward on tensor cores when
//            (16 ceil(units / 4) + round_up(B, 8)) (round_up(P, 16) + 8) + proj_rows H  halves fit
//   persistent  iff  smem <= the per-block opt-in limit (227 KiB on H100) and the
//                    device can hold `blocks` such blocks at once (cooperative launch).
//   bidirectional: both directions in one launch (2 x blocks) iff
//            2 x blocks <= SMs x per_sm,  per_sm = min(32, 2048 / threads, smem_per_SM / (smem + reserved))
//            (H100: 228 KiB per SM, 1 KiB reserved per block); else one direction after the other.
// Per-step uses 4 units per block (H/4 blocks: enough blocks to fill the GPU at any H).
// The per-step fp16/bf16 forward runs on tensor cores (plan.mma; lstm_step_mma.cu) with
// 8 units per block (two m16 tiles of 4 units x 4 gates) x 32 batch columns,
// W_hh streamed through 4 cp.async stages of 64 k. fp32 and every backward: FMA.
#include "cuda/lstm/lstm_cuda.h"
#include "cuda/lstm/lstm_forward_mma.h"
#include "cuda/lstm/lstm_step_mma.h"
#include "device/launch.cuh"

#include <algorithm>

namespace bk {
namespace cuda {
namespace {

constexpr int kSimSMs = 132;                  // the emulator models an H100
constexpr size_t kSimMaxSmem = 227 * 1024;    // H100 per-block opt-in limit
constexpr size_t kSimSmemPerSM = 228 * 1024;  // H100 shared memory per SM
constexpr size_t kSimReserved = 1024;         // reserved per block
constexpr int kPerStepUnits = 4;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

void device_limits(int* sms, size_t* max_smem, size_t* smem_per_sm = nullptr, size_t* reserved = nullptr) {
  *sms = kSimSMs;
  *max_smem = kSimMaxSmem;
  size_t per_sm = kSimSmemPerSM, res = kSimReserved;
#if defined(__CUDACC__)
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) == cudaSuccess) {
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) == cudaSuccess) *sms = v;
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) == cudaSuccess) *max_smem = size_t(v);
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerMultiprocessor, dev) == cudaSuccess) per_sm = size_t(v);
    if (cudaDeviceGetAttribute(&v, cudaDevAttrReservedSharedMemoryPerBlock, dev) == cudaSuccess) res = size_t(v);
  }
#endif
  if (smem_per_sm) *smem_per_sm = per_sm;
  if (reserved) *reserved = res;
}

// Blocks of kLstmThreads threads and `smem` bytes one SM holds at once
// (registers are the launch's check: launch_persistent).
int blocks_per_sm(size_t smem, size_t smem_per_sm, size_t reserved) {
  const int64_t by_threads = 2048 / kLstmThreads, by_smem = int64_t(smem_per_sm / (smem + reserved));
  return int(std::min<int64_t>({32, by_threads, by_smem}));
}

// Both directions in one launch iff 2 x blocks fit co-resident (the per-step path always does).
LstmPlan with_dirs(LstmPlan plan, int dirs, size_t smem_per_sm, size_t reserved) {
  plan.per_sm = blocks_per_sm(plan.smem, smem_per_sm, reserved);
  const bool fits = !plan.persistent || int64_t(dirs) * plan.blocks <= int64_t(plan.max_blocks) * plan.per_sm;
  plan.dirs = fits ? dirs : 1;
  return plan;
}

// proj_size: 0 without projection; its rows are split evenly over the grid.
LstmPlan choose(LstmPlan plan, int64_t H, int64_t units, int64_t blocks, int64_t proj_size, LstmPath force) {
  plan.persistent = force == LstmPath::PerStep ? false : plan.smem <= plan.max_smem;
  if (plan.persistent) {
    plan.units = int(units);
    plan.blocks = int(blocks);
    plan.proj_rows = int(ceil_div(proj_size, blocks));
  } else {
    plan.units = plan.mma ? lstm::kStepMmaUnits : kPerStepUnits;  // mma: the fp16/bf16 forward (lstm_plan)
    plan.blocks = int(ceil_div(H, plan.units));
    plan.proj_rows = int(ceil_div(proj_size, plan.blocks));
    plan.smem = 0;
  }
  return plan;
}

}  // namespace

LstmPlan lstm_plan(const LstmParams& p, DType storage, bool backward, LstmPath force, int dirs) {
  LstmPlan plan;
  const int64_t es = storage == DType::F32 ? 4 : 2, H = p.H, P = p.P, G = 4 * H;
  const bool proj = p.w_hr != nullptr;
  size_t smem_per_sm = 0, reserved = 0;
  device_limits(&plan.max_blocks, &plan.max_smem, &smem_per_sm, &reserved);
  const int64_t units = ceil_div(H, plan.max_blocks);
  const int64_t blocks = ceil_div(H, units);
  const int64_t pr = proj ? ceil_div(P, blocks) : 0;
  const int64_t elems = backward ? (proj ? G * pr + P * units : G * units) : 4 * units * P + pr * H;
  plan.smem = size_t(elems * es);
  // fp16/bf16 forward on the per-step path (forced, or the FMA slice does not
  // fit, so the larger mma one does not either): tensor cores (lstm_step_mma.cu).
  plan.mma = !backward && es == 2 && (force == LstmPath::PerStep || plan.smem > plan.max_smem);
  // fp16/bf16 forward: tensor cores when their padded tiles (and h staged in
  // shared memory) fit too; else the FMA kernel.
  if (!backward && es == 2 && force != LstmPath::PerStep && force != LstmPath::PersistentFma) {
    const size_t mma_smem = size_t(lstm::MmaLayout::make(units, P, p.B).total(pr, H) * es);
    if (mma_smem <= plan.max_smem) {
      plan.smem = mma_smem;
      plan.mma = true;
    }
  }
  return with_dirs(choose(plan, H, units, blocks, proj ? P : 0, force), dirs, smem_per_sm, reserved);
}

bool lstm_bidir_compatible(const LstmParams p[2], const LstmCudaWork w[2]) {
  return !p[0].reverse && p[1].reverse && p[0].T == p[1].T && p[0].B == p[1].B && p[0].H == p[1].H &&
         p[0].P == p[1].P && (p[0].w_hr == nullptr) == (p[1].w_hr == nullptr) && w[0].storage == w[1].storage;
}

// GRU: W_hh rows (forward) or columns (backward) of 3 gates per unit.
LstmPlan gru_plan(const GruParams& p, DType storage, LstmPath force, int dirs) {
  LstmPlan plan;
  const int64_t es = storage == DType::F32 ? 4 : 2, H = p.H;
  size_t smem_per_sm = 0, reserved = 0;
  device_limits(&plan.max_blocks, &plan.max_smem, &smem_per_sm, &reserved);
  const int64_t units = ceil_div(H, plan.max_blocks);
  plan.smem = size_t(3 * units * H * es);
  return with_dirs(choose(plan, H, units, ceil_div(H, units), 0, force), dirs, smem_per_sm, reserved);
}

}  // namespace cuda
}  // namespace bk
