// CPU fused batch-norm + residual + activation after a convolution.
#pragma once
#include "common/conv_bn_params.h"

namespace bk {
namespace cpu {
// Per-channel mean and biased variance of z into out0/out1 (one pass).
void bn_stats(const BnActParams& p);
// y = act(z * scale + shift + residual) (one pass).
void bn_act_forward(const BnActParams& p);
// dL/dz (+ dL/d residual) and, into out0/out1, sum(g) and sum(g * xhat):
// one reduction pass and one elementwise pass (batch_stats) or the
// elementwise pass alone with its reductions (fixed statistics).
void bn_act_backward(const BnActParams& p);
}  // namespace cpu
}  // namespace bk
