"""The C++ CPU kernels' lower ISA clones (AVX2, baseline) on a machine that
would pick AVX-512: BIGKERNELS_CPU_ISA caps the choice, and the kernels with
explicit per-ISA copies (attention's float32 lanes kernels, the LSTM team
kernel, the epilogue, max pooling, batch norm) run their reference tests again in a subprocess."""
import os
import subprocess
import sys

import pytest

import bigkernels._native as native
from tests.backends import ensure_backend

RANK = {"base": 0, "avx2": 1, "avx512": 2}
TESTS = [
    "tests/test_attention.py::test_cpu_kernel_matches_reference",
    "tests/test_attention.py::test_dropout_float32_matches_reference",
    "tests/test_attention.py::test_late_first_visible_key_with_very_negative_scores",
    "tests/test_attention.py::test_fully_masked_rows_are_zero_with_zero_gradient",
    "tests/test_attention_varlen.py",
    "tests/test_lstm_layer.py::test_cpu_team_kernel_matches_reference",
    "tests/test_lstm_layer.py::test_cpu_team_kernel_same_bits_on_any_thread_count",
    "tests/test_pool.py::test_cpu_kernel_equals_torch_forward_and_backward",
    "tests/test_conv_bn.py::test_dtypes_layouts_modes",
    "tests/test_conv_bn.py::test_activations_and_optional_inputs",
]


@pytest.mark.parametrize("isa", ["avx2", "base"])
def test_lower_isa_clones_match_reference(isa):
    ensure_backend("cpu")
    native_isa = native.cpu_isa()
    if RANK[native_isa] <= RANK[isa]:
        pytest.skip(f"this CPU's best ISA is {native_isa}: the main run already covers {isa}")
    env = dict(os.environ, BIGKERNELS_CPU_ISA=isa)
    probe = subprocess.run([sys.executable, "-c", "import bigkernels._native as n; n.load(); print(n.cpu_isa())"],
                           env=env, capture_output=True, text=True, check=True)
    assert probe.stdout.split()[-1] == isa, probe.stdout + probe.stderr
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS],
                         env=env, capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout, run.stdout[-2000:]
