"""The fused single-step LSTM/GRU cell kernels (csrc/cuda/lstm/cell.cu) under
the emulator, through lstm_cell / gru_cell on cuda_sim: forward and backward
against the float64 reference with the tolerance rule, every dtype the kernel
serves, sizes that are no warp multiple, batch 1 and odd, with and without
biases; one launch per step; schedules agree bit for bit."""
import pytest
import torch

import bigkernels
from bigkernels.backends import sim_loader
from bigkernels.ops import gru_cell, lstm_cell
from bigkernels.ops._library import op
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend
from tests.sim.schedules import assert_schedule_invariant

pytestmark = pytest.mark.sim

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# (B, I, H, bias): I and H > 32 wrap the lanes' k loop; H = 37 leaves a ragged last block of 4 units
CASES = [(1, 5, 7, True), (3, 40, 37, False), (5, 11, 9, True)]


def _inputs(kind, B, I, H, bias, seed=0):
    G = 4 if kind == "lstm" else 3
    gen = torch.Generator().manual_seed(seed)

    def r(*shape, s=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * s

    t = [r(B, I), r(B, H, s=0.5)] + ([r(B, H, s=0.5)] if kind == "lstm" else [])
    t += [r(G * H, I, s=I ** -0.5), r(G * H, H, s=H ** -0.5)] + ([r(G * H), r(G * H)] if bias else [None, None])
    return t


def _run(kind, backend, args):
    fn = lstm_cell if kind == "lstm" else gru_cell
    with bigkernels.use_backend(backend):
        out = fn(*args)
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_cell_matches_reference(kind, dtype, case):
    ensure_backend("cuda_sim")
    base = _inputs(kind, *case)

    def leaves(dt):
        return [None if t is None else t.to(dt).requires_grad_() for t in base]

    a64, a, at = leaves(torch.float64), leaves(dtype), leaves(dtype)
    sim_loader.launched_kernels()
    ours = _run(kind, "cuda_sim", a)
    launched = sim_loader.launched_kernels()
    assert len(launched) == 1 and "cell_kernel" in launched[0], launched  # both GEMMs and the gates: one launch
    ref, theirs = _run(kind, "reference", a64), _run(kind, "torch", at)
    for o, r, t in zip(ours, ref, theirs):
        assert o.dtype == dtype
        assert_close(o, r, t, name=f"{kind} cell forward")
    gen = torch.Generator().manual_seed(1)
    gs = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in ref]

    def grads(outs, ls, dt):
        return torch.autograd.grad(outs, [t for t in ls if t is not None], [g.to(dt) for g in gs])

    for go, gr, gt in zip(grads(ours, a, dtype), grads(ref, a64, torch.float64), grads(theirs, at, dtype)):
        assert_close(go, gr, gt, name=f"{kind} cell grad", scale=max(1.0, gr.abs().max().item()))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_schedules_agree_bit_for_bit(kind):
    ensure_backend("cuda_sim")
    a = [None if t is None else t.to(torch.bfloat16).requires_grad_() for t in _inputs(kind, 3, 40, 37, True, 3)]

    def run():
        outs = _run(kind, "cuda_sim", a)
        with bigkernels.use_backend("cuda_sim"):
            grads = torch.autograd.grad(sum(o.float().sum() for o in outs), [t for t in a if t is not None])
        return outs, grads

    assert_schedule_invariant(run)


def test_unbatched_and_inference():
    ensure_backend("cuda_sim")
    x, h, c, w_ih, w_hh, b_ih, b_hh = (t.float() for t in _inputs("lstm", 1, 6, 5, True))
    with torch.no_grad(), bigkernels.use_backend("cuda_sim"):
        h1, c1 = lstm_cell(x[0], h[0], c[0], w_ih, w_hh, b_ih, b_hh)
    rh, rc = torch._VF.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    torch.testing.assert_close((h1, c1), (rh[0], rc[0]), rtol=1e-5, atol=1e-5)


def test_opcheck():
    ensure_backend("cuda_sim")
    x, h, c, w_ih, w_hh, b_ih, b_hh = (t.float().requires_grad_() for t in _inputs("lstm", 2, 3, 4, True))
    for train in (True, False):
        torch.library.opcheck(op("lstm_cell_fused_sim"), (x, h, c, w_ih, w_hh, b_ih, None, train))
    x, h, w_ih, w_hh, b_ih, b_hh = (None if t is None else t.float().requires_grad_()
                                    for t in _inputs("gru", 2, 3, 4, False))
    for train in (True, False):
        torch.library.opcheck(op("gru_cell_fused_sim"), (x, h, w_ih, w_hh, b_ih, b_hh, train))
