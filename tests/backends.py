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
