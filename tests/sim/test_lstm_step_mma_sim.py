"""The per-step fp16/bf16 LSTM forward on tensor cores (csrc/cuda/lstm/lstm_step_mma.cu)
under the emulator: forward (training, with the saved gates the backward through time consumes, and
inference) and backward against the float64 reference with the tolerance rule; every schedule agrees
bit for bit; the plan takes it for fp16/bf16 whenever the per-step path runs.

Shapes: H not a multiple of the 8-unit tile (20, 36, 100; a block with padding units), batch 1, odd
batches (5, 9 > 8: two n8 tiles; 37 > 32: a second block along the batch), the copy width of each row
(P % 8 == 0: 16-byte cp.async, P % 4: 8 bytes, P % 2: 4 bytes, odd P: plain loads), and P = 300 > 4
stages x 64 (the cp.async ring wraps)."""
import pytest
import torch

import bigkernels
from bigkernels.backends import sim_loader
from bigkernels.ops import lstm_layer
from bigkernels.ops._library import op
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend
from tests.sim.schedules import assert_schedule_invariant
from tests.sim.test_lstm_sim import forward_backward
from tests.test_lstm_layer import _check, _inputs

pytestmark = pytest.mark.sim

KERNEL = "lstm_fwd_step_mma<"

# (T, B, H, proj_size or 0, reverse)
SHAPES = [(3, 1, 20, 0, False),     # one n8 tile, 3 blocks (the last with 4 padding units); 8-byte copies
          (3, 5, 36, 0, True),      # 8-byte copies, reverse
          (2, 9, 100, 0, False),    # two n8 tiles, 2 K chunks (the last ragged)
          (2, 37, 20, 0, False),    # two blocks along the batch
          (3, 5, 40, 0, False),     # 16-byte copies
          (3, 9, 36, 13, True),     # projection (P = 13: odd, plain loads)
          (2, 3, 20, 10, False),    # projection, 4-byte copies
          (2, 3, 300, 0, True)]     # 5 K chunks over 4 stages: the ring wraps


def _id(shape):
    T, B, H, P, rev = shape
    return f"T{T}-B{B}-H{H}-P{P}-{'rev' if rev else 'fwd'}"


def _launched():
    return " ".join(sim_loader.launched_kernels())


@pytest.fixture
def per_step(monkeypatch):
    ensure_backend("cuda_sim")
    monkeypatch.setenv("BIGKERNELS_LSTM_PATH", "per_step")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=_id)
def test_training_forward_and_backward(per_step, dtype, shape):
    """Training: y, h_T, c_T and, through the saved gates and cell states, every gradient."""
    sim_loader.launched_kernels()
    _check("cuda_sim", dtype, shape)
    launched = _launched()
    assert KERNEL in launched and "lstm_fwd_gates_step" not in launched, launched
    assert "lstm_bwd_gates_step" in launched, launched


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("shape", [SHAPES[1], SHAPES[2], SHAPES[5]], ids=_id)
def test_inference_matches_training_and_reference(per_step, dtype, shape):
    """Without saved gates (train=False) the forward is the same kernel minus the stores: bit-equal
    outputs, within the tolerance rule of the float64 reference."""
    T, B, H, P, reverse = shape
    a64, a, at = _inputs(T, B, H, P, dtype)
    with torch.no_grad():
        with bigkernels.use_backend("cuda_sim"):
            sim_loader.launched_kernels()
            inf = lstm_layer(*a[:4], w_hr=a[4], reverse=reverse)
            assert KERNEL in _launched()
        with bigkernels.use_backend("reference"):
            ref = lstm_layer(*a64[:4], w_hr=a64[4], reverse=reverse)
        with bigkernels.use_backend("torch"):
            theirs = lstm_layer(*at[:4], w_hr=at[4], reverse=reverse)
    with bigkernels.use_backend("cuda_sim"):
        train = lstm_layer(*a[:4], w_hr=a[4], reverse=reverse)
    for name, o, t, r, th in zip(("y", "h_T", "c_T"), inf, train, ref, theirs):
        assert torch.equal(o, t.detach()), name
        assert_close(o, r, th, name=f"{name} inference")


@pytest.mark.parametrize("dtype,shape", [(torch.float16, (3, 9, 36, 13, True)),
                                         (torch.bfloat16, (2, 37, 100, 0, False)),
                                         (torch.float16, (2, 3, 300, 0, False))],
                         ids=["fp16-proj-rev", "bf16-B37", "fp16-ring"])
def test_schedules_agree_bit_for_bit(per_step, dtype, shape):
    T, B, H, P, reverse = shape
    _, a, _ = _inputs(T, B, H, P, dtype, seed=3)
    sim_loader.launched_kernels()
    forward_backward(a, reverse)
    assert KERNEL in _launched()
    assert_schedule_invariant(lambda: forward_backward(a, reverse))


def test_auto_takes_it_where_the_weights_do_not_fit(monkeypatch):
    """fp16, H = 2048: 16 units per block need 4*16*2048*2 B = 256 KiB > 227 KiB (FMA slice; the mma
    slice is larger still), so the plan runs per-step, on tensor cores."""
    ensure_backend("cuda_sim")
    monkeypatch.delenv("BIGKERNELS_LSTM_PATH", raising=False)
    T, B, H, P, reverse = 1, 2, 2048, 0, False
    a64, a, at = _inputs(T, B, H, P, torch.float16)
    with torch.no_grad():
        with bigkernels.use_backend("cuda_sim"):
            sim_loader.launched_kernels()
            ours = lstm_layer(*a[:4])
            launched = _launched()
        with bigkernels.use_backend("reference"):
            ref = lstm_layer(*a64[:4])
        with bigkernels.use_backend("torch"):
            theirs = lstm_layer(*at[:4])
    assert KERNEL in launched and "persistent" not in launched, launched
    for name, o, r, th in zip(("y", "h_T", "c_T"), ours, ref, theirs):
        assert_close(o, r, th, name=name)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_opcheck(per_step, dtype):
    _, a, _ = _inputs(3, 5, 20, 7, dtype)
    for train in (True, False):
        sim_loader.launched_kernels()
        torch.library.opcheck(op("lstm_layer_sim"), (*a, True, train))
        assert KERNEL in _launched()
