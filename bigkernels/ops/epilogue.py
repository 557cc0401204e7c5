"""Fused epilogue: y = act(x + bias + residual), one pass over memory.

The convolution epilogue reuses it; it also serves linear layers. `bias` is
per channel (dimension `channel_dim` of x); `residual` has x's shape."""
import torch

from ..backends import availability, dispatch, register, set_auto_order
from ..composite import epilogue as composite
from ..reference import epilogue as reference
from ..testing.selftests import register_selftest
from . import _checks
from . import activation as acts
from ._library import call, define_native, op, register_autograd

_FWD = "(Tensor x, Tensor? bias, Tensor? residual, int activation, float alpha, int channel_dim) -> Tensor"
_BWD = ("(Tensor grad_y, Tensor x, Tensor? bias, Tensor? residual, int activation, float alpha, "
        "int channel_dim) -> Tensor")


def _fake_forward(x, bias, residual, activation, alpha, channel_dim):
    return torch.empty_like(x)


def _fake_backward(grad_y, x, bias, residual, activation, alpha, channel_dim):
    return torch.empty_like(x)


define_native("bias_act", _FWD, _fake_forward)
define_native("bias_act_backward", _BWD, _fake_backward)


def _like(t, ref):
    """t with ref's strides (the kernels index x, residual and grads alike)."""
    return t if t.stride() == ref.stride() else torch.empty_like(ref).copy_(t)


def _register_autograd(forward_name, backward_name):
    def setup_context(ctx, inputs, output):
        x, bias, residual, act, alpha, channel_dim = inputs
        ctx.save_for_backward(x, bias, residual)
        ctx.args = (act, alpha, channel_dim)

    def backward(ctx, grad_y):
        x, bias, residual = ctx.saved_tensors
        act, alpha, channel_dim = ctx.args
        grad_z = op(backward_name)(_like(grad_y, x), x, bias, residual, act, alpha, channel_dim)
        grad_bias = None
        if bias is not None and ctx.needs_input_grad[1]:
            dims = [d for d in range(x.dim()) if d != channel_dim]
            grad_bias = grad_z.sum(dims) if dims else grad_z
        grad_res = grad_z if residual is not None and ctx.needs_input_grad[2] else None
        return grad_z, grad_bias, grad_res, None, None, None

    register_autograd(forward_name, backward, setup_context=setup_context)

    def double_backward(ctx, grad):
        raise RuntimeError("bigkernels.ops.bias_act: double backward is not supported; use the torch backend "
                           "(bigkernels.use_backend('torch')) for higher-order gradients")

    register_autograd(backward_name, double_backward)


_register_autograd("bias_act", "bias_act_backward")
_register_autograd("bias_act_sim", "bias_act_backward_sim")

if availability.triton_usable():
    from ..triton import epilogue as _triton_epilogue  # noqa: F401  (defines the _triton ops)

    _register_autograd("bias_act_triton", "bias_act_backward_triton")


def _triton_supports(x, *args):
    if x.dtype == torch.float64:
        return "the triton kernel computes in fp32: float64 is served by cpu/cuda/torch"
    return None


register("bias_act", "cpu", kernel="bigkernels::bias_act")(lambda *a: call("bias_act", *a))
register("bias_act", "cuda", kernel="bigkernels::bias_act")(lambda *a: call("bias_act", *a))
register("bias_act", "cuda_sim", kernel="bigkernels::bias_act_sim")(lambda *a: call("bias_act_sim", *a))
register("bias_act", "triton", supports=_triton_supports)(lambda *a: call("bias_act_triton", *a))
register("bias_act", "torch")(composite.bias_act)
register("bias_act", "reference")(reference.bias_act)
# CPU: our single pass beats torch's separate add/add/activation passes at
# every size measured (benchmarks: python -m bigkernels bench --family epilogue).
set_auto_order("bias_act", "cpu", ("cpu", "torch"))


def _dense(x, channel_dim):
    if x.is_contiguous():
        return x
    if channel_dim == 1 and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return x
    if channel_dim == 1 and x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
        return x
    return x.contiguous()


def bias_act(x, bias=None, residual=None, activation="none", *, negative_slope=0.01, channel_dim=None):
    """act(x + bias + residual), fused.

    x: any shape, float16/bfloat16/float32/float64, contiguous or channels_last
    (the output keeps x's memory format). bias: [x.shape[channel_dim]] or None;
    channel_dim defaults to 1 (NCHW, (N, C)), or 0 for a 1-D x.
    residual: x's shape or None. activation: one of ops.activation.ACTIVATIONS.
    Differentiable in x, bias and residual."""
    _checks.tensor(x, "x")
    code = acts.code(activation)
    if channel_dim is None:
        channel_dim = 1 if x.dim() >= 2 else 0
    channel_dim = _checks.dim_index(channel_dim, x.dim(), "channel_dim")
    if bias is not None:
        _checks.tensor(bias, "bias")
        _checks.same_device(x, "x", bias, "bias")
        channels = x.shape[channel_dim] if x.dim() else 1
        if bias.dim() != 1 or bias.shape[0] != channels:
            raise ValueError(f"bias must have shape [{channels}] (x.shape[channel_dim={channel_dim}]), "
                             f"got {list(bias.shape)}")
    if residual is not None:
        _checks.tensor(residual, "residual")
        _checks.same_device(x, "x", residual, "residual")
        if residual.shape != x.shape:
            raise ValueError(f"residual must have x's shape {list(x.shape)}, got {list(residual.shape)}")
    _checks.real(negative_slope, "negative_slope")
    dtype = _checks.common_dtype((x, bias, residual), ("x", "bias", "residual"))
    x = _dense(_checks.cast(x, dtype), channel_dim)
    bias = None if bias is None else _checks.cast(bias, dtype).contiguous()
    residual = None if residual is None else _like(_checks.cast(residual, dtype), x)
    return dispatch("bias_act", x.device.type, x, bias, residual, code, float(negative_slope), channel_dim)


def _selftest_inputs(seed, activation, bias, residual, channels_last=False):
    gen = torch.Generator().manual_seed(seed)
    # NCHW with odd sizes (partial blocks); x * 2 reaches every activation's kinks and tails
    x = torch.randn(2, 6, 5, 7, generator=gen, dtype=torch.float64) * 2
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    b = torch.randn(6, generator=gen, dtype=torch.float64) if bias else None
    r = torch.randn(x.shape, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt) if residual else None
    return (x.contiguous(memory_format=fmt), b, r, activation), {"negative_slope": 0.1}


register_selftest(
    "bias_act", bias_act, inputs=_selftest_inputs,
    dtypes=(torch.float32, torch.float16, torch.bfloat16, torch.float64),
    cases=[dict(activation="gelu", bias=True, residual=True), dict(activation="silu", bias=True, residual=False),
           dict(activation="relu", bias=False, residual=True, channels_last=True),
           dict(activation="leaky_relu", bias=True, residual=True), dict(activation="tanh", bias=False, residual=False)],
    # the case matching a routed call (x, bias, residual, activation code, alpha, channel_dim)
    features=lambda x, b, r, code, *_: dict(activation=acts.ACTIVATIONS[code], bias=b is not None,
                                            residual=r is not None))
