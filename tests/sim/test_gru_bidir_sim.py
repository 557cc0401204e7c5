"""gru_bidir_layer's CUDA path under the emulator: both directions of a
bidirectional GRU layer in one cooperative launch (grid halves, shared
grid_sync). The matrix pairwise (dtype x H x B x bias x T x path), forward and
backward against float64 with the tolerance rule; the one launch equals two
single-direction launches bit for bit; every schedule agrees bit for bit."""
import pytest
import torch

from bigkernels.backends import sim_loader
from bigkernels.ops._library import op
from tests.backends import ensure_backend
from tests.sim.pairwise import exhaustive, pairwise
from tests.sim.schedules import assert_schedule_invariant
from tests.sim.test_lstm_bidir_sim import outputs_and_grads
from tests.test_gru_bidir_layer import NAMES, OUTPUTS, gru_bidir_inputs, run_gru_bidir, run_gru_per_direction
from tests.test_lstm_layer import compare

pytestmark = pytest.mark.sim

FACTORS = dict(dtype=[torch.float32, torch.float16, torch.bfloat16], H=[13, 37, 150], B=[1, 3, 5],
               bias=[True, False], T=[3, 30], path=["persistent", "per_step"])
KERNELS = {"persistent": "gru_persistent", "per_step": "gru_step"}


def _case_id(c):
    return (f"{str(c['dtype']).replace('torch.', '')}-H{c['H']}-B{c['B']}-{'bias' if c['bias'] else 'nobias'}-"
            f"T{c['T']}-{c['path']}")


def _run_case(c, monkeypatch):
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", c["path"])
    sim_loader.launched_kernels()
    compare("cuda_sim", c["dtype"], gru_bidir_inputs(c["T"], c["B"], c["H"], c["bias"], c["dtype"]), run_gru_bidir,
            NAMES, OUTPUTS)
    launched = " ".join(sim_loader.launched_kernels())
    assert f"{KERNELS[c['path']]}<" in launched and ", true>" in launched, launched  # forward and backward ran


@pytest.mark.parametrize("case", pairwise(FACTORS), ids=_case_id)
def test_matrix_pairwise(case, monkeypatch):
    _run_case(case, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", exhaustive(FACTORS), ids=_case_id)
def test_matrix_exhaustive(case, monkeypatch):
    _run_case(case, monkeypatch)


@pytest.mark.parametrize("path,dtype,bias", [("persistent", torch.float32, True), ("persistent", torch.bfloat16, False),
                                             ("per_step", torch.float16, True)])
def test_one_launch_equals_two_single_direction_launches(path, dtype, bias, monkeypatch):
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", path)
    _, a, _ = gru_bidir_inputs(6, 3, 21, bias, dtype, seed=7)
    for o, t in zip(outputs_and_grads(run_gru_bidir, a), outputs_and_grads(run_gru_per_direction, a)):
        assert torch.equal(o, t)


@pytest.mark.parametrize("path,dtype", [("persistent", torch.float16), ("per_step", torch.float32)])
def test_schedules_agree_bit_for_bit(path, dtype, monkeypatch):
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", path)
    _, a, _ = gru_bidir_inputs(3, 9, 21, True, dtype, seed=4)
    assert_schedule_invariant(lambda: outputs_and_grads(run_gru_bidir, a))


@pytest.mark.parametrize("bias", [True, False])
def test_opcheck(bias):
    ensure_backend("cuda_sim")
    _, a, _ = gru_bidir_inputs(3, 2, 4, bias, torch.float32)
    for train in (True, False):
        torch.library.opcheck(op("gru_bidir_layer_sim"), (*a, train))
    d = [t.detach() if t is not None else None for t in a]
    y, hT, ws = op("gru_bidir_layer_sim")(*d, True)
    grads = (torch.randn_like(y), torch.randn_like(hT))
    torch.library.opcheck(op("gru_bidir_layer_backward_sim"), (*grads, *d[1:], y, ws))
