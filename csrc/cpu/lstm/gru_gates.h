// Fused GRU gate passes over B rows of H (raw pointers, row-major).
#pragma once
#include <stdint.h>

namespace bk {
namespace cpu {
// a: h_{t-1} W_hh^T [B, 3H] (b_hh [3H] added here, never null); ws [B, 4H] (r, z, n, a_n) may be null.
template <typename T>
void gru_gates_forward(const T* xp, const T* a, const T* b_hh, const T* h_prev, T* h, T* ws, int64_t B, int64_t H);
// dh: dL/dh_t [B, H]; out: dxp [B, 3H], da [B, 3H], dh_direct = dh * z [B, H].
template <typename T>
void gru_gates_backward(const T* ws, const T* h_prev, const T* dh, T* dxp, T* da, T* dh_direct, int64_t B, int64_t H);
}  // namespace cpu
}  // namespace bk
