// CPU 2-D max pooling over NCHW planes, float16/bfloat16/float32/float64, with torch's
// semantics bit for bit: NaN propagates, ties go to the first element in
// row-major window order (the index backward scatters to).
#pragma once
#include "common/pool_params.h"

namespace bk {
namespace cpu {
// y (and index, where p.index is set).
void max_pool2d_forward(const MaxPool2dParams& p);
// grad_x = the sum of grad_y at each output's index (grad_x is overwritten).
void max_pool2d_backward(const MaxPool2dParams& p);
}  // namespace cpu
}  // namespace bk
