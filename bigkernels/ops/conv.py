"""Fused convolution: y = act(conv2d(x, weight) + bias + residual).

One op per backend variant (see _library.py), returning (y, saved): `saved`
is the pre-activation z, kept only when the backward needs it and cannot get
the derivative from y (relu, relu6, leaky_relu with a positive slope and
none read it off y), else an empty tensor. Backward: the epilogue's backward
to dL/dz, then the convolution's data/weight/bias gradients."""
import torch
import torch.nn.functional as F

from ..backends import availability, dispatch, register, set_auto_order
from ..composite import conv as composite
from ..reference import conv as reference
from ..testing.selftests import register_selftest
from . import _checks, conv_path
from . import activation as acts
from ._library import call, define_native, op, register_autograd, wants_grad

_ARGS = "int[] stride, int[] padding, int[] dilation, int groups, int activation, float alpha"
_FWD = f"(Tensor x, Tensor weight, Tensor? bias, Tensor? residual, {_ARGS}, bool save_preact) -> (Tensor, Tensor)"
_BWD = f"(Tensor grad_y, Tensor x, Tensor weight, Tensor saved, {_ARGS}, bool[4] output_mask) " \
       "-> (Tensor, Tensor, Tensor, Tensor)"
_Y_DERIVABLE = (acts.code("none"), acts.code("relu"), acts.code("relu6"))
_LEAKY = acts.code("leaky_relu")


def memory_format(x):
    """channels_last only when x is strictly so (a tensor dense in both, e.g. C == 1, counts as NCHW)."""
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _fake_forward(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha, save_preact):
    shape = (x.shape[0], weight.shape[0],
             out_size(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0]),
             out_size(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1]))
    y = x.new_empty(shape).contiguous(memory_format=memory_format(x))
    return y, (torch.empty_like(y) if save_preact else x.new_empty(0))


def _fake_backward(grad_y, x, weight, saved, stride, padding, dilation, groups, activation, alpha, mask):
    def maybe(want, like):
        return torch.empty_like(like) if want else x.new_empty(0)

    gb = x.new_empty(weight.shape[0]) if mask[2] else x.new_empty(0)
    gz = maybe(mask[3] and activation != 0, grad_y.contiguous(memory_format=memory_format(x)))
    return maybe(mask[0], x), maybe(mask[1], weight), gb, gz


define_native("conv2d", _FWD, _fake_forward)
define_native("conv2d_backward", _BWD, _fake_backward)
define_native("conv2d_cudnn", _FWD, _fake_forward)  # the cuda backend's cudnn path (conv_path.py)


def _needs_preact(activation, alpha):
    return not (activation in _Y_DERIVABLE or (activation == _LEAKY and alpha > 0))


def _register_autograd(forward_name, backward_name, backward_fn=None):
    """backward_fn: a composite in place of the op `backward_name` (same arguments and results)."""
    def setup_context(ctx, inputs, output):
        x, weight, bias, residual, stride, padding, dilation, groups, act, alpha, save_preact = inputs
        y, z = output
        saved = z if save_preact else y
        if act != 0 and not save_preact and _needs_preact(act, alpha):
            saved = None  # the caller said no gradient would be needed
        ctx.save_for_backward(x, weight, saved)
        ctx.args = (stride, padding, dilation, groups, act, alpha)
        ctx.has = (bias is not None, residual is not None)

    def backward(ctx, grad_y, _grad_saved):
        if grad_y is None:  # y unused (grads are not materialised: z's would be a zero tensor of y's size)
            return (None,) * 11
        x, weight, saved = ctx.saved_tensors
        stride, padding, dilation, groups, act, alpha = ctx.args
        if saved is None:
            raise RuntimeError("bigkernels.ops.conv2d: the pre-activation was not saved (save_preact=False) "
                               "but a gradient is needed")
        need = ctx.needs_input_grad
        mask = [need[0], need[1], need[2] and ctx.has[0], need[3] and ctx.has[1]]
        gx, gw, gb, gz = (backward_fn or op(backward_name))(grad_y, x, weight, saved, stride, padding, dilation,
                                                            groups, act, alpha, mask)
        gres = (grad_y if act == 0 else gz) if mask[3] else None
        return (gx if mask[0] else None, gw if mask[1] else None, gb if mask[2] else None, gres,
                None, None, None, None, None, None, None)

    register_autograd(forward_name, backward, setup_context=setup_context, materialize_grads=False)

    def double_backward(ctx, *grads):
        raise RuntimeError("bigkernels.ops.conv2d: double backward is not supported; use the torch backend "
                           "(bigkernels.use_backend('torch')) for higher-order gradients")

    if backward_fn is None:
        register_autograd(backward_name, double_backward)


