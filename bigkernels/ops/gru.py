"""Whole-layer GRU and the GRU cell, torch's equations (gate order r, z, n;
the reset gate multiplies (W_hn h + b_hn), as torch and cuDNN do):
  r = sig(x_r + W_hr h + b_hr), z = sig(x_z + W_hz h + b_hz)
  n = tanh(x_n + r * (W_hn h + b_hn)),  h' = (1 - z) n + z h
x_proj = x W_ih^T + b_ih for all timesteps is computed by the caller.
Backends: cpu (C++: csrc/cpu/lstm/gru_layer.cpp), torch (composition), reference."""
import torch

from ..backends import dispatch, register, set_auto_order
from ..composite import lstm as composite
from ..reference import lstm as reference
from . import _rnn_checks as rc
from . import _checks
from ._bidir import stacked_fake, stacked_selftest_inputs, two_directions
from ._library import call, define_native, op, register_autograd, wants_grad

_FWD = "(Tensor x_proj, Tensor h0, Tensor w_hh, Tensor? b_hh, bool reverse, bool train) -> (Tensor, Tensor, Tensor)"
_BWD = ("(Tensor grad_y, Tensor grad_hT, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor y, Tensor ws, bool reverse) "
        "-> (Tensor, Tensor, Tensor, Tensor)")


def _fake_forward(x_proj, h0, w_hh, b_hh, reverse, train):
    T, B, _ = x_proj.shape
    ws = torch.float64 if x_proj.dtype == torch.float64 else torch.float32
    return (x_proj.new_empty(T, B, h0.shape[1]), x_proj.new_empty(h0.shape),
            x_proj.new_empty(T if train else 0, B, 4 * h0.shape[1], dtype=ws))


def _fake_backward(grad_y, grad_hT, h0, w_hh, b_hh, y, ws, reverse):
    T, B, H = grad_y.shape
    return (grad_y.new_empty(T, B, 3 * H), grad_y.new_empty(B, H), grad_y.new_empty(3 * H, H),
            grad_y.new_empty(3 * H if b_hh is not None else 0))


# Both directions of a bidirectional layer, every tensor stacked on a leading
# dim of 2 ([0] forward in time, [1] reverse); no `reverse` flag.
_BIDIR_FWD = "(Tensor x_proj, Tensor h0, Tensor w_hh, Tensor? b_hh, bool train) -> (Tensor, Tensor, Tensor)"
_BIDIR_BWD = ("(Tensor grad_y, Tensor grad_hT, Tensor h0, Tensor w_hh, Tensor? b_hh, Tensor y, Tensor ws) "
              "-> (Tensor, Tensor, Tensor, Tensor)")

define_native("gru_layer", _FWD, _fake_forward)
define_native("gru_layer_backward", _BWD, _fake_backward)
define_native("gru_bidir_layer", _BIDIR_FWD, stacked_fake(_fake_forward, 4))
define_native("gru_bidir_layer_backward", _BIDIR_BWD, stacked_fake(_fake_backward, 7))


def _register_autograd(forward_name, backward_name):
    """inputs: (x_proj, h0, w_hh, b_hh, *flags, train); flags = (reverse,), or
    () for the bidirectional op; its backward takes (..., ws, *flags)."""
    def setup_context(ctx, inputs, output):
        x_proj, h0, w_hh, b_hh = inputs[:4]
        train = inputs[-1]
        y, _, ws = output
        ctx.mark_non_differentiable(ws)
        ctx.save_for_backward(h0, w_hh, b_hh, y, ws, None if train else x_proj)
        ctx.flags = tuple(inputs[4:-1])

    def backward(ctx, grad_y, grad_hT, _grad_ws):
        h0, w_hh, b_hh, y, ws, x_proj = ctx.saved_tensors
        if x_proj is not None:  # forward ran without a workspace: recompute it
            y, _, ws = call(forward_name, x_proj, h0, w_hh, b_hh, *ctx.flags, True)
        dx, dh0, dw, db = op(backward_name)(grad_y.contiguous(), grad_hT.contiguous(), h0, w_hh, b_hh, y, ws,
                                            *ctx.flags)
        return (dx, dh0, dw, (db if b_hh is not None else None)) + (None,) * (len(ctx.flags) + 1)

    def double_backward(ctx, *grads):
        raise RuntimeError("bigkernels.ops.gru_layer: double backward is not supported by the cpu kernel; use the "
                           "torch backend (bigkernels.use_backend('torch')) for higher-order gradients")

    register_autograd(forward_name, backward, setup_context=setup_context)
    register_autograd(backward_name, double_backward)


