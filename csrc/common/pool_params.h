// Params of 2-D max pooling over dense NCHW planes (kernel sources: csrc/cpu/pool).
// Shapes and their checks are the Python layer's (bigkernels/ops/pool.py).
#pragma once
#include <stdint.h>

#include "common/bias_act_params.h"  // DType

namespace bk {

struct MaxPool2dParams {
  const void* x = nullptr;       // [planes][H][W]
  void* y = nullptr;             // [planes][OH][OW]
  int32_t* index = nullptr;      // [planes][OH][OW]: the max's offset in its plane (ih * W + iw), or null
  const void* grad_y = nullptr;  // backward: [planes][OH][OW]
  void* grad_x = nullptr;        // backward: [planes][H][W]
  int64_t planes = 0, H = 0, W = 0, OH = 0, OW = 0;
  int64_t kH = 1, kW = 1, sH = 1, sW = 1, pH = 0, pW = 0, dH = 1, dW = 1;
  DType dtype = DType::F32;
};

}  // namespace bk
