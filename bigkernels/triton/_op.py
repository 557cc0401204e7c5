"""Defines a Triton-backed custom op.

On a GPU: `torch.library.triton_op`, so torch.compile sees the Triton kernels.
Under TRITON_INTERPRET=1 (CPU tests) the interpreter runs kernels on real
memory and cannot be traced with FakeTensors, so the op is an opaque
`custom_op` with an explicit fake kernel; the op's behaviour is the same."""
import functools
import os

import torch
from torch.library import triton_op


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def on_tensor_device(fn):
    """Triton launches on the current CUDA device: make that the device of the
    call's first tensor, so a cuda:1 call from a process whose current device
    is cuda:0 runs there (compiled graphs carry Inductor's own guards)."""
    @functools.wraps(fn)
    def guarded(*args, **kwargs):
        device = next((a.device for a in args if isinstance(a, torch.Tensor)), None)
        if device is None or device.type != "cuda" or torch.compiler.is_compiling():
            return fn(*args, **kwargs)
        with torch.cuda.device(device):
            return fn(*args, **kwargs)

    return guarded


def kernel_op(name: str, fake, mutates_args=()):
    def deco(fn):
        fn = on_tensor_device(fn)
        if interpreted():
            defined = torch.library.custom_op(name, mutates_args=mutates_args)(fn)
            defined.register_fake(fake)
            return defined
        return triton_op(name, mutates_args=mutates_args)(fn)

    return deco


def aot_signature(kernel, types, default="i32"):
    """An AOT signature (bigkernels/aot) for `kernel` (a triton.jit function,
    autotuned or not, interpreted or not): its parameters in order, the
    constexpr ones as "constexpr", the others from `types` (pointers "*bf16",
    floats "fp32"), else `default` (sizes and strides as Triton types a
    typical launch: 32-bit ints)."""
    import inspect

    fn = kernel
    while not inspect.isfunction(fn):
        fn = fn.fn
    sig = {}
    for name, param in inspect.signature(fn).parameters.items():
        ann = param.annotation
        constexpr = "constexpr" in (ann if isinstance(ann, str) else getattr(ann, "__name__", repr(ann)))
        sig[name] = "constexpr" if constexpr else types.get(name, default)
    unknown = sorted(set(types) - set(sig))
    if unknown:
        raise ValueError(f"aot_signature: {unknown} are not parameters of {fn.__name__}")
    return sig
