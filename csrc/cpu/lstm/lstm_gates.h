// The fused, vectorised pointwise passes of one LSTM step, over B rows of H.
// Torch-free: raw pointers to dense row-major [B, *] blocks.
#pragma once
#include <stdint.h>

namespace bk {
namespace cpu {

// Forward: z_pre = xp + zr (both [B, 4H], gate order i, f, g, o);
// c = sig(f) c_prev + sig(i) tanh(g); m = sig(o) tanh(c).
// `gates` ([B, 4H], the activated gates for backward) may be null.
template <typename T>
void lstm_gates_forward(const T* xp, const T* zr, const T* c_prev, T* gates, T* c, T* m, int64_t B, int64_t H);

// Backward of the step above, from the saved activated gates and cells.
// dm: dL/dm_t [B, H]; dc: in dL/dc_t from step t+1, out dL/dc_{t-1};
// dz: out dL/dz_t [B, 4H]; m_out (may be null): recomputed m_t.
template <typename T>
void lstm_gates_backward(const T* gates, const T* c, const T* c_prev, const T* dm, T* dc, T* dz, T* m_out,
                         int64_t B, int64_t H);

}  // namespace cpu
}  // namespace bk
