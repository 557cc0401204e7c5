"""Convolution with the batch-norm statistics of its output (training-mode
fusion): (z, mean, var) = (conv2d(x, weight) + bias, per-channel batch mean
and biased variance of z), mean/var in the compute type (float32; float64 for
float64 x) and not differentiable (batch_norm_act(..., batch_stats=(mean,
var)) carries their gradient terms, as bn_act does for the statistics it
computes itself).

The `cuda` kernels accumulate them in the implicit-GEMM forward's epilogue
(per-tile partials merged in a fixed order: csrc/cuda/conv/conv_stats.cu);
every other backend runs its own conv2d, then one shared statistics pass."""
import torch

from ..backends import BackendError, availability, dispatch, register, router, set_auto_order
from ..composite import conv as composite
from ..reference import conv as reference
from . import conv as _conv
from .batchnorm import batch_norm_act
from ..testing.selftests import register_selftest
from ._library import call, define_native, op, register_autograd, wants_grad

_FWD = "(Tensor x, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, int groups) " \
       "-> (Tensor, Tensor, Tensor)"


def _acc(x):
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _fake(x, weight, bias, stride, padding, dilation, groups):
    z, _ = _conv._fake_forward(x, weight, bias, None, stride, padding, dilation, groups, 0, 0.0, False)
    k = weight.shape[0]
    return z, x.new_empty(k, dtype=_acc(x)), x.new_empty(k, dtype=_acc(x))


define_native("conv2d_stats", _FWD, _fake)


def _register_autograd(forward_name, backward_name):
    def setup_context(ctx, inputs, output):
        x, weight, bias, stride, padding, dilation, groups = inputs
        ctx.mark_non_differentiable(output[1], output[2])
        ctx.save_for_backward(x, weight)
        ctx.args = (stride, padding, dilation, groups)
        ctx.has_bias = bias is not None

    def backward(ctx, grad_z, _gm, _gv):  # the convolution's own backward (no activation)
        x, weight = ctx.saved_tensors
        need = ctx.needs_input_grad
        mask = [need[0], need[1], need[2] and ctx.has_bias, False]
        gx, gw, gb, _ = op(backward_name)(grad_z, x, weight, x.new_empty(0), *ctx.args, 0, 0.0, mask)
        return gx if mask[0] else None, gw if mask[1] else None, gb if mask[2] else None, None, None, None, None

    register_autograd(forward_name, backward, setup_context=setup_context)


_register_autograd("conv2d_stats", "conv2d_backward")
_register_autograd("conv2d_stats_sim", "conv2d_backward_sim")


def batch_stats(z):
    """Per-channel mean and biased variance of z in the compute type (the
    non-CUDA backends' pass after their convolution)."""
    with torch.no_grad():
        var, mean = torch.var_mean(z.to(_acc(z)), dim=(0, 2, 3), correction=0)
    return mean, var


def _after(conv_fn):
    def run(x, weight, bias, stride, padding, dilation, groups):
        z = conv_fn(x, weight, bias, None, stride, padding, dilation, groups, 0, 0.01)
        return (z, *batch_stats(z))

    return run


def _native(name):
    def run(x, weight, bias, stride, padding, dilation, groups):
        return call(name, x, weight, bias, stride, padding, dilation, groups, grad=wants_grad(x, weight, bias))

    return run


def _cuda_supports(x, weight, bias, stride, padding, dilation, groups):
    if groups == x.shape[1] and weight.shape[1] == 1:
        return "the BN statistics epilogue is in the implicit-GEMM forward (not depthwise)"
    return _conv._cuda_supports(x, weight, bias, None, stride, padding, dilation, groups)


register("conv2d_stats", "cuda", kernel="bigkernels::conv2d_stats", supports=_cuda_supports)(_native("conv2d_stats"))
register("conv2d_stats", "cuda_sim", kernel="bigkernels::conv2d_stats_sim", supports=_cuda_supports)(
    _native("conv2d_stats_sim"))
register("conv2d_stats", "cpu", kernel="bigkernels::conv2d")(_after(_conv._call("conv2d")))
register("conv2d_stats", "torch")(_after(composite.conv2d))
if availability.triton_installed():
    register("conv2d_stats", "triton", supports=_conv._triton_supports)(_after(_conv._call("conv2d_triton")))
