// Params of the CUDA convolution kernels (implicit-GEMM forward, depthwise):
//   y = act(conv2d(x, w) + bias[k] + residual),  z = the pre-activation.
// Torch-free, shared by the kernels, the CUDA glue, the emulator glue and the
// harnesses. Sizes follow torch's names: x (N, C, H, W), w (K, C/groups, R,
// S), y (N, K, P, Q). Memory layouts are said per kernel (conv_fprop.h).
#pragma once
#include <stdint.h>

#include "common/activation.h"
#include "common/bias_act_params.h"

namespace bk {

struct ConvParams {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* bias = nullptr;      // [K] or null
  const void* residual = nullptr;  // y's shape and layout, or null
  void* y = nullptr;
  void* z = nullptr;  // pre-activation (y's layout), or null when not saved
  // Backward (depthwise): grad_z = dL/d(pre-activation) in y's layout in,
  // grad_x (x's layout) and grad_w ([K, R, S]) out.
  const void* grad_z = nullptr;
  void* grad_x = nullptr;
  void* grad_w = nullptr;
  // Implicit-GEMM backward with the activation fused (conv_bwd.h): with
  // `saved` set, grad_z holds dL/dy and the kernels apply act'(saved) to each
  // loaded tile; the weight gradient also writes the bias gradient ([K]) and
  // dL/dz (y's layout, for the residual) where these are non-null.
  const void* saved = nullptr;
  void* grad_bias = nullptr;
  void* grad_preact = nullptr;
  // Forward (implicit GEMM): per-(M tile, output channel) mean and M2 of y as
  // stored, [M tiles][2][K] floats, or null (conv_fprop.h: BN statistics).
  float* stats_partial = nullptr;
  int n = 0, c = 0, h = 0, w_in = 0;   // input
  int k = 0, r = 0, s = 0;             // filter
  int p = 0, q = 0;                    // output height, width
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int groups = 1;
  bool channels_last = true;  // depthwise only: NHWC (true) or NCHW tensors
  Act act = Act::None;
  float alpha = 0.01f;  // leaky_relu's negative slope
  DType dtype = DType::F16;
};

}  // namespace bk
