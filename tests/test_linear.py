"""linear: act(x W^T + b) on the oneDNN path and the plain composition, against
the float64 reference with the tolerance rule, forward and backward; the op's
registration (opcheck, compile), bad input, and the nn.Linear drop-in."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bigkernels
from bigkernels import nn as bnn
from bigkernels.backends.router import BackendError
from bigkernels.composite import linear as composite
from bigkernels.ops import linear
from bigkernels.ops._library import op
from bigkernels.ops import activation as acts
from bigkernels.ops.activation import ACTIVATIONS, apply
from bigkernels.testing.tolerance import assert_close

DTYPES = [torch.float32, torch.bfloat16, torch.float16, torch.float64]
# (x shape, out_features): a 1-D vector, a matrix and a sequence, odd sizes throughout
SHAPES = [((37,), 29), ((13, 37), 29), ((3, 7, 45), 19)]


@pytest.fixture(autouse=True)
def onednn_for_every_size(monkeypatch):
    """The test shapes are small: below the size rule they would all take MKL's F.linear."""
    monkeypatch.setattr(composite, "ONEDNN_MIN_MACS", 0)
    monkeypatch.setattr(composite, "ONEDNN_MIN_MACS_FUSED", 0)
    monkeypatch.setattr(composite, "ONEDNN_MIN_K", 1)


def test_small_gemms_take_f_linear_and_large_ones_onednn(monkeypatch):
    monkeypatch.setattr(composite, "ONEDNN_MIN_MACS", 1 << 24)
    monkeypatch.setattr(composite, "ONEDNN_MIN_MACS_FUSED", 1 << 22)
    monkeypatch.setattr(composite, "ONEDNN_MIN_K", 32)
    w = torch.randn(512, 256)
    assert "small" in composite.onednn_unsupported(torch.randn(64, 256), w)  # 8M multiply-adds
    assert composite.onednn_unsupported(torch.randn(64, 256), w, fused=True) is None  # with a post-op
    assert "small" in composite.onednn_unsupported(torch.randn(16, 256), w, fused=True)  # 2M
    assert "small" in composite.onednn_unsupported(torch.randn(1 << 16, 16), torch.randn(512, 16))  # K < 32
    assert composite.onednn_unsupported(torch.randn(2, 64, 256), w) is None  # 16M
    assert composite.fuses_activation(acts.code("gelu"), grad=False)
    assert not composite.fuses_activation(acts.code("gelu"), grad=True)
    assert not composite.fuses_activation(acts.code("leaky_relu"), grad=False)  # no oneDNN post-op
    assert not composite.fuses_activation(acts.code("none"), grad=False)
    x = torch.randn(8, 256)
    with torch.no_grad():
        assert torch.equal(linear(x, w), F.linear(x, w))  # MKL's very call


