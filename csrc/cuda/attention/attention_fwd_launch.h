// One launcher per (element type, padded head dim), instantiated in the
// attention_fwd_d*.cu files so that builds parallelise.
#pragma once
#include "cuda/attention/attention.h"

namespace bk {
namespace cuda {
namespace attn {

template <typename T, int kD>
cudaError_t launch_attention_fwd(const AttentionParams& p, cudaStream_t stream);

}  // namespace attn
}  // namespace cuda
}  // namespace bk
