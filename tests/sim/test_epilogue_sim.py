"""bias_act under cuda_sim beyond tests/test_epilogue.py (which runs the
whole matrix under cuda_sim through the router): every schedule agrees bit
for bit, on a subset of cases, and the emulator's controls behave."""
import pytest
import torch

import bigkernels
from bigkernels.ops import bias_act
from tests.backends import ensure_backend
from tests.sim.schedules import assert_schedule_invariant

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("shape", [(3, 6, 5, 9), (5000,)], ids=str)
def test_schedules_agree_bit_for_bit(dtype, shape):
    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=gen).to(dtype).requires_grad_()
    b = torch.randn(shape[1] if len(shape) > 1 else shape[0], generator=gen).to(dtype).requires_grad_()

    def run():
        with bigkernels.use_backend("cuda_sim"):
            y = bias_act(x, b, None, "gelu", channel_dim=1 if len(shape) > 1 else 0)
            (gx,) = torch.autograd.grad(y.sum(), x)
        return y, gx

    assert_schedule_invariant(run)


def test_multi_block_grid_matches_reference():
    """Enough elements for many blocks on both OS threads of the pool."""
    ensure_backend("cuda_sim")
    x = torch.randn(150_000, dtype=torch.float64)  # 147 blocks of 256 threads
    with bigkernels.use_backend("cuda_sim"):
        y = bias_act(x, None, None, "silu")
    torch.testing.assert_close(y, torch.nn.functional.silu(x), rtol=1e-12, atol=1e-12)


def test_bad_schedule_is_rejected():
    ensure_backend("cuda_sim")
    with pytest.raises(RuntimeError, match="out of range"):
        torch.ops.bigkernels_sim.set_schedule(9, 0)
