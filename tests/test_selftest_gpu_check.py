"""`python -m bigkernels gpu-check OUTDIR`: on this CPU-only machine it says
there is no GPU, runs the CPU selftest and exits non-zero; the build decision
and the step plan for a GPU machine are checked as functions."""
import json
import os
import subprocess
import sys

import pytest
import torch

from bigkernels import gpu_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU path")
def test_without_gpu_says_so_runs_cpu_selftest_and_fails(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bigkernels", "gpu-check", str(tmp_path / "out")], cwd=ROOT,
                          capture_output=True, text=True, timeout=180,
                          env={k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no CUDA GPU" in proc.stdout
    selftest = json.loads((tmp_path / "out" / "selftest.json").read_text())
    assert selftest["passed"] and {r["backend"] for r in selftest["results"]} >= {"cpu", "torch"}
    summary = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert summary["gpu"] is None and [s["step"] for s in summary["steps"]] == ["selftest"]
    assert os.path.getsize(summary["steps"][0]["log"]) > 0


@pytest.mark.parametrize("loaded,info,expect", [
    (False, {}, "not loaded"),
    (True, {"cuda_built": False}, "without CUDA"),
    (True, {"cuda_built": True, "cuda_arch_list": "8.0"}, "built for 8.0, not 9.0"),
    (True, {"cuda_built": True, "cuda_arch_list": "8.0;9.0a"}, None),
    (True, {"cuda_built": True, "cuda_arch_list": "9.0+PTX"}, None),
    (True, {"cuda_built": True, "cuda_arch_list": None}, None),  # built on this GPU for its own arch
])
def test_needs_build(loaded, info, expect):
    reason = gpu_check.needs_build(loaded, info, 9, 0)
    assert (reason is None) if expect is None else (expect in reason)


def test_step_plan(tmp_path):
    out = str(tmp_path)
    names = [s[0] for s in gpu_check.steps(out, build_reason="stale", arch="9.0a")]
    assert names == ["build", "info", "selftest", "tests", "bench"]
    build = gpu_check.steps(out, build_reason="stale", arch="9.0a")[0]
    assert build[2]["TORCH_CUDA_ARCH_LIST"] == "9.0a"
    plan = dict((n, argv) for n, argv, _ in gpu_check.steps(out))
    assert "build" not in plan and "--quick" in plan["bench"] and ["-m", "gpu"] == plan["tests"][4:6]
    assert "--full" in dict((n, a) for n, a, _ in gpu_check.steps(out, full=True))["bench"]
    assert "tests" not in dict((n, a) for n, a, _ in gpu_check.steps(out, source_tree=False))
    assert gpu_check.arch_flag(9, 0) == "9.0a" and gpu_check.arch_flag(8, 6) == "8.6"


def test_cli_lists_gpu_check():
    from bigkernels import cli

    with pytest.raises(SystemExit) as exc:
        cli.main(["gpu-check"])  # OUTDIR is required
    assert exc.value.code == 2


def test_info_step_writes_its_json_apart_from_the_log(tmp_path):
    name, argv, env = gpu_check.steps(str(tmp_path))[0]
    record = gpu_check._run_step(name, argv, env, str(tmp_path))
    assert name == "info" and record["returncode"] == 0
    info = json.loads((tmp_path / "info.json").read_text())
    assert {"versions", "backends", "ops"} <= set(info)
