"""Fused batch-norm + residual + activation after a convolution:
y = act(batch_norm(z) + residual), running statistics updated as torch does.

The op `bn_act` returns (y, mean, biased var) in the compute type (float32;
float64 for float64 z); the public function updates the running buffers
from them, so the op itself mutates nothing (clean for opcheck/compile)."""
import torch

from ..backends import availability, dispatch, register, set_auto_order
from ..composite import conv as composite
from ..reference import conv as reference
from ..testing.selftests import register_selftest
from . import _checks
from . import activation as acts
from ._library import LIB, call, define_native, op, register_autograd

_FWD = ("(Tensor z, Tensor? weight, Tensor? bias, Tensor? residual, Tensor? mean, Tensor? var, float eps, "
        "int activation, float alpha) -> (Tensor, Tensor, Tensor)")
_BWD = ("(Tensor grad_y, Tensor z, Tensor? weight, Tensor? bias, Tensor? residual, Tensor mean, Tensor var, "
        "float eps, int activation, float alpha, bool batch_stats, bool[4] output_mask) "
        "-> (Tensor, Tensor, Tensor, Tensor)")


def acc_dtype(z):
    return torch.float64 if z.dtype == torch.float64 else torch.float32


def _fake_forward(z, weight, bias, residual, mean, var, eps, activation, alpha):
    c = z.shape[1]
    return torch.empty_like(z), z.new_empty(c, dtype=acc_dtype(z)), z.new_empty(c, dtype=acc_dtype(z))


def _fake_backward(grad_y, z, weight, bias, residual, mean, var, eps, activation, alpha, batch_stats, mask):
    def maybe(want, like):
        return torch.empty_like(like) if want and like is not None else z.new_empty(0)

    return maybe(mask[0], z), maybe(mask[1], weight), maybe(mask[2], bias), maybe(mask[3], residual)


define_native("bn_act", _FWD, _fake_forward)
define_native("bn_act_backward", _BWD, _fake_backward)
# Training with precomputed batch statistics of z (e.g. from the conv epilogue,
# ops/conv_stats.py): bn_act's forward with the statistics given, and its
# backward with the statistics' gradient terms (batch_stats=True). The
# kernels are bn_act's own (Python kernels forwarding to them below).
define_native("bn_act_batch", _FWD.replace("Tensor? mean, Tensor? var", "Tensor mean, Tensor var"), _fake_forward)
def _forward_to(name):
    def run(*args):
        y, mean, var = op(name)(*args)
        return y, mean.clone(), var.clone()  # bn_act hands given statistics back as they are: no aliasing outputs

    return run


for _suffix, _key in (("", "CPU"), ("", "CUDA"), ("_sim", "CPU")):
    LIB.impl(f"bn_act_batch{_suffix}", _forward_to(f"bn_act{_suffix}"), _key)


def _register_autograd(forward_name, backward_name, batch=False):
    def setup_context(ctx, inputs, output):
        z, weight, bias, residual, mean, var, eps, act, alpha = inputs
        _, batch_mean, batch_var = output
        ctx.mark_non_differentiable(batch_mean, batch_var)
        ctx.save_for_backward(z, weight, bias, residual, batch_mean, batch_var)
        ctx.args = (eps, act, alpha, batch or mean is None)

    def backward(ctx, grad_y, _gm, _gv):
        z, weight, bias, residual, mean, var = ctx.saved_tensors
        eps, act, alpha, batch_stats = ctx.args
        need = ctx.needs_input_grad
        mask = [need[0], need[1] and weight is not None, need[2] and bias is not None,
                need[3] and residual is not None]
        gz, gw, gb, gr = op(backward_name)(grad_y, z, weight, bias, residual, mean, var, eps, act, alpha,
                                           batch_stats, mask)
        return (gz if mask[0] else None, gw if mask[1] else None, gb if mask[2] else None,
                gr if mask[3] else None, None, None, None, None, None)

    register_autograd(forward_name, backward, setup_context=setup_context)
    if batch:
        return  # the backward op is bn_act's, registered once

    def double_backward(ctx, *grads):
        raise RuntimeError("bigkernels.ops.batch_norm_act: double backward is not supported")

    register_autograd(backward_name, double_backward)


