"""lstm_layer's CUDA kernels (csrc/cuda/lstm) under the emulator: part 1's
matrix (dtypes x hidden sizes that are no warp/tile multiple x batch 1 and
odd x projection x direction x persistent/per-step path), forward and
backward through time against the float64 reference with the tolerance rule;
every schedule agrees bit for bit; the plan's fallback to per-step."""
import pytest
import torch

import bigkernels
from bigkernels.backends import sim_loader
from bigkernels.ops import lstm_layer
from bigkernels.ops._library import op
from tests.backends import ensure_backend
from tests.sim.pairwise import exhaustive, pairwise
from tests.sim.schedules import assert_schedule_invariant
from tests.test_lstm_layer import _check, _inputs

pytestmark = pytest.mark.sim

# persistent_fma: the persistent path without tensor cores (fp16/bf16 take mma.sync otherwise).
# H=13: one unit per block; 37: the 32-lane k loop wraps; 150 > 132 SMs: two
# units per block on the persistent path (and a ragged last block).
FACTORS = dict(dtype=[torch.float32, torch.float16, torch.bfloat16], H=[13, 37, 150], B=[1, 3, 5],
               proj=[False, True], reverse=[False, True], path=["persistent", "persistent_fma", "per_step"])


def _forward_kernel(path, dtype):
    """persistent and per_step: tensor cores (mma.sync) for fp16/bf16, FMA for fp32; persistent_fma forces FMA."""
    if path == "per_step":
        return "lstm_fwd_step_mma<" if dtype != torch.float32 else "lstm_fwd_gates_step<"
    return "lstm_fwd_persistent_mma<" if path == "persistent" and dtype != torch.float32 else "lstm_fwd_persistent<"


def _case_id(c):
    return (f"{str(c['dtype']).replace('torch.', '')}-H{c['H']}-B{c['B']}-{'proj' if c['proj'] else 'noproj'}-"
            f"{'rev' if c['reverse'] else 'fwd'}-{c['path']}")


def _run_case(c, monkeypatch):
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", c["path"])
    P = c["H"] // 3 + 1 if c["proj"] else 0
    sim_loader.launched_kernels()
    _check("cuda_sim", c["dtype"], (4, c["B"], c["H"], P, c["reverse"]))
    launched = " ".join(sim_loader.launched_kernels())
    assert _forward_kernel(c["path"], c["dtype"]) in launched, launched
    assert ("lstm_bwd_persistent" in launched) == (c["path"] != "per_step"), launched


@pytest.mark.parametrize("case", pairwise(FACTORS), ids=_case_id)
def test_matrix_pairwise(case, monkeypatch):
    _run_case(case, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", exhaustive(FACTORS), ids=_case_id)
def test_matrix_exhaustive(case, monkeypatch):
    _run_case(case, monkeypatch)


@pytest.mark.parametrize("path,dtype,proj,reverse", [("persistent", torch.bfloat16, 5, True),
                                                     ("persistent", torch.float16, 0, False),
                                                     ("persistent", torch.float32, 0, False),
                                                     ("persistent_fma", torch.bfloat16, 0, True),
                                                     ("per_step", torch.float16, 5, False)])
def test_schedules_agree_bit_for_bit(path, dtype, proj, reverse, monkeypatch):
    """Forward and backward through time (grid syncs between steps) under every schedule; B = 9 spans two
    n-tiles of the tensor-core kernel."""
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", path)
    _, a, _ = _inputs(3, 9, 21, proj, dtype, seed=4)
    assert_schedule_invariant(lambda: forward_backward(a, reverse))


def forward_backward(a, reverse):
    """lstm_layer on cuda_sim: the outputs and the gradients of their sum (the backward through time)."""
    live = [t for t in a if t is not None]
    with bigkernels.use_backend("cuda_sim"):
        outs = lstm_layer(*a[:4], w_hr=a[4], reverse=reverse)
        grads = torch.autograd.grad(sum(o.float().sum() for o in outs), live)
    return outs, grads


def test_auto_rule_falls_back_to_per_step(monkeypatch):
    """fp32, H = 1800: 14 units per block need 4*14*1800*4 B = 394 KiB > 227 KiB of shared memory."""
    ensure_backend("cuda_sim")
    monkeypatch.delenv("BIGKERNELS_LSTM_PATH", raising=False)
    gen = torch.Generator().manual_seed(0)
    H = 1800
    x, h, c = (torch.randn(s, generator=gen) for s in ((1, 1, 4 * H), (1, H), (1, H)))
    w = torch.randn(4 * H, H, generator=gen) / H ** 0.5
    sim_loader.launched_kernels()
    with torch.no_grad(), bigkernels.use_backend("cuda_sim"):
        y, _, cT = lstm_layer(x, h, c, w)
    assert "lstm_fwd_gates_step" in " ".join(sim_loader.launched_kernels())
    with bigkernels.use_backend("reference"):
        ry, _, rc = lstm_layer(x.double(), h.double(), c.double(), w.double())
    torch.testing.assert_close((y.double(), cT.double()), (ry, rc), rtol=1e-4, atol=1e-5)
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", "persistent")
    with pytest.raises(RuntimeError, match="lstm_layer"), torch.no_grad(), bigkernels.use_backend("cuda_sim"):
        lstm_layer(x, h, c, w)


def test_empty_sequence_and_batch():
    ensure_backend("cuda_sim")
    for T, B in ((0, 2), (3, 0)):
        x = torch.randn(T, B, 8, requires_grad=True)
        h, c = torch.randn(B, 2, requires_grad=True), torch.randn(B, 2, requires_grad=True)
        w = torch.randn(8, 2, requires_grad=True)
        with bigkernels.use_backend("cuda_sim"):
            y, hT, cT = lstm_layer(x, h, c, w)
        assert y.shape == (T, B, 2)
        (y.sum() + hT.sum() + cT.sum()).backward()
        if T == 0:
            torch.testing.assert_close((hT, cT), (h, c))
            torch.testing.assert_close((h.grad, c.grad), (torch.ones_like(h), torch.ones_like(c)))
            assert not w.grad.any()
            # the outputs are fresh tensors, never aliases of h0/c0 (opcheck's schema test)
            torch.library.opcheck(op("lstm_layer_sim"), (x, h, c, w, None, False, True))


def test_float64_is_refused_clearly():
    ensure_backend("cuda_sim")
    _, a, _ = _inputs(2, 1, 3, 0, torch.float64)
    with pytest.raises(bigkernels.BackendError, match="float64"), bigkernels.use_backend("cuda_sim"):
        lstm_layer(*a[:4])


@pytest.mark.parametrize("proj", [0, 2])
def test_opcheck(proj):
    ensure_backend("cuda_sim")
    _, a, _ = _inputs(3, 2, 4, proj, torch.float32)
    x, h, c, w, wr = a
    for train in (True, False):
        torch.library.opcheck(op("lstm_layer_sim"), (x, h, c, w, wr, True, train))
    y, hT, cT, gates, cs = op("lstm_layer_sim")(*(t.detach() if t is not None else None for t in a), False, True)
    gy, gh, gc = torch.randn_like(y), torch.randn_like(hT), torch.randn_like(cT)
    dt = [t.detach() if t is not None else None for t in (h, c, w, wr)]
    torch.library.opcheck(op("lstm_layer_backward_sim"), (gy, gh, gc, *dt, y, gates, cs, False))

