"""lstm_bidir_layer (both directions of a bidirectional LSTM layer, stacked on
a leading dim of 2) on the CPU backends: against the float64 reference with
the tolerance rule, equal to lstm_layer per direction, opcheck, gradcheck,
argument errors, torch.compile."""
import pytest
import torch

import bigkernels
from bigkernels.ops import lstm_bidir_layer, lstm_layer
from bigkernels.ops._library import op
from tests.backends import ensure_backend
from tests.test_lstm_layer import DTYPES, compare

# (T, B, H, proj_size or 0): H no vector-width multiple, batch 1 and odd, a projection.
SHAPES = [(6, 3, 13, 0), (5, 1, 17, 0), (4, 2, 9, 4)]


def bidir_inputs(T, B, H, P, dtype, *, seed=0, scale=0.5):
    """(float64 leaves, ours, torch's): x_proj [2,T,B,4H], h0 [2,B,P], c0 [2,B,H], w_hh [2,4H,P], w_hr [2,P,H]."""
    gen = torch.Generator().manual_seed(seed)
    P_ = P or H

    def r(*shape, s=1.0):
        return torch.randn(2, *shape, generator=gen, dtype=torch.float64) * s

    ref = [r(T, B, 4 * H), r(B, P_, s=scale), r(B, H, s=scale), r(4 * H, P_, s=1 / H ** 0.5),
           r(P_, H, s=1 / H ** 0.5) if P else None]
    return tuple([None if t is None else t.to(dt).requires_grad_() for t in ref]
                 for dt in (torch.float64, dtype, dtype))


def run_bidir(backend, args):
    x, h, c, w, wr = args
    with bigkernels.use_backend(backend):
        return lstm_bidir_layer(x, h, c, w, w_hr=wr)


def run_per_direction(backend, args):
    """lstm_layer once per direction, stacked: what lstm_bidir_layer must equal."""
    x, h, c, w, wr = args
    with bigkernels.use_backend(backend):
        outs = [lstm_layer(x[d], h[d], c[d], w[d], w_hr=None if wr is None else wr[d], reverse=d == 1)
                for d in (0, 1)]
    return tuple(torch.stack(t) for t in zip(*outs))


@pytest.mark.parametrize("backend", ["cpu", "torch", pytest.param("triton", marks=pytest.mark.triton)])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(backend, dtype, shape):
    if backend == "triton" and dtype == torch.float64:
        pytest.skip("the triton kernel computes in fp32; float64 is served by cpu/torch")
    compare(backend, dtype, bidir_inputs(*shape, dtype), run_bidir)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("P", [0, 3])
def test_equals_lstm_layer_per_direction_bit_for_bit(dtype, P):
    ensure_backend("cpu")
    _, a, _ = bidir_inputs(5, 3, 7, P, dtype, seed=2)
    ours, theirs = run_bidir("cpu", a), run_per_direction("cpu", a)
    live = [t for t in a if t is not None]
    gen = torch.Generator().manual_seed(3)
    gy = [torch.randn(t.shape, generator=gen).to(dtype) for t in ours]
    for o, t in zip(ours + torch.autograd.grad(ours, live, gy), theirs + torch.autograd.grad(theirs, live, gy)):
        assert torch.equal(o, t)


@pytest.mark.parametrize("proj", [0, 2])
def test_gradcheck_float64(proj):
    ensure_backend("cpu")
    a, _, _ = bidir_inputs(3, 2, 4, proj, torch.float64)
    live = [t for t in a if t is not None]

    def f(*t):
        with bigkernels.use_backend("cpu"):
            return lstm_bidir_layer(*t[:4], w_hr=t[4] if proj else None)

    torch.autograd.gradcheck(f, live)


@pytest.mark.parametrize("proj", [0, 2])
def test_opcheck(proj):
    ensure_backend("cpu")
    _, a, _ = bidir_inputs(3, 2, 4, proj, torch.float32)
    for train in (True, False):
        torch.library.opcheck(op("lstm_bidir_layer"), (*a, train))
    d = [t.detach() if t is not None else None for t in a]
    y, hT, cT, gates, cs = op("lstm_bidir_layer")(*d, True)
    gy, gh, gc = torch.randn_like(y), torch.randn_like(hT), torch.randn_like(cT)
    torch.library.opcheck(op("lstm_bidir_layer_backward"), (gy, gh, gc, *d[1:], y, gates, cs))


def test_empty_sequence():
    ensure_backend("cpu")
    x = torch.randn(2, 0, 3, 8, requires_grad=True)
    h, c = torch.randn(2, 3, 2, requires_grad=True), torch.randn(2, 3, 2, requires_grad=True)
    w = torch.randn(2, 8, 2, requires_grad=True)
    with bigkernels.use_backend("cpu"):
        y, hT, cT = lstm_bidir_layer(x, h, c, w)
    assert y.shape == (2, 0, 3, 2)
    torch.testing.assert_close((hT, cT), (h, c))
    (hT.sum() + cT.sum()).backward()
    torch.testing.assert_close((h.grad, c.grad), (torch.ones_like(h), torch.ones_like(c)))


def test_bad_arguments_name_the_argument():
    _, a, _ = bidir_inputs(3, 2, 4, 0, torch.float32)
    x, h, c, w, _ = (t.detach() if t is not None else None for t in a)
    with pytest.raises(ValueError, match="h0 must have a leading dimension of 2"):
        lstm_bidir_layer(x, h[:1], c, w)
    with pytest.raises(ValueError, match="x_proj must have a leading dimension of 2"):
        lstm_bidir_layer(x[0], h, c, w)
    with pytest.raises(ValueError, match="w_hh must have shape"):
        lstm_bidir_layer(x, h, c, w[:, :4])
    with pytest.raises(TypeError, match="c0"):
        lstm_bidir_layer(x, h, "c0", w)


def test_compiles_without_graph_breaks():
    ensure_backend("cpu")
    _, a, _ = bidir_inputs(4, 2, 5, 3, torch.float32)

    def f(*t):
        return lstm_bidir_layer(*t[:4], w_hr=t[4])

    with bigkernels.use_backend("cpu"):
        eager = f(*a)
        compiled = torch.compile(f, fullgraph=True, backend="aot_eager")(*a)
    torch.testing.assert_close(compiled, eager)
