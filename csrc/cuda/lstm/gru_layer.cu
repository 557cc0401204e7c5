// GRU over a whole sequence, forward and backward through time, torch's
// equations (common/gru_params.h). Same structure as the LSTM kernels
// (lstm_forward.cu, lstm_backward.cu): a block owns `units` hidden units,
// one warp per (unit, batch row), persistent with grid sync per step or one
// launch per step.
//   forward:  a = W_hh h_{t-1} + b_hh (3 gates), r, z, n, h_t = n + z (h_{t-1} - n)
//   backward: dh = grad_y[t] + z_next dh_next + da_next W_hh (columns of the
//             block's units), then dx, da for the block's units
#include "cuda/lstm/gru_cuda.h"
#include "cuda/lstm/lstm_step.cuh"

namespace bk {
namespace cuda {
namespace lstm {
namespace {

struct GruArgs {
  GruParams p;
  GruCudaWork w;
  int units;
};

BK_DEVICE int64_t gru_fwd_t(const GruParams& p, int64_t s) { return p.reverse ? p.T - 1 - s : s; }
BK_DEVICE int64_t gru_bwd_t(const GruParams& p, int64_t s) { return p.reverse ? s : p.T - 1 - s; }

template <typename T>
BK_DEVICE void gru_fwd_phase(const GruArgs& a, int64_t s, const WView<T>& w, int64_t u0, int nU) {
  const GruParams& p = a.p;
  const int64_t B = p.B, H = p.H, G = 3 * H, t = gru_fwd_t(p, s);
  const float* hprev = s == 0 ? a.w.h0 : a.w.hbuf + ((s - 1) & 1) * B * H;
  const T* xp = static_cast<const T*>(p.x_proj) + t * B * G;
  const int lane = lane_id();
  for (int64_t it = warp_id(); it < int64_t(nU) * B; it += num_warps()) {
    const int j = int(it % nU);
    const int64_t b = it / nU, u = u0 + j;
    float acc[3];
    dotq<3>(w, j, hprev + b * H, H, lane, acc);
    if (lane != 0) continue;
    const float* bh = a.w.b_hh;
    const float ar = acc[0] + (bh ? bh[u] : 0.f), az = acc[1] + (bh ? bh[H + u] : 0.f);
    const float an = acc[2] + (bh ? bh[2 * H + u] : 0.f);
    const T* x = xp + b * G + u;
    const float r = sigmoid(dev::to_float(x[0]) + ar), z = sigmoid(dev::to_float(x[H]) + az);
    const float n = tanhf(dev::to_float(x[2 * H]) + r * an);
    const float h = n + z * (hprev[b * H + u] - n);
    a.w.hbuf[(s & 1) * B * H + b * H + u] = h;
    static_cast<T*>(p.y)[(t * B + b) * H + u] = dev::from_float<T>(h);
    if (p.ws) {
      float* ws = static_cast<float*>(p.ws) + (t * B + b) * 4 * H + u;
      ws[0] = r;
      ws[H] = z;
      ws[2 * H] = n;
      ws[3 * H] = an;
    }
  }
}

template <typename T>
BK_DEVICE void gru_bwd_phase(const GruArgs& a, int64_t s, const WView<T>& wcol, int64_t u0, int nU) {
  const GruParams& p = a.p;
  const int64_t B = p.B, H = p.H, G = 3 * H, t = gru_bwd_t(p, s), t_next = p.reverse ? t - 1 : t + 1;
  const T* gy = static_cast<const T*>(p.grad_y) + t * B * H;
  const int lane = lane_id();
  for (int64_t it = warp_id(); it < int64_t(nU) * B; it += num_warps()) {
    const int j = int(it % nU);
    const int64_t b = it / nU, u = u0 + j;
    float dh = s == 0 ? a.w.grad_hT[b * H + u]
                      : a.w.dd[b * H + u] + dot1(wcol, j, a.w.da + (t_next * B + b) * G, G, lane);
    if (lane != 0) continue;
    dh += dev::to_float(gy[b * H + u]);
    const float* ws = static_cast<const float*>(p.ws) + (t * B + b) * 4 * H + u;
    const float r = ws[0], z = ws[H], n = ws[2 * H], an = ws[3 * H];
    const float hp = a.w.h_prev[(t * B + b) * H + u];
    const float dn = dh * (1.f - z) * (1.f - n * n);
    const float dr = dn * an * r * (1.f - r);
    const float dz = dh * (hp - n) * z * (1.f - z);
    float* dx = a.w.dx + (t * B + b) * G + u;
    float* da = a.w.da + (t * B + b) * G + u;
    dx[0] = dr;
    dx[H] = dz;
    dx[2 * H] = dn;
    da[0] = dr;
    da[H] = dz;
    da[2 * H] = dn * r;
    a.w.dd[b * H + u] = dh * z;
  }
}

// Shared memory: forward W_hh rows [3][units][H]; backward W_hh columns [units][3H].
template <typename T, bool kBackward>
BK_GLOBAL void __launch_bounds__(kLstmThreads, 1) gru_persistent(Dirs<GruArgs> g) {
  int64_t blk;
  const GruArgs& a = my_dir(g, &blk);
  const GruParams& p = a.p;
  BK_SHARED_DYNAMIC(T, smem);
  const int U = a.units;
  const int64_t H = p.H, G = 3 * H, u0 = blk * U;
  const int nU = clamp_count(H, u0, U);
  const T* whh = static_cast<const T*>(p.w_hh);
  for (int64_t e = threadIdx.x; e < 3 * nU * H; e += blockDim.x) {
    if constexpr (kBackward) {
      const int64_t j = e / G, row = e % G;
      smem[j * G + row] = whh[row * H + u0 + j];
    } else {
      const int64_t q = e / (nU * H), r = e % (nU * H), j = r / H, k = r % H;
      smem[(q * U + j) * H + k] = whh[(q * H + u0 + j) * H + k];
    }
  }
  __syncthreads();
  for (int64_t s = 0; s < p.T; ++s) {
    if constexpr (kBackward) gru_bwd_phase<T>(a, s, WView<T>{smem, 0, G, 1}, u0, nU);
    else gru_fwd_phase<T>(a, s, WView<T>{smem, int64_t(U) * H, H, 1}, u0, nU);
    dev::grid_sync();  // h_t (forward) or da_t (backward) complete before the next step reads it
  }
}

template <typename T, bool kBackward>
BK_GLOBAL void __launch_bounds__(kLstmThreads) gru_step(Dirs<GruArgs> g, int64_t s) {
  int64_t blk;
  const GruArgs& a = my_dir(g, &blk);
  const GruParams& p = a.p;
  const int64_t u0 = blk * a.units, H = p.H;
  const T* whh = static_cast<const T*>(p.w_hh);
  const int nU = clamp_count(H, u0, a.units);
  if constexpr (kBackward) gru_bwd_phase<T>(a, s, WView<T>{whh + u0, 0, 1, H}, u0, nU);
  else gru_fwd_phase<T>(a, s, WView<T>{whh + u0 * H, H * H, H, 1}, u0, nU);
}

Dirs<GruArgs> gru_dirs(const GruParams* p, const GruCudaWork* w, int n, const LstmPlan& plan) {
  Dirs<GruArgs> g{};
  for (int k = 0; k < n; ++k) g.d[k] = GruArgs{p[k], w[k], plan.units};
  g.n = n;
  g.blocks = plan.blocks;
  return g;
}

// n = 1: one direction; n = 2: both directions of a bidirectional layer in one
// launch where the plan lets them (as lstm_forward.cu does).
template <typename T, bool kBackward>
cudaError_t run_typed(const GruParams* p, const GruCudaWork* w, int n, LstmPath force, cudaStream_t stream) {
  LstmPlan plan = gru_plan(p[0], w[0].storage, force, n);
  if (force != LstmPath::Auto && force != LstmPath::PerStep && !plan.persistent) {
    return cudaErrorCooperativeLaunchTooLarge;
  }
  auto one_by_one = [&] {
    cudaError_t err = run_typed<T, kBackward>(p, w, 1, force, stream);
    return err == cudaSuccess ? run_typed<T, kBackward>(p + 1, w + 1, 1, force, stream) : err;
  };
  if (plan.dirs < n) return one_by_one();
  if (plan.persistent) {
    const cudaError_t err = launch_persistent<gru_persistent<T, kBackward>>(n * plan.blocks, plan.smem, stream,
                                                                            gru_dirs(p, w, n, plan));
    if (!fall_back_to_per_step(err, force)) return err;
    if (n == 2) return one_by_one();
    plan = gru_plan(p[0], w[0].storage, LstmPath::PerStep, n);
  }
  const Dirs<GruArgs> g = gru_dirs(p, w, n, plan);
  const dim3 grid{unsigned(n * plan.blocks)}, block{kLstmThreads};
  for (int64_t s = 0; s < p[0].T; ++s) {
    const cudaError_t err = BK_LAUNCH((gru_step<T, kBackward>), grid, block, 0, stream, g, s);
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <bool kBackward>
cudaError_t run(const GruParams* p, const GruCudaWork* w, int n, LstmPath force, cudaStream_t stream) {
  if (p[0].T == 0 || p[0].B == 0) return cudaSuccess;
  switch (w[0].storage) {
    case DType::F32: return run_typed<float, kBackward>(p, w, n, force, stream);
    case DType::F16: return run_typed<__half, kBackward>(p, w, n, force, stream);
    case DType::BF16: return run_typed<__nv_bfloat16, kBackward>(p, w, n, force, stream);
    default: return cudaErrorInvalidValue;
  }
}

bool bidir_compatible(const GruParams p[2], const GruCudaWork w[2]) {
  return !p[0].reverse && p[1].reverse && p[0].T == p[1].T && p[0].B == p[1].B && p[0].H == p[1].H &&
         w[0].storage == w[1].storage;
}

}  // namespace
}  // namespace lstm

cudaError_t gru_forward(const GruParams& p, const GruCudaWork& w, LstmPath force, cudaStream_t stream) {
  return lstm::run<false>(&p, &w, 1, force, stream);
}
cudaError_t gru_backward(const GruParams& p, const GruCudaWork& w, LstmPath force, cudaStream_t stream) {
  return lstm::run<true>(&p, &w, 1, force, stream);
}
cudaError_t gru_forward_bidir(const GruParams p[2], const GruCudaWork w[2], LstmPath force, cudaStream_t stream) {
  return lstm::bidir_compatible(p, w) ? lstm::run<false>(p, w, 2, force, stream) : cudaErrorInvalidValue;
}
cudaError_t gru_backward_bidir(const GruParams p[2], const GruCudaWork w[2], LstmPath force, cudaStream_t stream) {
  return lstm::bidir_compatible(p, w) ? lstm::run<true>(p, w, 2, force, stream) : cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace bk
