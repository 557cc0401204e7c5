// CPU LSTM layer. Forward, per step: one GEMM z = h_{t-1} W_hh^T into a
// buffer allocated once per call, then one fused gate pass that also adds
// x_proj[t] (no copy of x_proj into the buffer). Backward, per step (in
// reverse processing order): the fused gate backward pass, then one GEMM
// dh_{t-1} = dz_t W_hh. The weight gradients are two or three large GEMMs
// over all T*B rows after the loop: dW_hh = dz^T [h0; y shifted],
// dW_hr = dh^T m. Float32 without a projection runs the recurrence on an
// OpenMP team instead (lstm_team.cpp); the loops here serve the rest.
#include "cpu/lstm/lstm_layer.h"

#include <string.h>

#include <vector>

#include "cpu/blas/gemm.h"
#include "cpu/lstm/gemv.h"
#include "cpu/lstm/lstm_gates.h"
#include "cpu/lstm/lstm_team.h"
#include "cpu/lstm/packed_weight.h"

namespace bk {
namespace cpu {
namespace {

// Batch 1 (float): the recurrent product as a GEMV (cpu/lstm/gemv.cpp).
template <typename T>
inline bool use_gemv(int64_t B) {
  return B == 1 && sizeof(T) == sizeof(float);
}

// Packing W costs about one pass over it, like one step's GEMM: worth it
// from a few steps on, not for a single step (lstm_cell runs T = 1).
constexpr int64_t kMinStepsToPack = 4;

template <typename T>
inline int64_t pack_rows(int64_t B, int64_t steps) {
  return use_gemv<T>(B) || steps < kMinStepsToPack ? 0 : B;
}

template <typename T>
void recur_fwd(const PackedWeight<T>& W, const T* w, const T* h, T* z, int64_t B, int64_t G, int64_t P) {
  if constexpr (sizeof(T) == sizeof(float)) {
    if (use_gemv<T>(B)) return gemv_n(w, h, z, G, P);
  }
  W.mul(B, h, z);
}

template <typename T>
void recur_bwd(const PackedWeight<T>& W, const T* w, const T* dz, T* dh, int64_t B, int64_t G, int64_t P) {
  if constexpr (sizeof(T) == sizeof(float)) {
    if (use_gemv<T>(B)) return gemv_t(w, dz, dh, G, P);
  }
  W.mul(B, dz, dh);
}

template <typename T>
void forward(const LstmParams& p) {
  if (lstm_team_applies(p)) return lstm_team_forward(p);
  const int64_t T_ = p.T, B = p.B, H = p.H, P = p.P, G = 4 * H;
  const T* xp = static_cast<const T*>(p.x_proj);
  const T* w = static_cast<const T*>(p.w_hh);
  const T* whr = static_cast<const T*>(p.w_hr);
  T* y = static_cast<T*>(p.y);
  T* gates = static_cast<T*>(p.gates);
  T* cs = static_cast<T*>(p.cs);
  // z [B,4H]; two cell buffers when cells are not saved; m [B,H] with a projection.
  std::vector<T> buf(B * G + (cs ? 0 : 2 * B * H) + (whr ? B * H : 0));
  T* z = buf.data();
  T* cbuf = z + B * G;
  T* mbuf = cbuf + (cs ? 0 : 2 * B * H);
  const T* h_prev = static_cast<const T*>(p.h0);
  const T* c_prev = static_cast<const T*>(p.c0);
  const SmallGemmThreads threads(2.0 * B * G * P);
  const PackedWeight<T> W(w, true, G, P, pack_rows<T>(B, T_));
  const PackedWeight<T> Wr(whr, true, P, whr ? H : 0, T_ < kMinStepsToPack ? 0 : B);
  for (int64_t s = 0; s < T_; ++s) {
    const int64_t t = p.reverse ? T_ - 1 - s : s;
    recur_fwd(W, w, h_prev, z, B, G, P);
    T* c = cs ? cs + t * B * H : cbuf + (s & 1) * B * H;
    T* yt = y + t * B * P;
    T* m = whr ? mbuf : yt;
    lstm_gates_forward<T>(xp + t * B * G, z, c_prev, gates ? gates + t * B * G : nullptr, c, m, B, H);
    if (whr) Wr.mul(B, m, yt);
    h_prev = yt;
    c_prev = c;
  }
  memcpy(p.h_T, h_prev, sizeof(T) * B * P);
  memcpy(p.c_T, c_prev, sizeof(T) * B * H);
}

// dW_hh = sum_t dz_t^T h_{t-1}: h_{t-1} is h0 for the first processed step
// and the previous step's output (y shifted by one) for the others.
template <typename T>
void recurrent_weight_gradient(const LstmParams& p) {
  const int64_t T_ = p.T, B = p.B, P = p.P, G = 4 * p.H;
  const T* dz = static_cast<const T*>(p.grad_x_proj);
  const T* y = static_cast<const T*>(p.y);
  T* dw = static_cast<T*>(p.grad_w_hh);
  const int64_t first = p.reverse ? T_ - 1 : 0;
  gemm_rm<T>(true, false, G, P, B, T(1), dz + first * B * G, G, static_cast<const T*>(p.h0), P, T(0), dw, P);
  if (T_ > 1) {
    const T* dz_rest = p.reverse ? dz : dz + B * G;
    const T* h_rest = p.reverse ? y + B * P : y;
    gemm_rm<T>(true, false, G, P, (T_ - 1) * B, T(1), dz_rest, G, h_rest, P, T(1), dw, P);
  }
}

template <typename T>
void backward(const LstmParams& p) {
  const int64_t T_ = p.T, B = p.B, H = p.H, P = p.P, G = 4 * H;
  const T* w = static_cast<const T*>(p.w_hh);
  const T* whr = static_cast<const T*>(p.w_hr);
  const T* c0 = static_cast<const T*>(p.c0);
  const T* gates = static_cast<const T*>(p.gates);
  const T* cs = static_cast<const T*>(p.cs);
  const T* gy = static_cast<const T*>(p.grad_y);
  T* dw = static_cast<T*>(p.grad_w_hh);
  if (T_ == 0) {  // nothing ran: the state gradients pass straight through
    memcpy(p.grad_h0, p.grad_hT, sizeof(T) * B * P);
    memcpy(p.grad_c0, p.grad_cT, sizeof(T) * B * H);
    memset(dw, 0, sizeof(T) * G * P);
    if (whr) memset(p.grad_w_hr, 0, sizeof(T) * P * H);
    return;
  }
  if (lstm_team_applies(p)) {
    lstm_team_backward_recurrence(p);
    return recurrent_weight_gradient<T>(p);
  }
  T* dz = static_cast<T*>(p.grad_x_proj);
  // dh_rec [B,P] (recurrent gradient, ends as grad_h0), dc [B,H] (ends as
  // grad_c0); with a projection dh for every step [T,B,P], m [T,B,H] and dm [B,H].
  T* dh_rec = static_cast<T*>(p.grad_h0);
  T* dc = static_cast<T*>(p.grad_c0);
  memcpy(dh_rec, p.grad_hT, sizeof(T) * B * P);
  memcpy(dc, p.grad_cT, sizeof(T) * B * H);
  std::vector<T> buf(whr ? T_ * B * P + T_ * B * H + B * H : B * P);
  T* dh_all = buf.data();
  T* m_all = dh_all + T_ * B * P;
  T* dm = m_all + T_ * B * H;
  const SmallGemmThreads threads(2.0 * B * G * P);
  const PackedWeight<T> W(w, false, P, G, pack_rows<T>(B, T_));
  const PackedWeight<T> Wr(whr, false, whr ? H : 0, P, T_ < kMinStepsToPack ? 0 : B);
  for (int64_t s = T_ - 1; s >= 0; --s) {
    const int64_t t = p.reverse ? T_ - 1 - s : s;
    const int64_t t_prev = p.reverse ? t + 1 : t - 1;
    T* dh = whr ? dh_all + t * B * P : dh_all;
    const T* gyt = gy + t * B * P;
    for (int64_t k = 0; k < B * P; ++k) dh[k] = gyt[k] + dh_rec[k];
    if (whr) {
      Wr.mul(B, dh, dm);
    }
    const T* c_prev = s == 0 ? c0 : cs + t_prev * B * H;
    lstm_gates_backward<T>(gates + t * B * G, cs + t * B * H, c_prev, whr ? dm : dh, dc, dz + t * B * G,
                           whr ? m_all + t * B * H : nullptr, B, H);
    recur_bwd(W, w, dz + t * B * G, dh_rec, B, G, P);
  }
  recurrent_weight_gradient<T>(p);
  if (whr) {
    gemm_rm<T>(true, false, P, H, T_ * B, T(1), dh_all, P, m_all, H, T(0), static_cast<T*>(p.grad_w_hr), H);
  }
}

}  // namespace

void lstm_layer_forward(const LstmParams& p) {
  if (p.dtype == DType::F64) return forward<double>(p);
  return forward<float>(p);
}

void lstm_layer_backward(const LstmParams& p) {
  if (p.dtype == DType::F64) return backward<double>(p);
  return backward<float>(p);
}

}  // namespace cpu
}  // namespace bk
