// Params of the whole-layer LSTM recurrence (forward and backward through
// time), torch's equations and gate order (i, f, g, o):
//   z_t = x_proj[t] + W_hh h_{t-1}        (x_proj already holds W_ih x_t + b_ih + b_hh)
//   c_t = sig(f) c_{t-1} + sig(i) tanh(g);  m_t = sig(o) tanh(c_t)
//   h_t = W_hr m_t (proj_size > 0) or m_t
// One struct for the CPU kernel and, later, the CUDA kernels: raw pointers,
// row-major dense tensors, no torch.
#pragma once
#include <stdint.h>

#include "common/bias_act_params.h"  // DType

namespace bk {

struct LstmParams {
  int64_t T = 0;   // timesteps
  int64_t B = 0;   // batch
  int64_t H = 0;   // hidden (cell) size
  int64_t P = 0;   // output size: proj_size, or H without projection
  bool reverse = false;  // process t = T-1 .. 0
  DType dtype = DType::F32;  // the kernel's compute/storage type (F32 or F64)

  // forward inputs
  const void* x_proj = nullptr;  // [T, B, 4H]
  const void* h0 = nullptr;      // [B, P]
  const void* c0 = nullptr;      // [B, H]
  const void* w_hh = nullptr;    // [4H, P]
  const void* w_hr = nullptr;    // [P, H] or null
  // forward outputs
  void* y = nullptr;       // [T, B, P]
  void* h_T = nullptr;     // [B, P]
  void* c_T = nullptr;     // [B, H]
  void* gates = nullptr;   // [T, B, 4H] activated gates, saved for backward; null in inference
  void* cs = nullptr;      // [T, B, H] cell states, saved for backward; null in inference

  // backward inputs (also y, gates, cs, h0, c0, w_hh, w_hr above)
  const void* grad_y = nullptr;   // [T, B, P]
  const void* grad_hT = nullptr;  // [B, P]
  const void* grad_cT = nullptr;  // [B, H]
  // backward outputs
  void* grad_x_proj = nullptr;  // [T, B, 4H] (= dL/dz_t)
  void* grad_h0 = nullptr;      // [B, P]
  void* grad_c0 = nullptr;      // [B, H]
  void* grad_w_hh = nullptr;    // [4H, P]
  void* grad_w_hr = nullptr;    // [P, H] or null
};

}  // namespace bk
