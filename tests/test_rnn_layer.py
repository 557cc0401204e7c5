"""rnn_layer (tanh/relu) on the cpu and torch backends against the float64
reference (tolerance rule), gradcheck, opcheck, bad input."""
import pytest
import torch

import bigkernels
from bigkernels.ops import rnn_layer
from bigkernels.ops._library import op
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend

# (T, B, H, nonlinearity, reverse, dtype): a covering array, batch 1 (GEMV) included
CASES = [(7, 3, 13, "tanh", False, torch.float32), (5, 1, 17, "relu", True, torch.float32),
         (6, 2, 9, "tanh", True, torch.bfloat16), (4, 4, 11, "relu", False, torch.float16),
         (5, 1, 10, "tanh", False, torch.float64), (4, 3, 7, "relu", True, torch.bfloat16)]


def _args(T, B, H, dtype):
    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(T, B, H, generator=gen, dtype=torch.float64),
            torch.randn(B, H, generator=gen, dtype=torch.float64) * 0.5,
            torch.randn(H, H, generator=gen, dtype=torch.float64) * H ** -0.5]
    return [[t.to(dt, copy=True).requires_grad_() for t in base] for dt in (torch.float64, dtype, dtype)]


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_rnn_layer_matches_reference(backend, case):
    ensure_backend(backend)
    T, B, H, act, reverse, dtype = case
    a64, a, at = _args(T, B, H, dtype)
    runs = []
    for be, args in (("reference", a64), (backend, a), ("torch", at)):
        with bigkernels.use_backend(be):
            runs.append(rnn_layer(*args, nonlinearity=act, reverse=reverse))
    (ref, ours, theirs) = runs
    for name, o, r, t in zip(("y", "h_T"), ours, ref, theirs):
        assert_close(o, r, t, name=name)
    gen = torch.Generator().manual_seed(1)
    gs = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in ref]
    g = [torch.autograd.grad(outs, leaves, [x.to(dt) for x in gs])
         for outs, leaves, dt in ((ref, a64, torch.float64), (ours, a, dtype), (theirs, at, dtype))]
    for n, gr, go, gt in zip(("x_proj", "h0", "w_hh"), *g):
        assert_close(go, gr, gt, name=f"grad {n}", scale=max(1.0, gr.abs().max().item()))


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_gradcheck_and_opcheck(act):
    ensure_backend("cpu")
    x, h, w = _args(4, 2, 5, torch.float64)[0]
    with bigkernels.use_backend("cpu"):
        torch.autograd.gradcheck(lambda *t: rnn_layer(*t, nonlinearity=act, reverse=True), [x, h, w])
    xf, hf, wf = (t.detach().float().requires_grad_() for t in (x, h, w))
    torch.library.opcheck(op("rnn_layer"), (xf, hf, wf, act == "relu", False))
    y, hT = op("rnn_layer")(xf.detach(), hf.detach(), wf.detach(), act == "relu", False)
    torch.library.opcheck(op("rnn_layer_backward"), (torch.randn_like(y), torch.randn_like(hT), hf.detach(),
                                                     wf.detach(), y, act == "relu", False))


def test_bad_input():
    x, h, w = (t.detach() for t in _args(3, 2, 4, torch.float32)[1])
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        rnn_layer(x, h, w, nonlinearity="gelu")
    with pytest.raises(TypeError, match="nonlinearity must be a str"):
        rnn_layer(x, h, w, nonlinearity=1)
    with pytest.raises(ValueError, match="w_hh must have shape"):
        rnn_layer(x, h, torch.randn(4, 5))
    with pytest.raises(ValueError, match="h0 must have shape"):
        rnn_layer(x, torch.randn(3, 4), w)
