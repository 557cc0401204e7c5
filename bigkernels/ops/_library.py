"""The `bigkernels` op namespace and the per-backend variants of each kernel op.

A kernel op `name` exists in three variants, so that the router can choose
among them while each stays a plain custom op (fake kernel, autograd,
opcheck, torch.compile):
  bigkernels::name          C++ kernels: CPU key = `cpu` backend, CUDA key = `cuda`
  bigkernels::name_sim      the CUDA kernels under the emulator, on CPU tensors (tests)
  bigkernels::name_triton   Triton kernels (defined by bigkernels/triton with triton_op)
Schemas live here, in Python, so the ops exist even when _C is absent.
"""
import torch

LIB = torch.library.Library("bigkernels", "DEF")
NATIVE_VARIANTS = ("", "_sim")


def qualname(name: str) -> str:
    return f"bigkernels::{name}"


def define_native(name: str, schema: str, fake):
    """Define `name` and `name_sim` with one schema ("(Tensor x, ...) -> Tensor")
    and register the same fake kernel for both."""
    for suffix in NATIVE_VARIANTS:
        LIB.define(name + suffix + schema)
        torch.library.register_fake(qualname(name + suffix), fake, lib=LIB)


def op(name: str):
    """The OpOverload torch.ops.bigkernels.<name>.default."""
    return getattr(torch.ops.bigkernels, name).default
