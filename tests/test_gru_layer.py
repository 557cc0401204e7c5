"""gru_layer on the cpu and torch backends against the float64 reference
(tolerance rule), gradcheck, opcheck, compile, bad input."""
import pytest
import torch

import bigkernels
from bigkernels.ops import gru_layer
from bigkernels.ops._library import op
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
# (T, B, H, bias, reverse): odd sizes, batch 1 (the GEMV path), both directions
SHAPES = [(7, 3, 13, True, False), (5, 1, 17, True, True), (4, 2, 9, False, True)]


def _args(T, B, H, bias, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)

    def r(*s, scale=1.0):
        return torch.randn(*s, generator=gen, dtype=torch.float64) * scale

    base = [r(T, B, 3 * H), r(B, H, scale=0.5), r(3 * H, H, scale=H ** -0.5), r(3 * H) if bias else None]
    return [[None if t is None else t.to(dt, copy=True).requires_grad_() for t in base]
            for dt in (torch.float64, dtype, dtype)]


def _run(backend, a, reverse):
    with bigkernels.use_backend(backend):
        return gru_layer(a[0], a[1], a[2], a[3], reverse=reverse)


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gru_layer_matches_reference(backend, dtype, shape):
    ensure_backend(backend)
    T, B, H, bias, reverse = shape
    a64, a, at = _args(T, B, H, bias, dtype)
    ref, ours, theirs = _run("reference", a64, reverse), _run(backend, a, reverse), _run("torch", at, reverse)
    for name, o, r, t in zip(("y", "h_T"), ours, ref, theirs):
        assert_close(o, r, t, name=name)
    gen = torch.Generator().manual_seed(1)
    gs = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in ref]

    def grads(outs, leaves, dt):
        return torch.autograd.grad(outs, [t for t in leaves if t is not None], [g.to(dt) for g in gs])

    for n, go, gr, gt in zip(("x_proj", "h0", "w_hh", "b_hh"), grads(ours, a, dtype), grads(ref, a64, torch.float64),
                             grads(theirs, at, dtype)):
        assert_close(go, gr, gt, name=f"grad {n}", scale=max(1.0, gr.abs().max().item()))


@pytest.mark.parametrize("bias,reverse", [(True, False), (False, True)])
def test_gradcheck_cpu(bias, reverse):
    ensure_backend("cpu")
    a = _args(4, 2, 5, bias, torch.float64)[0]

    def f(*t):
        with bigkernels.use_backend("cpu"):
            return gru_layer(t[0], t[1], t[2], t[3] if bias else None, reverse=reverse)

    torch.autograd.gradcheck(f, [t for t in a if t is not None])


@pytest.mark.parametrize("bias", [True, False])
def test_opcheck(bias):
    ensure_backend("cpu")
    x, h, w, b = _args(3, 2, 4, bias, torch.float32)[1]
    for train in (True, False):
        torch.library.opcheck(op("gru_layer"), (x, h, w, b, True, train))
    y, hT, ws = op("gru_layer")(x.detach(), h.detach(), w.detach(), None if b is None else b.detach(), False, True)
    torch.library.opcheck(op("gru_layer_backward"), (torch.randn_like(y), torch.randn_like(hT), h.detach(),
                                                     w.detach(), None if b is None else b.detach(), y, ws, False))


def test_compiles_and_bad_input():
    ensure_backend("cpu")
    x, h, w, b = _args(3, 2, 4, True, torch.float32)[1]
    with bigkernels.use_backend("cpu"):
        f = torch.compile(lambda *t: gru_layer(*t, reverse=True)[0].sum(), backend="aot_eager", fullgraph=True)
        f(x, h, w, b).backward()
    assert w.grad is not None
    with pytest.raises(ValueError, match="x_proj must have shape"):
        gru_layer(torch.randn(3, 2, 13), h, w, b)
    with pytest.raises(ValueError, match="b_hh must have shape"):
        gru_layer(x, h, w, torch.randn(5))
    with pytest.raises(TypeError, match="reverse must be a bool"):
        gru_layer(x, h, w, b, reverse="yes")
