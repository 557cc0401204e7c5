"""gru_bidir_layer (both directions of a bidirectional GRU layer, stacked on a
leading dim of 2) on the CPU backends: against the float64 reference with the
tolerance rule, equal to gru_layer per direction, opcheck, gradcheck, errors."""
import pytest
import torch

import bigkernels
from bigkernels.ops import gru_bidir_layer, gru_layer
from bigkernels.ops._library import op
from tests.backends import ensure_backend
from tests.test_lstm_layer import DTYPES, compare

SHAPES = [(6, 3, 13, True), (5, 1, 17, True), (4, 2, 9, False)]  # (T, B, H, bias)
NAMES, OUTPUTS = ("x_proj", "h0", "w_hh", "b_hh"), ("y", "h_T")


def gru_bidir_inputs(T, B, H, bias, dtype, *, seed=0):
    """(float64 leaves, ours, torch's): x_proj [2,T,B,3H], h0 [2,B,H], w_hh [2,3H,H], b_hh [2,3H] or None."""
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, s=1.0):
        return torch.randn(2, *shape, generator=gen, dtype=torch.float64) * s

    ref = [r(T, B, 3 * H), r(B, H, s=0.5), r(3 * H, H, s=H ** -0.5), r(3 * H) if bias else None]
    return tuple([None if t is None else t.to(dt).requires_grad_() for t in ref]
                 for dt in (torch.float64, dtype, dtype))


def run_gru_bidir(backend, args):
    with bigkernels.use_backend(backend):
        return gru_bidir_layer(*args)


def run_gru_per_direction(backend, args):
    x, h, w, b = args
    with bigkernels.use_backend(backend):
        outs = [gru_layer(x[d], h[d], w[d], None if b is None else b[d], reverse=d == 1) for d in (0, 1)]
    return tuple(torch.stack(t) for t in zip(*outs))


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(backend, dtype, shape):
    compare(backend, dtype, gru_bidir_inputs(*shape, dtype), run_gru_bidir, NAMES, OUTPUTS)


@pytest.mark.parametrize("bias", [True, False])
def test_equals_gru_layer_per_direction_bit_for_bit(bias):
    ensure_backend("cpu")
    _, a, _ = gru_bidir_inputs(5, 3, 7, bias, torch.float32, seed=2)
    ours, theirs = run_gru_bidir("cpu", a), run_gru_per_direction("cpu", a)
    live = [t for t in a if t is not None]
    gy = [torch.randn_like(t) for t in ours]
    for o, t in zip(ours + torch.autograd.grad(ours, live, gy), theirs + torch.autograd.grad(theirs, live, gy)):
        assert torch.equal(o, t)


def test_gradcheck_float64():
    ensure_backend("cpu")
    a, _, _ = gru_bidir_inputs(3, 2, 4, True, torch.float64)

    def f(*t):
        with bigkernels.use_backend("cpu"):
            return gru_bidir_layer(*t)

    torch.autograd.gradcheck(f, a)


@pytest.mark.parametrize("bias", [True, False])
def test_opcheck(bias):
    ensure_backend("cpu")
    _, a, _ = gru_bidir_inputs(3, 2, 4, bias, torch.float32)
    for train in (True, False):
        torch.library.opcheck(op("gru_bidir_layer"), (*a, train))
    d = [t.detach() if t is not None else None for t in a]
    y, hT, ws = op("gru_bidir_layer")(*d, True)
    torch.library.opcheck(op("gru_bidir_layer_backward"), (torch.randn_like(y), torch.randn_like(hT), *d[1:], y, ws))


def test_bad_arguments_name_the_argument():
    _, a, _ = gru_bidir_inputs(3, 2, 4, True, torch.float32)
    x, h, w, b = (t.detach() for t in a)
    with pytest.raises(ValueError, match="b_hh must have a leading dimension of 2"):
        gru_bidir_layer(x, h, w, b[0])
    with pytest.raises(ValueError, match="h0 must have shape"):
        gru_bidir_layer(x, h[:, :1], w, b)
