// The float32 attention kernels with queries along the vector lanes
// (forward_lanes.cpp, backward_lanes.cpp). Each returns false, having done
// nothing, where it does not apply (float64, or a CPU without AVX2): the
// caller then runs the generic BLAS-tile path (forward.cpp, backward.cpp).
#pragma once
#include <vector>

#include "common/attention_params.h"

namespace bk {
namespace cpu {
bool lanes_forward(const AttentionParams& p);
// dq must be zero-filled by the caller (it is accumulated); dk/dv are written.
bool lanes_backward(const AttentionParams& p);
// delta = rowsum(dO * O) - dLSE, laid out as lse (backward.cpp).
std::vector<float> attention_row_deltas(const AttentionParams& p);
}  // namespace cpu
}  // namespace bk
