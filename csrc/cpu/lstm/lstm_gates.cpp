// Fused LSTM gate passes: one sweep over [B, 4H] per step instead of torch's
// add, chunk, sigmoid_, tanh_ and four more elementwise ops. Each row is a
// straight `omp simd` loop over j; the float version is compiled for
// AVX-512, AVX2 and baseline x86-64 (target_clones picks one at load time:
// 16, 8 and 4 lanes), without touching setup.py's flags.
#include "cpu/lstm/lstm_gates.h"

#include <ATen/Parallel.h>

#include "cpu/lstm/lstm_math.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define BK_CLONES
#endif

namespace bk {
namespace cpu {
namespace {

// Rows per parallel task: about 4096 elements of work, below which the
// OpenMP fork (~2-5 us) costs more than the pass itself.
inline int64_t row_grain(int64_t H) { return H >= 4096 ? 1 : 4096 / H; }

template <typename T>
BK_INLINE void forward_rows(const T* xp, const T* zr, const T* cp, T* g, T* c, T* m, int64_t b0, int64_t b1,
                            int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    if (g) {
      lstm_units_forward<true>(xp + b * 4 * H, zr + b * 4 * H, H, cp + b * H, g + b * 4 * H, c + b * H, m + b * H, H,
                               H);
    } else {
      lstm_units_forward<false>(xp + b * 4 * H, zr + b * 4 * H, H, cp + b * H, static_cast<T*>(nullptr), c + b * H,
                                m + b * H, H, H);
    }
  }
}

template <typename T>
BK_INLINE void backward_rows(const T* g, const T* c, const T* cp, const T* dm, T* dc, T* dz, T* m, int64_t b0,
                             int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    if (m) {
      lstm_units_backward<true>(g + b * 4 * H, c + b * H, cp + b * H, dm + b * H, dc + b * H, dz + b * 4 * H, m + b * H,
                                H, H);
    } else {
      lstm_units_backward<false>(g + b * 4 * H, c + b * H, cp + b * H, dm + b * H, dc + b * H, dz + b * 4 * H,
                                 static_cast<T*>(nullptr), H, H);
    }
  }
}

BK_CLONES void forward_rows_f32(const float* xp, const float* zr, const float* cp, float* g, float* c, float* m,
                                int64_t b0, int64_t b1, int64_t H) {
  forward_rows(xp, zr, cp, g, c, m, b0, b1, H);
}

BK_CLONES void backward_rows_f32(const float* g, const float* c, const float* cp, const float* dm, float* dc,
                                 float* dz, float* m, int64_t b0, int64_t b1, int64_t H) {
  backward_rows(g, c, cp, dm, dc, dz, m, b0, b1, H);
}

void forward_rows_any(const float* xp, const float* zr, const float* cp, float* g, float* c, float* m, int64_t b0,
                      int64_t b1, int64_t H) {
  forward_rows_f32(xp, zr, cp, g, c, m, b0, b1, H);
}
void forward_rows_any(const double* xp, const double* zr, const double* cp, double* g, double* c, double* m,
                      int64_t b0, int64_t b1, int64_t H) {
  forward_rows(xp, zr, cp, g, c, m, b0, b1, H);
}
void backward_rows_any(const float* g, const float* c, const float* cp, const float* dm, float* dc, float* dz,
                       float* m, int64_t b0, int64_t b1, int64_t H) {
  backward_rows_f32(g, c, cp, dm, dc, dz, m, b0, b1, H);
}
void backward_rows_any(const double* g, const double* c, const double* cp, const double* dm, double* dc,
                       double* dz, double* m, int64_t b0, int64_t b1, int64_t H) {
  backward_rows(g, c, cp, dm, dc, dz, m, b0, b1, H);
}

}  // namespace

template <typename T>
void lstm_gates_forward(const T* xp, const T* zr, const T* c_prev, T* gates, T* c, T* m, int64_t B, int64_t H) {
  at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    forward_rows_any(xp, zr, c_prev, gates, c, m, b0, b1, H);
  });
}

template <typename T>
void lstm_gates_backward(const T* gates, const T* c, const T* c_prev, const T* dm, T* dc, T* dz, T* m_out,
                         int64_t B, int64_t H) {
  at::parallel_for(0, B, row_grain(H), [&](int64_t b0, int64_t b1) {
    backward_rows_any(gates, c, c_prev, dm, dc, dz, m_out, b0, b1, H);
  });
}

template void lstm_gates_forward<float>(const float*, const float*, const float*, float*, float*, float*, int64_t,
                                        int64_t);
template void lstm_gates_forward<double>(const double*, const double*, const double*, double*, double*, double*,
                                         int64_t, int64_t);
template void lstm_gates_backward<float>(const float*, const float*, const float*, const float*, float*, float*,
                                         float*, int64_t, int64_t);
template void lstm_gates_backward<double>(const double*, const double*, const double*, const double*, double*,
                                          double*, double*, int64_t, int64_t);

}  // namespace cpu
}  // namespace bk
