"""lstm_bidir_layer's CUDA path under the emulator: both directions of a
bidirectional layer in one cooperative launch (grid split in halves, one
grid_sync per step shared by both). Part 1's matrix (dtypes x hidden sizes
that are no warp/tile multiple x batch 1 and odd x projection x T small and
~30 x persistent/per-step path), forward and backward through time, against
the float64 reference with the tolerance rule; the one launch equals two
single-direction launches bit for bit; every schedule agrees bit for bit."""
import pytest
import torch

import bigkernels
from bigkernels.backends import sim_loader
from bigkernels.ops import lstm_bidir_layer
from bigkernels.ops._library import op
from tests.backends import ensure_backend
from tests.sim.pairwise import exhaustive, pairwise
from tests.sim.schedules import assert_schedule_invariant
from tests.sim.test_lstm_sim import _forward_kernel
from tests.test_lstm_bidir_layer import bidir_inputs, run_bidir, run_per_direction
from tests.test_lstm_layer import compare

pytestmark = pytest.mark.sim

# H=13: one unit per block (2 x 13 blocks); 150 > 132 SMs: two units per
# block, a ragged last block, 2 x 75 blocks co-resident (2 per SM on some SMs).
FACTORS = dict(dtype=[torch.float32, torch.float16, torch.bfloat16], H=[13, 37, 150], B=[1, 3, 5],
               proj=[False, True], T=[3, 30], path=["persistent", "persistent_fma", "per_step"])


def _case_id(c):
    return (f"{str(c['dtype']).replace('torch.', '')}-H{c['H']}-B{c['B']}-{'proj' if c['proj'] else 'noproj'}-"
            f"T{c['T']}-{c['path']}")


def _run_case(c, monkeypatch):
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", c["path"])
    T = c["T"]
    P = c["H"] // 3 + 1 if c["proj"] else 0
    sim_loader.launched_kernels()
    compare("cuda_sim", c["dtype"], bidir_inputs(T, c["B"], c["H"], P, c["dtype"]), run_bidir)
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


def outputs_and_grads(run, a):
    """run('cuda_sim', a)'s outputs and the gradients of every input tensor (fixed random output grads)."""
    live = [t for t in a if t is not None]
    outs = run("cuda_sim", a)
    gen = torch.Generator().manual_seed(5)
    gy = [torch.randn(t.shape, generator=gen).to(t.dtype) for t in outs]
    return list(outs) + list(torch.autograd.grad(outs, live, gy))


@pytest.mark.parametrize("path,dtype,P", [("persistent", torch.float32, 0), ("persistent", torch.bfloat16, 5),
                                          ("persistent_fma", torch.float16, 0), ("per_step", torch.float32, 5)])
def test_one_launch_equals_two_single_direction_launches(path, dtype, P, monkeypatch):
    """Forward and backward through time: the halves of the concurrent launch
    compute exactly what lstm_layer's single-direction launches do."""
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", path)
    _, a, _ = bidir_inputs(6, 3, 21, P, dtype, seed=7)
    for o, t in zip(outputs_and_grads(run_bidir, a), outputs_and_grads(run_per_direction, a)):
        assert torch.equal(o, t)


@pytest.mark.parametrize("path,dtype,P", [("persistent", torch.bfloat16, 5), ("persistent", torch.float32, 0),
                                          ("persistent_fma", torch.float16, 0), ("per_step", torch.float16, 5)])
def test_schedules_agree_bit_for_bit(path, dtype, P, monkeypatch):
    """Every schedule gives the same bits, forward and backward (forward runs
    the forward-direction half to its grid sync before the reverse half
    starts; random interleaves the halves' threads; warp_ahead one warp
    ahead); B = 9 spans two n-tiles of the tensor-core kernel."""
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", path)
    _, a, _ = bidir_inputs(3, 9, 21, P, dtype, seed=4)
    assert_schedule_invariant(lambda: outputs_and_grads(run_bidir, a))


@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_modules_bidirectional_match_torch(mode, monkeypatch):
    """bnn.LSTM (2 layers, proj_size) and bnn.GRU, bidirectional, on cuda_sim through lstm/gru_bidir_layer
    (the persistent kernels checked by name), against torch's module in float64 with the same weights."""
    ensure_backend("cuda_sim")
    monkeypatch.delenv("BIGKERNELS_LSTM_PATH", raising=False)
    from bigkernels import nn as bnn

    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True, **({"proj_size": 5} if mode == "LSTM" else {}))
    ref = getattr(torch.nn, mode)(6, 12, **kw).double()
    ours = getattr(bnn, mode)(6, 12, **kw)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(7, 3, 6, dtype=torch.float64)
    sim_loader.launched_kernels()
    with bigkernels.use_backend("cuda_sim"):
        y, h = ours(x.float())
    assert ("lstm_fwd_persistent<" if mode == "LSTM" else "gru_persistent<") in " ".join(sim_loader.launched_kernels())
    ry, rh = ref(x)
    torch.testing.assert_close((y.double(), *[t.double() for t in (h if mode == "LSTM" else (h,))]),
                               (ry, *(rh if mode == "LSTM" else (rh,))), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("P", [0, 2])
def test_opcheck(P):
    ensure_backend("cuda_sim")
    _, a, _ = bidir_inputs(3, 2, 4, P, torch.float32)
    for train in (True, False):
        torch.library.opcheck(op("lstm_bidir_layer_sim"), (*a, train))
    d = [t.detach() if t is not None else None for t in a]
    y, hT, cT, gates, cs = op("lstm_bidir_layer_sim")(*d, True)
    gy, gh, gc = torch.randn_like(y), torch.randn_like(hT), torch.randn_like(cT)
    torch.library.opcheck(op("lstm_bidir_layer_backward_sim"), (gy, gh, gc, *d[1:], y, gates, cs))


def test_empty_sequence_and_batch():
    ensure_backend("cuda_sim")
    for T, B in ((0, 2), (3, 0)):
        x = torch.randn(2, T, B, 8, requires_grad=True)
        h, c = torch.randn(2, B, 2, requires_grad=True), torch.randn(2, B, 2, requires_grad=True)
        w = torch.randn(2, 8, 2, requires_grad=True)
        with bigkernels.use_backend("cuda_sim"):
            y, hT, cT = lstm_bidir_layer(x, h, c, w)
        assert y.shape == (2, T, B, 2)
        (y.sum() + hT.sum() + cT.sum()).backward()
        if T == 0:
            torch.testing.assert_close((hT, cT), (h, c))
            torch.testing.assert_close((h.grad, c.grad), (torch.ones_like(h), torch.ones_like(c)))
            assert not w.grad.any()
