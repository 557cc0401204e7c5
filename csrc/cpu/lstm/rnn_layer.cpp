// CPU Elman RNN layer, the LSTM layer's structure: per step one GEMM (packed
// MKL, or a GEMV at batch 1) and one fused pass h = act(x_proj[t] + a);
// backward per step da = dh act'(h) (act' from the saved output: 1 - h^2 or
// h > 0) and dh_{t-1} = da W_hh; dW_hh = da^T [h0; y shifted] after the loop.
// The pointwise passes are simple enough for gcc to vectorise without help
// except tanh, which uses lstm_math.h's vectorisable form.
#include "cpu/lstm/rnn_layer.h"

#include <string.h>

#include <vector>

#include "cpu/lstm/gemm.h"
#include "cpu/lstm/gemv.h"
#include "cpu/lstm/lstm_math.h"
#include "cpu/lstm/packed_weight.h"

namespace bk {
namespace cpu {
namespace {

template <typename T>
void matmul(const PackedWeight<T>& W, const T* w, bool trans, const T* x, T* out, int64_t B, int64_t H) {
  if constexpr (sizeof(T) == sizeof(float)) {
    if (B == 1) return trans ? gemv_n(w, x, out, H, H) : gemv_t(w, x, out, H, H);
  }
  W.mul(B, x, out);
}

template <typename T>
int64_t pack_rows(int64_t B, int64_t steps) {
  return (sizeof(T) == sizeof(float) && B == 1) || steps < 4 ? 0 : B;
}

template <typename T>
void forward(const RnnParams& p) {
  const int64_t T_ = p.T, B = p.B, H = p.H, n = B * H;
  const T* xp = static_cast<const T*>(p.x_proj);
  const T* w = static_cast<const T*>(p.w_hh);
  T* y = static_cast<T*>(p.y);
  std::vector<T> a(n);
  const SmallGemmThreads threads(2.0 * B * H * H);
  const PackedWeight<T> W(w, true, H, H, pack_rows<T>(B, T_));
  const T* h_prev = static_cast<const T*>(p.h0);
  for (int64_t s = 0; s < T_; ++s) {
    const int64_t t = p.reverse ? T_ - 1 - s : s;
    matmul(W, w, true, h_prev, a.data(), B, H);
    const T* x = xp + t * n;
    T* h = y + t * n;
    if (p.relu) {
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) h[k] = x[k] + a[k] > T(0) ? x[k] + a[k] : T(0);
    } else {
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) h[k] = tanh_(x[k] + a[k]);
    }
    h_prev = h;
  }
}

template <typename T>
void backward(const RnnParams& p) {
  const int64_t T_ = p.T, B = p.B, H = p.H, n = B * H;
  const T* w = static_cast<const T*>(p.w_hh);
  const T* y = static_cast<const T*>(p.y);
  const T* h0 = static_cast<const T*>(p.h0);
  const T* gy = static_cast<const T*>(p.grad_y);
  T* da = static_cast<T*>(p.grad_x_proj);
  T* dh_rec = static_cast<T*>(p.grad_h0);
  T* dw = static_cast<T*>(p.grad_w_hh);
  memcpy(dh_rec, p.grad_hT, sizeof(T) * n);
  if (T_ == 0) {
    memset(dw, 0, sizeof(T) * H * H);
    return;
  }
  const SmallGemmThreads threads(2.0 * B * H * H);
  const PackedWeight<T> W(w, false, H, H, pack_rows<T>(B, T_));
  for (int64_t s = T_ - 1; s >= 0; --s) {
    const int64_t t = p.reverse ? T_ - 1 - s : s;
    const T* g = gy + t * n;
    const T* h = y + t * n;
    T* d = da + t * n;
    if (p.relu) {
      for (int64_t k = 0; k < n; ++k) d[k] = h[k] > T(0) ? g[k] + dh_rec[k] : T(0);
    } else {
      for (int64_t k = 0; k < n; ++k) d[k] = (g[k] + dh_rec[k]) * (T(1) - h[k] * h[k]);
    }
    matmul(W, w, false, d, dh_rec, B, H);
  }
  const int64_t first = p.reverse ? T_ - 1 : 0;
  gemm_rm<T>(true, false, H, H, B, T(1), da + first * n, H, h0, H, T(0), dw, H);
  if (T_ > 1) {
    gemm_rm<T>(true, false, H, H, (T_ - 1) * B, T(1), p.reverse ? da : da + n, H, p.reverse ? y + n : y, H, T(1),
               dw, H);
  }
}

}  // namespace

void rnn_layer_forward(const RnnParams& p) {
  if (p.dtype == DType::F64) return forward<double>(p);
  return forward<float>(p);
}

void rnn_layer_backward(const RnnParams& p) {
  if (p.dtype == DType::F64) return backward<double>(p);
  return backward<float>(p);
}

}  // namespace cpu
}  // namespace bk
