"""gru_layer's CUDA kernels (csrc/cuda/lstm/gru_layer.cu) under the emulator:
part 1's matrix (dtypes x hidden sizes x batch 1 and odd x bias x direction
x persistent/per-step), forward and backward through time against the
float64 reference with the tolerance rule; schedules agree bit for bit."""
import pytest
import torch

import bigkernels
from bigkernels.backends import sim_loader
from bigkernels.ops import gru_layer
from bigkernels.ops._library import op
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend
from tests.sim.pairwise import exhaustive, pairwise
from tests.sim.schedules import assert_schedule_invariant
from tests.test_gru_layer import _args, _run

pytestmark = pytest.mark.sim

FACTORS = dict(dtype=[torch.float32, torch.float16, torch.bfloat16], H=[13, 37, 150], B=[1, 3, 5],
               bias=[True, False], reverse=[False, True], path=["persistent", "per_step"])
KERNELS = {"persistent": "gru_persistent", "per_step": "gru_step"}


def _case_id(c):
    return (f"{str(c['dtype']).replace('torch.', '')}-H{c['H']}-B{c['B']}-{'bias' if c['bias'] else 'nobias'}-"
            f"{'rev' if c['reverse'] else 'fwd'}-{c['path']}")


def _check(dtype, T, B, H, bias, reverse):
    a64, a, at = _args(T, B, H, bias, dtype)
    ref, ours, theirs = _run("reference", a64, reverse), _run("cuda_sim", a, reverse), _run("torch", at, reverse)
    for name, o, r, t in zip(("y", "h_T"), ours, ref, theirs):
        assert o.dtype == dtype
        assert_close(o, r, t, name=name)
    gen = torch.Generator().manual_seed(1)
    gs = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in ref]

    def grads(outs, leaves, dt):
        return torch.autograd.grad(outs, [t for t in leaves if t is not None], [g.to(dt) for g in gs])

    for n, go, gr, gt in zip(("x_proj", "h0", "w_hh", "b_hh"), grads(ours, a, dtype), grads(ref, a64, torch.float64),
                             grads(theirs, at, dtype)):
        assert_close(go, gr, gt, name=f"grad {n}", scale=max(1.0, gr.abs().max().item()))


def _run_case(c, monkeypatch):
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", c["path"])
    sim_loader.launched_kernels()
    _check(c["dtype"], 4, c["B"], c["H"], c["bias"], c["reverse"])
    launched = " ".join(sim_loader.launched_kernels())
    assert f"{KERNELS[c['path']]}<" in launched and ", true>" in launched, launched  # forward and backward ran


@pytest.mark.parametrize("case", pairwise(FACTORS), ids=_case_id)
def test_matrix_pairwise(case, monkeypatch):
    _run_case(case, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", exhaustive(FACTORS), ids=_case_id)
def test_matrix_exhaustive(case, monkeypatch):
    _run_case(case, monkeypatch)


@pytest.mark.parametrize("path,dtype", [("persistent", torch.bfloat16), ("per_step", torch.float32)])
def test_schedules_agree_bit_for_bit(path, dtype, monkeypatch):
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", path)
    a = _args(3, 3, 21, True, dtype, seed=5)[1]

    def run():
        with bigkernels.use_backend("cuda_sim"):
            outs = gru_layer(*a, reverse=True)
            grads = torch.autograd.grad(sum(o.float().sum() for o in outs), a)
        return outs, grads

    assert_schedule_invariant(run)


def test_auto_rule_falls_back_to_per_step(monkeypatch):
    """fp32, H = 1800: 14 units per block need 3*14*1800*4 B = 295 KiB > 227 KiB of shared memory."""
    ensure_backend("cuda_sim")
    monkeypatch.delenv("BIGKERNELS_LSTM_PATH", raising=False)
    gen = torch.Generator().manual_seed(0)
    H = 1800
    x, h = torch.randn(1, 1, 3 * H, generator=gen), torch.randn(1, H, generator=gen)
    w = torch.randn(3 * H, H, generator=gen) / H ** 0.5
    sim_loader.launched_kernels()
    with torch.no_grad(), bigkernels.use_backend("cuda_sim"):
        y, hT = gru_layer(x, h, w)
    assert "gru_step<" in " ".join(sim_loader.launched_kernels())
    with bigkernels.use_backend("reference"):
        ry, rh = gru_layer(x.double(), h.double(), w.double())
    torch.testing.assert_close((y.double(), hT.double()), (ry, rh), rtol=1e-4, atol=1e-5)
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", "persistent")
    with pytest.raises(RuntimeError, match="gru_layer"), torch.no_grad(), bigkernels.use_backend("cuda_sim"):
        gru_layer(x, h, w)


def test_empty_sequence_and_batch():
    ensure_backend("cuda_sim")
    for T, B in ((0, 2), (3, 0)):
        x = torch.randn(T, B, 6, requires_grad=True)
        h, w, b = torch.randn(B, 2, requires_grad=True), torch.randn(6, 2, requires_grad=True), torch.randn(6)
        with bigkernels.use_backend("cuda_sim"):
            y, hT = gru_layer(x, h, w, b.requires_grad_())
        assert y.shape == (T, B, 2)
        (y.sum() + hT.sum()).backward()
        if T == 0:
            torch.testing.assert_close(hT, h)
            torch.testing.assert_close(h.grad, torch.ones_like(h))
            assert not w.grad.any() and not b.grad.any()
            # the outputs are fresh tensors, never aliases of h0 (opcheck's schema test)
            torch.library.opcheck(op("gru_layer_sim"), (x, h, w, b, False, True))


@pytest.mark.parametrize("bias", [True, False])
def test_opcheck(bias):
    ensure_backend("cuda_sim")
    x, h, w, b = _args(3, 2, 4, bias, torch.float32)[1]
    for train in (True, False):
        torch.library.opcheck(op("gru_layer_sim"), (x, h, w, b, True, train))
    d = [None if t is None else t.detach() for t in (x, h, w, b)]
    y, hT, ws = op("gru_layer_sim")(*d, False, True)
    torch.library.opcheck(op("gru_layer_backward_sim"), (torch.randn_like(y), torch.randn_like(hT), d[1], d[2], d[3],
                                                         y, ws, False))

