// One backward launcher per (element type, padded head dim), instantiated in
// the attention_bwd_d*.cu files.
#pragma once
#include "cuda/attention/attention.h"

namespace bk {
namespace cuda {
namespace attn {

template <typename T, int kD>
cudaError_t launch_attention_bwd(const AttentionParams& p, const AttentionBwdWorkspace& ws, cudaStream_t stream);

}  // namespace attn
}  // namespace cuda
}  // namespace bk
