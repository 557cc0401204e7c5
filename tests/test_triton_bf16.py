"""The interpreter's bf16 `tl.dot` fix (bigkernels/testing/triton_bf16.py):
proved against torch's own bf16 matmul, and shown to stand down when the
installed Triton's dot is already right."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from bigkernels.testing import triton_bf16
from bigkernels.testing.tolerance import assert_close

pytest.importorskip("triton")
pytestmark = [pytest.mark.triton,
              pytest.mark.skipif(os.environ.get("TRITON_INTERPRET") != "1", reason="tests the interpreter")]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_KERNEL = textwrap.dedent("""
    import triton
    import triton.language as tl

    @triton.jit
    def matmul(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr, BK: tl.constexpr):
        i, j, k = tl.arange(0, M), tl.arange(0, N), tl.arange(0, BK)
        acc = tl.zeros((M, N), tl.float32)
        for s in range(0, K, BK):
            a = tl.load(a_ptr + i[:, None] * K + (s + k)[None, :])
            b = tl.load(b_ptr + (s + k)[:, None] * N + j[None, :])
            acc = tl.dot(a, b, acc)
        tl.store(c_ptr + i[:, None] * N + j[None, :], acc)
""")


def _load_kernel(tmp_path):
    import importlib.util

    path = tmp_path / "bf16_kernel.py"
    path.write_text(_KERNEL)  # triton.jit reads the function's source file
    spec = importlib.util.spec_from_file_location("bigkernels_test_bf16_kernel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.matmul


def test_bf16_dot_matches_torch_bf16_matmul(tmp_path):
    assert triton_bf16.install() and triton_bf16.active()
    matmul = _load_kernel(tmp_path)
    gen = torch.Generator().manual_seed(0)
    m, n, k = 32, 32, 64
    a64 = torch.randn(m, k, generator=gen, dtype=torch.float64)
    b64 = torch.randn(k, n, generator=gen, dtype=torch.float64)
    a, b = a64.bfloat16(), b64.bfloat16()
    c = torch.empty(m, n, dtype=torch.float32)
    matmul[(1,)](a, b, c, M=m, N=n, K=k, BK=32)
    ours = c.bfloat16()
    theirs = a @ b  # torch's own bf16 matmul (fp32 accumulation, bf16 result)
    assert_close(ours, a64 @ b64, theirs, name="bf16 tl.dot")
    # Same exact products and fp32 sums: at most one bf16 rounding step apart.
    assert (ours.float() - theirs.float()).abs().max().item() <= 2 ** -7 * theirs.float().abs().max().item()


_SUBPROCESS = textwrap.dedent("""
    import json, sys
    import torch
    sys.path.insert(0, sys.argv[1])
    from kernel import matmul
    from bigkernels.testing import triton_bf16
    from triton.runtime import interpreter
    builder = type(interpreter.interpreter_builder)
    original = builder.create_dot
    mode = sys.argv[2]
    if mode == "correct":  # pretend the installed Triton computes bf16 dots right
        triton_bf16._probe_dot_is_correct = lambda: True
        installed = triton_bf16.install()
    else:
        installed = False
    a = torch.randn(32, 32, generator=torch.Generator().manual_seed(0)).bfloat16()
    c = torch.empty(32, 32)
    matmul[(1,)](a, a, c, M=32, N=32, K=32, BK=32)
    err = (c - a.float() @ a.float()).abs().max().item()
    print(json.dumps({"installed": installed, "active": triton_bf16.active(),
                      "untouched": builder.create_dot is original, "error": err}))
""")


def _run_subprocess(tmp_path, mode):
    import json

    (tmp_path / "kernel.py").write_text(_KERNEL)
    script = tmp_path / "check.py"
    script.write_text(_SUBPROCESS)
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path), mode], env=env, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_stands_down_when_triton_dot_is_correct(tmp_path):
    out = _run_subprocess(tmp_path, "correct")
    assert out == {**out, "installed": False, "active": False, "untouched": True}


def test_without_the_fix_the_interpreter_is_wrong(tmp_path):
    """Why the fix exists (Triton 3.9.0): raw bf16 bit patterns multiplied. If a
    later Triton fixes it, the probe stands the patch down and this test says so."""
    out = _run_subprocess(tmp_path, "unpatched")
    assert not out["active"] and out["untouched"]
    if out["error"] < 1e-3:
        pytest.skip(f"this Triton's interpreter computes bf16 dots correctly (error {out['error']:.2g})")
    assert out["error"] > 1e3
