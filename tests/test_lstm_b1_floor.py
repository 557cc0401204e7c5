"""benchmarks/lstm_b1_floor.py's memory probe builds and measures (docs/lstm.md,
"The batch-1 floor"): a committed number must come from a script that runs."""
import importlib.util
import os
import shutil
import subprocess
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = os.path.join(ROOT, "benchmarks", "probes", "l2_stream.c")

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc with OpenMP")


def _floor_module():
    spec = importlib.util.spec_from_file_location("lstm_b1_floor", os.path.join(ROOT, "benchmarks", "lstm_b1_floor.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_probe_times_a_step_and_more_bytes_take_longer():
    floor = _floor_module()
    small = floor.stream_step_us(4096, 1, iters=200, repeats=3)
    large = floor.stream_step_us(4 << 20, 1, iters=20, repeats=3)  # 4 MiB: past any core's L2
    assert 0 < small < large


def test_probe_rejects_bad_arguments():
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "l2_stream")
        subprocess.run(["gcc", "-O2", "-march=native", "-fopenmp", PROBE, "-o", exe], check=True)
        for args in ([], ["100", "1", "10"], ["4096", "0", "10"]):
            run = subprocess.run([exe, *args], capture_output=True, text=True)
            assert run.returncode == 2 and run.stderr
