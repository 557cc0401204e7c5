"""max_pool2d: the cpu kernel equals torch's F.max_pool2d bit for bit (values,
NaNs, signed zeros, and the element each gradient goes to on ties) on every
window shape; the op's registration (opcheck, gradcheck, compile), routing,
bad input, and the nn.MaxPool2d drop-in and its swap."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bigkernels
from bigkernels import nn as bnn
from bigkernels.ops import max_pool2d
from bigkernels.ops._library import op

# (kernel_size, stride, padding, dilation, ceil_mode): the 2 x 2 fast path, the
# ResNet stem, overlapping and dilated windows, ceil mode's partial windows
WINDOWS = [
    (2, 2, 0, 1, False),
    (2, 2, 0, 1, True),
    (3, 2, 1, 1, False),
    (3, 2, 1, 1, True),
    (3, 1, 1, 1, False),
    ((2, 3), (1, 2), (1, 1), (2, 1), False),
    (2, 3, 1, 2, True),
    (5, 2, 2, 1, True),
    (1, 1, 0, 1, False),
]
SHAPES = [(2, 3, 9, 11), (1, 2, 8, 8), (4, 7, 5), (3, 1, 2, 13)]


def _tricky(shape, dtype, seed=0):
    """Small integers (ties everywhere), a NaN, -inf and a negative zero."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(-3, 3, shape, generator=gen).to(dtype)
    flat = x.view(-1)
    flat[1], flat[5], flat[-2] = float("nan"), float("-inf"), -0.0
    return x


def _same_bits(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert torch.equal(torch.isnan(a), torch.isnan(b))
    assert torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0))
    real = ~torch.isnan(a)
    assert torch.equal(torch.signbit(a[real]), torch.signbit(b[real]))


def _pool(backend, x, window):
    with bigkernels.use_backend(backend):
        return max_pool2d(x, *window)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_cpu_kernel_equals_torch_forward_and_backward(dtype, window, shape):
    if shape[-1] < 3 and window[0] == 5:
        pytest.skip("the window does not fit the plane (the bad-input test covers it)")
    x = _tricky(shape, dtype).requires_grad_()
    y = _pool("cpu", x, window)
    want = F.max_pool2d(x, *window)
    _same_bits(y, want)
    g = torch.randn(want.shape, dtype=dtype)
    (got_grad,) = torch.autograd.grad(y, x, g)
    (want_grad,) = torch.autograd.grad(want, x, g)
    assert torch.equal(got_grad, want_grad)  # the same element per output, the same summation order


@pytest.mark.parametrize("backend", ["torch", "reference"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_other_backends_equal_torch(backend, dtype):
    x = _tricky((2, 3, 9, 11), dtype)
    _same_bits(_pool(backend, x, (3, 2, 1, 1, True)), F.max_pool2d(x, 3, 2, 1, 1, True))


def test_without_grad_no_index_is_kept():
    x = torch.randn(2, 3, 8, 8)
    y, index = op("max_pool2d")(x, [2, 2], [2, 2], [0, 0], [1, 1], False, False)
    assert index.numel() == 0
    _same_bits(y, F.max_pool2d(x, 2))


def test_auto_routes_nchw_to_cpu_and_channels_last_to_torch():
    from bigkernels.backends import router

    nchw = torch.randn(2, 4, 8, 8)
    cl = nchw.contiguous(memory_format=torch.channels_last)
    two = ([2, 2], [2, 2], [0, 0], [1, 1], False)
    stem = ([3, 3], [2, 2], [1, 1], [1, 1], False)
    assert router.auto_order("max_pool2d", "cpu", (nchw, *stem), {})[0] == "cpu"
    assert router.auto_order("max_pool2d", "cpu", (cl, *two), {})[0] == "torch"
    assert router.auto_order("max_pool2d", "cpu", (nchw.half(), *two), {})[0] == "cpu"
    assert router.auto_order("max_pool2d", "cpu", (nchw.bfloat16(), *stem), {})[0] == "torch"


def test_forced_cpu_serves_channels_last_in_its_layout():
    x = torch.randn(2, 4, 9, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = _pool("cpu", x, (2, 2, 0, 1, False))
    want = F.max_pool2d(x, 2)
    assert y.is_contiguous(memory_format=torch.channels_last)
    _same_bits(y, want)
    g = torch.randn(want.shape)
    assert torch.equal(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(want, x, g)[0])


def test_non_contiguous_input():
    x = torch.randn(2, 9, 11, 3).permute(0, 3, 1, 2)
    _same_bits(max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, 1))


def test_empty_batch():
    x = torch.randn(0, 3, 8, 8, requires_grad=True)
    y = max_pool2d(x, 2)
    assert y.shape == (0, 3, 4, 4)
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("window", [(2, 2, 0, 1, False), (3, 2, 1, 1, True), ((2, 3), (1, 2), (1, 1), (2, 1), False)])
def test_gradcheck_and_gradgradcheck_float64(window):
    x = torch.randn(2, 3, 7, 9, dtype=torch.float64, requires_grad=True)  # distinct values: a smooth max
    fn = lambda x: _pool("cpu", x, window)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,))
    assert torch.autograd.gradgradcheck(fn, (x,))


