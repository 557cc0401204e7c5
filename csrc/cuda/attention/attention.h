// Host entry points of the FlashAttention-2-style CUDA kernels (sm_80+).
// Torch-free: AttentionParams in (common/attention_params.h), cudaError_t out,
// on the caller's stream. Inputs fp16 or bf16 (`bf16`), fp32 accumulation;
// head dims up to 256 that are multiples of 8, 16-byte aligned rows
// (base pointers and batch/head/sequence strides multiples of 8 elements).
#pragma once
#include "common/attention_params.h"

#if defined(__CUDACC__) || defined(BK_SIM_HOST_API)
#include <cuda_runtime_api.h>
#endif

namespace bk {
namespace cuda {

// o (q's shape, o_stride, input dtype) and lse (B, Hq, Sq) float32, natural
// log; rows that see no key get o = 0 and lse = -inf. Masks: bool bytes or
// float32 additive, read through mask_stride. Dropout is not served here.
cudaError_t attention_forward(const AttentionParams& p, bool bf16, cudaStream_t stream);

// Why `attention_forward` cannot serve p (nullptr when it can).
const char* attention_forward_unsupported(const AttentionParams& p);

}  // namespace cuda
}  // namespace bk
