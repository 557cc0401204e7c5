// Params of the whole-layer Elman RNN, torch's equations:
//   h_t = act(x_proj[t] + W_hh h_{t-1}),  act = tanh or relu
// (x_proj = W_ih x_t + b_ih + b_hh for all t is the caller's). Torch-free.
#pragma once
#include <stdint.h>

#include "common/bias_act_params.h"  // DType

namespace bk {

struct RnnParams {
  int64_t T = 0, B = 0, H = 0;
  bool reverse = false;
  bool relu = false;  // else tanh
  DType dtype = DType::F32;  // F32 or F64
  const void* x_proj = nullptr;  // [T, B, H]
  const void* h0 = nullptr;      // [B, H]
  const void* w_hh = nullptr;    // [H, H]
  void* y = nullptr;             // [T, B, H] (the only state backward needs: act' comes from y)
  const void* grad_y = nullptr;  // [T, B, H]
  const void* grad_hT = nullptr; // [B, H]
  void* grad_x_proj = nullptr;   // [T, B, H]
  void* grad_h0 = nullptr;       // [B, H]
  void* grad_w_hh = nullptr;     // [H, H]
};

}  // namespace bk