_register_autograd("bn_act", "bn_act_backward")
_register_autograd("bn_act_batch", "bn_act_backward", batch=True)
_register_autograd("bn_act_batch_sim", "bn_act_backward_sim", batch=True)


def _triton_supports(z, *args):
    if z.dtype == torch.float64:
        return "the triton kernels compute in fp32: float64 is served by cpu/torch"
    return None


register("bn_act", "cpu", kernel="bigkernels::bn_act")(lambda *a: call("bn_act", *a))
# CUDA kernels (csrc/cuda/conv/bn_*.cu): every dtype and both layouts.
_register_autograd("bn_act_sim", "bn_act_backward_sim")
register("bn_act", "cuda", kernel="bigkernels::bn_act")(lambda *a: call("bn_act", *a))
register("bn_act", "cuda_sim", kernel="bigkernels::bn_act_sim")(lambda *a: call("bn_act_sim", *a))
register("bn_act", "torch")(composite.bn_act)
if availability.triton_installed():
    from ..triton import conv_bn as _triton_bn  # noqa: F401  (defines the _triton ops)

    _register_autograd("bn_act_triton", "bn_act_backward_triton")
    register("bn_act", "triton", supports=_triton_supports)(lambda *a: call("bn_act_triton", *a))
register("bn_act", "reference")(reference.bn_act)
set_auto_order("bn_act", "cpu", ("cpu", "torch"))


def _recomputing(fn):
    """bn_act_batch on a backend without the variant: its training bn_act,
    which computes the same batch statistics itself (gradient included)."""
    return lambda z, w, b, r, mean, var, *rest: fn(z, w, b, r, None, None, *rest)


register("bn_act_batch", "cpu", kernel="bigkernels::bn_act")(lambda *a: call("bn_act_batch", *a))
register("bn_act_batch", "cuda", kernel="bigkernels::bn_act")(lambda *a: call("bn_act_batch", *a))
register("bn_act_batch", "cuda_sim", kernel="bigkernels::bn_act_sim")(lambda *a: call("bn_act_batch_sim", *a))
register("bn_act_batch", "torch")(_recomputing(composite.bn_act))
if availability.triton_installed():
    register("bn_act_batch", "triton", supports=_triton_supports)(
        _recomputing(lambda *a: call("bn_act_triton", *a)))
register("bn_act_batch", "reference")(_recomputing(reference.bn_act))
set_auto_order("bn_act_batch", "cpu", ("cpu", "torch"))


def batch_norm_act(z, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5,
                   *, activation="none", residual=None, negative_slope=0.01, batch_stats=None):
    """act(F.batch_norm(z, ...) + residual), fused; F.batch_norm's arguments.

    training: batch statistics, and running_mean/running_var (when given)
    updated in place exactly as torch does (momentum, unbiased variance);
    else the running statistics. z: (N, C, ...) contiguous or channels_last.
    batch_stats: (mean, biased var) of z per channel, already computed (e.g.
    by ops.conv2d_stats), training only; the gradient is batch norm's."""
    _checks.tensor(z, "z")
    code = acts.code(activation)
    if z.dim() < 2:
        raise ValueError(f"z must be (N, C, ...), got shape {list(z.shape)}")
    c = z.shape[1]
    for t, name in ((running_mean, "running_mean"), (running_var, "running_var"), (weight, "weight"),
                    (bias, "bias")):
        if t is not None:
            _checks.tensor(t, name)
            _checks.same_device(z, "z", t, name)
            if t.shape != (c,):
                raise ValueError(f"{name} must have shape [{c}] (z's channels), got {list(t.shape)}")
    if residual is not None:
        _checks.tensor(residual, "residual")
        _checks.same_device(z, "z", residual, "residual")
        if residual.shape != z.shape:
            raise ValueError(f"residual must have z's shape {list(z.shape)}, got {list(residual.shape)}")
        residual = _checks.cast(residual, z.dtype).contiguous(memory_format=_format(z))
    if not training and (running_mean is None or running_var is None):
        raise ValueError("running_mean and running_var are needed when training=False")
    if training and z.numel() // c <= 1:
        raise ValueError(f"expected more than 1 value per channel when training, got z of shape {list(z.shape)}")
    z = z.contiguous(memory_format=_format(z))
    mean, var = (None, None) if training else (running_mean, running_var)
    name = "bn_act"
    if batch_stats is not None:
        if not training:
            raise ValueError("batch_stats are for training=True (eval uses the running statistics)")
        if not (isinstance(batch_stats, (tuple, list)) and len(batch_stats) == 2
                and all(isinstance(t, torch.Tensor) and t.shape == (c,) for t in batch_stats)):
            raise ValueError(f"batch_stats must be a (mean, var) pair of [{c}] tensors")
        name, (mean, var) = "bn_act_batch", batch_stats
    y, batch_mean, batch_var = dispatch(name, z.device.type, z, weight, bias, residual, mean, var, float(eps),
                                        code, float(negative_slope))
    if training and running_mean is not None and running_var is not None:
        n = z.numel() // c
        with torch.no_grad():  # torch: running = (1 - m) * running + m * batch, unbiased var
            unbiased = batch_var * (n / (n - 1))
            stats = [running_mean, running_var]
            batch = [t if t.dtype == s.dtype else t.to(s.dtype) for t, s in ((batch_mean, running_mean),
                                                                          (unbiased, running_var))]
            torch._foreach_mul_(stats, 1 - momentum)  # one call for both buffers: ~5 us less per layer
            torch._foreach_add_(stats, batch, alpha=momentum)
    return y


