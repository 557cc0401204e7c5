"""Backend registry, availability and the router; no kernel code.

`bigkernels.backends()` (this module is callable) returns what `python -m
bigkernels info` prints: versions, which backends are built and available,
and the op x backend table."""
import sys
import types

from .availability import unavailable_reason
from .registry import BACKENDS, impls, ops, register
from .router import BackendError, dispatch, select, set_auto_order
from .selection import forced_backend, use_backend


def _devices():
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def available():
    """{'forced': ..., 'backends': {name: {device: reason-or-None}}, 'ops': {op: {backend: {device: ...}}}}."""
    from .router import _unavailable

    devices = _devices()
    table = {name: {d: unavailable_reason(name, d) for d in devices} for name in BACKENDS}
    op_table = {
        op: {backend: {d: _unavailable(impl, d) for d in devices} for backend, impl in impls(op).items()}
        for op in ops()
    }
    return {"forced": forced_backend() or "auto", "backends": table, "ops": op_table}


class _CallableModule(types.ModuleType):
    def __call__(self):
        return available()


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["BACKENDS", "BackendError", "available", "dispatch", "forced_backend", "impls", "ops", "register",
           "select", "set_auto_order", "use_backend"]
