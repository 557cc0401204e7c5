"""GPU cases of the convolution family (issue 4): fp16 and bf16, NHWC
(channels_last), per ResNet-50 layer shape at batch 32, conv + BN + ReLU in
eval (BN folded, as our module does) and a training forward+backward:
Conv2dBNAct (auto; the cuda backend forced on each of its two paths, our
fused kernels and cuDNN + our epilogue kernel; triton) against cuDNN's
convolution followed by separate PyTorch pointwise ops (the same
nn.Sequential) and against torch.compile of that Sequential, in one run. An
implementation that cannot run a case (a backend missing from this build or
GPU) is left out of it and named in its notes.

Written without a GPU to run it (none was lent to this project): the first
GPU run is its first test; `python -m bigkernels gpu-check` runs it."""
import contextlib
import copy

import torch
from torch import nn

from ..nn import Conv2dBNAct
from ..ops.conv_path import use_conv_path
from .case import Case, runnable

BATCH = 32
# (name, C_in, H, C_out, kernel, stride): ResNet-50 bottleneck convs at 224 x 224.
LAYERS = [
    ("r50.stem.7x7s2", 3, 224, 64, 7, 2),
    ("r50.l1.1x1", 256, 56, 64, 1, 1),
    ("r50.l1.3x3", 64, 56, 64, 3, 1),
    ("r50.l1.1x1up", 64, 56, 256, 1, 1),
    ("r50.l2.3x3s2", 128, 56, 128, 3, 2),
    ("r50.l3.1x1", 1024, 14, 256, 1, 1),
    ("r50.l3.3x3", 256, 14, 256, 3, 1),
    ("r50.l4.3x3", 512, 7, 512, 3, 1),
]
QUICK_LAYERS = ("r50.l1.3x3", "r50.l3.1x1")


# (implementation name, backend, conv path): auto measures the two paths per layer on first use
OURS = (("bigkernels_auto", "auto", None), ("bigkernels_cuda_fused", "cuda", "fused"),
        ("bigkernels_cuda_cudnn", "cuda", "cudnn"), ("bigkernels_triton", "triton", None))


def _ours(seq, backend, path=None):
    import bigkernels

    module = Conv2dBNAct.from_modules(seq[0], seq[1], nn.ReLU())

    def fn(x):
        with bigkernels.use_backend(backend), (use_conv_path(path) if path else contextlib.nullcontext()):
            return module(x)

    return module, fn


def _timed(fn, x, train):
    if not train:
        def run():
            with torch.no_grad():
                fn(x)
        return run

    def run():
        x.grad = None
        fn(x).sum().backward()
    return run


def _validate(ours, seq, x):
    def check():
        with torch.no_grad():
            a, b = ours(x).float(), seq(x).float()
        err = (a - b).abs().max().item() / max(1.0, b.abs().max().item())
        return None if err < 2e-2 else f"relative max difference {err:.3g} from cuDNN + pointwise"
    return check


def cases(quick, device):
    out = []
    for dtype in (torch.bfloat16,) if quick else (torch.float16, torch.bfloat16):
        for name, cin, h, cout, k, s in LAYERS:
            if quick and name not in QUICK_LAYERS:
                continue
            for train in (False, True):
                torch.manual_seed(0)
                seq = nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
                seq = seq.to(device=device, dtype=dtype, memory_format=torch.channels_last).train(train)
                x = torch.randn(BATCH, cin, h, h, device=device, dtype=dtype)
                x = x.contiguous(memory_format=torch.channels_last).requires_grad_(train)
                fns = {"cudnn+pointwise": seq}
                notes = {}
                try:
                    fns["torch.compile"] = torch.compile(copy.deepcopy(seq))
                except Exception as exc:
                    notes["torch.compile"] = f"{type(exc).__name__}: {exc}"[:200]
                for impl, backend, path in OURS:
                    module, fn = _ours(copy.deepcopy(seq), backend, path)
                    module.train(train)
                    fns[impl] = fn
                kept = runnable({n: _timed(fn, x, train) for n, fn in fns.items()}, x.device, notes)
                if "cudnn+pointwise" not in kept:
                    continue
                ho = (h + 2 * (k // 2) - k) // s + 1
                flops = 2.0 * BATCH * cout * ho * ho * cin * k * k * (3 if train else 1)
                mode = "train fwd+bwd" if train else "eval"
                out.append(Case(
                    "conv", f"{name} conv+bn+relu {mode} {str(dtype)[6:]}",
                    dict(layer=name, N=BATCH, C_in=cin, H=h, C_out=cout, k=k, stride=s, dtype=str(dtype)[6:],
                         layout="channels_last", mode="train" if train else "eval"),
                    kept, "cudnn+pointwise", flops=flops,
                    notes=notes, validate=(_validate(fns["bigkernels_auto"], seq, x.detach())
                                           if not train and "bigkernels_auto" in kept else None)))
    return out
