"""GPU cases of the attention family (issue 9): bf16 and fp16, head dims 64,
128 and 256, 16k tokens in total (B x S, H = 2048 / D, the FlashAttention
papers' setting), causal and not, forward and forward+backward. Our op
(auto, and the triton and cuda backends forced) next to every SDPA backend
(flash, efficient, cuDNN) and FlexAttention, TFLOP/s in the same run;
baseline: SDPA as torch dispatches it. An implementation that cannot run a
case here (a backend missing from this build or GPU, a head dim it lacks)
is left out of that case and named in its notes, not counted.

Written without a GPU to run it (none was lent to this project): the first
GPU run is its first test; `python -m bigkernels gpu-check` runs it."""
import torch

from .case import Case, runnable

TOKENS = 16384
HIDDEN = 2048
SEQLEN = 2048


def _sdpa(backend, causal):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    chosen = getattr(SDPBackend, backend)

    def fn(q, k, v):
        with sdpa_kernel(chosen):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return fn


def _flex(causal, s, device):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    compiled = torch.compile(flex_attention)
    mask = None
    if causal:
        mask = create_block_mask(lambda b, h, qi, ki: qi >= ki, None, None, s, s, device=device)
    return lambda q, k, v: compiled(q, k, v, block_mask=mask)


def _ours(backend, causal):
    import bigkernels

    def fn(q, k, v):
        with bigkernels.use_backend(backend):
            return bigkernels.ops.attention(q, k, v, causal=causal)

    return fn


def _timed(fn, q, k, v, backward, grad):
    if not backward:
        def run():
            with torch.no_grad():
                fn(q, k, v)
        return run

    def run():
        for t in (q, k, v):
            t.grad = None
        fn(q, k, v).backward(grad)
    return run


def _validate(ours, q, k, v, causal):
    def check():
        with torch.no_grad():
            a = ours(q, k, v).float()
            b = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal).float()
        err = (a - b).abs().max().item()
        return None if err < 2e-2 else f"max difference {err:.3g} from torch's SDPA"
    return check


def cases(quick, device):
    out = []
    dtypes = (torch.bfloat16,) if quick else (torch.bfloat16, torch.float16)
    dims = (128,) if quick else (64, 128, 256)
    seqlens = (SEQLEN,)  # B 8; every (dtype, D, causal, mode) compiles FlexAttention once
    gen = torch.Generator(device=device).manual_seed(0)
    for dtype in dtypes:
        for d in dims:
            for s in seqlens:
                b, h = TOKENS // s, HIDDEN // d
                for backward in (False, True):
                    for causal in (False, True):
                        q, k, v = (torch.randn(b, h, s, d, generator=gen, device=device, dtype=dtype)
                                   .requires_grad_(backward) for _ in range(3))
                        grad = torch.randn(b, h, s, d, generator=gen, device=device, dtype=dtype)
                        fns = {"torch_sdpa": lambda q, k, v, c=causal: torch.nn.functional
                               .scaled_dot_product_attention(q, k, v, is_causal=c)}
                        for backend in ("auto", "triton", "cuda"):
                            fns[f"bigkernels_{backend}"] = _ours(backend, causal)
                        for backend in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"):
                            fns[f"sdpa_{backend.split('_')[0].lower()}"] = _sdpa(backend, causal)
                        notes = {}
                        try:
                            fns["flex_attention"] = _flex(causal, s, device)
                        except Exception as exc:
                            notes["flex_attention"] = f"{type(exc).__name__}: {exc}"[:200]
                        kept = runnable({n: _timed(fn, q, k, v, backward, grad) for n, fn in fns.items()},
                                        q.device, notes)
                        if "torch_sdpa" not in kept:
                            continue
                        mode = "fwd+bwd" if backward else "fwd"
                        flops = 4 * b * h * s * s * d * (0.5 if causal else 1.0) * (3.5 if backward else 1.0)
                        name = f"attention {mode}{' causal' if causal else ''} {str(dtype)[6:]} D{d} S{s}"
                        out.append(Case(
                            family="attention", name=name,
                            params=dict(B=b, H=h, S=s, D=d, dtype=str(dtype)[6:], causal=causal, mode=mode),
                            impls=kept,
                            baseline="torch_sdpa", flops=flops, notes=notes,
                            validate=(_validate(fns["bigkernels_auto"], q.detach(), k.detach(), v.detach(), causal)
                                      if "bigkernels_auto" in kept else None)))
    return out
