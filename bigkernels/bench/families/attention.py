"""Attention benchmarks: our fused op against torch's
scaled_dot_product_attention in the same run.

CPU (the issue's shape): fp32, B=4, H=8, S=1024, D=64, causal and not,
forward and forward+backward; `quick` shrinks S to 256. FLOPs: forward
4*B*H*Sq*Skv*D, halved for causal; forward+backward 3.5x that (the
FlashAttention convention). GPU: bigkernels/bench/attention_gpu.py."""
import torch

from ...composite.attention import TORCH_SDPA
from .. import attention_gpu
from ..case import Case


def _forward_backward(fn, q, k, v):
    def run():
        for t in (q, k, v):
            t.grad = None
        fn(q, k, v).sum().backward()

    return run


def _validate(q, k, v, causal):
    def check():
        import bigkernels

        with torch.no_grad(), bigkernels.use_backend("cpu"):
            ours = bigkernels.ops.attention(q, k, v, causal=causal)
        theirs = TORCH_SDPA(q, k, v, is_causal=causal)
        err = (ours - theirs).abs().max().item()
        return None if err < 1e-4 else f"max difference {err:.3g} from torch's SDPA"

    return check


def _impls(causal, backward, q, k, v):
    import bigkernels

    def ours(backend):
        def fn(q, k, v):
            with bigkernels.use_backend(backend):
                return bigkernels.ops.attention(q, k, v, causal=causal)
        return fn

    fns = {"torch_sdpa": lambda q, k, v: TORCH_SDPA(q, k, v, is_causal=causal),
           "bigkernels_cpu": ours("cpu"), "bigkernels_auto": ours("auto")}
    if backward:
        return {name: _forward_backward(fn, q, k, v) for name, fn in fns.items()}

    def no_grad(fn):
        def run():
            with torch.no_grad():
                fn(q, k, v)
        return run

    return {name: no_grad(fn) for name, fn in fns.items()}


def cases(quick: bool, device: str) -> list:
    if device != "cpu":
        return attention_gpu.cases(quick, device)
    b, h, s, d = (4, 8, 256, 64) if quick else (4, 8, 1024, 64)
    gen = torch.Generator().manual_seed(0)
    out = []
    for backward in (False, True):
        for causal in (False, True):
            q, k, v = (torch.randn(b, h, s, d, generator=gen).requires_grad_(backward) for _ in range(3))
            flops = 4 * b * h * s * s * d * (0.5 if causal else 1.0) * (3.5 if backward else 1.0)
            mode = "fwd+bwd" if backward else "fwd"
            out.append(Case(
                family="attention", name=f"attention {mode}{' causal' if causal else ''}",
                params=dict(B=b, H=h, S=s, D=d, dtype="float32", causal=causal, mode=mode,
                            threads=torch.get_num_threads()),
                impls=_impls(causal, backward, q, k, v), baseline="torch_sdpa", flops=flops,
                validate=_validate(q.detach(), k.detach(), v.detach(), causal)))
    return out