_register_autograd("conv2d", "conv2d_backward")
_register_autograd("conv2d_cudnn", None, conv_path.cudnn_backward(""))
_register_autograd("conv2d_cudnn_sim", None, conv_path.cudnn_backward("_sim"))


def _call(name):
    def run(x, weight, bias, residual, stride, padding, dilation, groups, act, alpha):
        grad = wants_grad(x, weight, bias, residual)
        save = grad and _needs_preact(act, alpha)
        return call(name, x, weight, bias, residual, stride, padding, dilation, groups, act, alpha, save, grad=grad)[0]

    return run


def _cpu_supports(x, *args):
    return None


def _triton_supports(x, *args):
    if x.dtype == torch.float64:
        return "the triton kernel computes in fp32: float64 is served by cpu/torch"
    return None


def _cuda_supports(x, weight, bias, residual, stride, padding, dilation, groups, *args):
    """What the CUDA kernels serve (csrc/cuda/conv/): depthwise (groups == C, one
    input channel per group) in fp32/fp16/bf16; otherwise the implicit-GEMM
    forward, fp16/bf16 tensor cores with 16-byte channel rows per group."""
    if groups == x.shape[1] and weight.shape[1] == 1:
        if x.dtype == torch.float64:
            return "the CUDA depthwise conv serves fp32/fp16/bf16"
        if x.shape[0] > 65535 or weight.shape[0] > 65535 or x.shape[1] * x.shape[2] * x.shape[3] >= 2**31:
            return "the CUDA depthwise conv needs batch and channels <= 65535 and images below 2**31 elements"
        return None
    if groups > 65535:
        return "the CUDA implicit-GEMM conv needs groups <= 65535"
    if x.dtype not in (torch.float16, torch.bfloat16):
        return "the CUDA implicit-GEMM conv serves fp16/bf16 only"
    cg, kg = x.shape[1] // groups, weight.shape[0] // groups
    if cg % 8 or (groups > 1 and kg % 8):
        return "the CUDA implicit-GEMM conv needs C/groups (and K/groups when grouped) to be multiples of 8"
    return None


register("conv2d", "cpu", kernel="bigkernels::conv2d", supports=_cpu_supports)(_call("conv2d"))
_register_autograd("conv2d_sim", "conv2d_backward_sim")
# the fused kernels, or cuDNN + our epilogue where measured faster or where they cannot serve (conv_path.py)
for _backend, _suffix in (("cuda", ""), ("cuda_sim", "_sim")):
    _paths = {"fused": _call("conv2d" + _suffix), "cudnn": _call("conv2d_cudnn" + _suffix)}
    register("conv2d", _backend, kernel=f"bigkernels::conv2d{_suffix}",
             supports=conv_path.supports(_backend, _cuda_supports))(conv_path.routed(_backend, _cuda_supports, _paths))
register("conv2d", "torch")(composite.conv2d)
if availability.triton_installed():
    from ..triton import conv as _triton_conv  # noqa: F401  (defines the _triton ops)

    _register_autograd("conv2d_triton", "conv2d_backward_triton")
    register("conv2d", "triton", supports=_triton_supports)(_call("conv2d_triton"))
register("conv2d", "reference")(reference.conv2d)


def _cpu_auto_order(x, weight, bias, residual, stride, padding, dilation, groups, act, alpha):
    """CPU: see docs/conv.md ("Routing on the CPU") for the measurements. Both
    backends run the same oneDNN convolution (bias inside); ours adds the
    activation and residual as post-ops. With neither there is nothing to
    fuse, and the custom op's Python autograd layer makes `cpu` 1-17 % slower
    than torch's own conv (11 shapes, forward and forward+backward), so torch
    serves those calls (the convolution of Conv2dBNAct in training, before
    bn_act)."""
    return ("cpu", "torch") if act != 0 or residual is not None else ("torch", "cpu")


set_auto_order("conv2d", "cpu", _cpu_auto_order)


