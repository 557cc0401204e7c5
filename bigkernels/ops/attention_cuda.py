"""The `cuda` backend of bigkernels.attention (csrc/cuda/attention: the
FlashAttention-2-style tensor-core kernels) and its emulated twin `cuda_sim`.
What the kernels do not serve stays with the other backends (the router
sees the reason)."""
import torch

from ..backends import register
from .attention import _native, kernel_supports, register_attention_autograd


def cuda_supports(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
    if q.dtype not in (torch.float16, torch.bfloat16):
        return f"the cuda attention kernels take float16/bfloat16 (tensor cores), got {q.dtype}"
    d = q.shape[3]
    if d % 8 != 0 or d > 256:
        return f"the cuda attention kernels take head dims that are multiples of 8 up to 256, got {d}"
    if q.shape[0] > 65535 or q.shape[1] > 65535:
        return "the cuda attention kernels take batch and heads up to 65535"
    if (torch.are_deterministic_algorithms_enabled() and torch.is_grad_enabled()
            and any(t.requires_grad for t in (q, k, v))):
        return ("the cuda attention backward sums dQ with float atomics (not deterministic); "
                "torch.use_deterministic_algorithms(True) is set")
    return kernel_supports(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse)


register_attention_autograd("attention_sim", "attention_backward_sim")
register("attention", "cuda", kernel="bigkernels::attention", supports=cuda_supports)(_native("attention"))
register("attention", "cuda_sim", kernel="bigkernels::attention_sim", supports=cuda_supports)(
    _native("attention_sim"))

