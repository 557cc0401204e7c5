// Backward dispatch: the same padded head dims as the forward.
#include "cuda/attention/attention_bwd_launch.h"
#include "device/launch.cuh"

namespace bk {
namespace cuda {

const char* attention_backward_unsupported(const AttentionParams& p) {
  if (const char* why = attention_forward_unsupported(p)) return why;
  const auto aligned = [](const void* ptr, const int64_t* s) {
    return reinterpret_cast<uintptr_t>(ptr) % 16 == 0 && s[0] % 8 == 0 && s[1] % 8 == 0 && s[2] % 8 == 0;
  };
  if (!aligned(p.dout, p.do_stride)) return "grad_out needs 16-byte aligned rows";
  if (reinterpret_cast<uintptr_t>(p.dk) % 4 || reinterpret_cast<uintptr_t>(p.dv) % 4 || p.dk_stride[2] % 2 ||
      p.dv_stride[2] % 2)
    return "dk and dv need 4-byte aligned pairs";
  return nullptr;
}

cudaError_t attention_backward(const AttentionParams& p, const AttentionBwdWorkspace& ws, bool bf16,
                               cudaStream_t stream) {
  if (attention_backward_unsupported(p)) return cudaErrorInvalidValue;
  if (p.batch == 0 || p.heads_q == 0 || p.seqlen_q == 0 || p.seqlen_kv == 0) return cudaSuccess;
  const int64_t d = p.head_dim;
#define BK_CASE(KD)                                                                         \
  if (d <= KD)                                                                              \
    return bf16 ? attn::launch_attention_bwd<__nv_bfloat16, KD>(p, ws, stream)              \
                : attn::launch_attention_bwd<__half, KD>(p, ws, stream);
  BK_CASE(32) BK_CASE(48) BK_CASE(64) BK_CASE(80) BK_CASE(96) BK_CASE(128) BK_CASE(160) BK_CASE(192) BK_CASE(256)
#undef BK_CASE
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace bk
