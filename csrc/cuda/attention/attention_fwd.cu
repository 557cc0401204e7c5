// Forward dispatch: the smallest instantiated padded head dim that holds
// p.head_dim (extra columns are zero-filled), fp16 or bf16.
#include "cuda/attention/attention_fwd_launch.h"
#include "device/launch.cuh"

namespace bk {
namespace cuda {

const char* attention_forward_unsupported(const AttentionParams& p) {
  if (p.fp64) return "the cuda attention kernels take fp16/bf16 inputs";
  if (p.head_dim <= 0 || p.head_dim > 256 || p.head_dim % 8 != 0)
    return "the cuda attention kernels take head dims that are multiples of 8, up to 256";
  if (p.dropout_p < 0.0 || p.dropout_p >= 1.0) return "dropout_p must be in [0, 1)";
  if ((p.cu_seqlens_q || p.seqused_k) && (p.mask_kind != AttnMask::None || p.dropout_p > 0.0))
    return "varlen and decode take no mask and no dropout";
  if (bool(p.cu_seqlens_q) != bool(p.cu_seqlens_k)) return "varlen needs cu_seqlens_q and cu_seqlens_k";
  if (p.seqused_k && !p.causal) return "decode is causal (bottom-right)";
  if (p.heads_kv <= 0 || p.heads_q % p.heads_kv != 0) return "Hq must be a multiple of Hkv";
  if (p.heads_q > 65535 || p.batch > 65535) return "batch and heads must be at most 65535 (grid limits)";
  if (p.seqlen_q >= (int64_t(1) << 31) - 128 || p.seqlen_kv >= (int64_t(1) << 31) - 128)
    return "sequence lengths must fit in 31 bits";
  const auto aligned = [](const void* ptr, const int64_t* s) {
    return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && s[0] % 8 == 0 && s[1] % 8 == 0 && s[2] % 8 == 0;
  };
  if (!aligned(p.q, p.q_stride) || !aligned(p.k, p.k_stride) || !aligned(p.v, p.v_stride))
    return "q, k, v need 16-byte aligned rows (pointers and strides multiples of 8 elements)";
  if (reinterpret_cast<uintptr_t>(p.o) % 4 != 0 || p.o_stride[2] % 2 != 0) return "o needs 4-byte aligned pairs";
  return nullptr;
}

cudaError_t attention_forward(const AttentionParams& p, bool bf16, cudaStream_t stream) {
  if (attention_forward_unsupported(p)) return cudaErrorInvalidValue;
  if (p.batch == 0 || p.heads_q == 0 || p.seqlen_q == 0) return cudaSuccess;  // varlen: seqlen_q = longest
  const int64_t d = p.head_dim;
#define BK_CASE(KD)                                                                         \
  if (d <= KD)                                                                              \
    return bf16 ? attn::launch_attention_fwd<__nv_bfloat16, KD>(p, stream)                  \
                : attn::launch_attention_fwd<__half, KD>(p, stream);
  BK_CASE(32) BK_CASE(48) BK_CASE(64) BK_CASE(80) BK_CASE(96) BK_CASE(128) BK_CASE(160) BK_CASE(192) BK_CASE(256)
#undef BK_CASE
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace bk