_register_autograd("gru_layer", "gru_layer_backward")
_register_autograd("gru_layer_sim", "gru_layer_backward_sim")
_register_autograd("gru_bidir_layer", "gru_bidir_layer_backward")
_register_autograd("gru_bidir_layer_sim", "gru_bidir_layer_backward_sim")


def _native(name):
    def run(x_proj, h0, w_hh, b_hh, reverse):
        train = wants_grad(x_proj, h0, w_hh, b_hh)
        return call(name, x_proj, h0, w_hh, b_hh, reverse, train, grad=train)[:2]

    return run


register("gru_layer", "cpu", kernel="bigkernels::gru_layer")(_native("gru_layer"))
# csrc/cuda/lstm/gru_layer.cu: persistent or per-step, like the LSTM's (docs/lstm.md)
register("gru_layer", "cuda", kernel="bigkernels::gru_layer",
         supports=_checks.cuda_recurrent_supports)(_native("gru_layer"))
register("gru_layer", "cuda_sim", kernel="bigkernels::gru_layer_sim",
         supports=_checks.cuda_recurrent_supports)(_native("gru_layer_sim"))
register("gru_layer", "torch")(composite.gru_layer)
register("gru_layer", "reference")(reference.gru_layer)
set_auto_order("gru_layer", "cpu", ("cpu", "torch"))


def _native_bidir(name):
    def run(x_proj, h0, w_hh, b_hh):
        train = wants_grad(x_proj, h0, w_hh, b_hh)
        return call(name, x_proj, h0, w_hh, b_hh, train, grad=train)[:2]

    return run


# cpu: the one-direction kernel per direction; cuda: both directions in one
# launch where 2x the blocks fit co-resident (docs/lstm.md, "Bidirectional").
register("gru_bidir_layer", "cpu", kernel="bigkernels::gru_bidir_layer")(_native_bidir("gru_bidir_layer"))
register("gru_bidir_layer", "cuda", kernel="bigkernels::gru_bidir_layer",
         supports=_checks.cuda_recurrent_supports)(_native_bidir("gru_bidir_layer"))
register("gru_bidir_layer", "cuda_sim", kernel="bigkernels::gru_bidir_layer_sim",
         supports=_checks.cuda_recurrent_supports)(_native_bidir("gru_bidir_layer_sim"))
register("gru_bidir_layer", "torch")(two_directions("gru_layer", "torch"))
register("gru_bidir_layer", "reference")(two_directions("gru_layer", "reference"))
set_auto_order("gru_bidir_layer", "cpu", ("cpu", "torch"))


def _check_layer(x_proj, h0, w_hh, b_hh, lead=()):
    """Shapes of one direction's tensors (lead: the stacked op's leading [2]);
    returns the tensors cast to the common dtype."""
    named = [(x_proj, "x_proj"), (h0, "h0"), (w_hh, "w_hh"), (b_hh, "b_hh")]
    dtype = rc.tensors(named, ("b_hh",))
    rc.lead(named, lead)
    T, B, H = rc.seq(x_proj[(0,) * len(lead)], 3)
    rc.shape(h0, (*lead, B, H), "h0", "[batch, hidden_size]")
    rc.shape(w_hh, (*lead, 3 * H, H), "w_hh", "[3*hidden_size, hidden_size]")
    if b_hh is not None:
        rc.shape(b_hh, (*lead, 3 * H), "b_hh", "[3*hidden_size]")
    return rc.cast(dtype, x_proj, h0, w_hh, b_hh)


def gru_layer(x_proj, h0, w_hh, b_hh=None, *, reverse=False):
    """x_proj: [T, B, 3H]; h0: [B, H]; w_hh: [3H, H]; b_hh: [3H] or None.
    Returns (y [T, B, H], h_T [B, H])."""
    rc.flag(reverse, "reverse")
    x_proj, h0, w_hh, b_hh = _check_layer(x_proj, h0, w_hh, b_hh)
    return dispatch("gru_layer", x_proj.device.type, x_proj, h0, w_hh, b_hh, reverse)


