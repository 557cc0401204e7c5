"""Triton decoding attention with split-KV (flash-decoding): a few new
queries per sequence against a KV cache. The cache's valid keys are split in
chunks, one program per (batch * head, chunk), so that batch 1 still fills
the GPU; each writes its chunk's normalised output and log-sum-exp, and the
chunks are merged with their softmax weights (torch, O(chunks * Sq * D)).
Causal, bottom-right per sequence (the new queries are the last Sq of
seqused_k[b] positions), as bigkernels.ops.attention_decode, whose cache
append this op does first (the shared append_to_cache)."""
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ..ops.decode_append import append_to_cache
from ._op import interpreted, kernel_op
from .attention import LOG2E, _fwd_stage


@triton.jit
def _attn_decode_split(Q, K, V, Used, O, LSE, sq_b, sq_h, sq_s, sk_b, sk_h, sk_s, sv_b, sv_h, sv_s,
                       Hq, group, Sq, D, chunk, n_chunks, qk_scale,
                       BLOCK_D: tl.constexpr, PREC: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    bh = tl.program_id(0)
    c = tl.program_id(1)
    b = bh // Hq
    h = bh % Hq
    skv = tl.load(Used + b)
    offs_m = tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q = tl.load(Q + b.to(tl.int64) * sq_b + h * sq_h + offs_m[:, None] * sq_s + offs_d[None, :],
                mask=(offs_m[:, None] < Sq) & (offs_d[None, :] < D), other=0.0)
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    lo = c * chunk
    hi = tl.minimum(lo + chunk, skv)
    Kb = K + b.to(tl.int64) * sk_b + (h // group) * sk_h
    Vb = V + b.to(tl.int64) * sv_b + (h // group) * sv_h
    acc, m_i, l_i = _fwd_stage(acc, m_i, l_i, q, Kb, Vb, sk_s, sv_s, offs_m, offs_n, offs_d, lo, hi, Q, 0, 0,
                               Sq, skv, D, qk_scale, 0, 0, bh, 0, 1.0, True, 0, True, BLOCK_N, PREC, False)
    seen = l_i > 0
    out = acc / tl.where(seen, l_i, 1.0)[:, None]
    row = (bh.to(tl.int64) * n_chunks + c) * Sq
    tl.store(O + (row + offs_m[:, None]) * D + offs_d[None, :], out,
             mask=(offs_m[:, None] < Sq) & (offs_d[None, :] < D))
    lse = tl.where(seen, m_i + tl.math.log2(tl.where(seen, l_i, 1.0)), float("-inf"))  # base 2
    tl.store(LSE + row + offs_m, lse, mask=offs_m < Sq)


def _chunks(skv_max, rows):
    """Chunk length: interpreted, 16 keys (several chunks even in tests); on a
    GPU enough chunks for ~2 programs per SM, each at least 256 keys."""
    if interpreted():
        return 16
    sms = torch.cuda.get_device_properties(torch.cuda.current_device()).multi_processor_count
    want = max(1, (2 * sms + rows - 1) // rows)
    return max(256, triton.cdiv(skv_max, want))


@kernel_op("bigkernels::attention_decode_triton",
           lambda q, k, v, lens, k_new, v_new, scale: torch.empty_like(q, memory_format=torch.contiguous_format),
           mutates_args=("k_cache", "v_cache"))
def attention_decode_triton(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
                            cache_seqlens: torch.Tensor, k_new: Optional[torch.Tensor], v_new: Optional[torch.Tensor],
                            scale: float) -> torch.Tensor:
    seqused_k = append_to_cache(k_cache, v_cache, cache_seqlens, k_new, v_new)
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k_cache, v_cache))
    b, hq, sq, d = q.shape
    hkv, s_max = k.shape[1], k.shape[2]
    block_m = max(16, triton.next_power_of_2(sq))
    chunk = _chunks(s_max, b * hq)
    n_chunks = triton.cdiv(s_max, chunk)
    parts = torch.empty((b, hq, n_chunks, sq, d), dtype=torch.float32, device=q.device)
    lse = torch.empty((b, hq, n_chunks, sq), dtype=torch.float32, device=q.device)
    bn = 16 if interpreted() else 64
    wrap_triton(_attn_decode_split)[(b * hq, n_chunks)](
        q, k, v, seqused_k, parts, lse, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3],
        hq, hq // hkv, sq, d, chunk, n_chunks, scale * LOG2E,
        BLOCK_D=max(16, triton.next_power_of_2(d)), PREC="ieee", BLOCK_M=block_m, BLOCK_N=bn,
        num_warps=4, num_stages=1 if interpreted() else 2)
    # merge the chunks: weights 2^(lse_c - lse_total); rows that saw no key stay 0
    total = torch.logsumexp(lse * 0.6931471805599453, dim=2, keepdim=True)
    weight = torch.exp(lse * 0.6931471805599453 - torch.where(torch.isinf(total), torch.zeros_like(total), total))
    out = (parts * weight.unsqueeze(-1)).sum(2)
    return out.to(q.dtype)


# AOT configs (bigkernels/aot): as attention_decode_triton launches on a GPU
# (BLOCK_N 64, 4 warps, 2 stages, PREC "ieee"; BLOCK_M = the new queries
# padded to >= 16; fp32 partial outputs and LSE; seqused_k int32).
# Pinned (CI): bf16, D=128, up to 16 new queries.
def _aot_configs():
    from ._op import aot_signature

    configs = []
    for dt, d in (("fp16", 128), ("bf16", 128), ("fp32", 128), ("bf16", 64)):
        sig = aot_signature(_attn_decode_split, {"Q": "*" + dt, "K": "*" + dt, "V": "*" + dt, "Used": "*i32",
                                                 "O": "*fp32", "LSE": "*fp32", "qk_scale": "fp32"})
        configs.append(dict(name=f"attn_decode_{dt}_d{d}", kernel=_attn_decode_split, signature=sig,
                            constexprs=dict(BLOCK_D=d, PREC="ieee", BLOCK_M=16, BLOCK_N=64),
                            num_warps=4, num_stages=2, pinned=dt == "bf16" and d == 128))
    return configs


AOT_CONFIGS = _aot_configs()
