// Params of the fused bias + residual + activation epilogue:
//   y = act(x + bias[c] + residual)
// One struct for the CUDA kernel, the CPU kernel and the emulator.
#pragma once
#include <stdint.h>
#include "common/activation.h"

namespace bk {

enum class DType : int32_t { F32 = 0, F16 = 1, BF16 = 2, F64 = 3 };

struct BiasActParams {
  // Dense tensors with one shared memory layout. An element at flat memory
  // index i belongs to channel (i / inner) % channels: inner = 1 for
  // channels-last or (..., C) inputs, H*W for NCHW.
  const void* x = nullptr;
  const void* bias = nullptr;      // [channels] or null
  const void* residual = nullptr;  // same layout as x, or null
  void* y = nullptr;               // forward output
  void* z = nullptr;               // forward: also the pre-activation x + bias + residual, or null
                                   // (CUDA kernel only: its one caller is the cuDNN conv path)
  const void* grad_y = nullptr;    // backward input
  void* grad_z = nullptr;          // backward output: dL/d(x + bias + residual)
  int64_t numel = 0;
  int64_t channels = 1;
  int64_t inner = 1;
  Act act = Act::None;
  double alpha = 0.01;  // leaky_relu negative slope (double: exact for fp64 inputs)
  DType dtype = DType::F32;
};

}  // namespace bk
