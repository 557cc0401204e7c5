"""2-D max pooling, F.max_pool2d's arguments and results.

Not one of the three kernel families: torch's NCHW max-pool on the CPU walks
each window element by element and runs 10-20x slower than its own
channels_last kernel (docs/conv.md, "Max pooling"), so a conv net's pooling
layers cost as much as its convolutions. `cpu` is our C++ kernel
(csrc/cpu/pool, any float dtype), equal to torch's bit for bit (values, NaNs,
and the element each output's gradient goes to); `torch` is F.max_pool2d,
which `auto` keeps for channels_last input (torch's fast kernel) and on
every GPU."""
import torch
import torch.nn.functional as F

from ..backends import dispatch, register, set_auto_order
from ..testing.selftests import register_selftest
from . import _checks
from ._library import call, define_cpu_native, op, register_autograd, wants_grad
from .conv import _pair as _conv_pair

_FWD = ("(Tensor x, int[2] kernel_size, int[2] stride, int[2] padding, int[2] dilation, bool ceil_mode, "
        "bool save_index) -> (Tensor, Tensor)")
_BWD = "(Tensor grad_y, Tensor index, int[] input_size) -> Tensor"


def pooled_size(size, kernel, stride, padding, dilation, ceil_mode):
    """torch's pooling output size (pooling_output_shape)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _out_shape(shape, kernel_size, stride, padding, dilation, ceil_mode):
    return [*shape[:-2], *(pooled_size(shape[-2 + i], kernel_size[i], stride[i], padding[i], dilation[i], ceil_mode)
                           for i in range(2))]


def _fake_forward(x, kernel_size, stride, padding, dilation, ceil_mode, save_index):
    shape = _out_shape(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return x.new_empty(shape), x.new_empty(shape if save_index else [0], dtype=torch.int32)


def _fake_backward(grad_y, index, input_size):
    return grad_y.new_empty(input_size)


define_cpu_native("max_pool2d", _FWD, _fake_forward)
define_cpu_native("max_pool2d_backward", _BWD, _fake_backward)


def _setup_context(ctx, inputs, output):
    x = inputs[0]
    ctx.save_for_backward(output[1])
    ctx.input_size = list(x.shape)


def _backward(ctx, grad_y, _grad_index):
    (index,) = ctx.saved_tensors
    if index.numel() != grad_y.numel():
        raise RuntimeError("bigkernels.ops.max_pool2d: this call was recorded without its index (save_index=False); "
                           "call it with a gradient-requiring input")
    return op("max_pool2d_backward")(grad_y.contiguous(), index, ctx.input_size), None, None, None, None, None, None


def _setup_double(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])
    ctx.input_size = list(inputs[2])


def _double_backward(ctx, grad_grad_x):
    """The backward is a scatter of grad_y to the indices: its own gradient
    in grad_y is the gather of grad_grad_x at them (torch ops, so
    differentiable again)."""
    (index,) = ctx.saved_tensors
    planes = grad_grad_x.reshape(-1, ctx.input_size[-2] * ctx.input_size[-1])
    flat = index.reshape(planes.shape[0], -1).long()
    picked = planes.gather(1, flat.clamp_min(0)).masked_fill(flat < 0, 0)
    return picked.reshape(index.shape), None, None


register_autograd("max_pool2d", _backward, setup_context=_setup_context)
register_autograd("max_pool2d_backward", _double_backward, setup_context=_setup_double)


def _cpu(x, kernel_size, stride, padding, dilation, ceil_mode):
    # channels_last (only when forced: `auto` gives it to torch's fast kernel) runs on an NCHW copy and
    # returns torch's layout for it
    channels_last = not x.is_contiguous()
    grad = wants_grad(x)
    y = call("max_pool2d", x.contiguous(), kernel_size, stride, padding, dilation, ceil_mode, grad, grad=grad)[0]
    return y.contiguous(memory_format=torch.channels_last) if channels_last else y


def _cpu_supports(x, *args):
    if x.shape[-1] * x.shape[-2] >= 2 ** 31:
        return "the cpu kernel indexes planes of fewer than 2^31 elements"
    return None


def _torch(x, kernel_size, stride, padding, dilation, ceil_mode):
    return F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)


def _reference(x, kernel_size, stride, padding, dilation, ceil_mode):
    return F.max_pool2d(x.double(), kernel_size, stride, padding, dilation, ceil_mode).to(x.dtype)


register("max_pool2d", "cpu", supports=_cpu_supports, kernel="bigkernels::max_pool2d")(_cpu)
register("max_pool2d", "torch")(_torch)
register("max_pool2d", "reference")(_reference)


def _cpu_order(x, kernel_size, stride, padding, dilation, ceil_mode):
    """Ours on the layout where torch is slow (NCHW); torch's channels_last
    kernel is fast, so it goes first there. float16/bfloat16 (compared as
    float one element at a time) measured ahead of torch's NCHW kernel only in
    the 2 x 2 / 2 loop (2-4x); on the general loop 0.7-1.2x (docs/conv.md)."""
    if not x.is_contiguous() or _cpu_supports(x) is not None:
        return ("torch", "cpu")
    if x.dtype in (torch.float16, torch.bfloat16) and not (kernel_size == [2, 2] and stride == [2, 2]
                                                           and padding == [0, 0] and dilation == [1, 1]):
        return ("torch", "cpu")
    return ("cpu", "torch")


set_auto_order("max_pool2d", "cpu", _cpu_order)


def _pair(value, name, *, minimum):
    """conv2d's int-or-pair check, plus the one-element tuple torch's pooling also takes."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = (value[0], value[0])
    return _conv_pair(value, name, minimum)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode)
    (without return_indices). x: [N, C, H, W] or [C, H, W], any float dtype;
    differentiable (and twice)."""
    _checks.tensor(x, "x")
    if x.dim() not in (3, 4) or any(s == 0 for s in x.shape[-3:]):
        raise ValueError(f"x must be [N, C, H, W] or [C, H, W] with non-zero C, H and W, got {list(x.shape)}")
    kernel_size = _pair(kernel_size, "kernel_size", minimum=1)
    stride = kernel_size if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _pair(stride, "stride", minimum=1)
    padding = _pair(padding, "padding", minimum=0)
    dilation = _pair(dilation, "dilation", minimum=1)
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode must be a bool, got {type(ceil_mode).__name__}")
    for k, p, d in zip(kernel_size, padding, dilation):
        if p > ((k - 1) * d + 1) // 2:
            raise ValueError(f"padding must be at most half of the effective kernel size, got padding={padding}, "
                             f"kernel_size={kernel_size}, dilation={dilation}")
    out = _out_shape(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    if out[-1] < 1 or out[-2] < 1:
        raise ValueError(f"x's {x.shape[-2]} x {x.shape[-1]} planes are too small for kernel_size={kernel_size}, "
                         f"stride={stride}, padding={padding}, dilation={dilation} (output {out[-2]} x {out[-1]})")
    if not x.is_contiguous() and not (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)):
        x = x.contiguous()
    return dispatch("max_pool2d", x.device.type, x, kernel_size, stride, padding, dilation, ceil_mode)


def _features(x, kernel_size, stride, padding, dilation, ceil_mode, *_):
    return dict(kernel_size=tuple(kernel_size), stride=tuple(stride), padding=tuple(padding),
                dilation=tuple(dilation), ceil_mode=ceil_mode)


def _selftest_inputs(seed, kernel_size, stride, padding, dilation, ceil_mode):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 9, 11, generator=gen, dtype=torch.float64)
    return (x, kernel_size, stride, padding, dilation, ceil_mode), {}


register_selftest(
    "max_pool2d", max_pool2d, inputs=_selftest_inputs,
    dtypes=(torch.float32, torch.float16, torch.bfloat16, torch.float64),
    cases=[dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0), dilation=(1, 1), ceil_mode=False),
           dict(kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), dilation=(1, 1), ceil_mode=True),
           dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), dilation=(2, 1), ceil_mode=False)],
    # the case matching a routed call (x, kernel_size, stride, padding, dilation, ceil_mode), as lists
    features=_features)
