"""Whole-layer Elman RNN and cell, torch's equations: h' = act(x_proj + W_hh h)
with act tanh or relu; x_proj = x W_ih^T + b_ih + b_hh is computed by the
caller. Backends: cpu (C++: csrc/cpu/lstm/rnn_layer.cpp), torch (composition),
reference."""
import torch

from ..backends import dispatch, register, set_auto_order
from ..composite import lstm as composite
from ..reference import lstm as reference
from . import _rnn_checks as rc
from ._library import call, define_native, op, register_autograd

NONLINEARITIES = ("tanh", "relu")
define_native("rnn_layer", "(Tensor x_proj, Tensor h0, Tensor w_hh, bool relu, bool reverse) -> (Tensor, Tensor)",
              lambda x, h0, w, relu, reverse: (torch.empty_like(x), torch.empty_like(h0)))
define_native("rnn_layer_backward", "(Tensor grad_y, Tensor grad_hT, Tensor h0, Tensor w_hh, Tensor y, bool relu, "
              "bool reverse) -> (Tensor, Tensor, Tensor)",
              lambda gy, gh, h0, w, y, relu, reverse: (torch.empty_like(gy), torch.empty_like(h0),
                                                       torch.empty_like(w)))


def _setup_context(ctx, inputs, output):
    x_proj, h0, w_hh, relu, reverse = inputs
    ctx.save_for_backward(h0, w_hh, output[0])  # act' comes from the output
    ctx.flags = (relu, reverse)


def _backward(ctx, grad_y, grad_hT):
    h0, w_hh, y = ctx.saved_tensors
    dx, dh0, dw = op("rnn_layer_backward")(grad_y.contiguous(), grad_hT.contiguous(), h0, w_hh, y, *ctx.flags)
    return dx, dh0, dw, None, None


def _double_backward(ctx, *grads):
    raise RuntimeError("bigkernels.ops.rnn_layer: double backward is not supported by the cpu kernel; use the torch "
                       "backend (bigkernels.use_backend('torch')) for higher-order gradients")


register_autograd("rnn_layer", _backward, setup_context=_setup_context)
register_autograd("rnn_layer_backward", _double_backward)
register("rnn_layer", "cpu", kernel="bigkernels::rnn_layer")(
    lambda x, h0, w, nonlinearity, reverse: call("rnn_layer", x, h0, w, nonlinearity == "relu", reverse))
register("rnn_layer", "torch")(composite.rnn_layer)
register("rnn_layer", "reference")(reference.rnn_layer)
set_auto_order("rnn_layer", "cpu", ("cpu", "torch"))  # measured: docs/lstm.md


def _nonlinearity(value):
    if not isinstance(value, str):
        raise TypeError(f"nonlinearity must be a str, got {type(value).__name__}")
    if value not in NONLINEARITIES:
        raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {value!r}")
    return value


def rnn_layer(x_proj, h0, w_hh, *, nonlinearity="tanh", reverse=False):
    """x_proj: [T, B, H]; h0: [B, H]; w_hh: [H, H]. Returns (y [T, B, H], h_T [B, H])."""
    dtype = rc.tensors([(x_proj, "x_proj"), (h0, "h0"), (w_hh, "w_hh")])
    rc.flag(reverse, "reverse")
    _nonlinearity(nonlinearity)
    T, B, H = rc.seq(x_proj, 1)
    rc.shape(h0, (B, H), "h0", "[batch, hidden_size]")
    rc.shape(w_hh, (H, H), "w_hh", "[hidden_size, hidden_size]")
    x_proj, h0, w_hh = rc.cast(dtype, x_proj, h0, w_hh)
    return dispatch("rnn_layer", x_proj.device.type, x_proj, h0, w_hh, nonlinearity, reverse)


def rnn_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None, *, nonlinearity="tanh"):
    named = [(x, "x"), (h, "h"), (w_ih, "w_ih"), (w_hh, "w_hh"), (b_ih, "b_ih"), (b_hh, "b_hh")]
    dtype = rc.autocast_dtype("RNNCell", x.device.type, rc.tensors(named, ("b_ih", "b_hh")))
    batched = x.dim() == 2
    x2 = rc.cell_input(x, w_ih, 1)
    H = w_ih.shape[0]
    rc.shape(h, (x2.shape[0], H) if batched else (H,), "h", "[batch, hidden_size] like x")
    x2, h, w_ih, w_hh, b_ih, b_hh = rc.cast(dtype, x2, h, w_ih, w_hh, b_ih, b_hh)
    with rc.autocast_off(x2.device.type):
        h1 = dispatch("rnn_cell", x2.device.type, x2, h if batched else h.unsqueeze(0), w_ih, w_hh, b_ih, b_hh,
                      nonlinearity)
    return h1 if batched else h1.squeeze(0)


def _cell_as_layer(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity):
    bias = b_ih + b_hh if b_ih is not None and b_hh is not None else (b_ih if b_ih is not None else b_hh)
    x_proj = rc.linear(x, w_ih, bias).unsqueeze(0).contiguous()
    return rnn_layer(x_proj, h, w_hh, nonlinearity=nonlinearity)[1]


def _cell_torch(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity):
    fn = torch._VF.rnn_tanh_cell if nonlinearity == "tanh" else torch._VF.rnn_relu_cell
    return fn(x, h, w_ih, w_hh, b_ih, b_hh)


register("rnn_cell", "cpu")(_cell_as_layer)
register("rnn_cell", "reference")(_cell_as_layer)
register("rnn_cell", "torch")(_cell_torch)
# One step: torch's own cell, as for LSTM/GRU cells (the call overhead of a
# one-step layer is not amortised).
set_auto_order("rnn_cell", "cpu", ("torch", "cpu"))


def _selftest_inputs(seed, nonlinearity="tanh", reverse=False):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    T, B, H = 4, 3, 8
    args = (randn64(gen, T, B, H), randn64(gen, B, H, scale=0.5), randn64(gen, H, H, scale=0.3))
    return args, {"nonlinearity": nonlinearity, "reverse": reverse}


def _cell_selftest_inputs(seed, nonlinearity="tanh", bias=True):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    B, I, H = 3, 6, 8
    args = (randn64(gen, B, I), randn64(gen, B, H, scale=0.5), randn64(gen, H, I, scale=0.3),
            randn64(gen, H, H, scale=0.3))
    biases = (randn64(gen, H, scale=0.1), randn64(gen, H, scale=0.1)) if bias else (None, None)
    return args + biases, {"nonlinearity": nonlinearity}


from ..testing.selftests import register_selftest  # noqa: E402

_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
register_selftest(
    "rnn_layer", rnn_layer, inputs=_selftest_inputs, dtypes=_DTYPES,
    cases=[dict(nonlinearity="tanh", reverse=False), dict(nonlinearity="relu", reverse=True)],
    features=lambda x, h0, w_hh, nonlinearity, reverse, *_: dict(nonlinearity=nonlinearity, reverse=bool(reverse)))
register_selftest(
    "rnn_cell", rnn_cell, inputs=_cell_selftest_inputs, dtypes=_DTYPES,
    cases=[dict(nonlinearity="tanh", bias=True), dict(nonlinearity="relu", bias=False)],
    features=lambda x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity, *_: dict(nonlinearity=nonlinearity,
                                                                         bias=b_ih is not None))
