// CPU GRU layer, the LSTM layer's structure (lstm_layer.cpp): per step one
// GEMM a = h_{t-1} W_hh^T (packed MKL, or a GEMV at batch 1) and one fused
// gate pass; backward per step the fused gate backward and one GEMM
// dh_{t-1} = da W_hh + dh z; dW_hh = da^T [h0; y shifted] after the loop
// (db_hh = column sums of da, taken by the glue).
#include "cpu/lstm/gru_layer.h"

#include <string.h>

#include <vector>

#include "cpu/lstm/gemm.h"
#include "cpu/lstm/gemv.h"
#include "cpu/lstm/gru_gates.h"
#include "cpu/lstm/packed_weight.h"

namespace bk {
namespace cpu {
namespace {

template <typename T>
void matmul(const PackedWeight<T>& W, const T* w, bool trans, const T* x, T* out, int64_t B, int64_t N, int64_t K) {
  if constexpr (sizeof(T) == sizeof(float)) {
    if (B == 1) return trans ? gemv_n(w, x, out, N, K) : gemv_t(w, x, out, K, N);
  }
  W.mul(B, x, out);
}

template <typename T>
void forward(const GruParams& p) {
  const int64_t T_ = p.T, B = p.B, H = p.H, G = 3 * H;
  const T* xp = static_cast<const T*>(p.x_proj);
  const T* w = static_cast<const T*>(p.w_hh);
  T* y = static_cast<T*>(p.y);
  T* ws = static_cast<T*>(p.ws);
  std::vector<T> a(B * G), zero_bias(p.b_hh ? 0 : G, T(0));
  const T* bh = p.b_hh ? static_cast<const T*>(p.b_hh) : zero_bias.data();
  const SmallGemmThreads threads(2.0 * B * G * H);
  const PackedWeight<T> W(w, true, G, H, (sizeof(T) == sizeof(float) && B == 1) || T_ < 4 ? 0 : B);
  const T* h_prev = static_cast<const T*>(p.h0);
  for (int64_t s = 0; s < T_; ++s) {
    const int64_t t = p.reverse ? T_ - 1 - s : s;
    matmul(W, w, true, h_prev, a.data(), B, G, H);
    gru_gates_forward<T>(xp + t * B * G, a.data(), bh, h_prev, y + t * B * H, ws ? ws + t * B * 4 * H : nullptr, B,
                         H);
    h_prev = y + t * B * H;
  }
}

template <typename T>
void backward(const GruParams& p) {
  const int64_t T_ = p.T, B = p.B, H = p.H, G = 3 * H;
  const T* w = static_cast<const T*>(p.w_hh);
  const T* y = static_cast<const T*>(p.y);
  const T* h0 = static_cast<const T*>(p.h0);
  const T* ws = static_cast<const T*>(p.ws);
  const T* gy = static_cast<const T*>(p.grad_y);
  T* dxp = static_cast<T*>(p.grad_x_proj);
  T* da = static_cast<T*>(p.grad_a);
  T* dh_rec = static_cast<T*>(p.grad_h0);
  T* dw = static_cast<T*>(p.grad_w_hh);
  memcpy(dh_rec, p.grad_hT, sizeof(T) * B * H);
  if (T_ == 0) {
    memset(dw, 0, sizeof(T) * G * H);
    return;
  }
  std::vector<T> dh(B * H), direct(B * H);
  const SmallGemmThreads threads(2.0 * B * G * H);
  const PackedWeight<T> W(w, false, H, G, (sizeof(T) == sizeof(float) && B == 1) || T_ < 4 ? 0 : B);
  for (int64_t s = T_ - 1; s >= 0; --s) {
    const int64_t t = p.reverse ? T_ - 1 - s : s;
    const T* h_prev = s == 0 ? h0 : y + (p.reverse ? t + 1 : t - 1) * B * H;
    const T* gyt = gy + t * B * H;
    for (int64_t k = 0; k < B * H; ++k) dh[k] = gyt[k] + dh_rec[k];
    gru_gates_backward<T>(ws + t * B * 4 * H, h_prev, dh.data(), dxp + t * B * G, da + t * B * G, direct.data(), B,
                          H);
    matmul(W, w, false, da + t * B * G, dh_rec, B, H, G);
    for (int64_t k = 0; k < B * H; ++k) dh_rec[k] += direct[k];
  }
  const int64_t first = p.reverse ? T_ - 1 : 0;
  gemm_rm<T>(true, false, G, H, B, T(1), da + first * B * G, G, h0, H, T(0), dw, H);
  if (T_ > 1) {
    gemm_rm<T>(true, false, G, H, (T_ - 1) * B, T(1), p.reverse ? da : da + B * G, G, p.reverse ? y + B * H : y, H,
               T(1), dw, H);
  }
}

}  // namespace

void gru_layer_forward(const GruParams& p) {
  if (p.dtype == DType::F64) return forward<double>(p);
  return forward<float>(p);
}

void gru_layer_backward(const GruParams& p) {
  if (p.dtype == DType::F64) return backward<double>(p);
  return backward<float>(p);
}

}  // namespace cpu
}  // namespace bk
