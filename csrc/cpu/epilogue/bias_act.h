// CPU fused bias + residual + activation (forward and backward).
#pragma once
#include "common/bias_act_params.h"

namespace bk {
namespace cpu {
void bias_act_forward(const BiasActParams& p);
void bias_act_backward(const BiasActParams& p);
}  // namespace cpu
}  // namespace bk
