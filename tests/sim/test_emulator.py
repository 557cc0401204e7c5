"""The SIMT emulator's own tests (C++ cases in tests/sim/csrc, one process
each): execution model, warp collectives, fragment layouts, the tensor-core
GEMM, and the four bug finders (race, uninitialised shared memory,
out of bounds through a guard page, deadlock), each against a seeded bug it must catch."""
import subprocess

import pytest

from tests.sim import build

pytestmark = pytest.mark.sim

CASES = [
    "indices", "barrier_reduce", "warp_ops", "atomics", "cooperative", "cp_async_wait", "cp_async_small_and_zfill",
    "layouts_isa_vs_cute", "layouts_hand_computed", "mma_f16", "mma_bf16", "mma_tf32", "ldmatrix_all",
    "gemm_edges_all_schedules", "gemm_256", "guard_in_bounds", "switch_cost",
    # seeded bugs: race, uninitialised shared memory, deadlock (each case asserts it is caught)
    "race_missing_barrier", "race_missing_cp_async_wait", "race_cp_async_stage_overwrite", "uninit_smem", "guard_oob", "smem_out_of_bounds",
    "deadlock_barrier", "deadlock_warp_mask", "deadlock_grid_sync", "mask_omits_caller", "mask_names_missing_lanes",
]


@pytest.fixture(scope="module")
def exe():
    return build.binary()


def _run(exe, case):
    # A deadlock must be reported, never hang: the timeout turns a hang into a failure.
    return subprocess.run([exe, case], capture_output=True, text=True, timeout=60)


def test_every_case_is_listed(exe):
    listed = set(subprocess.run([exe, "--list"], capture_output=True, text=True, check=True).stdout.split())
    assert listed == set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_case(exe, case):
    r = _run(exe, case)
    assert r.returncode == 0, f"{case}:\n{r.stdout}\n{r.stderr}"
