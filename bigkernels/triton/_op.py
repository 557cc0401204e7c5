"""Defines a Triton-backed custom op.

On a GPU: `torch.library.triton_op`, so torch.compile sees the Triton kernels.
Under TRITON_INTERPRET=1 (CPU tests) the interpreter runs kernels on real
memory and cannot be traced with FakeTensors, so the op is an opaque
`custom_op` with an explicit fake kernel; the op's behaviour is the same."""
import os

import torch
from torch.library import triton_op


def interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def kernel_op(name: str, fake):
    def deco(fn):
        if interpreted():
            defined = torch.library.custom_op(name, mutates_args=())(fn)
            defined.register_fake(fake)
            return defined
        return triton_op(name, mutates_args=())(fn)

    return deco
