"""bigkernels: fused convolution, LSTM/GRU and attention kernels for PyTorch."""
from ._version import __version__
from . import ops
from . import backends
from .backends import BackendError, use_backend
from .ops.attention_sdpa import patch_sdpa
from .swap import SwapReport, swap, unswap

__all__ = ["BackendError", "__version__", "backends", "ops", "patch_sdpa", "use_backend", "SwapReport", "swap",
           "unswap"]
