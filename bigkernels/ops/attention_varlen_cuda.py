"""The `cuda` backend (and its emulated twin `cuda_sim`) of attention_varlen
and attention_decode: the dense op's CUDA kernels with per-sequence lengths
(csrc/cuda/attention). The decode kernel does attention_decode's cache append
itself (it stores the new rows into the caches in place)."""
import torch

from ..backends import register
from ._library import call
from .attention_varlen import _register_varlen_autograd


def _tensor_core_reason(q):
    if q.dtype not in (torch.float16, torch.bfloat16):
        return f"the cuda attention kernels take float16/bfloat16 (tensor cores), got {q.dtype}"
    d = q.shape[-1]
    if d % 8 != 0 or d > 256:
        return f"the cuda attention kernels take head dims that are multiples of 8 up to 256, got {d}"
    if q.shape[-3 if q.dim() == 3 else 1] > 65535:
        return "the cuda attention kernels take up to 65535 heads"
    return None


def varlen_supports(q, k, v, cu_q, cu_k, max_q, max_k, causal, scale):
    reason = _tensor_core_reason(q)
    if reason is None and cu_q.numel() - 1 > 65535:
        reason = "the cuda attention kernels take up to 65535 sequences"
    if reason is None and torch.are_deterministic_algorithms_enabled() and torch.is_grad_enabled() \
            and any(t.requires_grad for t in (q, k, v)):
        reason = ("the cuda attention backward sums dQ with float atomics (not deterministic); "
                  "torch.use_deterministic_algorithms(True) is set")
    return reason


def decode_supports(q, k_cache, v_cache, cache_seqlens, k_new, v_new, scale):
    reason = _tensor_core_reason(q)
    if reason is None and q.shape[0] > 65535:
        reason = "the cuda attention kernels take batch up to 65535"
    return reason


def _varlen(name):
    return lambda q, k, v, cu_q, cu_k, mq, mk, causal, scale: call(name, q, k, v, cu_q, cu_k, mq, mk, causal, scale)[0]


def _decode(name):
    return lambda q, kc, vc, lens, kn, vn, scale: call(name, q, kc, vc, lens, kn, vn, scale)


_register_varlen_autograd("attention_varlen_sim", "attention_varlen_backward_sim")
register("attention_varlen", "cuda", kernel="bigkernels::attention_varlen", supports=varlen_supports)(
    _varlen("attention_varlen"))
register("attention_varlen", "cuda_sim", kernel="bigkernels::attention_varlen_sim", supports=varlen_supports)(
    _varlen("attention_varlen_sim"))
register("attention_decode", "cuda", kernel="bigkernels::attention_decode", supports=decode_supports)(
    _decode("attention_decode"))
register("attention_decode", "cuda_sim", kernel="bigkernels::attention_decode_sim", supports=decode_supports)(
    _decode("attention_decode_sim"))
