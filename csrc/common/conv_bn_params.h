// Params of the fused batch-norm + residual + activation pass that follows a
// convolution (training and eval), shared by the CPU kernels and, later, the
// CUDA ones:
//   y = act(z * scale[c] + shift[c] + residual),
//   scale = gamma * invstd, shift = beta - mean * scale.
// Layout as in bias_act_params.h: the channel of flat index i is
// (i / inner) % channels (inner = 1 for channels-last, H*W for NCHW).
#pragma once
#include <stdint.h>

#include "common/activation.h"
#include "common/bias_act_params.h"

namespace bk {

struct BnActParams {
  const void* z = nullptr;         // conv output (the BN input)
  const void* residual = nullptr;  // z's layout, or null
  const void* grad_y = nullptr;    // backward input
  void* y = nullptr;               // forward output
  void* grad_z = nullptr;          // backward output: dL/dz
  void* grad_residual = nullptr;   // backward output: dL/d(residual), or null
  // Per channel, in the compute type (float; double for fp64 tensors).
  const void* scale = nullptr;
  const void* shift = nullptr;
  const void* mean = nullptr;    // backward: xhat = (z - mean) * invstd
  const void* invstd = nullptr;  // backward
  // Per-channel float64 reduction outputs: bn_stats writes mean and biased
  // variance; bn_act_backward writes sum(g) and sum(g * xhat), g = dL/d(pre-act).
  double* out0 = nullptr;
  double* out1 = nullptr;
  // CUDA only: [2][splits][channels] per-split partial sums (bn_workspace_size).
  double* workspace = nullptr;
  bool batch_stats = true;  // backward: statistics from this batch (training) or fixed (eval)
  int64_t numel = 0;
  int64_t channels = 1;
  int64_t inner = 1;
  Act act = Act::None;
  double alpha = 0.01;
  DType dtype = DType::F32;
};

}  // namespace bk
