"""Attention over packed sequences of different lengths (varlen) and against
a KV cache (decode). Semantics as bigkernels.ops.attention per sequence
(causal bottom-right per sequence)."""
import math

import torch

from ..backends import availability, dispatch, register, set_auto_order
from ..composite import attention as composite
from ..reference import attention as reference
from . import _checks
from ._library import call, define_native, op, register_autograd
from .decode_append import append_to_cache

_VARLEN = ("(Tensor q, Tensor k, Tensor v, Tensor cu_seqlens_q, Tensor cu_seqlens_k, int max_seqlen_q, "
           "int max_seqlen_k, bool causal, float scale) -> (Tensor, Tensor)")
_VARLEN_BWD = ("(Tensor grad_out, Tensor? grad_lse, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, "
               "Tensor cu_seqlens_q, Tensor cu_seqlens_k, int max_seqlen_q, int max_seqlen_k, bool causal, "
               "float scale) -> (Tensor, Tensor, Tensor)")
# The decode step appends k_new/v_new into the caches in place (mutated
# arguments: torch.compile functionalises the op), then attends.
_DECODE = ("(Tensor q, Tensor(a!) k_cache, Tensor(b!) v_cache, Tensor cache_seqlens, Tensor? k_new, Tensor? v_new, "
           "float scale) -> Tensor")


def _lse_dtype(q):
    return torch.float64 if q.dtype == torch.float64 else torch.float32


define_native("attention_varlen", _VARLEN, lambda q, k, v, *a: (
    torch.empty_like(q, memory_format=torch.contiguous_format),
    q.new_empty((q.shape[1], q.shape[0]), dtype=_lse_dtype(q))))
define_native("attention_varlen_backward", _VARLEN_BWD, lambda g, gl, q, k, v, *a: (
    torch.empty_like(q, memory_format=torch.contiguous_format),
    torch.empty_like(k, memory_format=torch.contiguous_format),
    torch.empty_like(v, memory_format=torch.contiguous_format)))
define_native("attention_decode", _DECODE,
              lambda q, k, v, lens, k_new, v_new, scale: torch.empty_like(q, memory_format=torch.contiguous_format))


def _setup(ctx, inputs, output):
    q, k, v, cu_q, cu_k, max_q, max_k, causal, scale = inputs
    ctx.save_for_backward(q, k, v, output[0], output[1], cu_q, cu_k)
    ctx.args = (max_q, max_k, causal, scale)


def _register_varlen_autograd(forward_name, backward_name):
    def backward(ctx, grad_out, grad_lse):
        q, k, v, out, lse, cu_q, cu_k = ctx.saved_tensors
        dq, dk, dv = op(backward_name)(grad_out, grad_lse, q, k, v, out, lse, cu_q, cu_k, *ctx.args)
        return dq, dk, dv, None, None, None, None, None, None

    register_autograd(forward_name, backward, setup_context=_setup)


_register_varlen_autograd("attention_varlen", "attention_varlen_backward")


def _per_sequence(fn, q, k, v, cu_q, cu_k, causal, scale):
    """The dense op on each sequence's rows (torch/reference backends)."""
    outs = []
    for qs, qe, ks, ke in zip(cu_q[:-1].tolist(), cu_q[1:].tolist(), cu_k[:-1].tolist(), cu_k[1:].tolist()):
        qi, ki, vi = (t.transpose(0, 1).unsqueeze(0) for t in (q[qs:qe], k[ks:ke], v[ks:ke]))
        out, _ = fn(qi, ki, vi, None, causal, scale, 0.0, 0, 0, False)
        outs.append(out[0].transpose(0, 1))
    return torch.cat(outs)


register("attention_varlen", "cpu", kernel="bigkernels::attention_varlen")(
    lambda q, k, v, cu_q, cu_k, mq, mk, causal, scale: call("attention_varlen", q, k, v, cu_q, cu_k, mq, mk, causal,
                                                                             scale)[0])
register("attention_varlen", "torch")(
    lambda q, k, v, cu_q, cu_k, mq, mk, causal, scale: _per_sequence(composite.attention, q, k, v, cu_q, cu_k,
                                                                     causal, scale))
