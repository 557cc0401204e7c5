"""A stand-in for torch.nn.functional.scaled_dot_product_attention, and
patch_sdpa() to route torch's function (and so every model calling it) to it.

Same signature and semantics as torch's (2.13): is_causal is top-left aligned
(query i sees keys j <= i) and combines with attn_mask; enable_gqa; fully
masked rows give 0. Calls our fused op when it can serve them (4-D or 3-D
inputs, equal q/v head dims, matching batch); anything else (nested tensors,
broadcast batch dims, Ev != E, ...) goes to torch's own function, so errors
and corner cases are torch's."""
import torch

from ..composite.attention import TORCH_SDPA
from .attention import attention

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _servable(query, key, value, attn_mask, enable_gqa):
    ts = (query, key, value)
    if not all(isinstance(t, torch.Tensor) and not t.is_nested for t in ts):
        return False
    if query.dim() not in (3, 4) or key.dim() != query.dim() or value.shape != key.shape:
        return False
    if query.dtype not in _FLOATS or key.dtype != query.dtype or value.dtype != query.dtype:
        return False
    if query.shape[:-3] != key.shape[:-3] or query.shape[-1] != key.shape[-1] or 0 in query.shape or 0 in key.shape:
        return False
    if query.dim() == 4:
        hq, hkv = query.shape[1], key.shape[1]
        if hq != hkv and not (enable_gqa and hq % hkv == 0):
            return False
    elif query.shape[0] != key.shape[0]:
        return False
    if attn_mask is not None:
        if not isinstance(attn_mask, torch.Tensor) or attn_mask.dim() > 4:
            return False
        if attn_mask.dtype != torch.bool and attn_mask.dtype not in _FLOATS:
            return False
        target = (*query.shape[:-1], key.shape[-2])
        try:
            if torch.broadcast_shapes(attn_mask.shape, target) != torch.Size(target):
                return False
        except RuntimeError:
            return False
    return True


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False):
    """torch.nn.functional.scaled_dot_product_attention, served by bigkernels'
    fused attention (see the module docstring for what falls back to torch)."""
    if not _servable(query, key, value, attn_mask, enable_gqa):
        return TORCH_SDPA(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                          scale=scale, enable_gqa=enable_gqa)
    three_d = query.dim() == 3
    if three_d:  # (N, L, E): one head
        query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
        if attn_mask is not None and attn_mask.dim() == 3:
            attn_mask = attn_mask.unsqueeze(1)
    sq, skv = query.shape[2], key.shape[2]
    causal = bool(is_causal)
    if causal and sq != skv:
        # torch aligns top-left, our op bottom-right: they differ only when
        # Sq != Skv, where the limit becomes a (Sq, Skv) mask.
        keep = torch.ones(sq, skv, dtype=torch.bool, device=query.device).tril()
        if attn_mask is None:
            attn_mask = keep
        elif attn_mask.dtype == torch.bool:
            attn_mask = attn_mask & keep
        else:
            attn_mask = attn_mask.masked_fill(~keep, float("-inf"))
        causal = False
    out = attention(query, key, value, causal=causal, attn_mask=attn_mask, scale=scale, dropout_p=float(dropout_p))
    return out.squeeze(1) if three_d else out


class _SdpaPatch:
    """Handle of patch_sdpa(): undo() restores torch's function; also a
    context manager (restores on exit)."""

    def __init__(self):
        self._previous = torch.nn.functional.scaled_dot_product_attention
        torch.nn.functional.scaled_dot_product_attention = scaled_dot_product_attention
        self.active = True

    def undo(self):
        if self.active:
            torch.nn.functional.scaled_dot_product_attention = self._previous
            self.active = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.undo()
        return False


def patch_sdpa():
    """Route torch.nn.functional.scaled_dot_product_attention to bigkernels:
    `with bigkernels.patch_sdpa(): ...`, or `handle = bigkernels.patch_sdpa()`
    then `handle.undo()`. Code that bound the function before patching (e.g.
    `from torch.nn.functional import scaled_dot_product_attention`) keeps torch's."""
    return _SdpaPatch()
