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


# ---- trust on first use: before `auto` first routes a call to a cuda (or
# triton) attention kernel on a GPU, this check runs for the call's features
# (forward and backward against the float64 reference, tolerance rule). ----

def _selftest_inputs(seed, causal, masked, gqa, head_dim=64):
    gen = torch.Generator().manual_seed(seed)
    b, hq, sq, skv = 2, 4, 37, 53  # not multiples of any tile; Sq < Skv (bottom-right causal)
    hkv = 1 if gqa else hq
    q = torch.randn(b, hq, sq, head_dim, generator=gen, dtype=torch.float64)
    k, v = (torch.randn(b, hkv, skv, head_dim, generator=gen, dtype=torch.float64) for _ in range(2))
    mask = torch.rand(b, 1, sq, skv, generator=gen) > 0.2 if masked else None  # bool: no mask gradient
    return (q, k, v), dict(causal=causal, attn_mask=mask)


def _selftest_features(q, k, v, attn_mask, causal, scale, dropout_p, seed, offset, return_lse):
    # dropout is checked by the test suite (the three runs of a self-test draw different seeds)
    return dict(causal=causal, masked=attn_mask is not None, gqa=k.shape[1] != q.shape[1], head_dim=q.shape[3])


def _register_selftest():
    from ..testing.selftests import register_selftest
    from .attention import attention

    register_selftest("attention", attention, inputs=_selftest_inputs, dtypes=(torch.float16, torch.bfloat16),
                      cases=[dict(causal=False, masked=False, gqa=False), dict(causal=True, masked=True, gqa=True)],
                      features=_selftest_features)


_register_selftest()
