// Split-KV decode: planning (how many key ranges) and dispatch by head dim.
#include "cuda/attention/attention_decode_launch.h"
#include "device/launch.cuh"

namespace bk {
namespace cuda {

const char* attention_decode_unsupported(const AttentionParams& p) {
  if (!p.seqused_k || p.cu_seqlens_q) return "decode needs seqused_k (and no cu_seqlens)";
  if (p.batch * p.heads_q * p.seqlen_q >= (int64_t(1) << 31)) return "decode takes B x Hq x Sq < 2^31 query rows";
  return attention_forward_unsupported(p);
}

AttentionDecodeWorkspace attention_decode_plan(const AttentionParams& p) {
  int sms = 132;
#if defined(__CUDACC__)
  int device = 0;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
#endif
  constexpr int64_t kMinKeys = 64;  // a multiple of every kBlockN
  const int64_t rows = p.heads_kv > 0 ? (p.heads_q / p.heads_kv) * p.seqlen_q : 0;
  const int64_t blocks = (rows + 63) / 64 * p.heads_kv * p.batch;
  const int64_t most = (p.seqlen_kv + kMinKeys - 1) / kMinKeys;
  int64_t splits = blocks > 0 ? (2 * sms + blocks - 1) / blocks : 1;
  splits = splits < 1 ? 1 : splits > most ? most : splits > 128 ? 128 : splits;
  if (splits < 1) splits = 1;
  AttentionDecodeWorkspace ws;
  const int64_t per = (p.seqlen_kv + splits - 1) / splits;
  ws.keys_per_split = int((per + kMinKeys - 1) / kMinKeys * kMinKeys);
  if (ws.keys_per_split == 0) ws.keys_per_split = int(kMinKeys);
  ws.num_splits = int((p.seqlen_kv + ws.keys_per_split - 1) / ws.keys_per_split);
  if (ws.num_splits < 1) ws.num_splits = 1;
  return ws;
}

cudaError_t attention_decode(const AttentionParams& p, const AttentionDecodeWorkspace& ws, bool bf16,
                             cudaStream_t stream, const AttentionCacheAppend& append) {
  if (attention_decode_unsupported(p) || ws.num_splits < 1 || ws.keys_per_split % 64 != 0 ||
      int64_t(ws.num_splits) * ws.keys_per_split < p.seqlen_kv || (ws.num_splits > 1 && !ws.o_partial))
    return cudaErrorInvalidValue;
  const bool append_ok = append.seqlen_new == 0 ||
                         (append.k_new && append.v_new && append.k_cache == p.k && append.v_cache == p.v &&
                          append.seqlen_new > 0 && append.seqlen_new <= p.seqlen_kv);
  if (!append_ok) return cudaErrorInvalidValue;
  // No query: nothing to attend, but an append still runs (one tile of no rows).
  if (p.batch == 0 || p.heads_q == 0 || (p.seqlen_q == 0 && append.seqlen_new == 0)) return cudaSuccess;
  const int64_t d = p.head_dim;
#define BK_CASE(KD)                                                                         \
  if (d <= KD)                                                                              \
    return bf16 ? attn::launch_attention_decode<__nv_bfloat16, KD>(p, ws, append, stream)   \
                : attn::launch_attention_decode<__half, KD>(p, ws, append, stream);
  BK_CASE(32) BK_CASE(48) BK_CASE(64) BK_CASE(80) BK_CASE(96) BK_CASE(128) BK_CASE(160) BK_CASE(192) BK_CASE(256)
#undef BK_CASE
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace bk
