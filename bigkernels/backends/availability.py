"""Is a backend usable here, for tensors on this device? None means yes;
otherwise a reason that `info`, errors and warnings show."""
import importlib.util
import os

import torch

from .. import _native

_SIM = {"loaded": False}


def triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def triton_usable() -> bool:
    """Whether Triton kernels can run in this process: a CUDA device, or the
    interpreter (tests). Families import their Triton modules only then:
    importing triton costs seconds that a CPU-only user would pay for nothing."""
    return triton_installed() and (triton_interpreted() or torch.cuda.is_available())


def mark_sim_loaded():
    """Called by the emulator's loader once the `_sim` op variants have kernels."""
    _SIM["loaded"] = True


def sim_loaded() -> bool:
    return _SIM["loaded"]


def unavailable_reason(backend: str, device_type: str):
    if backend in ("torch", "reference"):
        return None
    if backend == "cpu":
        if device_type != "cpu":
            return "the cpu backend runs on CPU tensors only"
        return None if _native.loaded() else (_native.error() or "bigkernels._C not loaded")
    if backend == "cuda":
        if device_type != "cuda":
            return "the cuda backend runs on CUDA tensors only"
        if not _native.loaded():
            return _native.error() or "bigkernels._C not loaded"
        return None if _native.cuda_built() else "bigkernels._C was built without CUDA"
    if backend == "triton":
        if not triton_installed():
            return "triton is not installed"
        if device_type == "cuda":
            return None
        if device_type == "cpu" and triton_interpreted():
            return None
        return "triton is installed; on CPU tensors it runs interpreted, under TRITON_INTERPRET=1 (tests)"
    if backend == "cuda_sim":
        if device_type != "cpu":
            return "cuda_sim emulates CUDA kernels on CPU tensors only"
        return None if _SIM["loaded"] else "the emulated kernels are not built (tests build them: pytest -m sim)"
    return f"unknown backend {backend!r}"


def has_kernel(qualname: str, device_type: str) -> bool:
    key = {"cpu": "CPU", "cuda": "CUDA"}.get(device_type)
    return key is not None and torch._C._dispatch_has_kernel_for_dispatch_key(qualname, key)
