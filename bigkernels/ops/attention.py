"""Fused attention: out = softmax(scale * q k^T + mask) v, with the
log-sum-exp, GQA, masks, bottom-right causal and dropout.

Semantics (every backend): see bigkernels/reference/attention.py."""
import math

import torch

from ..backends import availability, dispatch, register, set_auto_order
from ..composite import attention as composite
from ..reference import attention as reference
from .._native import cpu_isa as _cpu_isa
from . import _checks, philox
from ._library import call, define_native, op, register_autograd

_FWD = ("(Tensor q, Tensor k, Tensor v, Tensor? attn_mask, bool causal, float scale, float dropout_p, "
        "int seed, int offset) -> (Tensor, Tensor)")
_BWD = ("(Tensor grad_out, Tensor? grad_lse, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, "
        "Tensor? attn_mask, bool causal, float scale, float dropout_p, int seed, int offset) "
        "-> (Tensor, Tensor, Tensor)")


def _lse_dtype(q):
    return torch.float64 if q.dtype == torch.float64 else torch.float32


def _fake_forward(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset):
    return torch.empty_like(q, memory_format=torch.contiguous_format), q.new_empty(q.shape[:3], dtype=_lse_dtype(q))


def _fake_backward(grad_out, grad_lse, q, k, v, out, lse, attn_mask, causal, scale, dropout_p, seed, offset):
    return (torch.empty_like(q, memory_format=torch.contiguous_format),
            torch.empty_like(k, memory_format=torch.contiguous_format),
            torch.empty_like(v, memory_format=torch.contiguous_format))


define_native("attention", _FWD, _fake_forward)
define_native("attention_backward", _BWD, _fake_backward)


def register_attention_autograd(forward_name, backward_name):
    """Autograd of a kernel variant: the backward op recomputes P from lse."""
    def setup_context(ctx, inputs, output):
        q, k, v, mask, causal, scale, dropout_p, seed, offset = inputs
        out, lse = output
        ctx.save_for_backward(q, k, v, out, lse, mask)
        ctx.args = (causal, scale, dropout_p, seed, offset)

    def backward(ctx, grad_out, grad_lse):
        q, k, v, out, lse, mask = ctx.saved_tensors
        dq, dk, dv = op(backward_name)(grad_out, grad_lse, q, k, v, out, lse, mask, *ctx.args)
        return dq, dk, dv, None, None, None, None, None, None

    register_autograd(forward_name, backward, setup_context=setup_context)

    def double_backward(ctx, *grads):
        raise RuntimeError("bigkernels.ops.attention: double backward is not supported; use the torch backend "
                           "(bigkernels.use_backend('torch')) for higher-order gradients")

    register_autograd(backward_name, double_backward)


register_attention_autograd("attention", "attention_backward")

if availability.triton_usable():
    from ..triton import attention_ops as _triton_attention  # noqa: F401  (defines the _triton ops)

    register_attention_autograd("attention_triton", "attention_backward_triton")


