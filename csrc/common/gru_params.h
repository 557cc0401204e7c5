// Params of the whole-layer GRU recurrence, torch's equations (gate order
// r, z, n; the reset gate multiplies W_hn h + b_hn):
//   a_t = W_hh h_{t-1} + b_hh;  r = sig(x_r + a_r), z = sig(x_z + a_z)
//   n = tanh(x_n + r a_n);      h_t = n + z (h_{t-1} - n)
// x_proj = W_ih x_t + b_ih for all t is the caller's. Torch-free, shared with
// the later CUDA kernels.
#pragma once
#include <stdint.h>

#include "common/bias_act_params.h"  // DType

namespace bk {

struct GruParams {
  int64_t T = 0, B = 0, H = 0;
  bool reverse = false;
  DType dtype = DType::F32;  // F32 or F64
  const void* x_proj = nullptr;  // [T, B, 3H]
  const void* h0 = nullptr;      // [B, H]
  const void* w_hh = nullptr;    // [3H, H]
  const void* b_hh = nullptr;    // [3H] or null
  void* y = nullptr;             // [T, B, H]
  void* ws = nullptr;            // [T, B, 4H]: r, z, n, a_n (saved for backward) or null
  // backward
  const void* grad_y = nullptr;   // [T, B, H]
  const void* grad_hT = nullptr;  // [B, H]
  void* grad_x_proj = nullptr;    // [T, B, 3H]
  void* grad_a = nullptr;         // [T, B, 3H]: dL/da_t (the recurrent pre-activations)
  void* grad_h0 = nullptr;        // [B, H]
  void* grad_w_hh = nullptr;      // [3H, H]
};

}  // namespace bk
