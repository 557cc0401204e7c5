"""The torch glue of the CUDA kernels (csrc/torch/*_cuda.cpp) is compiled
only by a CUDA build of torch, which CI lacks. Its CPU wheel still ships the
c10/cuda headers, so each glue file is syntax-checked here against them and
CUDA's runtime headers (plus a stand-in for one generated header)."""
import glob
import os
import shutil
import subprocess

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GLUE = sorted(glob.glob(os.path.join(ROOT, "csrc", "torch", "*_cuda.cpp")))


def _cuda_include():
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))), "include")
    for candidate in (path, "/usr/local/cuda/include"):
        if os.path.exists(os.path.join(candidate, "cuda_runtime_api.h")):
            return candidate
    return None


@pytest.mark.nvcc
@pytest.mark.parametrize("source", GLUE, ids=os.path.basename)
def test_cuda_glue_compiles(source):
    cuda_include = _cuda_include()
    if cuda_include is None:
        pytest.skip("CUDA headers not found")
    torch_include = os.path.join(os.path.dirname(torch.__file__), "include")
    cmd = ["g++", "-std=c++20", "-fsyntax-only", "-w", f"-I{os.path.join(ROOT, 'tests', 'cuda_glue_shim')}",
           f"-I{torch_include}", f"-I{os.path.join(torch_include, 'torch', 'csrc', 'api', 'include')}",
           f"-I{cuda_include}", f"-I{os.path.join(ROOT, 'csrc')}", source]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-4000:]
