// LSTM forward over a whole sequence: the persistent kernel (one cooperative
// launch, weights resident in shared memory, grid sync between steps) and the
// per-step kernels (weights from global memory, one launch per step; fp16/bf16
// gates on tensor cores: lstm_step_mma.cu). All run the same phases:
//   gates: z = x_proj[t] + W_hh h_{t-1} for the block's units, gates, c, m
//   proj:  h_t = W_hr m_t for the block's projection rows (proj_size > 0 only)
// fp32 accumulation and fp32 h/c between steps for every storage type.
#include "cuda/lstm/lstm_forward.cuh"
#include "cuda/lstm/lstm_forward_mma.h"
#include "cuda/lstm/lstm_step_mma.h"

namespace bk {
namespace cuda {
namespace lstm {
namespace {

// Shared memory: W_hh rows of the block's units, gate-major [4][units][P],
// then W_hr rows of its projection slice [proj_rows][H].
template <typename T, bool kProj>
BK_GLOBAL void __launch_bounds__(kLstmThreads, 1) lstm_fwd_persistent(Dirs<Args> g) {
  int64_t blk;
  const Args& a = my_dir(g, &blk);
  const LstmParams& p = a.p;
  BK_SHARED_DYNAMIC(T, smem);
  const int U = a.units;
  const int64_t H = p.H, P = p.P, u0 = blk * U, p0 = blk * a.proj_rows;
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
BK_GLOBAL void __launch_bounds__(kLstmThreads) lstm_fwd_gates_step(Dirs<Args> g, int64_t s) {
  int64_t blk;
  const Args& a = my_dir(g, &blk);
  const LstmParams& p = a.p;
  const int64_t u0 = blk * a.units;
  const T* whh = static_cast<const T*>(p.w_hh) + u0 * p.P;
  gates_phase<T, kProj>(a, s, WView<T>{whh, p.H * p.P, p.P, 1}, u0, clamp_count(p.H, u0, a.units));
}

template <typename T>
BK_GLOBAL void __launch_bounds__(kLstmThreads) lstm_fwd_proj_step(Dirs<Args> g, int64_t s) {
  int64_t blk;
  const Args& a = my_dir(g, &blk);
  const LstmParams& p = a.p;
  const int64_t p0 = blk * a.proj_rows;
  const T* whr = static_cast<const T*>(p.w_hr) + p0 * p.H;
  proj_phase<T>(a, s, WView<T>{whr, 0, p.H, 1}, p0, clamp_count(p.P, p0, a.proj_rows));
}

// n = 1: one direction; n = 2: both directions of a bidirectional layer
// (p[0] forward, p[1] reverse), in one launch when the plan lets them.
template <typename T, bool kProj>
cudaError_t forward_typed(const LstmParams* p, const LstmCudaWork* w, int n, LstmPath force, cudaStream_t stream) {
  LstmPlan plan = lstm_plan(p[0], w[0].storage, false, force, n);
  if (force != LstmPath::Auto && force != LstmPath::PerStep && !plan.persistent) {
    return cudaErrorCooperativeLaunchTooLarge;
  }
  auto one_by_one = [&] {
    cudaError_t err = forward_typed<T, kProj>(p, w, 1, force, stream);
    return err == cudaSuccess ? forward_typed<T, kProj>(p + 1, w + 1, 1, force, stream) : err;
  };
  if (plan.dirs < n) return one_by_one();  // 2x the blocks do not fit co-resident
  if (plan.persistent) {
    const Dirs<Args> g = dirs_args(p, w, n, plan);
    const int grid = n * plan.blocks;
    cudaError_t err;
    if constexpr (sizeof(T) == 2) {
      err = plan.mma ? launch_fwd_mma<T, kProj>(g, grid, plan.smem, stream)
                     : launch_persistent<lstm_fwd_persistent<T, kProj>>(grid, plan.smem, stream, g);
    } else {
      err = launch_persistent<lstm_fwd_persistent<T, kProj>>(grid, plan.smem, stream, g);
    }
    if (!fall_back_to_per_step(err, force)) return err;
    if (n == 2) return one_by_one();  // the GPU refused both at once (registers): one after the other
    plan = lstm_plan(p[0], w[0].storage, false, LstmPath::PerStep, n);
  }
  const Dirs<Args> g = dirs_args(p, w, n, plan);
  const dim3 grid{unsigned(n * plan.blocks)}, block{kLstmThreads};
  for (int64_t s = 0; s < p[0].T; ++s) {
    cudaError_t err;
    if constexpr (sizeof(T) == 2) {
      err = launch_fwd_step_mma<T, kProj>(g, n * plan.blocks, s, stream);  // the plan's rule: always, for fp16/bf16
    } else {
      err = BK_LAUNCH((lstm_fwd_gates_step<T, kProj>), grid, block, 0, stream, g, s);
    }
    if (err == cudaSuccess && kProj) err = BK_LAUNCH((lstm_fwd_proj_step<T>), grid, block, 0, stream, g, s);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t forward_proj(const LstmParams* p, const LstmCudaWork* w, int n, LstmPath force, cudaStream_t stream) {
  return p[0].w_hr ? forward_typed<T, true>(p, w, n, force, stream) : forward_typed<T, false>(p, w, n, force, stream);
}

cudaError_t forward_dirs(const LstmParams* p, const LstmCudaWork* w, int n, LstmPath force, cudaStream_t stream) {
  if (p[0].T == 0 || p[0].B == 0) return cudaSuccess;
  switch (w[0].storage) {
    case DType::F32: return forward_proj<float>(p, w, n, force, stream);
    case DType::F16: return forward_proj<__half>(p, w, n, force, stream);
    case DType::BF16: return forward_proj<__nv_bfloat16>(p, w, n, force, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace
}  // namespace lstm

cudaError_t lstm_forward(const LstmParams& p, const LstmCudaWork& w, LstmPath force, cudaStream_t stream) {
  return lstm::forward_dirs(&p, &w, 1, force, stream);
}

cudaError_t lstm_forward_bidir(const LstmParams p[2], const LstmCudaWork w[2], LstmPath force, cudaStream_t stream) {
  if (!lstm_bidir_compatible(p, w)) return cudaErrorInvalidValue;
  return lstm::forward_dirs(p, w, 2, force, stream);
}

}  // namespace cuda
}  // namespace bk
