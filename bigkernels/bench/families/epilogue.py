"""Fused bias + residual + activation against torch's separate ops."""
import torch

from ...ops import bias_act
from ...composite.epilogue import bias_act as torch_bias_act
from ..case import Case

ACT_CODES = {"relu": 1, "gelu": 5, "silu": 4}


def _case(shape, act, channels_last, backward, device):
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen).to(device, dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    bias = torch.randn(shape[1], generator=gen).to(device, dtype)
    res = torch.randn(shape, generator=gen).to(device, dtype).contiguous(memory_format=torch.channels_last) \
        if channels_last else torch.randn(shape, generator=gen).to(device, dtype)
    if backward:
        for t in (x, bias, res):
            t.requires_grad_()
        grad = torch.randn_like(x)

        def ours():
            bias_act(x, bias, res, act).backward(grad)

        def theirs():
            torch_bias_act(x, bias, res, ACT_CODES[act], 0.01, 1).backward(grad)
    else:
        def ours():
            with torch.no_grad():
                bias_act(x, bias, res, act)

        def theirs():
            with torch.no_grad():
                torch_bias_act(x, bias, res, ACT_CODES[act], 0.01, 1)

    def validate():
        with torch.no_grad():
            a, b = bias_act(x, bias, res, act), torch_bias_act(x, bias, res, ACT_CODES[act], 0.01, 1)
        err = (a.float() - b.float()).abs().max().item()
        return None if err < 1e-2 else f"max difference {err:.3g}"

    n = x.numel() * x.element_size()
    moved = n * (3 if not backward else 7)  # x, residual read + y written; backward re-reads and writes grads
    name = f"bias_act {'fwd+bwd' if backward else 'fwd'} {act}{' cl' if channels_last else ''}"
    return Case("epilogue", name, {"shape": list(shape), "dtype": str(dtype), "activation": act,
                                    "channels_last": channels_last, "mode": "train" if backward else "eval"},
                {"bigkernels": ours, "torch": theirs}, baseline="torch", bytes=moved, validate=validate)


def cases(quick, device):
    shapes = [(8, 64, 56, 56)] if quick else [(8, 64, 56, 56), (32, 256, 28, 28), (64, 1024)]
    acts = ["relu", "gelu"] if quick else ["relu", "gelu", "silu"]
    out = []
    for shape in shapes:
        for act in acts:
            for backward in (False, True):
                out.append(_case(shape, act, len(shape) == 4 and not quick, backward, device))
    return out