@pytest.mark.parametrize("save", [True, False])
def test_opcheck(save):
    x = torch.randn(2, 3, 9, 11, requires_grad=save)
    torch.library.opcheck(op("max_pool2d"), (x, [3, 3], [2, 2], [1, 1], [1, 1], True, save))
    _, index = op("max_pool2d")(x.detach(), [3, 3], [2, 2], [1, 1], [1, 1], True, True)
    grad_y = torch.randn(index.shape, requires_grad=True)
    torch.library.opcheck(op("max_pool2d_backward"), (grad_y, index, [2, 3, 9, 11]))


def test_compiles_without_graph_breaks():
    x = torch.randn(2, 3, 8, 10, requires_grad=True)
    y = torch.compile(lambda x: max_pool2d(x, 3, 2, 1) * 2, backend="aot_eager", fullgraph=True)(x)
    y.sum().backward()
    want = F.max_pool2d(x, 3, 2, 1) * 2
    _same_bits(y, want)
    assert torch.equal(x.grad, torch.autograd.grad(want.sum(), x)[0])


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(kernel_size=0), ValueError, "kernel_size"),
    (dict(kernel_size=2.0), TypeError, "kernel_size"),
    (dict(kernel_size=(2, 2, 2)), TypeError, "kernel_size"),
    (dict(kernel_size=2, stride=0), ValueError, "stride"),
    (dict(kernel_size=2, padding=-1), ValueError, "padding"),
    (dict(kernel_size=2, padding=2), ValueError, "at most half"),
    (dict(kernel_size=2, dilation=0), ValueError, "dilation"),
    (dict(kernel_size=2, ceil_mode=1), TypeError, "ceil_mode"),
    (dict(kernel_size=9), ValueError, "too small"),
])
def test_bad_arguments_name_themselves(kwargs, error, match):
    with pytest.raises(error, match=match):
        max_pool2d(torch.randn(1, 2, 8, 8), **kwargs)


@pytest.mark.parametrize("x, error", [(torch.randn(8, 8), ValueError), (torch.randn(1, 0, 4, 4), ValueError),
                                      ([[1.0]], TypeError), (torch.ones(1, 2, 4, 4, dtype=torch.int64), TypeError)])
def test_bad_input(x, error):
    with pytest.raises(error, match="x"):
        max_pool2d(x, 2)


def test_module_is_a_drop_in():
    theirs = nn.MaxPool2d(3, 2, 1, ceil_mode=True)
    ours = bnn.MaxPool2d(3, 2, 1, ceil_mode=True)
    assert isinstance(ours, nn.MaxPool2d) and repr(ours) == repr(theirs)
    x = _tricky((2, 3, 9, 11), torch.float32)
    _same_bits(ours(x), theirs(x))
    with_indices = bnn.MaxPool2d(2, return_indices=True)
    y, index = with_indices(x)
    want_y, want_index = nn.MaxPool2d(2, return_indices=True)(x)
    _same_bits(y, want_y)
    assert torch.equal(index, want_index)


def test_swap_converts_max_pools_and_keeps_return_indices_with_torch():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2), nn.MaxPool2d(2, return_indices=True))
    report = bigkernels.swap(model, linear=False)
    assert type(model[1]) is bnn.MaxPool2d
    assert type(model[2]) is nn.MaxPool2d
    assert any(row[0] == "1" for row in report.swapped)
    assert any(row[0] == "2" and "return_indices" in row[2] for row in report.skipped)
    bigkernels.unswap(model)
    assert type(model[1]) is nn.MaxPool2d
