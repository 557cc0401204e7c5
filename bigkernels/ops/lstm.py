"""Whole-layer LSTM: the recurrence over all timesteps as one op, forward and
backward through time (the weight gradients as large GEMMs after the loop).

The input projection x W_ih^T + b_ih + b_hh is not part of the op: the caller
computes it for every timestep as one large GEMM (bigkernels.nn.LSTM does).
Equations and gate order (i, f, g, o) are torch's."""
import torch

from ..backends import dispatch, register, set_auto_order
from ..composite import lstm as composite
from ..reference import lstm as reference
from . import _checks
from ._library import define_native, op, qualname

_FWD = ("(Tensor x_proj, Tensor h0, Tensor c0, Tensor w_hh, Tensor? w_hr, bool reverse, bool train) "
        "-> (Tensor, Tensor, Tensor, Tensor, Tensor)")
_BWD = ("(Tensor grad_y, Tensor grad_hT, Tensor grad_cT, Tensor h0, Tensor c0, Tensor w_hh, Tensor? w_hr, "
        "Tensor y, Tensor gates, Tensor cs, bool reverse) -> (Tensor, Tensor, Tensor, Tensor, Tensor)")


def workspace_dtype(dtype):
    """fp16/bf16 run (and save their gates and cells) in fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _fake_forward(x_proj, h0, c0, w_hh, w_hr, reverse, train):
    T, B, G = x_proj.shape
    H, P = c0.shape[1], h0.shape[1]
    ws = workspace_dtype(x_proj.dtype)
    n = T if train else 0
    return (x_proj.new_empty(T, B, P), x_proj.new_empty(B, P), x_proj.new_empty(B, H),
            x_proj.new_empty(n, B, G, dtype=ws), x_proj.new_empty(n, B, H, dtype=ws))


def _fake_backward(grad_y, grad_hT, grad_cT, h0, c0, w_hh, w_hr, y, gates, cs, reverse):
    T, B, P = grad_y.shape
    H = c0.shape[1]
    pr = (P, H) if w_hr is not None else (0, 0)
    return (grad_y.new_empty(T, B, 4 * H), grad_y.new_empty(B, P), grad_y.new_empty(B, H),
            grad_y.new_empty(4 * H, P), grad_y.new_empty(*pr))


define_native("lstm_layer", _FWD, _fake_forward)
define_native("lstm_layer_backward", _BWD, _fake_backward)


def _register_autograd(forward_name, backward_name):
    def setup_context(ctx, inputs, output):
        x_proj, h0, c0, w_hh, w_hr, reverse, train = inputs
        y, _, _, gates, cs = output
        ctx.mark_non_differentiable(gates, cs)
        # Without the workspace (train=False), backward recomputes it from x_proj.
        ctx.save_for_backward(h0, c0, w_hh, w_hr, y, gates, cs, None if train else x_proj)
        ctx.reverse = reverse

    def backward(ctx, grad_y, grad_hT, grad_cT, _grad_gates, _grad_cs):
        h0, c0, w_hh, w_hr, y, gates, cs, x_proj = ctx.saved_tensors
        if x_proj is not None:
            y, _, _, gates, cs = op(forward_name)(x_proj, h0, c0, w_hh, w_hr, ctx.reverse, True)
        dx, dh0, dc0, dw, dwr = op(backward_name)(grad_y.contiguous(), grad_hT.contiguous(), grad_cT.contiguous(),
                                                  h0, c0, w_hh, w_hr, y, gates, cs, ctx.reverse)
        return dx, dh0, dc0, dw, (dwr if w_hr is not None else None), None, None

    torch.library.register_autograd(qualname(forward_name), backward, setup_context=setup_context)

    def double_backward(ctx, *grads):
        raise RuntimeError("bigkernels.ops.lstm_layer: double backward is not supported by the cpu kernel; use "
                           "the torch backend (bigkernels.use_backend('torch')) for higher-order gradients")

    torch.library.register_autograd(qualname(backward_name), double_backward)


_register_autograd("lstm_layer", "lstm_layer_backward")


def _native(name):
    def run(x_proj, h0, c0, w_hh, w_hr, reverse):
        train = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x_proj, h0, c0, w_hh, w_hr))
        return op(name)(x_proj, h0, c0, w_hh, w_hr, reverse, train)[:3]

    return run


register("lstm_layer", "cpu", kernel="bigkernels::lstm_layer")(_native("lstm_layer"))
register("lstm_layer", "torch")(composite.lstm_layer)
register("lstm_layer", "reference")(reference.lstm_layer)
set_auto_order("lstm_layer", "cpu", ("cpu", "torch"))


def _shape(t, expected, name, what):
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {list(expected)} ({what}), got {list(t.shape)}")


def lstm_layer(x_proj, h0, c0, w_hh, *, w_hr=None, reverse=False):
    """One LSTM layer over a whole sequence, from the precomputed input projection.

    x_proj: [T, B, 4H] = x W_ih^T + b_ih + b_hh (gate order i, f, g, o);
    h0: [B, P]; c0: [B, H]; w_hh: [4H, P]; w_hr: [P, H] (LSTM with projection,
    P = proj_size) or None (P = H); reverse: process t = T-1 .. 0.
    Returns (y [T, B, P], h_T [B, P], c_T [B, H]); differentiable in every tensor."""
    for t, name in ((x_proj, "x_proj"), (h0, "h0"), (c0, "c0"), (w_hh, "w_hh")):
        _checks.tensor(t, name)
    if w_hr is not None:
        _checks.tensor(w_hr, "w_hr")
    if not isinstance(reverse, bool):
        raise TypeError(f"reverse must be a bool, got {type(reverse).__name__}")
    if x_proj.dim() != 3 or x_proj.shape[2] % 4:
        raise ValueError(f"x_proj must have shape [T, B, 4*hidden_size], got {list(x_proj.shape)}")
    T, B, G = x_proj.shape
    H = G // 4
    P = H if w_hr is None else w_hr.shape[0]
    if w_hr is not None:
        _shape(w_hr, (w_hr.shape[0], H), "w_hr", "[proj_size, hidden_size]")
        if not 0 < P < H:
            raise ValueError(f"w_hr must have 0 < proj_size < hidden_size={H} rows, got {P}")
    _shape(h0, (B, P), "h0", "[batch, proj_size or hidden_size]")
    _shape(c0, (B, H), "c0", "[batch, hidden_size]")
    _shape(w_hh, (G, P), "w_hh", "[4*hidden_size, proj_size or hidden_size]")
    for t, name in ((h0, "h0"), (c0, "c0"), (w_hh, "w_hh"), (w_hr, "w_hr")):
        if t is not None:
            _checks.same_device(x_proj, "x_proj", t, name)
    dtype = _checks.common_dtype((x_proj, h0, c0, w_hh, w_hr), ("x_proj", "h0", "c0", "w_hh", "w_hr"))
    x_proj, h0, c0, w_hh = (t.to(dtype).contiguous() for t in (x_proj, h0, c0, w_hh))
    w_hr = None if w_hr is None else w_hr.to(dtype).contiguous()
    return dispatch("lstm_layer", x_proj.device.type, x_proj, h0, c0, w_hh, w_hr, reverse)
