"""The public ops. Importing this package defines every schema, then loads
the C++ kernels (bigkernels._C) that implement them."""
from . import epilogue
from .epilogue import bias_act
from . import lstm
from .lstm import lstm_layer
from .. import _native
from ..backends import router as _router

_native.load()
_router.refresh()

__all__ = ["bias_act", "epilogue", "lstm", "lstm_layer"]