register("attention_varlen", "reference")(
    lambda q, k, v, cu_q, cu_k, mq, mk, causal, scale: _per_sequence(reference.attention, q, k, v, cu_q, cu_k,
                                                                     causal, scale))
# One kernel call against a Python loop of SDPA calls: cpu first.
set_auto_order("attention_varlen", "cpu", ("cpu", "torch"))


def _decode_mask(q, seqused, s_max):
    """Bool (B, 1, Sq, S_max): key j valid for new query t of sequence b iff
    j < seqused[b] and j <= t + seqused[b] - Sq (bottom-right causal)."""
    sq = q.shape[2]
    j = torch.arange(s_max, device=q.device).view(1, 1, 1, -1)
    t = torch.arange(sq, device=q.device).view(1, 1, -1, 1)
    used = seqused.view(-1, 1, 1, 1)
    return (j < used) & (j <= t + used - sq)


def _decode_composed(fn):
    """The torch/reference backends: append, then the dense op under the decode mask."""
    def run(q, kc, vc, lens, k_new, v_new, scale):
        used = append_to_cache(kc, vc, lens, k_new, v_new)
        return fn(q, kc, vc, _decode_mask(q, used, kc.shape[2]), False, scale, 0.0, 0, 0, False)[0]
    return run


register("attention_decode", "cpu", kernel="bigkernels::attention_decode")(
    lambda q, kc, vc, lens, kn, vn, scale: call("attention_decode", q, kc, vc, lens, kn, vn, scale))
register("attention_decode", "torch")(_decode_composed(composite.attention))
register("attention_decode", "reference")(_decode_composed(reference.attention))
set_auto_order("attention_decode", "cpu", ("cpu", "torch"))

if availability.triton_usable():
    from ..triton import attention_decode as _triton_decode  # noqa: F401  (defines the _triton op)

    def _decode_triton_supports(q, *args):
        if q.dtype == torch.float64:
            return "the triton kernels compute in fp32: float64 is served by cpu/torch"
        if q.shape[-1] > 256:
            return f"the triton kernels take head dims up to 256, got {q.shape[-1]}"
        return None

    from ..triton import attention_ops as _triton_attention  # noqa: F401  (the varlen _triton ops)

    _register_varlen_autograd("attention_varlen_triton", "attention_varlen_backward_triton")
    register("attention_varlen", "triton",
             supports=_decode_triton_supports)(
        lambda q, k, v, cu_q, cu_k, mq, mk, causal, scale: call("attention_varlen_triton", q, k, v, cu_q, cu_k, mq, mk,
                                                                                        causal, scale)[0])
    register("attention_decode", "triton", supports=_decode_triton_supports)(
        lambda q, kc, vc, lens, kn, vn, scale: call("attention_decode_triton", q, kc, vc, lens, kn, vn, scale))


def _check_cu(cu, name, total, device):
    if not isinstance(cu, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(cu).__name__}")
    if cu.dtype not in (torch.int32, torch.int64) or cu.dim() != 1 or cu.numel() < 2:
        raise ValueError(f"{name} must be a 1-D int32/int64 tensor of batch + 1 offsets, got {cu.dtype} "
                         f"{list(cu.shape)}")
    _checks.same_device(cu, name, torch.empty(0, device=device), "q")
    cu = cu.to(torch.int64).contiguous()
    if int(cu[0]) != 0 or int(cu[-1]) != total or bool((cu[1:] < cu[:-1]).any()):
        raise ValueError(f"{name} must start at 0, be non-decreasing and end at {total} (the packed length)")
    return cu


def _scale(scale, d):
    if scale is None:
        return 1.0 / math.sqrt(d)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool):
        raise TypeError(f"scale must be a float or None, got {type(scale).__name__}")
    return float(scale)


def attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *, causal=False, scale=None):
    """Attention over packed sequences: q (total_q, Hq, D), k/v (total_k, Hkv, D);
    sequence b is rows cu_seqlens_q[b]:cu_seqlens_q[b+1] of q and
    cu_seqlens_k[b]:cu_seqlens_k[b+1] of k/v. No compute is spent on padding.
    causal: bottom-right per sequence. Returns (total_q, Hq, D); differentiable."""
    for t, name in ((q, "q"), (k, "k"), (v, "v")):
        _checks.tensor(t, name)
        if t.dim() != 3:
            raise ValueError(f"{name} must be 3-D (total, H, D), got shape {list(t.shape)}")
    _checks.same_device(q, "q", k, "k")
    _checks.same_device(q, "q", v, "v")
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got {list(k.shape)} and {list(v.shape)}")
    if k.shape[2] != q.shape[2] or k.shape[1] == 0 or q.shape[1] % k.shape[1]:
        raise ValueError(f"q {list(q.shape)} and k {list(k.shape)}: head dims must match and q's heads must be a "
                         f"multiple of k's")
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
    cu_q = _check_cu(cu_seqlens_q, "cu_seqlens_q", q.shape[0], q.device)
    cu_k = _check_cu(cu_seqlens_k, "cu_seqlens_k", k.shape[0], q.device)
    if cu_q.numel() != cu_k.numel():
        raise ValueError(f"cu_seqlens_q and cu_seqlens_k must have the same length, got {cu_q.numel()} and "
                         f"{cu_k.numel()}")
    for m, cu, name in ((max_seqlen_q, cu_q, "max_seqlen_q"), (max_seqlen_k, cu_k, "max_seqlen_k")):
        if not isinstance(m, int) or isinstance(m, bool):
            raise TypeError(f"{name} must be an int, got {type(m).__name__}")
        if m < int((cu[1:] - cu[:-1]).max()):
            raise ValueError(f"{name}={m} is shorter than the longest sequence")
    dtype = _checks.common_dtype((q, k, v), ("q", "k", "v"))
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    return dispatch("attention_varlen", q.device.type, q, k, v, cu_q, cu_k, max_seqlen_q, max_seqlen_k, causal,
                    _scale(scale, q.shape[2]))


def attention_decode(q, k_cache, v_cache, cache_seqlens, *, k_new=None, v_new=None, scale=None):
    """Decoding step: q (B, Hq, Sq, D) new queries against a KV cache
    (B, Hkv, S_max, D) holding cache_seqlens[b] valid positions. k_new/v_new
    (B, Hkv, Sn, D), if given, are written into the caches in place at
    positions cache_seqlens[b] .. + Sn (cast to the caches' dtype;
    cache_seqlens itself is not changed), and attended to with them.
    The new queries are the last Sq positions: causal, bottom-right.
    Runs in the caches' dtype. Inference only (no autograd)."""
    for t, name in ((q, "q"), (k_cache, "k_cache"), (v_cache, "v_cache")):
        _checks.tensor(t, name)
        if t.dim() != 4:
            raise ValueError(f"{name} must be 4-D, got shape {list(t.shape)}")
        _checks.same_device(q, "q", t, name)
    if k_cache.shape != v_cache.shape:
        raise ValueError(f"k_cache and v_cache must have the same shape, got {list(k_cache.shape)} and "
                         f"{list(v_cache.shape)}")
    b, hq, sq, d = q.shape
    _, hkv, s_max, dk = k_cache.shape
    if k_cache.shape[0] != b or dk != d or hkv == 0 or hq % hkv:
        raise ValueError(f"q {list(q.shape)} and k_cache {list(k_cache.shape)}: batch and head dim must match and "
                         f"q's heads must be a multiple of the cache's")
    if not isinstance(cache_seqlens, torch.Tensor) or cache_seqlens.shape != (b,) or \
            cache_seqlens.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"cache_seqlens must be an int32/int64 tensor of shape ({b},)")
    if (k_new is None) != (v_new is None):
        raise ValueError("k_new and v_new must be given together")
    news = () if k_new is None else ((k_new, "k_new"), (v_new, "v_new"))
    for t, name in news:
        _checks.tensor(t, name)
        if t.dim() != 4 or t.shape[:2] != (b, hkv) or t.shape[3] != d or t.shape != k_new.shape:
            raise ValueError(f"{name} must be ({b}, {hkv}, Sn, {d}), got {list(t.shape)}")
        _checks.same_device(q, "q", t, name)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (q, k_cache, v_cache, k_new, v_new) if t is not None):
        raise ValueError("attention_decode is inference-only: call it under torch.no_grad()")
    if k_cache.dtype != v_cache.dtype:
        raise TypeError(f"k_cache and v_cache must have one dtype, got {k_cache.dtype} and {v_cache.dtype}")
    _checks.common_dtype((q, k_cache), ("q", "k_cache"))  # mixed dtypes only under autocast
    lens = cache_seqlens.to(device=q.device, dtype=torch.int64).contiguous()
    n = 0 if k_new is None else k_new.shape[2]
    if not torch.compiler.is_compiling():  # value checks need the lengths on the host
        if int(lens.min()) < 0:
            raise ValueError("cache_seqlens must be >= 0")
        if int(lens.max()) + n > s_max:
            raise ValueError(f"cache_seqlens must be in [0, {s_max}]" if n == 0 else
                             f"cache_seqlens + {n} new positions exceed the cache length {s_max}")
    # The caches are written in place: the step runs in their dtype.
    dtype = k_cache.dtype
    return dispatch("attention_decode", q.device.type, _checks.cast(q, dtype), k_cache, v_cache, lens,
                    _checks.cast(k_new, dtype), _checks.cast(v_new, dtype), _scale(scale, d))