def kernel_supports(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
    """What the C++ kernels cannot serve (the router falls back to `torch`)."""
    if attn_mask is not None and attn_mask.requires_grad and torch.is_grad_enabled():
        return "the gradient with respect to attn_mask needs the (Sq, Skv) score gradient"
    return None


def _triton_supports(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
    if q.dtype == torch.float64:
        return "the triton kernels compute in fp32: float64 is served by cpu/torch"
    if q.shape[3] > 256:
        return f"the triton kernels take head dims up to 256, got {q.shape[3]}"
    return kernel_supports(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse)


def _torch_supports(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
    return None


def _native(name):
    def run(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
        out, lse = call(name, q, k, v, attn_mask, causal, scale, dropout_p, seed, offset)
        return out, (lse if return_lse else None)

    return run


register("attention", "cpu", kernel="bigkernels::attention", supports=kernel_supports)(_native("attention"))
register("attention", "triton", supports=_triton_supports)(_native("attention_triton"))
register("attention", "torch", supports=_torch_supports)(composite.attention)
register("attention", "reference")(reference.attention)


def _lanes_width():
    """Float32 lanes of the CPU's vectors, the lanes kernels' unit (None: no AVX2, no such kernels)."""
    return {"avx512": 16, "avx2": 8}.get(_cpu_isa())


def _lanes_apply(q):
    """Whether the cpu kernel runs this call on its float32 lanes kernels
    (csrc/cpu/attention/forward_lanes.cpp): not float64, an AVX2+ CPU, and
    the queries filling at least 3/4 of the vector lanes they take (a
    sequence's last block runs on just the vectors it needs; kMinLaneFill in
    csrc/cpu/attention/tile.h)."""
    lanes = _lanes_width()
    if lanes is None or q.dtype == torch.float64 or q.shape[2] == 0:
        return False
    return q.shape[2] / (-(-q.shape[2] // lanes) * lanes) >= 0.75


def _cpu_auto_order(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
    """Measured (docs/attention.md; fp32, B=4, H=8, S=1024, D=64): the lanes
    kernels run at 80-90 % of the core's FMA peak, 1.2-1.7x SDPA causal or
    not, forward and backward. Elsewhere (float64, short query blocks such as
    decoding) the BLAS-tile path: ahead of SDPA only where it skips work SDPA
    does (causal blocks, masks). return_lse: the torch backend would form the
    score matrix."""
    return ("cpu", "torch") if causal or return_lse or _lanes_apply(q) else ("torch", "cpu")


set_auto_order("attention", "cpu", _cpu_auto_order)


def _check_qkv(q, k, v):
    for t, name in ((q, "q"), (k, "k"), (v, "v")):
        _checks.tensor(t, name)
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4-D ({'B, Hq, Sq, D' if name == 'q' else 'B, Hkv, Skv, D'}), "
                             f"got shape {list(t.shape)}")
    _checks.same_device(q, "q", k, "k")
    _checks.same_device(q, "q", v, "v")
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got k {list(k.shape)} and v {list(v.shape)}")
    if k.shape[0] != q.shape[0]:
        raise ValueError(f"k has batch {k.shape[0]} but q has batch {q.shape[0]}")
    if k.shape[3] != q.shape[3]:
        raise ValueError(f"k has head dim {k.shape[3]} but q has head dim {q.shape[3]}")
    if k.shape[1] == 0 or q.shape[1] % k.shape[1] != 0:
        raise ValueError(f"q's heads ({q.shape[1]}) must be a multiple of k's heads ({k.shape[1]})")
    for size, name in ((q.shape[0], "batch (q.shape[0])"), (q.shape[1], "heads (q.shape[1])"),
                       (q.shape[2], "q's sequence (q.shape[2])"), (k.shape[2], "k's sequence (k.shape[2])"),
                       (q.shape[3], "head dim (q.shape[3])")):
        if size == 0:
            raise ValueError(f"empty input: {name} is 0")


def _check_mask(attn_mask, q, k):
    if attn_mask is None:
        return None
    if not isinstance(attn_mask, torch.Tensor):
        raise TypeError(f"attn_mask must be a torch.Tensor or None, got {type(attn_mask).__name__}")
    if attn_mask.dtype != torch.bool and not attn_mask.is_floating_point():
        raise TypeError(f"attn_mask must be bool (True = attend) or floating (added to the scores), "
                        f"got {attn_mask.dtype}")
    _checks.same_device(q, "q", attn_mask, "attn_mask")
    target = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    ok = attn_mask.dim() <= 4
    if ok:
        try:
            ok = torch.broadcast_shapes(attn_mask.shape, target) == torch.Size(target)
        except RuntimeError:
            ok = False
    if not ok:
        raise ValueError(f"attn_mask of shape {list(attn_mask.shape)} is not broadcastable to (B, Hq, Sq, Skv) = "
                         f"{list(target)}")
    return attn_mask


def _check_scalars(causal, scale, dropout_p, return_lse, head_dim):
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
    if not isinstance(return_lse, bool):
        raise TypeError(f"return_lse must be a bool, got {type(return_lse).__name__}")
    if scale is None:
        scale = 1.0 / math.sqrt(head_dim)
    elif not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise TypeError(f"scale must be a float or None, got {type(scale).__name__}")
    if not isinstance(dropout_p, (int, float)) or isinstance(dropout_p, bool):
        raise TypeError(f"dropout_p must be a float, got {type(dropout_p).__name__}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p}")
    return float(scale), float(dropout_p)


def attention(q, k, v, *, causal=False, attn_mask=None, scale=None, dropout_p=0.0, return_lse=False):
    """Fused attention over q (B, Hq, Sq, D), k and v (B, Hkv, Skv, D).

    Hq must be a multiple of Hkv (grouped-query / multi-query attention: query
    head h uses kv head h // (Hq // Hkv), K/V are not repeated in memory).
    causal: query i sees keys j <= i + Skv - Sq (bottom-right aligned, as
    decoding with a KV cache needs; torch's SDPA aligns top-left).
    attn_mask: bool (True = attend) or float (added to the scaled scores),
    broadcastable to (B, Hq, Sq, Skv). scale defaults to 1/sqrt(D).
    dropout_p: probability of zeroing an attention weight (torch's generator:
    torch.manual_seed reproduces it). A row with no visible key returns 0 with
    zero gradient. Returns out (q's shape and dtype), and with return_lse=True
    also lse (B, Hq, Sq): the natural log of each row's softmax denominator
    (-inf for a row with no visible key), float32 (float64 for float64 q)."""
    _check_qkv(q, k, v)
    attn_mask = _check_mask(attn_mask, q, k)
    scale, dropout_p = _check_scalars(causal, scale, dropout_p, return_lse, q.shape[3])
    if torch.is_autocast_enabled(q.device.type):  # torch's SDPA casts to the autocast dtype
        dtype = torch.get_autocast_dtype(q.device.type)
    else:
        dtype = _checks.common_dtype((q, k, v), ("q", "k", "v"))
    q, k, v = _checks.cast(q, dtype), _checks.cast(k, dtype), _checks.cast(v, dtype)
    seed = philox.draw_seed() if dropout_p > 0 else 0
    out, lse = dispatch("attention", q.device.type, q, k, v, attn_mask, causal, scale, dropout_p, seed, 0,
                        return_lse)
    return (out, lse) if return_lse else out


def _selftest_inputs(seed, causal=False, gqa=False, mask=False):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    # odd sizes (partial tiles), Sq != Skv (bottom-right causal), 4 query heads on 2 (GQA) or 4 kv heads
    hkv = 2 if gqa else 4
    q = randn64(gen, 2, 4, 5, 16)
    k, v = randn64(gen, 2, hkv, 7, 16), randn64(gen, 2, hkv, 7, 16)
    attn_mask = None
    if mask:  # bool, broadcast over heads; every row keeps its first key
        attn_mask = torch.rand(2, 1, 5, 7, generator=gen) > 0.3
        attn_mask[..., 0] = True
    return (q, k, v), {"causal": causal, "attn_mask": attn_mask}


from ..testing.selftests import register_selftest  # noqa: E402

register_selftest(
    "attention", attention, inputs=_selftest_inputs,
    dtypes=(torch.float32, torch.float16, torch.bfloat16, torch.float64),
    cases=[dict(causal=False, gqa=False, mask=False), dict(causal=True, gqa=False, mask=False),
           dict(causal=True, gqa=True, mask=False), dict(causal=False, gqa=True, mask=True)],
    # the case matching a routed call (q, k, v, attn_mask, causal, ...)
    features=lambda q, k, v, attn_mask, causal, *_: dict(causal=bool(causal), gqa=q.shape[1] != k.shape[1],
                                                         mask=attn_mask is not None))

from . import attention_cuda as _attention_cuda  # noqa: E402,F401  (registers the cuda and cuda_sim backends)
