"""The emulator's test kernels compile with nvcc too (sm_80, sm_90a): every
device primitive's real PTX path (cp.async 4/8/16, ldmatrix x1/x2/x4 and
.trans, mma.sync f16/bf16/tf32, grid sync, the cooperative launch) is
compile-checked from the same source the emulator runs."""
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.sim.build import CSRC, TESTS


@pytest.mark.nvcc
def test_test_kernels_compile_with_nvcc():
    jobs = [(os.path.join(TESTS, f), arch) for f in ("kernels_sync.cu", "kernels_frag.cu") for arch in ("sm_80", "sm_90a")]
    with tempfile.TemporaryDirectory() as tmp:
        def nvcc(job):
            src, arch = job
            out = os.path.join(tmp, f"{os.path.basename(src)}.{arch}.o")
            return subprocess.run(["nvcc", "-std=c++17", f"-arch={arch}", f"-I{CSRC}", f"-I{TESTS}", "-c", src, "-o", out],
                                  capture_output=True, text=True)

        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(nvcc, jobs))
    for (src, arch), r in zip(jobs, results):
        assert r.returncode == 0, f"{src} ({arch}):\n{r.stderr[-4000:]}"
