"""Which backend implements which op, and what each can serve.

A kernel family registers one implementation per backend with `register`;
nothing here knows a family. `supports(*args, **kwargs)` returns None when the
implementation can serve a call, else a short reason (the capability table).
"""
from dataclasses import dataclass
from typing import Callable, Optional

# Every backend name, fastest-first on a GPU. `reference` and `cuda_sim` are
# never picked by `auto`: ground truth, and the test-only emulator.
BACKENDS = ("cuda", "triton", "cpu", "torch", "reference", "cuda_sim")
AUTO_EXCLUDED = ("reference", "cuda_sim")


@dataclass(frozen=True)
class Impl:
    op: str
    backend: str
    fn: Callable
    supports: Optional[Callable[..., Optional[str]]] = None
    # Qualified name of the custom op whose dispatch-key kernel this impl
    # needs (e.g. "bigkernels::bias_act" for the C++ cpu/cuda kernels).
    kernel: Optional[str] = None


_IMPLS: dict = {}


def register(op: str, backend: str, *, supports=None, kernel=None):
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")

    def deco(fn):
        _IMPLS.setdefault(op, {})[backend] = Impl(op, backend, fn, supports, kernel)
        return fn

    return deco


def impls(op: str) -> dict:
    return _IMPLS.get(op, {})


def ops() -> list:
    return sorted(_IMPLS)