# ---------------------------------------------------------------- arguments
def _pair(value, name, minimum):
    # fast path for what modules pass (a pair of valid ints); anything else is checked below
    if type(value) is tuple or type(value) is list:
        if len(value) == 2 and type(value[0]) is int and type(value[1]) is int and min(value) >= minimum:
            return list(value)
    elif type(value) is int and value >= minimum:
        return [value, value]
    if isinstance(value, bool) or not isinstance(value, (int, tuple, list)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {type(value).__name__}")
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return list(pair)


def _padding(padding, weight, stride, dilation):
    """Explicit symmetric padding, plus the extra (bottom, right) padding that
    "same" needs for an even effective kernel (torch pads that side too)."""
    if isinstance(padding, str):
        if padding == "valid":
            return [0, 0], (0, 0)
        if padding != "same":
            raise ValueError(f"padding must be an int, a pair, 'same' or 'valid'; got {padding!r}")
        if stride != [1, 1]:
            raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
        total = [d * (k - 1) for d, k in zip(dilation, weight.shape[2:])]
        return [t // 2 for t in total], tuple(t % 2 for t in total)
    return _pair(padding, "padding", 0), (0, 0)


def _check_shapes(x, weight, bias, groups, padding, stride, dilation):
    if x.dim() != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {list(x.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"weight must be 4-D (C_out, C_in/groups, kH, kW), got shape {list(weight.shape)}")
    if isinstance(groups, bool) or not isinstance(groups, int):
        raise TypeError(f"groups must be an int, got {type(groups).__name__}")
    if groups < 1 or x.shape[1] % groups or weight.shape[0] % groups:
        raise ValueError(f"groups={groups} must divide both x's channels ({x.shape[1]}) and weight's output "
                         f"channels ({weight.shape[0]})")
    if weight.shape[1] * groups != x.shape[1]:
        raise ValueError(f"weight expects {weight.shape[1] * groups} input channels (shape {list(weight.shape)}, "
                         f"groups={groups}) but x has {x.shape[1]}")
    if bias is not None and (bias.dim() != 1 or bias.shape[0] != weight.shape[0]):
        raise ValueError(f"bias must have shape [{weight.shape[0]}], got {list(bias.shape)}")
    for i, axis in enumerate(("height", "width")):
        if out_size(x.shape[2 + i], weight.shape[2 + i], stride[i], padding[i], dilation[i]) < 1:
            raise ValueError(f"weight's kernel {list(weight.shape[2:])} (dilation {dilation}) is larger than x's "
                             f"padded {axis} ({x.shape[2 + i]} + 2*{padding[i]})")


def conv_inputs(x, weight, bias, residual, stride, padding, dilation, groups):
    """conv2d's argument checks and conversions (shared with conv2d_stats):
    (x, weight, bias, residual, stride, padding, dilation, unbatched), the
    tensors in the call's dtype and x's memory format, explicit padding."""
    _checks.tensor(x, "x")
    _checks.tensor(weight, "weight")
    for t, name in ((weight, "weight"), (bias, "bias"), (residual, "residual")):
        if t is not None:
            _checks.tensor(t, name)
            _checks.same_device(x, "x", t, name)
    unbatched = x.dim() == 3
    if unbatched:
        x = x.unsqueeze(0)
        residual = None if residual is None else residual.unsqueeze(0)
    stride = _pair(stride, "stride", 1)
    dilation = _pair(dilation, "dilation", 1)
    padding, extra = _padding(padding, weight, stride, dilation)
    if weight.dim() == 4 and any(extra):
        x = F.pad(x, [0, extra[1], 0, extra[0]])
    _check_shapes(x, weight, bias, groups, padding, stride, dilation)
    shape = [x.shape[0], weight.shape[0]] + [out_size(x.shape[2 + i], weight.shape[2 + i], stride[i], padding[i],
                                                      dilation[i]) for i in range(2)]
    if residual is not None and list(residual.shape) != shape:
        raise ValueError(f"residual must have the output's shape {shape}, got {list(residual.shape)}")
    if torch.is_autocast_enabled(x.device.type):
        dtype = torch.get_autocast_dtype(x.device.type)  # torch's conv runs in the autocast dtype
    else:
        dtype = _checks.common_dtype((x, weight, bias, residual), ("x", "weight", "bias", "residual"))
    fmt = memory_format(x)
    x = _checks.cast(x, dtype).contiguous(memory_format=fmt)
    # oneDNN: ~15% faster than reordering NCHW weights per call
    weight = _checks.cast(weight, dtype).contiguous(memory_format=fmt)
    bias = None if bias is None else _checks.cast(bias, dtype).contiguous()
    residual = None if residual is None else _checks.cast(residual, dtype).contiguous(memory_format=fmt)
    return x, weight, bias, residual, stride, padding, dilation, unbatched


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation="none", residual=None,
           negative_slope=0.01):
    """act(conv2d(x, weight) + bias + residual), fused; torch.nn.functional.conv2d's arguments.

    x: (N, C, H, W) or (C, H, W), contiguous or channels_last (the output keeps
    x's memory format); float16/bfloat16/float32 (float64 on cpu/torch/reference).
    padding: int, pair, "same" or "valid". residual: the output's shape.
    activation: one of ops.activation.ACTIVATIONS. Differentiable in x,
    weight, bias and residual."""
    code = acts.code(activation)
    _checks.real(negative_slope, "negative_slope")
    x, weight, bias, residual, stride, padding, dilation, unbatched = conv_inputs(
        x, weight, bias, residual, stride, padding, dilation, groups)
    y = dispatch("conv2d", x.device.type, x, weight, bias, residual, stride, padding, dilation, groups, code,
                 float(negative_slope))
    return y.squeeze(0) if unbatched else y


# ---------------------------------------------------------------- self-test
# Trust on first use (bigkernels/backends/trust.py): a cuda/triton kernel
# serves a call only once this check passed for the call's kind. The kinds
# are the CUDA kernels' code paths; the activation is a runtime switch inside
# them (its formulas are bias_act's, checked there), so the check uses silu,
# which also exercises the saved pre-activation. `path` is the cuda backend's
# path (conv_path.py): the fused kernels, or cuDNN + our epilogue kernel; each
# is trusted on its own before it serves or is measured.
_SELFTEST_GEOMETRY = {  # x shape, weight shape, stride, padding, dilation, groups
    "gemm": ((2, 16, 7, 6), (24, 16, 3, 3), 2, 1, 1, 1),     # implicit GEMM forward and backward
    "gemm_fwd": ((2, 16, 7, 6), (10, 16, 3, 3), 1, 1, 1, 1),  # K % 8 != 0: GEMM forward, torch backward
    "depthwise": ((2, 6, 9, 7), (6, 1, 5, 5), 1, 2, 1, 6),
    "other": ((2, 6, 7, 6), (8, 3, 3, 3), 1, 1, 1, 2),
}


def _selftest_kind(x, weight, groups):
    cg, kg = x.shape[1] // groups, weight.shape[0] // groups
    if groups == x.shape[1] and weight.shape[1] == 1:
        return "depthwise"
    if cg % 8 == 0:
        return "gemm" if kg % 8 == 0 else "gemm_fwd"
    return "other"


def _selftest_inputs(seed, kind, bias, residual, path="fused"):
    xs, ws, stride, padding, dilation, groups = _SELFTEST_GEOMETRY[kind]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(xs, generator=gen, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    w = torch.randn(ws, generator=gen, dtype=torch.float64) / (ws[1] * ws[2] * ws[3]) ** 0.5
    b = torch.randn(ws[0], generator=gen, dtype=torch.float64) if bias else None
    shape = [xs[0], ws[0]] + [out_size(xs[2 + i], ws[2 + i], stride, padding, dilation) for i in range(2)]
    r = torch.randn(shape, generator=gen, dtype=torch.float64) if residual else None
    return (x, w, b, stride, padding, dilation, groups), {"activation": "silu", "residual": r, "path": path}


def _selftest_conv2d(*args, path, **kwargs):
    with conv_path.use_conv_path(path):  # ignored by the other backends
        return conv2d(*args, **kwargs)


register_selftest(
    "conv2d", _selftest_conv2d, inputs=_selftest_inputs, dtypes=(torch.float32, torch.float16, torch.bfloat16),
    cases=[dict(kind="gemm", bias=True, residual=True, path="fused"),
           dict(kind="depthwise", bias=True, residual=False, path="fused"),
           dict(kind="gemm_fwd", bias=False, residual=False, path="fused"),
           dict(kind="gemm", bias=True, residual=True, path="cudnn"),
           dict(kind="other", bias=False, residual=True, path="cudnn")],
    # the case matching a routed call (x, weight, bias, residual, stride, padding, dilation, groups, act, alpha)
    features=lambda x, w, b, r, stride, padding, dilation, groups, *_: dict(
        kind=_selftest_kind(x, w, groups), bias=b is not None, residual=r is not None,
        path=conv_path.first_path(_cuda_supports, (x, w, b, r, stride, padding, dilation, groups))))
