"""Whole-layer LSTM: the recurrence over all timesteps as one op, forward and
backward through time (the weight gradients as large GEMMs after the loop).

The input projection x W_ih^T + b_ih + b_hh is not part of the op: the caller
computes it for every timestep as one large GEMM (bigkernels.nn.LSTM does).
Equations and gate order (i, f, g, o) are torch's."""
import torch

from ..backends import availability, dispatch, register, set_auto_order
from ..composite import lstm as composite
from ..reference import lstm as reference
from . import _rnn_checks as rc
from . import _checks
from ._bidir import stacked_fake, stacked_selftest_inputs, two_directions
from ._library import call, define_native, op, qualname, wants_grad

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


# Both directions of a bidirectional layer, every tensor stacked on a leading
# dim of 2 ([0] forward in time, [1] reverse); no `reverse` flag.
_BIDIR_FWD = ("(Tensor x_proj, Tensor h0, Tensor c0, Tensor w_hh, Tensor? w_hr, bool train) "
              "-> (Tensor, Tensor, Tensor, Tensor, Tensor)")
_BIDIR_BWD = ("(Tensor grad_y, Tensor grad_hT, Tensor grad_cT, Tensor h0, Tensor c0, Tensor w_hh, Tensor? w_hr, "
              "Tensor y, Tensor gates, Tensor cs) -> (Tensor, Tensor, Tensor, Tensor, Tensor)")


define_native("lstm_layer", _FWD, _fake_forward)
define_native("lstm_layer_backward", _BWD, _fake_backward)
define_native("lstm_bidir_layer", _BIDIR_FWD, stacked_fake(_fake_forward, 5))
define_native("lstm_bidir_layer_backward", _BIDIR_BWD, stacked_fake(_fake_backward, 10))


def _register_autograd(forward_name, backward_name):
    """inputs: (x_proj, h0, c0, w_hh, w_hr, *flags, train); flags = (reverse,),
    or () for the bidirectional op; its backward takes (..., cs, *flags)."""
    def setup_context(ctx, inputs, output):
        x_proj, h0, c0, w_hh, w_hr = inputs[:5]
        train = inputs[-1]
        y, _, _, gates, cs = output
        ctx.mark_non_differentiable(gates, cs)
        # Without the workspace (train=False), backward recomputes it from x_proj.
        ctx.save_for_backward(h0, c0, w_hh, w_hr, y, gates, cs, None if train else x_proj)
        ctx.flags = tuple(inputs[5:-1])

    def backward(ctx, grad_y, grad_hT, grad_cT, _grad_gates, _grad_cs):
        h0, c0, w_hh, w_hr, y, gates, cs, x_proj = ctx.saved_tensors
        if x_proj is not None:
            y, _, _, gates, cs = call(forward_name, x_proj, h0, c0, w_hh, w_hr, *ctx.flags, True)
        dx, dh0, dc0, dw, dwr = op(backward_name)(grad_y.contiguous(), grad_hT.contiguous(), grad_cT.contiguous(),
                                                  h0, c0, w_hh, w_hr, y, gates, cs, *ctx.flags)
        return (dx, dh0, dc0, dw, (dwr if w_hr is not None else None)) + (None,) * (len(ctx.flags) + 1)

    torch.library.register_autograd(qualname(forward_name), backward, setup_context=setup_context)

    def double_backward(ctx, *grads):
        raise RuntimeError("bigkernels.ops.lstm_layer: double backward is not supported by the cpu kernel; use "
                           "the torch backend (bigkernels.use_backend('torch')) for higher-order gradients")

    torch.library.register_autograd(qualname(backward_name), double_backward)


_register_autograd("lstm_layer", "lstm_layer_backward")
_register_autograd("lstm_layer_sim", "lstm_layer_backward_sim")
_register_autograd("lstm_bidir_layer", "lstm_bidir_layer_backward")
_register_autograd("lstm_bidir_layer_sim", "lstm_bidir_layer_backward_sim")

if availability.triton_usable():
    from ..triton import lstm as _triton_lstm  # noqa: F401  (defines the _triton ops)

    _register_autograd("lstm_layer_triton", "lstm_layer_backward_triton")


def _triton_supports(x_proj, *args):
    if x_proj.dtype == torch.float64:
        return "the triton kernel computes in fp32: float64 is served by cpu/torch"
    return None


def _native(name):
    def run(x_proj, h0, c0, w_hh, w_hr, reverse):
        train = wants_grad(x_proj, h0, c0, w_hh, w_hr)
        return call(name, x_proj, h0, c0, w_hh, w_hr, reverse, train, grad=train)[:3]

    return run


register("lstm_layer", "cpu", kernel="bigkernels::lstm_layer")(_native("lstm_layer"))
# csrc/cuda/lstm: persistent (weights resident, grid sync per step) or per-step kernels (docs/lstm.md)
register("lstm_layer", "cuda", kernel="bigkernels::lstm_layer",
         supports=_checks.cuda_recurrent_supports)(_native("lstm_layer"))
register("lstm_layer", "cuda_sim", kernel="bigkernels::lstm_layer_sim",
         supports=_checks.cuda_recurrent_supports)(_native("lstm_layer_sim"))
