"""Fused linear layer: y = act(x W^T + b), F.linear's arguments plus an activation.

The GEMM is not a kernel of ours: on the CPU (float32/bfloat16, GEMMs above
the size rule in bigkernels/composite/linear.py, with its numbers) both
backends call oneDNN's, through
the custom op `onednn_linear` below, with its own backward (the input
gradient through oneDNN too), so that it is opaque to torch.compile and
checked by opcheck like every op. The backends differ in the activation where
it is a pass of its own: `cpu` runs our bias_act kernels (2-3x torch's gelu),
`torch` torch's ops. Elsewhere (CUDA, float16/float64, oneDNN off) `torch` is
F.linear + torch's activation and `cpu` F.linear + our bias_act op. `project`
is the GEMM without routing, for the input projections of the recurrent
layers and attention, which a forced backend must not turn into an error."""
import torch
import torch.nn.functional as F

from ..backends import dispatch, register, set_auto_order
from ..composite import linear as composite
from ..testing.selftests import register_selftest
from . import _checks
from . import activation as acts
from ._library import call, define, register_autograd, wants_grad

_FWD = ("(Tensor x, Tensor weight, Tensor? bias, int activation, float alpha, bool save, bool own_act) "
        "-> (Tensor, Tensor)")
_BWD = ("(Tensor grad_y, Tensor x, Tensor weight, Tensor z, int activation, float alpha, bool[3] needs, "
        "bool own_act) -> (Tensor, Tensor, Tensor)")


def _fake_forward(x, weight, bias, activation, alpha, save, own_act):
    y = x.new_empty(*x.shape[:-1], weight.shape[0])
    keep = save and acts.ACTIVATIONS[activation] != "none"
    return y, (torch.empty_like(y) if keep else x.new_empty(0))


def _fake_backward(grad_y, x, weight, z, activation, alpha, needs, own_act):
    empty = x.new_empty(0)
    return (torch.empty_like(x) if needs[0] else empty, torch.empty_like(weight) if needs[1] else empty,
            x.new_empty(weight.shape[0]) if needs[2] else empty)


define("onednn_linear", _FWD, _fake_forward, cpu=composite.onednn_forward)
define("onednn_linear_backward", _BWD, _fake_backward, cpu=composite.onednn_backward)


def _setup_context(ctx, inputs, output):
    x, weight, bias, activation, alpha, save, own_act = inputs
    # save=False with an activation keeps no pre-activation: backward recomputes it
    recompute = not save and acts.ACTIVATIONS[activation] != "none"
    ctx.save_for_backward(x, weight, output[1], bias if recompute else None)
    ctx.args = (activation, alpha, bias is not None, recompute, own_act)


def _backward(ctx, grad_y, _grad_z):
    if grad_y is None:  # y unused (grads are not materialised: z's would be a zero tensor of y's size)
        return None, None, None, None, None, None, None
    x, weight, z, bias = ctx.saved_tensors
    activation, alpha, has_bias, recompute, own_act = ctx.args
    if recompute:
        z = torch.ops.bigkernels.onednn_linear.default(x, weight, bias, 0, 0.0, False, own_act)[0]
    needs = [bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1]), has_bias and bool(ctx.needs_input_grad[2])]
    dx, dw, db = torch.ops.bigkernels.onednn_linear_backward.default(grad_y.contiguous(), x, weight, z, activation,
                                                                      alpha, needs, own_act)
    return (dx if needs[0] else None, dw if needs[1] else None, db if needs[2] else None, None, None, None, None)


def _no_double_backward(ctx, *grads):
    raise RuntimeError("bigkernels.ops.linear: double backward through the oneDNN path is not supported; "
                       "use torch.nn.functional.linear for higher-order gradients")


register_autograd("onednn_linear", _backward, setup_context=_setup_context, materialize_grads=False)
register_autograd("onednn_linear_backward", _no_double_backward)


def _onednn(x, weight, bias, activation, alpha, own_act):
    """The oneDNN path's result, or None where its size rule (composite.onednn_unsupported) declines."""
    grad = wants_grad(x, weight, bias)
    if composite.onednn_unsupported(x, weight, composite.fuses_activation(activation, grad)) is not None:
        return None
    if not grad and not torch.compiler.is_compiling():
        # the op's own CPU kernel, called directly: the dispatcher costs ~45 us
        # for a Python kernel, more than a small GEMM (autograd and compile need the op)
        return composite.onednn_forward(x, weight, bias, activation, alpha, False, own_act)[0]
    return call("onednn_linear", x, weight, bias, activation, alpha, grad, own_act, grad=grad)[0]


