"""Which kernel backends the tests exercise on this machine, as pytest params
carrying their markers: `triton` runs interpreted on the CPU, `cuda_sim`
under the emulator; `cpu`/`cuda` are the C++ kernels."""
import importlib.util

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if HAS_CUDA else "cpu"


def kernel_backends(*, sim=True):
    """Backends under test for ops with C++, Triton and CUDA kernels."""
    params = [pytest.param("cpu", id="cpu"), pytest.param("triton", id="triton", marks=pytest.mark.triton)]
    if HAS_CUDA:
        params.append(pytest.param("cuda", id="cuda", marks=pytest.mark.gpu))
    elif sim and importlib.util.find_spec("bigkernels.backends.sim_loader") is not None:
        params.append(pytest.param("cuda_sim", id="cuda_sim", marks=pytest.mark.sim))
    return params


def device_for(backend):
    return "cuda" if backend in ("cuda",) or (backend == "triton" and HAS_CUDA) else "cpu"


def ensure_backend(backend):
    """Make `backend` usable here or skip the test visibly with the reason."""
    if backend == "cuda_sim":
        from bigkernels.backends import sim_loader

        sim_loader.load()
    from bigkernels.backends.availability import unavailable_reason

    reason = unavailable_reason(backend, device_for(backend))
    if reason:
        pytest.skip(f"backend {backend} unavailable: {reason}")


class ZeroFills:
    """Records the zero fills (fill_, zero_, zeros, zeros_like) dispatched
    while active: a gradient torch materialised as zeros shows up here."""

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        recorder = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                if func.overloadpacket in (torch.ops.aten.fill_, torch.ops.aten.zero_, torch.ops.aten.zeros,
                                           torch.ops.aten.zeros_like):
                    recorder.calls.append(func)
                return func(*args, **(kwargs or {}))

        self.calls = []
        self._mode = _Mode()

    def __enter__(self):
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)
