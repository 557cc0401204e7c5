"""Every .cu compiles with nvcc for sm_80 and sm_90a, through the CMake target."""
import os
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.nvcc
def test_every_cuda_source_compiles():
    build = os.path.join(ROOT, "build", "cuda")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    subprocess.run(["cmake", "-S", ROOT, "-B", build, *gen, "-DCMAKE_CUDA_ARCHITECTURES=80;90a"], check=True,
                   capture_output=True)
    out = subprocess.run(["cmake", "--build", build, "-j", "2"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
