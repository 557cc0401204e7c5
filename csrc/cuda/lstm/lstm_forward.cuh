// The phases of one forward step, shared by the FMA kernels (lstm_forward.cu)
// and the tensor-core kernel (lstm_forward_mma.cu):
//   cell_update: gates, c, m (or h) of one (batch row, unit) from its
//                recurrent pre-activations
//   gates_phase: W_hh h_{t-1} by warp dot products, then cell_update
//   proj_phase:  h_t = W_hr m_t for the block's projection rows
#pragma once
#include "cuda/lstm/lstm_step.cuh"

namespace bk {
namespace cuda {
namespace lstm {

// The LSTM cell of (batch row b, unit u) at step s from the recurrent
// pre-activations acc = (W_hh h_{t-1})[i, f, g, o]: gates, c, m (or h).
template <typename T, bool kProj>
BK_DEVICE void cell_update(const Args& a, int64_t s, int64_t b, int64_t u, const float acc[4]) {
  const LstmParams& p = a.p;
  const int64_t B = p.B, H = p.H, P = p.P, G = 4 * H, t = fwd_t(p, s);
  const float* cprev = s == 0 ? a.w.c0 : a.w.cstate;
  const T* x = static_cast<const T*>(p.x_proj) + (t * B + b) * G + u;
  const float i = sigmoid(acc[0] + dev::to_float(x[0]));
  const float f = sigmoid(acc[1] + dev::to_float(x[H]));
  const float g = tanhf(acc[2] + dev::to_float(x[2 * H]));
  const float o = sigmoid(acc[3] + dev::to_float(x[3 * H]));
  const float c = f * cprev[b * H + u] + i * g;
  const float m = o * tanhf(c);
  a.w.cstate[b * H + u] = c;
  if (p.gates) {
    float* gt = static_cast<float*>(p.gates) + (t * B + b) * G + u;
    gt[0] = i;
    gt[H] = f;
    gt[2 * H] = g;
    gt[3 * H] = o;
    static_cast<float*>(p.cs)[(t * B + b) * H + u] = c;
  }
  if constexpr (kProj) {
    a.w.mbuf[b * H + u] = m;
  } else {
    a.w.hbuf[(s & 1) * B * P + b * P + u] = m;
    static_cast<T*>(p.y)[(t * B + b) * P + u] = dev::from_float<T>(m);
  }
}

template <typename T, bool kProj>
BK_DEVICE void gates_phase(const Args& a, int64_t s, const WView<T>& w, int64_t u0, int nU) {
  const LstmParams& p = a.p;
  const int64_t B = p.B, P = p.P;
  const float* hprev = s == 0 ? a.w.h0 : a.w.hbuf + ((s - 1) & 1) * B * P;
  const int lane = lane_id();
  for (int64_t it = warp_id(); it < int64_t(nU) * B; it += num_warps()) {
    const int j = int(it % nU);
    const int64_t b = it / nU, u = u0 + j;
    float acc[4];
    dotq<4>(w, j, hprev + b * P, P, lane, acc);
    if (lane == 0) cell_update<T, kProj>(a, s, b, u, acc);
  }
}

template <typename T>
BK_DEVICE void proj_phase(const Args& a, int64_t s, const WView<T>& wr, int64_t p0, int nPr) {
  const LstmParams& p = a.p;
  const int64_t B = p.B, H = p.H, P = p.P, t = fwd_t(p, s);
  const int lane = lane_id();
  for (int64_t it = warp_id(); it < int64_t(nPr) * B; it += num_warps()) {
    const int j = int(it % nPr);
    const int64_t b = it / nPr, row = p0 + j;
    const float h = dot1(wr, j, a.w.mbuf + b * H, H, lane);
    if (lane != 0) continue;
    a.w.hbuf[(s & 1) * B * P + b * P + row] = h;
    static_cast<T*>(p.y)[(t * B + b) * P + row] = dev::from_float<T>(h);
  }
}

}  // namespace lstm
}  // namespace cuda
}  // namespace bk
