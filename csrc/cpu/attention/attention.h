// CPU fused attention (forward saving the log-sum-exp; backward recomputing
// the probabilities from it). See csrc/common/attention_params.h.
#pragma once
#include "common/attention_params.h"

namespace bk {
namespace cpu {
void attention_forward(const AttentionParams& p);
// dq must be zero-filled by the caller (it is accumulated); dk/dv are written.
void attention_backward(const AttentionParams& p);
}  // namespace cpu
}  // namespace bk