def _inputs(shape, out_features, dtype, bias=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2
    w = torch.randn(out_features, shape[-1], generator=gen, dtype=torch.float64) / shape[-1] ** 0.5
    b = torch.randn(out_features, generator=gen, dtype=torch.float64) if bias else None
    g = torch.randn(*shape[:-1], out_features, generator=gen, dtype=torch.float64)

    def leaf(t, dt):
        return None if t is None else t.to(dt, copy=True).requires_grad_()

    return [leaf(t, torch.float64) for t in (x, w, b)], [leaf(t, dtype) for t in (x, w, b)], g


def _forward_backward(fn, args, g):
    y = fn(*args)
    tensors = [t for t in args if t is not None]
    return [y] + list(torch.autograd.grad(y, tensors, g.to(y.dtype)))


def _ours(backend, *args, **kwargs):
    with bigkernels.use_backend(backend):
        return linear(*args, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_matches_float64_reference_forward_and_backward(backend, activation, dtype):
    for i, (shape, out_features) in enumerate(SHAPES):
        bias = i != 1
        ref_args, args, g = _inputs(shape, out_features, dtype, bias=bias)
        ours = _forward_backward(lambda x, w, b: _ours(backend, x, w, b, activation, negative_slope=0.1), args, g)
        torch_same = _forward_backward(lambda x, w, b: apply(F.linear(x, w, b), activation, 0.1), args, g)
        ref = _forward_backward(lambda x, w, b: apply(F.linear(x, w, b), activation, 0.1), ref_args, g)
        for name, o, r, t in zip(("y", "dx", "dw", "db"), ours, ref, torch_same):
            assert o.dtype == dtype
            # gradients sum over up to 21 rows (dw, db) or 45 columns (dx): a wider floor than O(1) values
            assert_close(o, r, t, name=f"{activation} {list(shape)} {name}", scale=1 if name == "y" else 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_no_grad_forward_takes_the_fused_post_op(backend, activation, dtype):
    """Without a gradient the activation runs inside oneDNN's GEMM (or after it, for relu6 and leaky_relu)."""
    ref_args, args, _ = _inputs((11, 40), 23, dtype)
    with torch.no_grad():
        y = _ours(backend, *args, activation, negative_slope=0.2)
        theirs = apply(F.linear(*args), activation, 0.2)
        ref = apply(F.linear(*ref_args), activation, 0.2)
    assert not y.requires_grad
    assert_close(y, ref, theirs, name=activation)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activation_backward_matches_autograd_in_float64(activation):
    z = (torch.randn(200, dtype=torch.float64) * 4).requires_grad_()
    g = torch.randn(200, dtype=torch.float64)
    (want,) = torch.autograd.grad(apply(z, activation, 0.3), z, g)
    got = composite.activation_backward(g, z.detach(), activation, 0.3)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["none", "gelu_tanh", "leaky_relu"])
@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_gradcheck_float64(backend, activation):
    _, (x, w, b), _ = _inputs((5, 9), 7, torch.float64)
    assert torch.autograd.gradcheck(lambda x, w, b: _ours(backend, x, w, b, activation), (x, w, b))


@pytest.mark.parametrize("own_act", [True, False])
@pytest.mark.parametrize("save", [True, False])
@pytest.mark.parametrize("activation", ["none", "relu", "gelu", "leaky_relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_opcheck(activation, bias, save, own_act):
    _, (x, w, b), _ = _inputs((2, 6, 13), 11, torch.float32, bias=bias)
    code = ACTIVATIONS.index(activation)
    torch.library.opcheck(op("onednn_linear"), (x, w, b, code, 0.1, save, own_act))
    y, z = op("onednn_linear")(x.detach(), w.detach(), None if b is None else b.detach(), code, 0.1, True, own_act)
    needs = [True, True, bias]
    torch.library.opcheck(op("onednn_linear_backward"),
                          (torch.randn_like(y), x.detach(), w.detach(), z, code, 0.1, needs, own_act))


def test_double_backward_raises_clearly():
    _, (x, w, b), _ = _inputs((4, 8), 6, torch.float32)
    y = linear(x, w, b, "gelu")
    (gx,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


def test_compiles_without_graph_breaks():
    _, (x, w, b), _ = _inputs((3, 5, 16), 12, torch.float32)
    y = torch.compile(lambda x, w, b: linear(x, w, b, "silu"), backend="aot_eager", fullgraph=True)(x, w, b)
    y.sum().backward()
    expected = F.silu(F.linear(x, w, b))
    torch.testing.assert_close(y, expected)
    for got, want in zip((x.grad, w.grad, b.grad), torch.autograd.grad(expected.sum(), (x, w, b))):
        torch.testing.assert_close(got, want)


def test_autocast_runs_in_the_autocast_dtype_like_torch():
    _, (x, w, b), _ = _inputs((6, 10), 4, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = linear(x, w, b, "relu")
        expected = F.linear(x, w, b)
    assert y.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(y, torch.relu(expected))


@pytest.mark.parametrize("shape", [(0, 8), (5, 0)])
def test_empty_inputs(shape):
    x = torch.randn(shape, requires_grad=True)
    w = torch.randn(3, shape[1], requires_grad=True)
    y = linear(x, w, None, "relu")
    assert y.shape == (shape[0], 3) and torch.equal(y, torch.zeros_like(y))
    y.sum().backward()
    assert x.grad.shape == x.shape and w.grad.shape == w.shape


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_with_onednn_disabled_the_composition_serves(backend):
    _, (x, w, b), _ = _inputs((4, 9), 5, torch.float32)
    with torch.backends.mkldnn.flags(enabled=False):
        assert composite.onednn_unsupported(x, w) is not None
        y = _ours(backend, x, w, b, "tanh")
    torch.testing.assert_close(y, torch.tanh(F.linear(x, w, b)))
    y.sum().backward()
    assert x.grad is not None and b.grad is not None


def test_backends():
    _, (x, w, b), _ = _inputs((4, 9), 5, torch.float32)
    with bigkernels.use_backend("reference"):
        torch.testing.assert_close(linear(x, w, b), F.linear(x, w, b))
    with bigkernels.use_backend("triton"), pytest.raises(BackendError, match="no implementation"):
        linear(x, w, b)  # no Triton linear: forcing it raises


@pytest.mark.parametrize("call, error, match", [
    (lambda x, w, b: linear(x.numpy(), w, b), TypeError, "x must be"),
    (lambda x, w, b: linear(x, w[0], b), ValueError, "weight must be 2-D"),
    (lambda x, w, b: linear(x[:, :-1], w, b), ValueError, "in_features=9"),
    (lambda x, w, b: linear(x, w, b[:-1]), ValueError, r"bias must have shape \[5\]"),
    (lambda x, w, b: linear(x, w, b, "softmax"), ValueError, "activation must be one of"),
    (lambda x, w, b: linear(x, w, b, 3), TypeError, "activation must be a str"),
    (lambda x, w, b: linear(x, w, b, "leaky_relu", negative_slope="0.1"), TypeError, "negative_slope"),
    (lambda x, w, b: linear(x, w.double(), b), TypeError, "dtype"),
])
def test_bad_input_names_the_argument(call, error, match):
    _, (x, w, b), _ = _inputs((4, 9), 5, torch.float32)
    with pytest.raises(error, match=match):
        call(x.detach(), w.detach(), b.detach())


def test_module_is_a_drop_in_for_nn_linear():
    torch.manual_seed(0)
    theirs = nn.Linear(12, 7)
    ours = bnn.Linear(12, 7)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    assert isinstance(ours, nn.Linear) and list(ours.state_dict()) == ["weight", "bias"]
    x = torch.randn(2, 3, 12)
    torch.testing.assert_close(ours(x), theirs(x))
    fused = bnn.Linear(12, 7, bias=False, activation="swish")
    assert fused.bias is None and fused.activation == "silu" and "activation=silu" in repr(fused)
    torch.testing.assert_close(fused(x), F.silu(F.linear(x, fused.weight)))
    with pytest.raises(ValueError, match="activation must be one of"):
        bnn.Linear(3, 4, activation="mish")


def test_swap_converts_linear_and_fuses_the_activation_after_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.GELU(approximate="tanh"), nn.Linear(16, 16), nn.ReLU(),
                          nn.Dropout(0.0), nn.Linear(16, 3))
    original = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(5, 10)
    want = model(x)
    report = bigkernels.swap(model)
    rows = {row[0]: row[1] for row in report.swapped}
    assert rows == {"0": "nn.Linear+nn.GELU", "2": "nn.Linear+nn.ReLU", "5": "nn.Linear"}
    assert type(model[0]) is bnn.Linear and model[0].activation == "gelu_tanh"
    assert isinstance(model[1], nn.Identity) and isinstance(model[3], nn.Identity)
    torch.testing.assert_close(model(x), want)
    assert model.state_dict().keys() == original.keys()
    bigkernels.unswap(model)
    assert type(model[0]) is nn.Linear and type(model[1]) is nn.GELU and model[1].approximate == "tanh"
    torch.testing.assert_close(model(x), want)


def test_swap_leaves_linear_alone_when_asked_or_when_the_forced_backend_lacks_it():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    assert bigkernels.swap(model, linear=False).swapped == []
    assert type(model[0]) is nn.Linear
    try:
        report = bigkernels.swap(model, backend="triton")
    finally:
        bigkernels.use_backend(None)
    assert report.swapped == [] and type(model[0]) is nn.Linear
    assert report.skipped and "does not implement linear" in report.skipped[0][2]


def test_swap_leaves_linear_subclasses_alone():
    """MultiheadAttention's out_proj is a NonDynamicallyQuantizableLinear: only exact nn.Linear is converted."""
    model = nn.Sequential(nn.modules.linear.NonDynamicallyQuantizableLinear(4, 4))
    assert bigkernels.swap(model).swapped == []


@pytest.mark.parametrize("activation", ["relu", "gelu", nn.GELU(approximate="tanh")])
@pytest.mark.parametrize("layer_type", [nn.TransformerEncoderLayer, nn.TransformerDecoderLayer])
def test_swap_fuses_the_feed_forward_activation_of_transformer_layers(layer_type, activation):
    torch.manual_seed(0)
    layer = layer_type(16, 4, 24, dropout=0.0, activation=activation, batch_first=True)
    inputs = (torch.randn(2, 5, 16),) if layer_type is nn.TransformerEncoderLayer else \
        (torch.randn(2, 5, 16), torch.randn(2, 3, 16))
    want = layer(*inputs)
    keys = list(layer.state_dict())
    report = bigkernels.swap(layer)
    rows = {row[0]: row[1] for row in report.swapped}
    assert rows["linear1"].startswith("nn.Linear+") and rows["linear2"] == "nn.Linear"
    assert layer.linear1.activation == {"relu": "relu", "gelu": "gelu"}.get(activation, "gelu_tanh")
    torch.testing.assert_close(layer(*inputs), want, rtol=1e-5, atol=1e-5)
    assert list(layer.state_dict()) == keys
    bigkernels.unswap(layer)
    assert type(layer.linear1) is nn.Linear
    assert layer.activation is {"relu": F.relu, "gelu": F.gelu}.get(activation, activation)
    torch.testing.assert_close(layer(*inputs), want)


def test_projections_follow_autocast_like_torch():
    """MultiheadAttention's projections go through ops.linear.project: under autocast, torch's dtype."""
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(256, 4, batch_first=True)
    ours = bnn.MultiheadAttention(256, 4, batch_first=True)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 64, 256)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, y_torch = ours(x, x, x, need_weights=False)[0], theirs(x, x, x, need_weights=False)[0]
    assert y.dtype == y_torch.dtype == torch.bfloat16


def test_backward_fills_no_zero_gradient_for_the_saved_preactivation():
    """The op's second output (the saved pre-activation) is internal: autograd
    must not build a zero gradient of the layer's size for it each backward."""
    from tests.backends import ZeroFills

    _, (x, w, b), _ = _inputs((64, 96), 128, torch.float32)
    with bigkernels.use_backend("cpu"):
        y = linear(x, w, b, "gelu")
    with ZeroFills() as fills:
        y.sum().backward()
    assert fills.calls == []
    assert x.grad is not None and w.grad is not None and b.grad is not None
