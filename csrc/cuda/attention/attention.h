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
// log; rows that see no key get o = 0 and lse = -inf. Varlen (cu_seqlens_q/k
// set; batch strides 0, seqlen_q/kv the longest, lse (Hq, total_q)) and
// decode (seqused_k, causal) are served by the same kernels. Masks: bool bytes or
// float32 additive, read through mask_stride. Dropout: Philox keep decisions
// of common/attention_philox.h, as every backend.
cudaError_t attention_forward(const AttentionParams& p, bool bf16, cudaStream_t stream);

// Why `attention_forward` cannot serve p (nullptr when it can).
const char* attention_forward_unsupported(const AttentionParams& p);

// Split-KV decode: q (B, Hq, Sq, D) against the first seqused_k[b] keys of
// a (B, Hkv, S_max, D) cache, causal bottom-right. The cache is split in
// num_splits ranges of keys_per_split keys (attention_decode_plan); with
// more than one split the caller provides fp32 scratch o_partial
// (num_splits, B, Hq, Sq, D) and lse_partial (num_splits, B, Hq, Sq).
struct AttentionDecodeWorkspace {
  float* o_partial = nullptr;
  float* lse_partial = nullptr;
  int num_splits = 1;
  int keys_per_split = 0;
};

// In-place cache append of a decode step: seqlen_new new keys/values
// (B, Hkv, Sn, D; k_new/v_new strides, the input dtype) that occupy cache
// positions seqused_k[b] - Sn .. seqused_k[b] - 1 (seqused_k counts them).
// The kernel reads those positions from k_new/v_new, and the key range that
// holds a position stores it into k_cache/v_cache (the storage p.k/p.v
// point to, writable): one writer per (b, kv head, position), no extra launch.
struct AttentionCacheAppend {
  const void* k_new = nullptr;
  const void* v_new = nullptr;
  int64_t k_new_stride[3] = {0, 0, 0};
  int64_t v_new_stride[3] = {0, 0, 0};
  int64_t seqlen_new = 0;  // 0: no append
  void* k_cache = nullptr;
  void* v_cache = nullptr;
};

// The split of the keys for p (pointers left null): about two waves of
// blocks on the current GPU (132 SMs under the emulator), >= 64 keys a split.
AttentionDecodeWorkspace attention_decode_plan(const AttentionParams& p);
const char* attention_decode_unsupported(const AttentionParams& p);
cudaError_t attention_decode(const AttentionParams& p, const AttentionDecodeWorkspace& ws, bool bf16,
                             cudaStream_t stream, const AttentionCacheAppend& append = AttentionCacheAppend());

// Scratch of the backward, fp32, allocated by the caller: dq_accum (B, Hq,
// Sq, head_dim) contiguous (zeroed by the kernels), lse_log2 and delta
// (B, Hq, Sq) contiguous.
struct AttentionBwdWorkspace {
  float* dq_accum = nullptr;
  float* lse_log2 = nullptr;
  float* delta = nullptr;
};

// dq, dk, dv (their strides, q's dtype) from dout, o, lse (float32, B x Hq x
// Sq contiguous) and the optional dlse (same layout). dQ is summed with fp32
// atomics: its rounding depends on the order the key blocks arrive in.
cudaError_t attention_backward(const AttentionParams& p, const AttentionBwdWorkspace& ws, bool bf16,
                               cudaStream_t stream);

// Why `attention_backward` cannot serve p (nullptr when it can).
const char* attention_backward_unsupported(const AttentionParams& p);

}  // namespace cuda
}  // namespace bk
