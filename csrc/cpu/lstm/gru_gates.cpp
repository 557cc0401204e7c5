// Fused GRU gate passes, the LSTM ones' counterpart (lstm_gates.cpp): one
// `omp simd` sweep per row, AVX-512/AVX2/baseline clones.
#include "cpu/lstm/gru_gates.h"

#include "cpu/lstm/lstm_math.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BK_CLONES
#endif

namespace bk {
namespace cpu {
namespace {

template <typename T, bool Save>
BK_INLINE void fwd_row(const T* xp, const T* a, const T* bh, const T* hp, T* h, T* ws, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T ar = a[j] + bh[j], az = a[H + j] + bh[H + j], an = a[2 * H + j] + bh[2 * H + j];
    const T r = sigmoid_(xp[j] + ar), z = sigmoid_(xp[H + j] + az);
    const T n = tanh_(xp[2 * H + j] + r * an);
    h[j] = n + z * (hp[j] - n);
    if constexpr (Save) {
      ws[j] = r;
      ws[H + j] = z;
      ws[2 * H + j] = n;
      ws[3 * H + j] = an;
    }
  }
}

template <typename T>
BK_INLINE void bwd_row(const T* ws, const T* hp, const T* dh, T* dxp, T* da, T* dh_direct, int64_t H) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T r = ws[j], z = ws[H + j], n = ws[2 * H + j], an = ws[3 * H + j];
    const T dn = dh[j] * (T(1) - z) * (T(1) - n * n);
    const T dr = dn * an * r * (T(1) - r);
    const T dz = dh[j] * (hp[j] - n) * z * (T(1) - z);
    dxp[j] = dr;
    dxp[H + j] = dz;
    dxp[2 * H + j] = dn;
    da[j] = dr;
    da[H + j] = dz;
    da[2 * H + j] = dn * r;
    dh_direct[j] = dh[j] * z;
  }
}

template <typename T>
BK_INLINE void fwd_rows(const T* xp, const T* a, const T* bh, const T* hp, T* h, T* ws, int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b) {
    if (ws) {
      fwd_row<T, true>(xp + b * 3 * H, a + b * 3 * H, bh, hp + b * H, h + b * H, ws + b * 4 * H, H);
    } else {
      fwd_row<T, false>(xp + b * 3 * H, a + b * 3 * H, bh, hp + b * H, h + b * H, nullptr, H);
    }
  }
}

template <typename T>
BK_INLINE void bwd_rows(const T* ws, const T* hp, const T* dh, T* dxp, T* da, T* dd, int64_t B, int64_t H) {
  for (int64_t b = 0; b < B; ++b) {
    bwd_row(ws + b * 4 * H, hp + b * H, dh + b * H, dxp + b * 3 * H, da + b * 3 * H, dd + b * H, H);
  }
}

BK_CLONES void fwd_f32(const float* xp, const float* a, const float* bh, const float* hp, float* h, float* ws,
                       int64_t B, int64_t H) {
  fwd_rows(xp, a, bh, hp, h, ws, B, H);
}
BK_CLONES void bwd_f32(const float* ws, const float* hp, const float* dh, float* dxp, float* da, float* dd, int64_t B,
                       int64_t H) {
  bwd_rows(ws, hp, dh, dxp, da, dd, B, H);
}

}  // namespace

template <>
void gru_gates_forward<float>(const float* xp, const float* a, const float* bh, const float* hp, float* h, float* ws,
                              int64_t B, int64_t H) {
  fwd_f32(xp, a, bh, hp, h, ws, B, H);
}
template <>
void gru_gates_forward<double>(const double* xp, const double* a, const double* bh, const double* hp, double* h,
                               double* ws, int64_t B, int64_t H) {
  fwd_rows(xp, a, bh, hp, h, ws, B, H);
}
template <>
void gru_gates_backward<float>(const float* ws, const float* hp, const float* dh, float* dxp, float* da, float* dd,
                               int64_t B, int64_t H) {
  bwd_f32(ws, hp, dh, dxp, da, dd, B, H);
}
template <>
void gru_gates_backward<double>(const double* ws, const double* hp, const double* dh, double* dxp, double* da,
                                double* dd, int64_t B, int64_t H) {
  bwd_rows(ws, hp, dh, dxp, da, dd, B, H);
}

}  // namespace cpu
}  // namespace bk
