"""The public ops. Importing this package defines every schema, then loads
the C++ kernels (bigkernels._C) that implement them."""
from . import epilogue
from . import conv
from .conv import conv2d
from . import batchnorm
from .batchnorm import batch_norm_act
from .epilogue import bias_act
from .. import _native
from ..backends import router as _router

_native.load()
_router.refresh()

__all__ = ["bias_act", "epilogue", "conv2d", "conv", "batch_norm_act", "batchnorm"]