def gru_bidir_layer(x_proj, h0, w_hh, b_hh=None):
    """Both directions of a bidirectional GRU layer, every tensor stacked on a
    leading dimension of 2 ([0]: forward in time, [1]: reverse): x_proj
    [2, T, B, 3H], h0 [2, B, H], w_hh [2, 3H, H], b_hh [2, 3H] or None.
    Returns (y [2, T, B, H], h_T [2, B, H]), equal to gru_layer per direction;
    on CUDA both directions run in one launch."""
    x_proj, h0, w_hh, b_hh = _check_layer(x_proj, h0, w_hh, b_hh, lead=(2,))
    return dispatch("gru_bidir_layer", x_proj.device.type, x_proj, h0, w_hh, b_hh)


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step, torch.nn.GRUCell's equations: x [B, I] (or [I]), h [B, H]
    (or [H]). Returns h'."""
    named = [(x, "x"), (h, "h"), (w_ih, "w_ih"), (w_hh, "w_hh"), (b_ih, "b_ih"), (b_hh, "b_hh")]
    dtype = rc.autocast_dtype("GRUCell", x.device.type, rc.tensors(named, ("b_ih", "b_hh")))
    batched = x.dim() == 2
    x2 = rc.cell_input(x, w_ih, 3)
    H = w_ih.shape[0] // 3
    rc.shape(h, (x2.shape[0], H) if batched else (H,), "h", "[batch, hidden_size] like x")
    x2, h, w_ih, w_hh, b_ih, b_hh = rc.cast(dtype, x2, h, w_ih, w_hh, b_ih, b_hh)
    with rc.autocast_off(x2.device.type):
        h1 = dispatch("gru_cell", x2.device.type, x2, h if batched else h.unsqueeze(0), w_ih, w_hh, b_ih, b_hh)
    return h1 if batched else h1.squeeze(0)


def _cell_as_layer(x, h, w_ih, w_hh, b_ih, b_hh):
    x_proj = rc.linear(x, w_ih, b_ih).unsqueeze(0).contiguous()
    return gru_layer(x_proj, h, w_hh, b_hh)[1]


register("gru_cell", "cpu")(_cell_as_layer)
register("gru_cell", "reference")(_cell_as_layer)
register("gru_cell", "torch")(lambda x, h, w_ih, w_hh, b_ih, b_hh: torch._VF.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh))
# One step: torch's cell measured 1.3-1.7x faster than a one-step layer call (docs/lstm.md).
set_auto_order("gru_cell", "cpu", ("torch", "cpu"))


def _selftest_inputs(seed, reverse=False, bias=True):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    T, B, H = 4, 3, 8
    args = (randn64(gen, T, B, 3 * H), randn64(gen, B, H, scale=0.5), randn64(gen, 3 * H, H, scale=0.3),
            randn64(gen, 3 * H, scale=0.1) if bias else None)
    return args, {"reverse": reverse}


def _cell_selftest_inputs(seed, bias=True):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    B, I, H = 3, 6, 8
    args = (randn64(gen, B, I), randn64(gen, B, H, scale=0.5), randn64(gen, 3 * H, I, scale=0.3),
            randn64(gen, 3 * H, H, scale=0.3))
    biases = (randn64(gen, 3 * H, scale=0.1), randn64(gen, 3 * H, scale=0.1)) if bias else (None, None)
    return args + biases, {}


from ..testing.selftests import register_selftest  # noqa: E402

_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
register_selftest(
    "gru_layer", gru_layer, inputs=_selftest_inputs, dtypes=_DTYPES,
    cases=[dict(reverse=False, bias=True), dict(reverse=True, bias=True), dict(reverse=False, bias=False)],
    features=lambda x, h0, w_hh, b_hh, reverse, *_: dict(reverse=bool(reverse), bias=b_hh is not None))
register_selftest(
    "gru_bidir_layer", gru_bidir_layer, inputs=stacked_selftest_inputs(_selftest_inputs), dtypes=_DTYPES,
    cases=[dict(bias=True), dict(bias=False)],
    features=lambda x, h0, w_hh, b_hh, *_: dict(bias=b_hh is not None))
register_selftest(
    "gru_cell", gru_cell, inputs=_cell_selftest_inputs, dtypes=_DTYPES,
    cases=[dict(bias=True), dict(bias=False)],
    features=lambda x, h, w_ih, w_hh, b_ih, b_hh, *_: dict(bias=b_ih is not None))
