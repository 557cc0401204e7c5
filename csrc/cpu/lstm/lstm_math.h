// Vectorisable sigmoid/tanh for the CPU recurrent kernels. glibc's expf
// does not vectorise without -ffast-math, and a scalar expf costs ~5 ns:
// at B=16, H=256 the five transcendentals per element of a step would take
// ~100 us against ~80 us for the step's GEMM. This Cephes-style expf
// (degree-6 polynomial, exponent by bit arithmetic) vectorises under
// `#pragma omp simd` and is within 2 ulp on [-88, 88].
#pragma once
#include <stdint.h>
#include <string.h>

#include <cmath>

#include "cpu/vec_math.h"  // fast_exp

#define BK_INLINE inline __attribute__((always_inline))

namespace bk {
namespace cpu {

BK_INLINE float sigmoid_(float x) { return 1.0f / (1.0f + fast_exp(-x)); }
// tanh(x) = 2 sigmoid(2x) - 1: absolute error ~1e-7 near 0 (what the
// tolerance rule's fp32 floor, 2e-5, measures), exact limits at +-inf.
BK_INLINE float tanh_(float x) { return 2.0f / (1.0f + fast_exp(-2.0f * x)) - 1.0f; }

BK_INLINE double sigmoid_(double x) { return 1.0 / (1.0 + std::exp(-x)); }
BK_INLINE double tanh_(double x) { return std::tanh(x); }

// One LSTM cell element, torch's equations, shared by the per-step gate
// passes (lstm_gates.cpp) and the team kernel (lstm_team.cpp). Forward from
// the pre-activations z = x_proj + h W_hh^T of gates i, f, g, o:
template <typename T>
struct LstmCellForward {
  T i, f, g, o, c, m;  // activated gates, c_t, m_t = o tanh(c_t)
};
template <typename T>
BK_INLINE LstmCellForward<T> lstm_cell_forward(T zi, T zf, T zg, T zo, T c_prev) {
  const T i = sigmoid_(zi), f = sigmoid_(zf), g = tanh_(zg), o = sigmoid_(zo);
  const T c = f * c_prev + i * g;
  return {i, f, g, o, c, o * tanh_(c)};
}

// Backward from the saved activated gates and c_t, given dL/dm_t and the
// incoming dL/dc_t: dL/dz of each gate, dL/dc_{t-1}, and m_t recomputed.
template <typename T>
struct LstmCellBackward {
  T dzi, dzf, dzg, dzo, dc_prev, m;
};
template <typename T>
BK_INLINE LstmCellBackward<T> lstm_cell_backward(T i, T f, T g, T o, T c, T c_prev, T dm, T dc) {
  const T tc = tanh_(c);
  const T dct = dc + dm * o * (T(1) - tc * tc);
  return {dct * g * i * (T(1) - i), dct * c_prev * f * (T(1) - f), dct * i * (T(1) - g * g),
          dm * tc * o * (T(1) - o), dct * f, o * tc};
}

// lstm_cell_forward over n consecutive units of one batch row: the
// pre-activation of gate k, unit j is xp[k * H + j] + z[k * ldz + j]; c_t and
// m_t are written, and the activated gates g ([4][H]) with Save.
template <bool Save, typename T>
BK_INLINE void lstm_units_forward(const T* xp, const T* z, int64_t ldz, const T* c_prev, T* g, T* c, T* m, int64_t H,
                                  int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const auto e = lstm_cell_forward(xp[j] + z[j], xp[H + j] + z[ldz + j], xp[2 * H + j] + z[2 * ldz + j],
                                     xp[3 * H + j] + z[3 * ldz + j], c_prev[j]);
    c[j] = e.c;
    m[j] = e.m;
    if constexpr (Save) {
      g[j] = e.i;
      g[H + j] = e.f;
      g[2 * H + j] = e.g;
      g[3 * H + j] = e.o;
    }
  }
}

// lstm_cell_backward over n consecutive units of one batch row: g and dz hold
// the four gates H apart ([4][H] from the row's unit 0); dc is read and then
// overwritten with dL/dc_{t-1}; m_t is written back with SaveM.
template <bool SaveM, typename T>
BK_INLINE void lstm_units_backward(const T* g, const T* c, const T* c_prev, const T* dm, T* dc, T* dz, T* m,
                                   int64_t H, int64_t n) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) {
    const auto e = lstm_cell_backward(g[j], g[H + j], g[2 * H + j], g[3 * H + j], c[j], c_prev[j], dm[j], dc[j]);
    dz[j] = e.dzi;
    dz[H + j] = e.dzf;
    dz[2 * H + j] = e.dzg;
    dz[3 * H + j] = e.dzo;
    dc[j] = e.dc_prev;
    if constexpr (SaveM) m[j] = e.m;
  }
}

}  // namespace cpu
}  // namespace bk
