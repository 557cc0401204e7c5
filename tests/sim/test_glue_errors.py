"""The emulator's reports reach Python through the cuda_sim glue as
exceptions naming the kernel, and the process survives them: an out-of-bounds
write on a guard-page tensor, a barrier deadlock."""
import pytest
import torch

from tests.backends import ensure_backend

pytestmark = pytest.mark.sim


def test_out_of_bounds_write_raises_with_kernel_name():
    ensure_backend("cuda_sim")
    with pytest.raises(RuntimeError, match=r"invalid memory access .* in kernel .*seeded_oob_kernel .*thread \("):
        torch.ops.bigkernels_sim.seeded_bug(0, 1000)


def test_deadlock_raises_with_kernel_name_and_threads():
    ensure_backend("cuda_sim")
    with pytest.raises(RuntimeError, match=r"deadlock in kernel .*seeded_deadlock_kernel.*thread \(32,0,0\)"):
        torch.ops.bigkernels_sim.seeded_bug(1, 64)


def test_emulator_still_works_after_errors():
    ensure_backend("cuda_sim")
    for which in (0, 1):
        with pytest.raises(RuntimeError):
            torch.ops.bigkernels_sim.seeded_bug(which, 100)
    import bigkernels
    from bigkernels.ops import bias_act

    x = torch.randn(4, 8)
    with bigkernels.use_backend("cuda_sim"):
        torch.testing.assert_close(bias_act(x, None, None, "relu"), torch.relu(x))
