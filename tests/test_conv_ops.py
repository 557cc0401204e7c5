"""conv2d as a custom op: gradcheck in float64, opcheck on every variant,
torch.compile without graph breaks, autocast."""
import pytest
import torch

import bigkernels
from bigkernels.ops import conv2d
from bigkernels.ops._library import op
from tests.backends import ensure_backend


def _args(dtype=torch.float32, fmt=torch.contiguous_format, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 6, 5, generator=gen, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(6, 2, 3, 3, generator=gen, dtype=dtype, requires_grad=True)
    b = torch.randn(6, generator=gen, dtype=dtype, requires_grad=True)
    r = torch.randn(2, 6, 3, 5, generator=gen, dtype=dtype).contiguous(memory_format=fmt).requires_grad_()
    return x, w, b, r


CONV = ([2, 1], [1, 1], [1, 1], 2)  # stride, padding, dilation, groups


@pytest.mark.parametrize("backend,act", [("cpu", "relu"), ("cpu", "leaky_relu"), ("cpu", "gelu"), ("cpu", "silu"),
                                         ("cpu", "none"), ("torch", "silu")])
def test_gradcheck_float64(backend, act):
    ensure_backend(backend)
    x, w, b, r = _args(torch.float64)
    # keep the pre-activation away from relu's kink, where finite differences are not the derivative
    with torch.no_grad():
        z = torch.nn.functional.conv2d(x, w, b, *CONV) + r
        r += torch.where(z.abs() < 0.05, 0.2, 0.0)

    def f(x, w, b, r):
        with bigkernels.use_backend(backend):
            return conv2d(x, w, b, *CONV, activation=act, residual=r, negative_slope=0.2)

    # fast mode: checks random projections of the Jacobian (seconds, not a minute on 2 cores)
    torch.autograd.gradcheck(f, (x, w, b, r), fast_mode=True)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last], ids=["nchw", "cl"])
@pytest.mark.parametrize("act,save", [(0, False), (4, True), (1, False)])
@pytest.mark.parametrize("with_optional", [True, False])
def test_opcheck(fmt, act, save, with_optional):
    ensure_backend("cpu")
    x, w, b, r = _args(fmt=fmt)
    if not with_optional:
        b = r = None
    torch.library.opcheck(op("conv2d"), (x, w, b, r, *CONV, act, 0.01, save))
    y, z = op("conv2d")(x.detach(), w.detach(), b, r, *CONV, act, 0.01, save)
    saved = z if save else y
    for mask in ([True, True, True, True], [True, False, False, False], [False, True, with_optional, False]):
        torch.library.opcheck(op("conv2d_backward"), (torch.randn_like(y), x.detach(), w.detach(), saved.detach(),
                                                      *CONV, act, 0.01, mask))


def test_double_backward_raises_clearly():
    x, w, b, r = _args()
    y = conv2d(x, w, b, *CONV, activation="gelu", residual=r)
    (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward is not supported"):
        gx.sum().backward()


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_compiles_without_graph_breaks(backend):
    ensure_backend(backend)
    x, w, b, r = _args(fmt=torch.channels_last)
    fn = lambda x, w, b, r: conv2d(x, w, b, *CONV, activation="silu", residual=r)  # noqa: E731
    with bigkernels.use_backend(backend):
        y = torch.compile(fn, backend="aot_eager", fullgraph=True)(x, w, b, r)
        y.sum().backward()
    expected = torch.nn.functional.silu(torch.nn.functional.conv2d(x, w, b, *CONV) + r)
    torch.testing.assert_close(y, expected)
    grads = torch.autograd.grad(expected.sum(), (x, w, b, r))
    for got, want in zip((x.grad, w.grad, b.grad, r.grad), grads):
        torch.testing.assert_close(got, want)


def test_autocast_runs_in_the_autocast_dtype_like_torch():
    x, w, b, r = (t.detach() for t in _args())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv2d(x, w, b, *CONV, activation="relu")
        expected = torch.nn.functional.conv2d(x, w, b, *CONV)
    assert y.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(y, torch.relu(expected))


def test_cpu_auto_routes_a_conv_with_nothing_to_fuse_to_torch():
    """The CPU routing rule (docs/conv.md, "Routing on the CPU"): no activation
    and no residual -> torch's conv first; anything to fuse -> our kernel first."""
    ensure_backend("cpu")
    from bigkernels.backends import select

    x, w, b, r = (t.detach() for t in _args())

    def chosen(act, residual, bias=None):
        return select("conv2d", "cpu", (x, w, bias, residual, *CONV, act, 0.01), {}).backend

    assert chosen(0, None) == "torch"
    assert chosen(0, None, b) == "torch"  # oneDNN takes the bias inside the conv on both backends
    assert chosen(1, None) == "cpu"
    assert chosen(0, r) == "cpu"
    with bigkernels.use_backend("cpu"):  # forcing still reaches our kernel
        assert chosen(0, None) == "cpu"


def test_backward_fills_no_zero_gradient_for_the_saved_preactivation():
    """conv2d's second output (the pre-activation kept for the backward) is
    internal: autograd must not build a zero gradient of the output's size."""
    from tests.backends import ZeroFills

    x = torch.randn(2, 4, 9, 9, requires_grad=True)
    w = torch.randn(6, 4, 3, 3, requires_grad=True)
    with bigkernels.use_backend("cpu"):
        y = conv2d(x, w, None, 1, 1, activation="silu")
    with ZeroFills() as fills:
        y.sum().backward()
    assert fills.calls == []
    assert x.grad is not None and w.grad is not None