def _varlen_selftest_inputs(seed, causal=False, gqa=False):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    lens_q, lens_k = [3, 5, 1], [4, 5, 6]  # ragged; Sq <= Skv per sequence (bottom-right causal)
    cu_q = torch.tensor([0, 3, 8, 9], dtype=torch.int32)
    cu_k = torch.tensor([0, 4, 9, 15], dtype=torch.int32)
    hkv = 2 if gqa else 4
    q = randn64(gen, sum(lens_q), 4, 16)
    k, v = randn64(gen, sum(lens_k), hkv, 16), randn64(gen, sum(lens_k), hkv, 16)
    return (q, k, v, cu_q, cu_k, max(lens_q), max(lens_k)), {"causal": causal}


def _attention_decode_nograd(*args, **kwargs):
    with torch.no_grad():  # inference-only op: the self-test checks its output
        return attention_decode(*args, **kwargs)


def _decode_selftest_inputs(seed, gqa=False, new=False):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    hkv = 2 if gqa else 4
    q = randn64(gen, 2, 4, 3, 16)
    k_cache, v_cache = randn64(gen, 2, hkv, 12, 16), randn64(gen, 2, hkv, 12, 16)
    lens = torch.tensor([5, 9], dtype=torch.int32)
    kwargs = {}
    if new:  # 2 new positions appended into (a copy of) the cache by the op
        kwargs = {"k_new": randn64(gen, 2, hkv, 2, 16), "v_new": randn64(gen, 2, hkv, 2, 16)}
    return (q, k_cache, v_cache, lens), kwargs


from ..testing.selftests import register_selftest  # noqa: E402

_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
register_selftest(
    "attention_varlen", attention_varlen, inputs=_varlen_selftest_inputs, dtypes=_DTYPES,
    cases=[dict(causal=False, gqa=False), dict(causal=True, gqa=False), dict(causal=True, gqa=True)],
    features=lambda q, k, v, cu_q, cu_k, mq, mk, causal, *_: dict(causal=bool(causal), gqa=q.shape[1] != k.shape[1]))
register_selftest(
    "attention_decode", _attention_decode_nograd, inputs=_decode_selftest_inputs, dtypes=_DTYPES, backward=False,
    cases=[dict(gqa=False, new=False), dict(gqa=True, new=False), dict(gqa=True, new=True)],
    # the append is part of the routed call (the cuda kernel stores the new rows)
    features=lambda q, k, v, lens, k_new, *_: dict(gqa=q.shape[1] != k.shape[1], new=k_new is not None))

from . import attention_varlen_cuda as _attention_varlen_cuda  # noqa: E402,F401  (the cuda and cuda_sim backends)
