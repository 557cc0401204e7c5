"""The Triton attention custom ops (bigkernels::attention_triton and
bigkernels::attention_backward_triton): launchers of the kernels in
bigkernels/triton/attention.py, with the schema of the C++ ops."""
from typing import Optional

import torch
import triton
from torch.library import wrap_triton

from ..ops import philox
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


def _dropout_args(p, seed, offset):
    """seed, offset, integer keep threshold and the kept scale (ops/philox.py)."""
    return seed, offset, philox.threshold(p), 1.0 / (1.0 - p)


def _dense_last(t):
    return t if t.stride(-1) == 1 else t.contiguous()


def _fake_forward(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset):
    return torch.empty_like(q, memory_format=torch.contiguous_format), q.new_empty(q.shape[:3], dtype=torch.float32)


def _packed4(t):
    """(total, H, D) -> a (1, H, total, D) view: the kernels' (b, h, s) strides."""
    return t.as_strided((1, t.shape[1], t.shape[0], t.shape[2]), (0, t.stride(1), t.stride(0), t.stride(2)))


def _forward(q, k, v, out, lse, attn_mask, causal, scale, dropout_p, seed, offset, nseq, sq, skv, varlen=None):
    """q/k/v/out 4-D (or packed4 views); varlen = (cu_q, cu_k, total_q)."""
    hq, d, hkv = q.shape[1], q.shape[3], k.shape[1]
    m, ms, kind = _mask_args(attn_mask, q, skv)
    cu_q, cu_k, total_q = varlen if varlen is not None else (q, q, 0)
    grid = lambda meta: (triton.cdiv(sq, meta["BLOCK_M"]), nseq * hq)  # noqa: E731
    wrap_triton(_attn_fwd)[grid](
        q, k, v, out, lse, m, *q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *out.stride()[:3], *ms,
        hq, hq // hkv, sq, skv, d, scale * LOG2E, *_dropout_args(dropout_p, seed, offset), cu_q, cu_k, total_q,
        CAUSAL=causal, MASK_KIND=kind, BLOCK_D=max(16, triton.next_power_of_2(d)), PREC=_precision(q),
        DROPOUT=dropout_p > 0, VARLEN=varlen is not None)


def _backward(g, q, k, v, lse, delta, dq, dk, dv, attn_mask, causal, scale, dropout_p, seed, offset, nseq, sq, skv,
              varlen=None):
    hq, d, hkv = q.shape[1], q.shape[3], k.shape[1]
    m, ms, kind = _mask_args(attn_mask, q, skv)
    cu_q, cu_k, total_q = varlen if varlen is not None else (q, q, 0)
    bm = bn = _bwd_block(d)
    common = dict(CAUSAL=causal, MASK_KIND=kind, BLOCK_D=max(16, triton.next_power_of_2(d)), PREC=_precision(q),
                  DROPOUT=dropout_p > 0, VARLEN=varlen is not None, BLOCK_M=bm, BLOCK_N=bn, num_warps=4,
                  num_stages=1 if interpreted() else 2)
    strides = (*q.stride()[:3], *k.stride()[:3], *v.stride()[:3], *g.stride()[:3], *ms)
    extra = (*_dropout_args(dropout_p, seed, offset), cu_q, cu_k, total_q)
    wrap_triton(_attn_bwd_dkdv)[(triton.cdiv(skv, bn), nseq * hkv)](
        q, k, v, g, lse, delta, dk, dv, m, *strides, hq, hkv, hq // hkv, sq, skv, d, scale, scale * LOG2E,
        *extra, *dk.stride()[:3], **common)
    wrap_triton(_attn_bwd_dq)[(triton.cdiv(sq, bm), nseq * hq)](
        q, k, v, g, lse, delta, dq, m, *strides, hq, hq // hkv, sq, skv, d, scale, scale * LOG2E,
        *extra, *dq.stride()[:3], **common)


@kernel_op("bigkernels::attention_triton", _fake_forward)
def attention_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: Optional[torch.Tensor],
                     causal: bool, scale: float, dropout_p: float, seed: int,
                     offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    q, k, v = _dense_last(q), _dense_last(k), _dense_last(v)
    b, hq, sq, _ = q.shape
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((b, hq, sq), dtype=torch.float32, device=q.device)
    _forward(q, k, v, out, lse, attn_mask, causal, scale, dropout_p, seed, offset, b, sq, k.shape[2])
    return out, lse


