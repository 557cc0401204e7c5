"""Argument checks shared by the recurrent ops (LSTM, GRU, RNN): errors name
the user's argument."""
import contextlib

import torch

from . import _checks


def shape(t, expected, name, what):
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {list(expected)} ({what}), got {list(t.shape)}")


def tensors(named, optional=()):
    """named: [(tensor, name)], the first is the reference for device/dtype.
    Returns the common dtype."""
    for t, name in named:
        if t is None and name in optional:
            continue
        _checks.tensor(t, name)
    ref, ref_name = named[0]
    for t, name in named[1:]:
        if t is not None:
            _checks.same_device(ref, ref_name, t, name)
    return _checks.common_dtype([t for t, _ in named], [n for _, n in named])


# The recurrent modules torch runs in the autocast dtype (its autocast lists,
# torch 2.13): on CUDA every layer (cuDNN's _cudnn_rnn) and every cell; on the
# CPU LSTM (mkldnn_rnn_layer), RNN and RNNCell, while GRU, LSTMCell and GRUCell
# give float32 there. Ours follow, whichever backend runs the call.
_AUTOCAST_LOW = {
    "cuda": {"LSTM", "GRU", "RNN_TANH", "RNN_RELU", "LSTMCell", "GRUCell", "RNNCell"},
    "cpu": {"LSTM", "RNN_TANH", "RNN_RELU", "RNNCell"},
}


def autocast_dtype(kind, device_type, dtype):
    """The dtype a call of `kind` (an rnn_stack mode or a cell name) runs in:
    torch's autocast dtype where torch's own module would use it, else dtype."""
    if kind in _AUTOCAST_LOW.get(device_type, ()) and torch.is_autocast_enabled(device_type) \
            and dtype in (torch.float32, torch.float16, torch.bfloat16):
        return torch.get_autocast_dtype(device_type)
    return dtype


def autocast_off(device_type):
    """Around a call already cast to its autocast_dtype: no op inside casts
    again (an input GEMM in bf16 feeding a float32 cell, say)."""
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def flag(value, name):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")


def seq(x_proj, gates, name="x_proj"):
    if x_proj.dim() != 3 or x_proj.shape[2] % gates:
        raise ValueError(f"{name} must have shape [T, B, {gates}*hidden_size], got {list(x_proj.shape)}")
    return x_proj.shape[0], x_proj.shape[1], x_proj.shape[2] // gates


def lead(named, lead):
    """Stacked (bidirectional) ops: every tensor's leading dims must be `lead`."""
    for t, name in named:
        if t is not None and lead and tuple(t.shape[:len(lead)]) != tuple(lead):
            raise ValueError(f"{name} must have a leading dimension of {lead[0]} (one slice per direction), "
                             f"got shape {list(t.shape)}")


def cast(dtype, *ts):
    return tuple(None if t is None else t.to(dtype).contiguous() for t in ts)


def cell_input(x, w_ih, gates, name="x"):
    """x: [B, input_size] or unbatched [input_size] (returned as [1, input_size])."""
    if x.dim() not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D ([batch,] input_size), got {x.dim()}-D")
    if w_ih.dim() != 2 or w_ih.shape[0] % gates:
        raise ValueError(f"w_ih must have shape [{gates}*hidden_size, input_size], got {list(w_ih.shape)}")
    if x.shape[-1] != w_ih.shape[1]:
        raise ValueError(f"{name} has {x.shape[-1]} features but w_ih expects input_size={w_ih.shape[1]}")
    return x if x.dim() == 2 else x.unsqueeze(0)


def linear(x, w, b):
    return torch.nn.functional.linear(x, w, b)
