// CPU whole-layer Elman RNN (tanh/relu), forward and backward through time.
#pragma once
#include "common/rnn_params.h"

namespace bk {
namespace cpu {
void rnn_layer_forward(const RnnParams& p);
void rnn_layer_backward(const RnnParams& p);
}  // namespace cpu
}  // namespace bk
