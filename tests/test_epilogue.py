"""bias_act: act(x + bias + residual) on every kernel backend, against the
float64 reference with the tolerance rule, forward and backward."""
import pytest
import torch

import bigkernels
from bigkernels.ops import bias_act
from bigkernels.ops._library import op
from bigkernels.ops.activation import ACTIVATIONS
from bigkernels.testing.tolerance import assert_close
from tests.backends import device_for, ensure_backend, kernel_backends

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
# (shape, channel_dim, memory format): NCHW, channels_last with odd sizes,
# (N, C) as after a linear layer, a sequence (B, T, C), and 1-D.
LAYOUTS = [
    ((2, 5, 7, 3), 1, torch.contiguous_format),
    ((3, 6, 5, 9), 1, torch.channels_last),
    ((13, 37), 1, torch.contiguous_format),
    ((2, 11, 19), -1, torch.contiguous_format),
    ((1000,), 0, torch.contiguous_format),
]


def _inputs(shape, channel_dim, fmt, dtype, device, *, bias=True, residual=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    c = shape[channel_dim]
    b = torch.randn(c, generator=gen, dtype=torch.float64) if bias else None
    r = torch.randn(shape, generator=gen, dtype=torch.float64) if residual else None
    if fmt is torch.channels_last:
        x = x.contiguous(memory_format=fmt)
        r = r.contiguous(memory_format=fmt) if r is not None else None

    def cast(t):
        return None if t is None else t.to(device=device, dtype=dtype).requires_grad_()

    return x, b, r, cast(x), cast(b), cast(r)


def _run(backend, x, b, r, act, **kw):
    with bigkernels.use_backend(backend):
        return bias_act(x, b, r, act, **kw)


def _check(backend, act, dtype, layout, bias=True, residual=True):
    if backend == "triton" and dtype == torch.float64:
        pytest.skip("the triton kernel computes in fp32; float64 is served by cpu/cuda/torch")
    ensure_backend(backend)
    shape, cdim, fmt = layout
    device = device_for(backend)
    x64, b64, r64, x, b, r = _inputs(shape, cdim, fmt, dtype, device, bias=bias, residual=residual)
    kw = dict(channel_dim=cdim, negative_slope=0.1)
    ours = _run(backend, x, b, r, act, **kw)
    assert ours.dtype == dtype and ours.shape == x.shape
    if fmt is torch.channels_last:
        assert ours.is_contiguous(memory_format=torch.channels_last)
    leaves64 = [t.requires_grad_() for t in (x64, b64, r64) if t is not None]
    ref = _run("reference", x64, b64, r64, act, **kw)
    xt, bt, rt = (None if t is None else t.detach().clone().requires_grad_() for t in (x, b, r))
    theirs = _run("torch", xt, bt, rt, act, **kw)
    assert_close(ours, ref, theirs, name=f"{act} forward")

    grad64 = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    leaves = [t for t in (x, b, r) if t is not None]
    leaves_t = [t for t in (xt, bt, rt) if t is not None]
    g_ours = torch.autograd.grad(ours, leaves, grad64.to(device=device, dtype=dtype))
    g_ref = torch.autograd.grad(ref, leaves64, grad64)
    g_theirs = torch.autograd.grad(theirs, leaves_t, grad64.to(device=device, dtype=dtype))
    for name, go, gr, gt in zip(["x", "bias", "residual"], g_ours, g_ref, g_theirs):
        # bias grads are sums over N*H*W elements: scale the floor with them.
        scale = max(1.0, gr.abs().max().item())
        assert_close(go, gr, gt, name=f"{act} grad {name}", scale=scale)


@pytest.mark.parametrize("backend", kernel_backends())
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_activation_and_dtype(backend, act, dtype):
    _check(backend, act, dtype, LAYOUTS[0])


@pytest.mark.parametrize("backend", kernel_backends())
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda l: f"{l[0]}-dim{l[1]}")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_layouts(backend, layout, dtype):
    _check(backend, "silu", dtype, layout)


