// Params of fused attention, O = softmax(scale * Q K^T + mask) V, forward and
// backward. Torch-free: one struct for the CPU kernels now and the CUDA
// kernels and the emulator later.
//
// Layouts: q/o (B, Hq, Sq, D), k/v (B, Hkv, Skv, D) with Hq % Hkv == 0 (query
// head h reads kv head h / (Hq / Hkv): GQA without repeating K/V). Any strides
// for batch, head and sequence; the head dim is contiguous (stride 1), so a
// (B, S, H, D) tensor viewed as (B, H, S, D) is read in place.
#pragma once
#include <stdint.h>

namespace bk {

enum class AttnMask : int32_t { None = 0, Bool = 1, Additive = 2 };

struct AttentionParams {
  // Inputs. Element (b, h, s, d) of q is at q + b*q_stride[0] + h*q_stride[1] + s*q_stride[2] + d.
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t q_stride[3] = {0, 0, 0};
  int64_t k_stride[3] = {0, 0, 0};
  int64_t v_stride[3] = {0, 0, 0};
  int64_t batch = 0, heads_q = 0, heads_kv = 0, seqlen_q = 0, seqlen_kv = 0, head_dim = 0;

  // Mask broadcastable to (B, Hq, Sq, Skv), read through its strides (0 on
  // broadcast dims): never expanded in memory. Bool: true = attend (bytes).
  // Additive: the compute type of the kernel (float or double).
  const void* mask = nullptr;
  AttnMask mask_kind = AttnMask::None;
  int64_t mask_stride[4] = {0, 0, 0, 0};

  // causal: query i sees keys j <= i + (Skv - Sq) (bottom-right alignment).
  bool causal = false;
  double scale = 1.0;

  // Dropout on the probabilities (0 = none): element (b, h, i, j) is kept iff
  // dropout_keep(seed, offset + ((b * Hq + h) * Sq + i) * Skv + j, ...)
  // (common/attention_philox.h); kept values are scaled by 1 / (1 - p).
  double dropout_p = 0.0;
  uint64_t seed = 0, offset = 0;

  // Outputs of the forward, inputs of the backward. o has q's shape with
  // o_stride; lse is (B, Hq, Sq) contiguous, natural log of sum(exp(scaled
  // scores)); -inf for a row that sees no key (its output is 0).
  void* o = nullptr;
  int64_t o_stride[3] = {0, 0, 0};
  void* lse = nullptr;

  // Backward: dO (o's shape, do_stride), optional dLSE (B, Hq, Sq contiguous),
  // dq (dq_stride), dk/dv (k's/v's shape, dk_stride/dv_stride).
  const void* dout = nullptr;
  int64_t do_stride[3] = {0, 0, 0};
  const void* dlse = nullptr;
  void* dq = nullptr;
  int64_t dq_stride[3] = {0, 0, 0};
  void* dk = nullptr;
  int64_t dk_stride[3] = {0, 0, 0};
  void* dv = nullptr;
  int64_t dv_stride[3] = {0, 0, 0};

  // Per-sequence lengths (else every sequence has seqlen_q / seqlen_kv):
  // varlen: packed (total, H, D) tensors, sequence b spans rows
  // [cu_seqlens_q[b], cu_seqlens_q[b + 1]) (batch strides 0, seqlen_q/kv = the
  // maximum lengths, lse (Hq, total_q)); decode: seqused_k[b] keys of a
  // (B, Hkv, S_max, D) cache are valid. Masks and dropout are dense-only.
  const int64_t* cu_seqlens_q = nullptr;
  const int64_t* cu_seqlens_k = nullptr;
  const int64_t* seqused_k = nullptr;
  int64_t total_q = 0;

  // Compute type: false = float32 (fp16/bf16 inputs are converted to it by the
  // glue), true = float64. Tile sizes are chosen by the glue.
  bool fp64 = false;
  int64_t block_q = 64, block_kv = 64;
};

}  // namespace bk
