"""The public ops. Importing this package defines every schema, then loads
the C++ kernels (bigkernels._C) that implement them."""
from . import epilogue
from .epilogue import bias_act
# The function shadows its module as an attribute (import the module with importlib).
from .attention import attention
from .attention_sdpa import scaled_dot_product_attention
from .. import _native
from ..backends import router as _router

_native.load()
_router.refresh()

__all__ = ["attention", "bias_act", "epilogue", "scaled_dot_product_attention"]
