// CPU whole-layer GRU, forward and backward through time (common/gru_params.h).
#pragma once
#include "common/gru_params.h"

namespace bk {
namespace cpu {
void gru_layer_forward(const GruParams& p);
void gru_layer_backward(const GruParams& p);
}  // namespace cpu
}  // namespace bk
