"""Test configuration: the Triton interpreter on machines without a GPU (set
before any Triton kernel is defined), its bf16 dot fix, and the markers."""
import os
import shutil

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import bigkernels  # noqa: E402  (after TRITON_INTERPRET is set)
from bigkernels.backends import availability  # noqa: E402

INTERPRETED = availability.triton_interpreted()


def pytest_configure(config):
    if INTERPRETED and availability.triton_installed():
        from bigkernels.testing import triton_bf16

        triton_bf16.install()


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU; none is visible here")
    skip_nvcc = pytest.mark.skip(reason="nvcc not found")
    # Exhaustive matrices run only when asked for (-m slow); the default run
    # covers them pairwise.
    run_slow = "slow" in (config.getoption("-m") or "")
    skip_slow = pytest.mark.skip(reason="exhaustive: run with -m slow")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip_gpu)
        if "nvcc" in item.keywords and shutil.which("nvcc") is None:
            item.add_marker(skip_nvcc)


@pytest.fixture(autouse=True)
def _reset_backend():
    """Every test starts (and ends) under `auto`, whatever the previous did."""
    bigkernels.use_backend("auto")
    yield
    bigkernels.use_backend("auto")