@pytest.mark.parametrize("backend", kernel_backends())
@pytest.mark.parametrize("bias,residual", [(False, False), (True, False), (False, True)])
def test_optional_inputs(backend, bias, residual):
    _check(backend, "gelu", torch.float16, LAYOUTS[1], bias=bias, residual=residual)


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "gelu", "gelu_tanh", "hardswish", "silu"])
def test_gradcheck_float64(backend, act):
    ensure_backend(backend)
    x, b, r, *_ = _inputs((2, 3, 4, 5), 1, torch.contiguous_format, torch.float64, "cpu")
    # keep away from the kinks, where finite differences are not the derivative
    x = torch.where((x.abs() < 0.05) | ((x - 3).abs() < 0.05) | ((x + 3).abs() < 0.05), x + 0.2, x)

    def f(x, b, r):
        with bigkernels.use_backend(backend):
            return bias_act(x, b, r, act, negative_slope=0.2)

    torch.autograd.gradcheck(f, [t.requires_grad_() for t in (x, b * 0, r * 0)])


def _opcheck_args(dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=gen, dtype=dtype, requires_grad=True)
    b = torch.randn(3, generator=gen, dtype=dtype, requires_grad=True)
    r = torch.randn(2, 3, 4, 5, generator=gen, dtype=dtype, requires_grad=True)
    return x, b, r


@pytest.mark.parametrize("variant", [
    pytest.param("", id="native"),
    pytest.param("_triton", id="triton", marks=pytest.mark.triton),
])
@pytest.mark.parametrize("with_optional", [True, False])
def test_opcheck(variant, with_optional):
    ensure_backend("triton" if variant == "_triton" else "cpu")
    x, b, r = _opcheck_args()
    if not with_optional:
        b = r = None
    torch.library.opcheck(op("bias_act" + variant), (x, b, r, 4, 0.01, 1))
    g = torch.randn_like(x)
    detached = [None if t is None else t.detach() for t in (x, b, r)]
    torch.library.opcheck(op("bias_act_backward" + variant), (g, *detached, 4, 0.01, 1))


def test_double_backward_raises_clearly():
    x, b, r = _opcheck_args()
    y = bias_act(x, b, r, "gelu")
    (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward is not supported"):
        gx.sum().backward()


@pytest.mark.parametrize("backend", ["cpu", pytest.param("triton", marks=pytest.mark.triton), "torch"])
def test_compiles_without_graph_breaks(backend):
    ensure_backend(backend)
    x, b, r = _opcheck_args()
    with bigkernels.use_backend(backend):
        f = torch.compile(lambda x, b, r: bias_act(x, b, r, "gelu"), backend="aot_eager", fullgraph=True)
        y = f(x, b, r)
        y.sum().backward()
    expected = torch.nn.functional.gelu(x + b.view(1, 3, 1, 1) + r)
    torch.testing.assert_close(y, expected)


def test_autocast_promotes_mixed_dtypes():
    x, b, r = (t.detach() for t in _opcheck_args())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = bias_act(x.bfloat16(), b, r.bfloat16(), "relu")
    assert y.dtype == torch.float32


def test_empty_and_scalar_inputs():
    assert bias_act(torch.empty(0, 4), torch.zeros(4), activation="relu").shape == (0, 4)
    assert bias_act(torch.tensor(-1.0), activation="relu").item() == 0.0


@pytest.mark.parametrize("backend", kernel_backends())
def test_derivatives_at_the_kinks_follow_torch(backend):
    """Exactly at the kinks (relu at 0, relu6 at 0 and 6, hardswish at -3 and 3), where the float64
    reference of random inputs never lands but bf16 values often do: torch's one-sided choices."""
    ensure_backend(backend)
    z = torch.tensor([-3.0, 0.0, 3.0, 6.0, -3.5, 2.5], dtype=torch.float32, device=device_for(backend))
    for act in ("relu", "relu6", "hardswish", "leaky_relu"):
        x = z.clone().requires_grad_()
        with bigkernels.use_backend(backend):
            bias_act(x, activation=act).sum().backward()
        want = z.clone().requires_grad_()
        _ACT_FNS[act](want).sum().backward()
        torch.testing.assert_close(x.grad, want.grad, rtol=0, atol=1e-6, msg=act)


_ACT_FNS = {"relu": torch.relu, "relu6": torch.nn.functional.relu6, "hardswish": torch.nn.functional.hardswish,
            "leaky_relu": torch.nn.functional.leaky_relu}
