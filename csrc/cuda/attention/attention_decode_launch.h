// One split-KV decode launcher per (element type, padded head dim),
// instantiated in the attention_decode_d*.cu files.
#pragma once
#include "cuda/attention/attention.h"

namespace bk {
namespace cuda {
namespace attn {

template <typename T, int kD>
cudaError_t launch_attention_decode(const AttentionParams& p, const AttentionDecodeWorkspace& ws,
                                    const AttentionCacheAppend& append, cudaStream_t stream);

}  // namespace attn
}  // namespace cuda
}  // namespace bk