register("conv2d_stats", "reference")(_after(reference.conv2d))
# CPU: a convolution with nothing to fuse goes to torch first (ops/conv.py::_cpu_auto_order).
set_auto_order("conv2d_stats", "cpu", ("torch", "cpu"))


# Backends whose conv2d_stats accumulates the statistics in the conv epilogue.
_FUSED_STATS = ("cuda", "cuda_sim")


def conv2d_batch_norm_act(x, weight, bias, stride, padding, dilation, groups, running_mean, running_var, bn_weight,
                          bn_bias, momentum, eps, *, activation="none", residual=None, negative_slope=0.01):
    """batch_norm_act(conv2d(x, weight, bias, ...), running_mean, running_var,
    bn_weight, bn_bias, training=True, momentum, eps, ...): Conv2dBNAct's
    training forward. Where the backend that serves conv2d_stats for this call
    accumulates the statistics in its conv epilogue (cuda), conv2d_stats then
    batch_norm_act(batch_stats=...); elsewhere conv2d then batch_norm_act with
    its own statistics pass: on the CPU that pass (our C++ kernel) costs less
    than a separate one after the conv (docs/conv.md, "BN statistics in the
    conv epilogue")."""
    x, weight, bias, _, stride, padding, dilation, unbatched = _conv.conv_inputs(
        x, weight, bias, None, stride, padding, dilation, groups)
    if unbatched:
        raise ValueError("conv2d_batch_norm_act needs batched (N, C, H, W) x: statistics are over the batch")
    args = (x, weight, bias, stride, padding, dilation, groups)
    try:
        impl = router.select("conv2d_stats", x.device.type, args, {})
    except BackendError:  # e.g. a forced backend without the epilogue for this call: the plain conv may serve it
        impl = None
    stats = None
    if impl is not None and impl.backend in _FUSED_STATS:
        z, *stats = impl.fn(*args)
    else:
        z = dispatch("conv2d", x.device.type, x, weight, bias, None, stride, padding, dilation, groups, 0, 0.01)
    return batch_norm_act(z, running_mean, running_var, bn_weight, bn_bias, True, momentum, eps,
                          activation=activation, residual=residual, negative_slope=negative_slope, batch_stats=stats)


def conv2d_stats(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """(conv2d(x, weight, bias, ...), batch mean, biased batch variance) per
    output channel; conv2d's arguments (4-D x). The statistics feed
    batch_norm_act(..., training=True, batch_stats=(mean, var))."""
    x, weight, bias, _, stride, padding, dilation, unbatched = _conv.conv_inputs(
        x, weight, bias, None, stride, padding, dilation, groups)
    if unbatched:
        raise ValueError("conv2d_stats needs batched (N, C, H, W) x: statistics are over the batch")
    return dispatch("conv2d_stats", x.device.type, x, weight, bias, stride, padding, dilation, groups)


# ---------------------------------------------------------------- self-test
# Trust on first use (bigkernels/backends/trust.py): the statistics epilogue
# checked through the whole training chain (conv2d_stats, then batch norm with
# those statistics, silu), forward and backward, against the float64
# reference. No conv bias: under training BN its gradient is exactly 0 and any
# backend's value is rounding noise (the layer's own bias sits in BN's beta).
def _selftest_inputs(seed):
    (x, w, _, stride, padding, dilation, groups), _ = _conv._selftest_inputs(seed, "gemm", False, False)
    gen = torch.Generator().manual_seed(seed + 1)
    k = w.shape[0]
    gamma = torch.rand(k, generator=gen, dtype=torch.float64) + 0.5
    beta = torch.randn(k, generator=gen, dtype=torch.float64)
    return (x, w, gamma, beta, stride, padding, dilation, groups), {}


def _selftest_fn(x, w, gamma, beta, stride, padding, dilation, groups):
    z, mean, var = conv2d_stats(x, w, None, stride, padding, dilation, groups)
    return batch_norm_act(z, None, None, gamma, beta, True, activation="silu", batch_stats=(mean, var))


register_selftest("conv2d_stats", _selftest_fn, inputs=_selftest_inputs, dtypes=(torch.float16, torch.bfloat16),
                  cases=[{}], features=lambda *args: {})
