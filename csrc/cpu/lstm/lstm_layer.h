// CPU whole-layer LSTM: forward over all timesteps and backward through
// time in one call each (params: common/lstm_params.h; dtype F32 or F64).
#pragma once
#include "common/lstm_params.h"

namespace bk {
namespace cpu {
void lstm_layer_forward(const LstmParams& p);
void lstm_layer_backward(const LstmParams& p);
}  // namespace cpu
}  // namespace bk