def _format(z):
    if z.dim() == 4 and not z.is_contiguous() and z.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


# ---------------------------------------------------------------- self-test
# Trust on first use (bigkernels/backends/trust.py): the check matching a
# routed call's mode and optional inputs; silu (the activation is a runtime
# switch inside the kernels, its formulas checked by bias_act's self-test).
def _selftest_inputs(seed, training, affine, residual):
    gen = torch.Generator().manual_seed(seed)
    z = (torch.randn(2, 6, 5, 7, generator=gen, dtype=torch.float64) * 2 + 3).contiguous(
        memory_format=torch.channels_last)
    w = torch.rand(6, generator=gen, dtype=torch.float64) + 0.5 if affine else None
    b = torch.randn(6, generator=gen, dtype=torch.float64) if affine else None
    r = torch.randn(z.shape, generator=gen, dtype=torch.float64) if residual else None
    return (z, w, b, training), {"activation": "silu", "residual": r}


def _selftest_fn(z, weight, bias, training, **kwargs):
    """Eval running statistics made here: the self-test gives every floating
    argument a gradient, which torch's batch_norm refuses for them."""
    c = z.shape[1]
    stats = (None, None) if training else (torch.linspace(2.5, 3.5, c, dtype=z.dtype, device=z.device),
                                           torch.linspace(3.0, 5.0, c, dtype=z.dtype, device=z.device))
    return batch_norm_act(z, *stats, weight, bias, training, **kwargs)


register_selftest(
    "bn_act", _selftest_fn, inputs=_selftest_inputs,
    dtypes=(torch.float32, torch.float16, torch.bfloat16, torch.float64),
    cases=[dict(training=True, affine=True, residual=True), dict(training=False, affine=True, residual=False),
           dict(training=True, affine=False, residual=False)],
    # the case matching a routed call (z, weight, bias, residual, mean, var, eps, act, alpha)
    features=lambda z, w, b, r, mean, *_: dict(training=mean is None, affine=w is not None,
                                               residual=r is not None))


def _batch_selftest_fn(z, weight, bias, training, **kwargs):
    """bn_act_batch: training batch norm with the statistics handed in (the
    shared pass of ops/conv_stats.py computes them here)."""
    from .conv_stats import batch_stats

    return batch_norm_act(z, None, None, weight, bias, True, batch_stats=batch_stats(z), **kwargs)


register_selftest(
    "bn_act_batch", _batch_selftest_fn, inputs=_selftest_inputs,
    dtypes=(torch.float32, torch.float16, torch.bfloat16, torch.float64),
    cases=[dict(training=True, affine=True, residual=True), dict(training=True, affine=False, residual=False)],
    features=lambda z, w, b, r, *_: dict(training=True, affine=w is not None, residual=r is not None))
