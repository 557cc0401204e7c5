"""The Triton attention custom ops (bigkernels::attention_triton and
bigkernels::attention_backward_triton): launchers of the kernels in
bigkernels/triton/attention.py, with the schema of the C++ ops."""
from typing import Optional

import torch
import triton
from torch.library import wrap_triton

from ._op import interpreted, kernel_op
from .attention import LOG2E, _attn_bwd_dkdv, _attn_bwd_dq, _attn_fwd, _bwd_block


def _precision(q):
    # fp32 follows torch's TF32 switch, as torch's own matmuls do on a GPU.
    if q.dtype == torch.float32 and q.is_cuda and torch.backends.cuda.matmul.allow_tf32:
        return "tf32"
    return "ieee"


def _mask_args(mask, q, skv):
    """(tensor, strides (b, h, i, j), kind): the mask broadcast to
    (B, Hq, Sq, Skv) as a view (stride 0 on broadcast dims); additive masks
    converted to fp32 before broadcasting, bool read as bytes."""
    if mask is None:
        return q, (0, 0, 0, 0), 0
    if mask.dtype == torch.bool:
        m, kind = mask.view(torch.uint8), 1
    else:
        m, kind = mask.to(torch.float32), 2
    m = m.expand(q.shape[0], q.shape[1], q.shape[2], skv)
    return m, tuple(m.stride()), kind


def _dense_last(t):
    return t if t.stride(-1) == 1 else t.contiguous()


def _fake_forward(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset):
    return torch.empty_like(q, memory_format=torch.contiguous_format), q.new_empty(q.shape[:3], dtype=torch.float32)


@kernel_op("bigkernels::attention_triton", _fake_forward)
def attention_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: Optional[torch.Tensor],
                     causal: bool, scale: float, dropout_p: float, seed: int,
                     offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    q, k, v = _dense_last(q), _dense_last(k), _dense_last(v)
    b, hq, sq, d = q.shape
    hkv, skv = k.shape[1], k.shape[2]
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((b, hq, sq), dtype=torch.float32, device=q.device)
    m, ms, kind = _mask_args(attn_mask, q, skv)
    grid = lambda meta: (triton.cdiv(sq, meta["BLOCK_M"]), b * hq)  # noqa: E731
    wrap_triton(_attn_fwd)[grid](
        q, k, v, out, lse, m, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3], *ms,
        hq, hq // hkv, sq, skv, d, scale * LOG2E,
        CAUSAL=causal, MASK_KIND=kind, BLOCK_D=max(16, triton.next_power_of_2(d)), PREC=_precision(q))
    return out, lse


def _fake_backward(grad_out, grad_lse, q, k, v, out, lse, attn_mask, causal, scale, dropout_p, seed, offset):
    return (torch.empty_like(q, memory_format=torch.contiguous_format),
            torch.empty_like(k, memory_format=torch.contiguous_format),
            torch.empty_like(v, memory_format=torch.contiguous_format))


@kernel_op("bigkernels::attention_backward_triton", _fake_backward)
def attention_backward_triton(grad_out: torch.Tensor, grad_lse: Optional[torch.Tensor], q: torch.Tensor,
                              k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                              attn_mask: Optional[torch.Tensor], causal: bool, scale: float, dropout_p: float,
                              seed: int, offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, k, v, g = _dense_last(q), _dense_last(k), _dense_last(v), _dense_last(grad_out)
    b, hq, sq, d = q.shape
    hkv, skv = k.shape[1], k.shape[2]
    # delta = rowsum(dO * O) - dLSE: O(S) elementwise work, left to torch.
    delta = (g.float() * out.float()).sum(-1)
    if grad_lse is not None:
        delta = delta - grad_lse.float()
    delta = delta.contiguous()
    lse = lse.float().contiguous()
    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    dk = torch.empty(k.shape, dtype=k.dtype, device=k.device)
    dv = torch.empty(v.shape, dtype=v.dtype, device=v.device)
    m, ms, kind = _mask_args(attn_mask, q, skv)
    bm = bn = _bwd_block(d)
    common = dict(CAUSAL=causal, MASK_KIND=kind, BLOCK_D=max(16, triton.next_power_of_2(d)), PREC=_precision(q),
                  BLOCK_M=bm, BLOCK_N=bn, num_warps=4, num_stages=1 if interpreted() else 2)
    strides = (*q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *g.stride()[:3], *ms)
    wrap_triton(_attn_bwd_dkdv)[(triton.cdiv(skv, bn), b * hkv)](
        q, k, v, g, lse, delta, dk, dv, m, *strides, hq, hkv, hq // hkv, sq, skv, d, scale, scale * LOG2E,
        **common)
    wrap_triton(_attn_bwd_dq)[(triton.cdiv(sq, bm), b * hq)](
        q, k, v, g, lse, delta, dq, m, *strides, hq, hq // hkv, sq, skv, d, scale, scale * LOG2E, **common)
    return dq, dk, dv