def _fake_backward(grad_out, grad_lse, q, k, v, out, lse, attn_mask, causal, scale, dropout_p, seed, offset):
    return (torch.empty_like(q, memory_format=torch.contiguous_format),
            torch.empty_like(k, memory_format=torch.contiguous_format),
            torch.empty_like(v, memory_format=torch.contiguous_format))


def _delta(g, out, grad_lse):
    """rowsum(dO * O) - dLSE: O(S) elementwise work, left to torch."""
    delta = (g.float() * out.float()).sum(-1)
    return delta if grad_lse is None else delta - grad_lse.float()


@kernel_op("bigkernels::attention_backward_triton", _fake_backward)
def attention_backward_triton(grad_out: torch.Tensor, grad_lse: Optional[torch.Tensor], q: torch.Tensor,
                              k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                              attn_mask: Optional[torch.Tensor], causal: bool, scale: float, dropout_p: float,
                              seed: int, offset: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, k, v, g = _dense_last(q), _dense_last(k), _dense_last(v), _dense_last(grad_out)
    dq, dk, dv = (torch.empty(t.shape, dtype=t.dtype, device=t.device) for t in (q, k, v))
    _backward(g, q, k, v, lse.float().contiguous(), _delta(g, out, grad_lse).contiguous(), dq, dk, dv, attn_mask,
              causal, scale, dropout_p, seed, offset, q.shape[0], q.shape[2], k.shape[2])
    return dq, dk, dv


def _fake_varlen(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale):
    return (torch.empty_like(q, memory_format=torch.contiguous_format),
            q.new_empty((q.shape[1], q.shape[0]), dtype=torch.float32))


@kernel_op("bigkernels::attention_varlen_triton", _fake_varlen)
def attention_varlen_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens_q: torch.Tensor,
                            cu_seqlens_k: torch.Tensor, max_seqlen_q: int, max_seqlen_k: int, causal: bool,
                            scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    q, k, v = _dense_last(q), _dense_last(k), _dense_last(v)
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((q.shape[1], q.shape[0]), dtype=torch.float32, device=q.device)
    _forward(_packed4(q), _packed4(k), _packed4(v), _packed4(out), lse, None, causal, scale, 0.0, 0, 0,
             cu_seqlens_q.numel() - 1, max_seqlen_q, max_seqlen_k, (cu_seqlens_q, cu_seqlens_k, q.shape[0]))
    return out, lse


@kernel_op("bigkernels::attention_varlen_backward_triton",
           lambda g, gl, q, k, v, *a: tuple(torch.empty_like(t, memory_format=torch.contiguous_format)
                                            for t in (q, k, v)))
def attention_varlen_backward_triton(grad_out: torch.Tensor, grad_lse: Optional[torch.Tensor], q: torch.Tensor,
                                     k: torch.Tensor, v: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                                     cu_seqlens_q: torch.Tensor, cu_seqlens_k: torch.Tensor, max_seqlen_q: int,
                                     max_seqlen_k: int, causal: bool,
                                     scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q, k, v, g = _dense_last(q), _dense_last(k), _dense_last(v), _dense_last(grad_out)
    # lse and delta as (Hq, total_q); dK/dV zero where no sequence reads a row
    delta = _delta(g, out, None).t()
    if grad_lse is not None:
        delta = delta - grad_lse.float()
    dq = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    dk, dv = (torch.zeros(t.shape, dtype=t.dtype, device=t.device) for t in (k, v))
    _backward(_packed4(g), _packed4(q), _packed4(k), _packed4(v), lse.float().contiguous(), delta.contiguous(),
              _packed4(dq), _packed4(dk), _packed4(dv), None, causal, scale, 0.0, 0, 0, cu_seqlens_q.numel() - 1,
              max_seqlen_q, max_seqlen_k, (cu_seqlens_q, cu_seqlens_k, q.shape[0]))
    return dq, dk, dv
