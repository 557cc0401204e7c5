"""The public ops. Importing this package defines every schema, then loads
the C++ kernels (bigkernels._C) that implement them."""
from . import batchnorm, cells_fused, conv, conv_stats, epilogue, gru, layernorm_lstm, linear, lstm, pool, rnn, \
    rnn_stack
from .attention import attention  # the function shadows its module (import the module with importlib)
from .attention_sdpa import scaled_dot_product_attention
from .attention_varlen import attention_decode, attention_varlen
from .batchnorm import batch_norm_act
from .conv import conv2d
from .conv1d import conv1d
from .conv_stats import conv2d_batch_norm_act, conv2d_stats
from .epilogue import bias_act
from .gru import gru_bidir_layer, gru_cell, gru_layer
from .layernorm_lstm import layernorm_lstm_layer
from .linear import linear
from .lstm import lstm_bidir_layer, lstm_cell, lstm_layer
from .pool import max_pool2d
from .rnn import rnn_cell, rnn_layer
from .rnn_stack import rnn_stack
from .. import _native
from ..backends import router as _router

_native.load()
_router.refresh()

__all__ = ["attention", "attention_decode", "attention_varlen", "batch_norm_act", "batchnorm", "bias_act",
           "conv", "conv1d", "conv2d", "conv2d_batch_norm_act", "conv2d_stats", "conv_stats", "epilogue", "gru",
           "gru_bidir_layer", "gru_cell", "gru_layer", "layernorm_lstm", "layernorm_lstm_layer", "linear", "lstm",
           "lstm_bidir_layer", "lstm_cell", "lstm_layer", "max_pool2d", "pool", "rnn", "rnn_cell", "rnn_layer",
           "rnn_stack", "scaled_dot_product_attention"]
