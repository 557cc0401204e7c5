// LSTM forward over a whole sequence: the persistent kernel (one cooperative
// launch, weights resident in shared memory, grid sync between steps) and the
// per-step kernels (weights from global memory, one launch per step). Both run
// the same phases:
//   gates: z = x_proj[t] + W_hh h_{t-1} for the block's units, gates, c, m
//   proj:  h_t = W_hr m_t for the block's projection rows (proj_size > 0 only)
// fp32 accumulation and fp32 h/c between steps for every storage type.
#include "cuda/lstm/lstm_forward.cuh"
#include "cuda/lstm/lstm_forward_mma.h"

namespace bk {
namespace cuda {
namespace lstm {
namespace {

// Shared memory: W_hh rows of the block's units, gate-major [4][units][P],
// then W_hr rows of its projection slice [proj_rows][H].
template <typename T, bool kProj>
BK_GLOBAL void __launch_bounds__(kLstmThreads, 1) lstm_fwd_persistent(Args a) {
  const LstmParams& p = a.p;
  BK_SHARED_DYNAMIC(T, smem);
  const int U = a.units;
  const int64_t H = p.H, P = p.P, u0 = int64_t(blockIdx.x) * U, p0 = int64_t(blockIdx.x) * a.proj_rows;
  const int nU = clamp_count(H, u0, U), nPr = kProj ? clamp_count(P, p0, a.proj_rows) : 0;
  const T* whh = static_cast<const T*>(p.w_hh);
  for (int64_t e = threadIdx.x; e < 4 * nU * P; e += blockDim.x) {
    const int64_t q = e / (nU * P), r = e % (nU * P), j = r / P, k = r % P;
    smem[(q * U + j) * P + k] = whh[(q * H + u0 + j) * P + k];
  }
  T* wr_s = smem + 4 * int64_t(U) * P;
  if constexpr (kProj) {
    const T* whr = static_cast<const T*>(p.w_hr) + p0 * H;
    for (int64_t e = threadIdx.x; e < nPr * H; e += blockDim.x) wr_s[e] = whr[e];
  }
  __syncthreads();
  const WView<T> w{smem, int64_t(U) * P, P, 1}, wr{wr_s, 0, H, 1};
  for (int64_t s = 0; s < p.T; ++s) {
    gates_phase<T, kProj>(a, s, w, u0, nU);
    if constexpr (kProj) {
      dev::grid_sync();  // m_t of every unit written
      proj_phase<T>(a, s, wr, p0, nPr);
    }
    dev::grid_sync();  // h_t complete before any block reads it (double buffer: one sync suffices)
  }
}

template <typename T, bool kProj>
BK_GLOBAL void __launch_bounds__(kLstmThreads) lstm_fwd_gates_step(Args a, int64_t s) {
  const LstmParams& p = a.p;
  const int64_t u0 = int64_t(blockIdx.x) * a.units;
  const T* whh = static_cast<const T*>(p.w_hh) + u0 * p.P;
  gates_phase<T, kProj>(a, s, WView<T>{whh, p.H * p.P, p.P, 1}, u0, clamp_count(p.H, u0, a.units));
}

template <typename T>
BK_GLOBAL void __launch_bounds__(kLstmThreads) lstm_fwd_proj_step(Args a, int64_t s) {
  const LstmParams& p = a.p;
  const int64_t p0 = int64_t(blockIdx.x) * a.proj_rows;
  const T* whr = static_cast<const T*>(p.w_hr) + p0 * p.H;
  proj_phase<T>(a, s, WView<T>{whr, 0, p.H, 1}, p0, clamp_count(p.P, p0, a.proj_rows));
}

template <typename T, bool kProj>
cudaError_t forward_typed(const LstmParams& p, const LstmCudaWork& w, LstmPath force, cudaStream_t stream) {
  LstmPlan plan = lstm_plan(p, w.storage, false, force);
  if (force != LstmPath::Auto && force != LstmPath::PerStep && !plan.persistent) {
    return cudaErrorCooperativeLaunchTooLarge;
  }
  if (plan.persistent) {
    const Args a{p, w, plan.units, plan.proj_rows};
    cudaError_t err;
    if constexpr (sizeof(T) == 2) {
      err = plan.mma ? launch_fwd_mma<T, kProj>(a, plan, stream)
                     : launch_persistent<lstm_fwd_persistent<T, kProj>>(plan.blocks, plan.smem, stream, a);
    } else {
      err = launch_persistent<lstm_fwd_persistent<T, kProj>>(plan.blocks, plan.smem, stream, a);
    }
    if (!fall_back_to_per_step(err, force)) return err;
    plan = lstm_plan(p, w.storage, false, LstmPath::PerStep);
  }
  const Args a{p, w, plan.units, plan.proj_rows};
  const dim3 grid{unsigned(plan.blocks)}, block{kLstmThreads};
  for (int64_t s = 0; s < p.T; ++s) {
    cudaError_t err = BK_LAUNCH((lstm_fwd_gates_step<T, kProj>), grid, block, 0, stream, a, s);
    if (err == cudaSuccess && kProj) err = BK_LAUNCH((lstm_fwd_proj_step<T>), grid, block, 0, stream, a, s);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t forward_proj(const LstmParams& p, const LstmCudaWork& w, LstmPath force, cudaStream_t stream) {
  return p.w_hr ? forward_typed<T, true>(p, w, force, stream) : forward_typed<T, false>(p, w, force, stream);
}

}  // namespace
}  // namespace lstm

cudaError_t lstm_forward(const LstmParams& p, const LstmCudaWork& w, LstmPath force, cudaStream_t stream) {
  if (p.T == 0 || p.B == 0) return cudaSuccess;
  switch (w.storage) {
    case DType::F32: return lstm::forward_proj<float>(p, w, force, stream);
    case DType::F16: return lstm::forward_proj<__half>(p, w, force, stream);
    case DType::BF16: return lstm::forward_proj<__nv_bfloat16>(p, w, force, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace cuda
}  // namespace bk