register("lstm_layer", "triton", supports=_triton_supports)(_native("lstm_layer_triton"))
register("lstm_layer", "torch")(composite.lstm_layer)
register("lstm_layer", "reference")(reference.lstm_layer)
set_auto_order("lstm_layer", "cpu", ("cpu", "torch"))


def _native_bidir(name):
    def run(x_proj, h0, c0, w_hh, w_hr):
        train = wants_grad(x_proj, h0, c0, w_hh, w_hr)
        return call(name, x_proj, h0, c0, w_hh, w_hr, train, grad=train)[:3]

    return run


# cpu: the one-direction kernel per direction, writing slices of the stacked
# outputs (csrc/torch/lstm_cpu.cpp); cuda: both directions in one cooperative
# launch where 2x the blocks fit co-resident (docs/lstm.md, "Bidirectional").
register("lstm_bidir_layer", "cpu", kernel="bigkernels::lstm_bidir_layer")(_native_bidir("lstm_bidir_layer"))
register("lstm_bidir_layer", "cuda", kernel="bigkernels::lstm_bidir_layer",
         supports=_checks.cuda_recurrent_supports)(_native_bidir("lstm_bidir_layer"))
register("lstm_bidir_layer", "cuda_sim", kernel="bigkernels::lstm_bidir_layer_sim",
         supports=_checks.cuda_recurrent_supports)(_native_bidir("lstm_bidir_layer_sim"))
register("lstm_bidir_layer", "triton", supports=_triton_supports)(two_directions("lstm_layer", "triton"))
register("lstm_bidir_layer", "torch")(two_directions("lstm_layer", "torch"))
register("lstm_bidir_layer", "reference")(two_directions("lstm_layer", "reference"))
set_auto_order("lstm_bidir_layer", "cpu", ("cpu", "torch"))


def _check_layer(x_proj, h0, c0, w_hh, w_hr, lead=()):
    """Shapes of one direction's tensors (lead: the stacked op's leading [2]);
    returns the tensors cast to the common dtype."""
    named = [(x_proj, "x_proj"), (h0, "h0"), (c0, "c0"), (w_hh, "w_hh"), (w_hr, "w_hr")]
    dtype = rc.tensors(named, ("w_hr",))
    rc.lead(named, lead)
    one = [None if t is None else t[(0,) * len(lead)] for t, _ in named]
    T, B, H = rc.seq(one[0], 4)
    P = H if w_hr is None else one[4].shape[0]
    lead = list(lead)
    if w_hr is not None:
        rc.shape(w_hr, (*lead, P, H), "w_hr", "[proj_size, hidden_size]")
        if not 0 < P < H:
            raise ValueError(f"w_hr must have 0 < proj_size < hidden_size={H} rows, got {P}")
    rc.shape(h0, (*lead, B, P), "h0", "[batch, proj_size or hidden_size]")
    rc.shape(c0, (*lead, B, H), "c0", "[batch, hidden_size]")
    rc.shape(w_hh, (*lead, 4 * H, P), "w_hh", "[4*hidden_size, proj_size or hidden_size]")
    return rc.cast(dtype, x_proj, h0, c0, w_hh, w_hr)


def lstm_bidir_layer(x_proj, h0, c0, w_hh, *, w_hr=None):
    """Both directions of a bidirectional LSTM layer, every tensor stacked on a
    leading dimension of 2 ([0]: forward in time, [1]: reverse): x_proj
    [2, T, B, 4H], h0 [2, B, P], c0 [2, B, H], w_hh [2, 4H, P], w_hr [2, P, H]
    or None. Returns (y [2, T, B, P], h_T [2, B, P], c_T [2, B, H]), equal to
    lstm_layer per direction; on CUDA both directions run in one launch."""
    x_proj, h0, c0, w_hh, w_hr = _check_layer(x_proj, h0, c0, w_hh, w_hr, lead=(2,))
    return dispatch("lstm_bidir_layer", x_proj.device.type, x_proj, h0, c0, w_hh, w_hr)


def lstm_layer(x_proj, h0, c0, w_hh, *, w_hr=None, reverse=False):
    """One LSTM layer over a whole sequence, from the precomputed input projection.

    x_proj: [T, B, 4H] = x W_ih^T + b_ih + b_hh (gate order i, f, g, o);
    h0: [B, P]; c0: [B, H]; w_hh: [4H, P]; w_hr: [P, H] (LSTM with projection,
    P = proj_size) or None (P = H); reverse: process t = T-1 .. 0.
    Returns (y [T, B, P], h_T [B, P], c_T [B, H]); differentiable in every tensor."""
    rc.flag(reverse, "reverse")
    x_proj, h0, c0, w_hh, w_hr = _check_layer(x_proj, h0, c0, w_hh, w_hr)
    return dispatch("lstm_layer", x_proj.device.type, x_proj, h0, c0, w_hh, w_hr, reverse)


def lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step, torch.nn.LSTMCell's equations: x [B, I] (or [I]), h and c
    [B, H] (or [H]), w_ih [4H, I], w_hh [4H, H], biases [4H] or None.
    Returns (h', c'). The input GEMM (with both biases) runs first, then the
    recurrent GEMM and the fused gates as a one-step lstm_layer."""
    named = [(x, "x"), (h, "h"), (c, "c"), (w_ih, "w_ih"), (w_hh, "w_hh"), (b_ih, "b_ih"), (b_hh, "b_hh")]
    dtype = rc.autocast_dtype("LSTMCell", x.device.type, rc.tensors(named, ("b_ih", "b_hh")))
    batched = x.dim() == 2
    x2 = rc.cell_input(x, w_ih, 4)
    H = w_ih.shape[0] // 4
    for t, name in ((h, "h"), (c, "c")):
        rc.shape(t, (x2.shape[0], H) if batched else (H,), name, "[batch, hidden_size] like x")
    rc.shape(w_hh, (4 * H, H), "w_hh", "[4*hidden_size, hidden_size]")
    for b, name in ((b_ih, "b_ih"), (b_hh, "b_hh")):
        if b is not None:
            rc.shape(b, (4 * H,), name, "[4*hidden_size]")
    x2, h, c, w_ih, w_hh, b_ih, b_hh = rc.cast(dtype, x2, h, c, w_ih, w_hh, b_ih, b_hh)
    h2, c2 = (h, c) if batched else (h.unsqueeze(0), c.unsqueeze(0))
    with rc.autocast_off(x2.device.type):
        h1, c1 = dispatch("lstm_cell", x2.device.type, x2, h2, c2, w_ih, w_hh, b_ih, b_hh)
    return (h1, c1) if batched else (h1.squeeze(0), c1.squeeze(0))


def _cell_as_layer(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step = the input GEMM + a one-step lstm_layer (routed again, so a
    forced backend reaches the layer kernels)."""
    bias = b_ih + b_hh if b_ih is not None and b_hh is not None else (b_ih if b_ih is not None else b_hh)
    x_proj = rc.linear(x, w_ih, bias).unsqueeze(0).contiguous()
    _, h1, c1 = dispatch("lstm_layer", x_proj.device.type, x_proj, h, c, w_hh, None, False)
    return h1, c1


def _cell_torch(x, h, c, w_ih, w_hh, b_ih, b_hh):
    return tuple(torch._VF.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh))


for _backend in ("cpu", "triton", "reference"):
    register("lstm_cell", _backend)(_cell_as_layer)
register("lstm_cell", "torch")(_cell_torch)
# One step at B = 1..64, H = 256..512 (1 thread, CPU time; docs/lstm.md):
# torch's cell 1.1-2x faster than a one-step layer call, whose fixed cost
# (checks, router, custom-op autograd: ~40 us) a single step cannot amortise.
set_auto_order("lstm_cell", "cpu", ("torch", "cpu"))


def _selftest_inputs(seed, reverse=False, proj=False):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    T, B, H, P = 4, 3, 8, 5  # odd batch, H not a tile multiple; P < H with a projection
    p = P if proj else H
    args = (randn64(gen, T, B, 4 * H), randn64(gen, B, p, scale=0.5), randn64(gen, B, H, scale=0.5),
            randn64(gen, 4 * H, p, scale=0.3))
    return args, {"w_hr": randn64(gen, P, H, scale=0.3) if proj else None, "reverse": reverse}


def _cell_selftest_inputs(seed, bias=True):
    from ..testing.selftests import randn64

    gen = torch.Generator().manual_seed(seed)
    B, I, H = 3, 6, 8
    args = (randn64(gen, B, I), randn64(gen, B, H, scale=0.5), randn64(gen, B, H, scale=0.5),
            randn64(gen, 4 * H, I, scale=0.3), randn64(gen, 4 * H, H, scale=0.3))
    biases = (randn64(gen, 4 * H, scale=0.1), randn64(gen, 4 * H, scale=0.1)) if bias else (None, None)
    return args + biases, {}


from ..testing.selftests import register_selftest  # noqa: E402

_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
register_selftest(
    "lstm_layer", lstm_layer, inputs=_selftest_inputs, dtypes=_DTYPES,
    cases=[dict(reverse=False, proj=False), dict(reverse=True, proj=False), dict(reverse=False, proj=True)],
    # the case matching a routed call (x_proj, h0, c0, w_hh, w_hr, reverse)
    features=lambda x, h0, c0, w_hh, w_hr, reverse, *_: dict(reverse=bool(reverse), proj=w_hr is not None))
register_selftest(
    "lstm_bidir_layer", lstm_bidir_layer, inputs=stacked_selftest_inputs(_selftest_inputs), dtypes=_DTYPES,
    cases=[dict(proj=False), dict(proj=True)],
    features=lambda x, h0, c0, w_hh, w_hr, *_: dict(proj=w_hr is not None))
register_selftest(
    "lstm_cell", lstm_cell, inputs=_cell_selftest_inputs, dtypes=_DTYPES,
    cases=[dict(bias=True), dict(bias=False)],
    features=lambda x, h, c, w_ih, w_hh, b_ih, b_hh, *_: dict(bias=b_ih is not None))