def _torch_linear(x, weight, bias, activation, alpha):
    y = _onednn(x, weight, bias, activation, alpha, False)
    return composite.linear(x, weight, bias, activation, alpha) if y is None else y


def _cpu_linear(x, weight, bias, activation, alpha):
    y = _onednn(x, weight, bias, activation, alpha, True)
    if y is not None:
        return y
    z = F.linear(x, weight, bias)
    if activation == 0:
        return z
    return call("bias_act", z, None, None, activation, alpha, z.dim() - 1)  # F.linear's z is dense


def _cpu_only(x, *args):
    return None if x.device.type == "cpu" else "the cpu backend serves CPU tensors"


def _reference_linear(x, weight, bias, activation, alpha):
    def f64(t):
        return None if t is None else t.to(torch.float64)

    return composite.linear(f64(x), f64(weight), f64(bias), activation, alpha).to(x.dtype)


register("linear", "cpu", kernel="bigkernels::bias_act", supports=_cpu_only)(_cpu_linear)
register("linear", "torch")(_torch_linear)
register("linear", "reference")(_reference_linear)
set_auto_order("linear", "cpu", ("cpu", "torch"))


def _checked(x, weight, bias):
    _checks.tensor(x, "x")
    _checks.tensor(weight, "weight")
    _checks.same_device(x, "x", weight, "weight")
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [out_features, in_features], got shape {list(weight.shape)}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have in_features={weight.shape[1]} as its last dimension, "
                         f"got shape {list(x.shape)}")
    if bias is not None:
        _checks.tensor(bias, "bias")
        _checks.same_device(x, "x", bias, "bias")
        if bias.dim() != 1 or bias.shape[0] != weight.shape[0]:
            raise ValueError(f"bias must have shape [{weight.shape[0]}] (out_features), got {list(bias.shape)}")
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)  # torch's linear runs in the autocast dtype
    else:
        dtype = _checks.common_dtype((x, weight, bias), ("x", "weight", "bias"))
    return _checks.cast(x, dtype), _checks.cast(weight, dtype), _checks.cast(bias, dtype)


def linear(x, weight, bias=None, activation="none", *, negative_slope=0.01):
    """act(x W^T + b): torch.nn.functional.linear's arguments (x [..., in_features],
    weight [out_features, in_features], bias [out_features] or None) and an
    activation, one of ops.activation.ACTIVATIONS (applied by the GEMM itself
    on oneDNN when no gradient is needed). Differentiable in x, weight and bias."""
    code = acts.code(activation)
    _checks.real(negative_slope, "negative_slope")
    x, weight, bias = _checked(x, weight, bias)
    return dispatch("linear", x.device.type, x, weight, bias, code, float(negative_slope))


def project(x, weight, bias=None):
    """x W^T + b, unrouted and unchecked: oneDNN where it serves, else F.linear
    (the recurrent layers' input projections; the caller checked the shapes).
    Under autocast F.linear, so that the result has the dtype torch's would."""
    y = None if torch.is_autocast_enabled(x.device.type) else _onednn(x, weight, bias, 0, 0.0, False)
    return F.linear(x, weight, bias) if y is None else y


def _selftest_inputs(seed, activation, bias, batch_dims=2, large=False):
    gen = torch.Generator().manual_seed(seed)
    # odd sizes (no block multiples); x * 2 reaches every activation's kinks and tails;
    # `large` is above oneDNN's size rule (64 x 257 x 1031: 17M multiply-adds)
    rows, k, n = ([4, 16], 257, 1031) if large else ([3, 5], 37, 29)
    x = torch.randn(*rows[:batch_dims], k, generator=gen, dtype=torch.float64) * 2
    w = torch.randn(n, k, generator=gen, dtype=torch.float64) / k ** 0.5
    b = torch.randn(n, generator=gen, dtype=torch.float64) if bias else None
    return (x, w, b, activation), {"negative_slope": 0.1}


register_selftest(
    "linear", linear, inputs=_selftest_inputs,
    dtypes=(torch.float32, torch.bfloat16, torch.float16, torch.float64),
    cases=[dict(activation="none", bias=True), dict(activation="gelu_tanh", bias=True),
           dict(activation="relu", bias=False, batch_dims=1), dict(activation="leaky_relu", bias=True),
           dict(activation="silu", bias=False), dict(activation="gelu_tanh", bias=True, large=True)],
    features=lambda x, w, b, code, *_: dict(activation=acts.ACTIVATIONS[code], bias=b is not None))
