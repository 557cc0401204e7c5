// LSTM backward through time: persistent (one cooperative launch, weight
// columns resident in shared memory, grid sync per step) and per-step paths,
// sharing the phases below. Steps run in the reverse of the forward order;
// position s processes t = bwd_t(s).
//   dh   (proj only): dh_t = grad_y[t] (+ grad_h_T at s = 0) + dz_{t_next} W_hh[:, rows]
//   gates: dm = dh_t W_hr (proj) or dh_t for the block's units, then the gate
//          backward from the saved activations: dz_t, and dc carried to t_prev.
// The weight gradients (large GEMMs over all T*B rows) and grad_h0 = dz W_hh
// are the glue's, after the loop.
#include "cuda/lstm/lstm_step.cuh"

namespace bk {
namespace cuda {
namespace lstm {
namespace {

BK_DEVICE int64_t bwd_t(const LstmParams& p, int64_t s) { return p.reverse ? s : p.T - 1 - s; }
// the step processed just before (its dz feeds this one's dh)
BK_DEVICE int64_t bwd_t_next(const LstmParams& p, int64_t t) { return p.reverse ? t - 1 : t + 1; }
// the forward predecessor (its cell state is c_{t-1})
BK_DEVICE int64_t bwd_t_prev(const LstmParams& p, int64_t t) { return p.reverse ? t + 1 : t - 1; }

// dh_t [B, P] for the block's rows of the output (projection case).
template <typename T>
BK_DEVICE void dh_phase(const Args& a, int64_t s, const WView<T>& wcol, int64_t p0, int nPr) {
  const LstmParams& p = a.p;
  const int64_t B = p.B, P = p.P, G = 4 * p.H, t = bwd_t(p, s);
  const T* gy = static_cast<const T*>(p.grad_y) + t * B * P;
  const int lane = lane_id();
  for (int64_t it = warp_id(); it < int64_t(nPr) * B; it += num_warps()) {
    const int j = int(it % nPr);
    const int64_t b = it / nPr, row = p0 + j;
    const float rec = s == 0 ? a.w.grad_hT[b * P + row]
                             : dot1(wcol, j, a.w.dz + bwd_t_next(p, t) * B * G + b * G, G, lane);
    if (lane == 0) a.w.dh_all[(t * B + b) * P + row] = rec + dev::to_float(gy[b * P + row]);
  }
}

template <typename T, bool kProj>
BK_DEVICE void gates_bwd_phase(const Args& a, int64_t s, const WView<T>& w, int64_t u0, int nU) {
  const LstmParams& p = a.p;
  const int64_t B = p.B, H = p.H, P = p.P, G = 4 * H, t = bwd_t(p, s);
  const float* gates = static_cast<const float*>(p.gates) + t * B * G;
  const float* cs = static_cast<const float*>(p.cs);
  const int lane = lane_id();
  for (int64_t it = warp_id(); it < int64_t(nU) * B; it += num_warps()) {
    const int j = int(it % nU);
    const int64_t b = it / nU, u = u0 + j;
    float dm;
    if constexpr (kProj) {
      dm = dot1(w, j, a.w.dh_all + (t * B + b) * P, P, lane);
    } else {
      dm = s == 0 ? a.w.grad_hT[b * P + u] : dot1(w, j, a.w.dz + bwd_t_next(p, t) * B * G + b * G, G, lane);
      dm += dev::to_float(static_cast<const T*>(p.grad_y)[(t * B + b) * P + u]);
    }
    if (lane != 0) continue;
    const float* g = gates + b * G + u;
    const float i = g[0], f = g[H], gg = g[2 * H], o = g[3 * H];
    const float c = cs[(t * B + b) * H + u];
    const float cp = s == p.T - 1 ? a.w.c0[b * H + u] : cs[(bwd_t_prev(p, t) * B + b) * H + u];
    const float dcn = s == 0 ? a.w.grad_cT[b * H + u] : a.w.dc[b * H + u];
    const float tc = tanhf(c);
    const float dct = dcn + dm * o * (1.f - tc * tc);
    float* dz = a.w.dz + (t * B + b) * G + u;
    dz[0] = dct * gg * i * (1.f - i);
    dz[H] = dct * cp * f * (1.f - f);
    dz[2 * H] = dct * i * (1.f - gg * gg);
    dz[3 * H] = dm * tc * o * (1.f - o);
    a.w.dc[b * H + u] = dct * f;
  }
}

// Shared memory, transposed so each warp's lanes read consecutive elements:
// without projection W_hh[:, units] as [units][4H]; with it W_hh[:, rows] as
// [proj_rows][4H], then W_hr[:, units] as [units][P].
template <typename T, bool kProj>
BK_GLOBAL void __launch_bounds__(kLstmThreads, 1) lstm_bwd_persistent(Dirs<Args> g) {
  int64_t blk;
  const Args& a = my_dir(g, &blk);
  const LstmParams& p = a.p;
  BK_SHARED_DYNAMIC(T, smem);
  const int U = a.units, Pr = a.proj_rows;
  const int64_t H = p.H, P = p.P, G = 4 * H, u0 = blk * U, p0 = blk * Pr;
  const int nU = clamp_count(H, u0, U), nPr = kProj ? clamp_count(P, p0, Pr) : 0;
  const T* whh = static_cast<const T*>(p.w_hh);
  const int64_t c0 = kProj ? p0 : u0, ncols = kProj ? nPr : nU;  // W_hh columns this block keeps
  for (int64_t e = threadIdx.x; e < ncols * G; e += blockDim.x) {
    const int64_t j = e / G, row = e % G;
    smem[j * G + row] = whh[row * P + c0 + j];
  }
  T* wr_s = smem + int64_t(Pr) * G;
  if constexpr (kProj) {
    const T* whr = static_cast<const T*>(p.w_hr);
    for (int64_t e = threadIdx.x; e < nU * P; e += blockDim.x) {
      const int64_t j = e / P, k = e % P;
      wr_s[j * P + k] = whr[k * H + u0 + j];
    }
  }
  __syncthreads();
  const WView<T> wcol{smem, 0, G, 1}, wr{wr_s, 0, P, 1};
  for (int64_t s = 0; s < p.T; ++s) {
    if constexpr (kProj) {
      dh_phase<T>(a, s, wcol, p0, nPr);
      dev::grid_sync();  // dh_t complete
      gates_bwd_phase<T, true>(a, s, wr, u0, nU);
    } else {
      gates_bwd_phase<T, false>(a, s, wcol, u0, nU);
    }
    dev::grid_sync();  // dz_t complete before the next step reads it
  }
}

template <typename T>
BK_GLOBAL void __launch_bounds__(kLstmThreads) lstm_bwd_dh_step(Dirs<Args> g, int64_t s) {
  int64_t blk;
  const Args& a = my_dir(g, &blk);
  const LstmParams& p = a.p;
  const int64_t p0 = blk * a.proj_rows;
  const T* whh = static_cast<const T*>(p.w_hh) + p0;  // column p0 + j, row k at [k * P]
  dh_phase<T>(a, s, WView<T>{whh, 0, 1, p.P}, p0, clamp_count(p.P, p0, a.proj_rows));
}

template <typename T, bool kProj>
BK_GLOBAL void __launch_bounds__(kLstmThreads) lstm_bwd_gates_step(Dirs<Args> g, int64_t s) {
  int64_t blk;
  const Args& a = my_dir(g, &blk);
  const LstmParams& p = a.p;
  const int64_t u0 = blk * a.units;
  const WView<T> w = kProj ? WView<T>{static_cast<const T*>(p.w_hr) + u0, 0, 1, p.H}
                           : WView<T>{static_cast<const T*>(p.w_hh) + u0, 0, 1, p.P};
  gates_bwd_phase<T, kProj>(a, s, w, u0, clamp_count(p.H, u0, a.units));
}

// n = 1: one direction; n = 2: both directions of a bidirectional layer, as in the forward.
template <typename T, bool kProj>
cudaError_t backward_typed(const LstmParams* p, const LstmCudaWork* w, int n, LstmPath force, cudaStream_t stream) {
  LstmPlan plan = lstm_plan(p[0], w[0].storage, true, force, n);
  if (force != LstmPath::Auto && force != LstmPath::PerStep && !plan.persistent) {
    return cudaErrorCooperativeLaunchTooLarge;
  }
  auto one_by_one = [&] {
    cudaError_t err = backward_typed<T, kProj>(p, w, 1, force, stream);
    return err == cudaSuccess ? backward_typed<T, kProj>(p + 1, w + 1, 1, force, stream) : err;
  };
  if (plan.dirs < n) return one_by_one();
  if (plan.persistent) {
    const cudaError_t err = launch_persistent<lstm_bwd_persistent<T, kProj>>(n * plan.blocks, plan.smem, stream,
                                                                             dirs_args(p, w, n, plan));
    if (!fall_back_to_per_step(err, force)) return err;
    if (n == 2) return one_by_one();
    plan = lstm_plan(p[0], w[0].storage, true, LstmPath::PerStep, n);
  }
  const Dirs<Args> g = dirs_args(p, w, n, plan);
  const dim3 grid{unsigned(n * plan.blocks)}, block{kLstmThreads};
  for (int64_t s = 0; s < p[0].T; ++s) {
    cudaError_t err = cudaSuccess;
    if (kProj) err = BK_LAUNCH((lstm_bwd_dh_step<T>), grid, block, 0, stream, g, s);
    if (err == cudaSuccess) err = BK_LAUNCH((lstm_bwd_gates_step<T, kProj>), grid, block, 0, stream, g, s);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t backward_proj(const LstmParams* p, const LstmCudaWork* w, int n, LstmPath force, cudaStream_t stream) {
  return p[0].w_hr ? backward_typed<T, true>(p, w, n, force, stream) : backward_typed<T, false>(p, w, n, force, stream);
}

cudaError_t backward_dirs(const LstmParams* p, const LstmCudaWork* w, int n, LstmPath force, cudaStream_t stream) {
  if (p[0].T == 0 || p[0].B == 0) return cudaSuccess;
  switch (w[0].storage) {
    case DType::F32: return backward_proj<float>(p, w, n, force, stream);
    case DType::F16: return backward_proj<__half>(p, w, n, force, stream);
    case DType::BF16: return backward_proj<__nv_bfloat16>(p, w, n, force, stream);
    default: return cudaErrorInvalidValue;
  }
}

}  // namespace
}  // namespace lstm

cudaError_t lstm_backward(const LstmParams& p, const LstmCudaWork& w, LstmPath force, cudaStream_t stream) {
  return lstm::backward_dirs(&p, &w, 1, force, stream);
}

cudaError_t lstm_backward_bidir(const LstmParams p[2], const LstmCudaWork w[2], LstmPath force, cudaStream_t stream) {
  if (!lstm_bidir_compatible(p, w)) return cudaErrorInvalidValue;
  return lstm::backward_dirs(p, w, 2, force, stream);
}

}  // namespace cuda
}  // namespace bk
