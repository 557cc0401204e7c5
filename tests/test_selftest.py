"""`python -m bigkernels selftest`: the registry, the table, the JSON, and
that a wrong or crashing kernel fails (injected through a throwaway op)."""
import json
import os
import subprocess
import sys
import types

import pytest
import torch

from bigkernels import selftest
from bigkernels.backends import register, registry, router
from bigkernels.testing import selftests
from bigkernels.testing.selftests import register_selftest, run_check

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_cli_covers_cpu_torch_reference_and_writes_json(tmp_path):
    out = tmp_path / "selftest.json"
    proc = subprocess.run([sys.executable, "-m", "bigkernels", "selftest", "--json", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(out.read_text())
    # its time is reported, not asserted (a loaded machine is not a failure): ~3 s on a quiet 2-core box
    assert data["passed"] and data["seconds"] > 0
    rows = data["results"]
    assert {r["backend"] for r in rows if r["op"] == "bias_act"} == {"cpu", "torch", "reference"}
    assert {r["dtype"] for r in rows} == {"float32", "float16", "bfloat16", "float64"}
    specs = selftests.selftests()
    # every family's ops, each on our C++ kernels, torch and the reference
    assert {r["op"] for r in rows} == set(specs)
    for op in ("attention", "lstm_layer", "gru_layer", "conv2d", "bn_act"):
        assert {r["backend"] for r in rows if r["op"] == op} == {"cpu", "torch", "reference"}, op
    for r in rows:
        names = [c["output"] for c in r["checks"]]
        wants_grad = specs[r["op"]].backward
        assert "out0" in names and (any(n.startswith("grad") for n in names) or not wants_grad), r
        assert all(c["error"] <= c["bound"] for c in r["checks"])
    assert "bias_act" in proc.stdout and "passed, 0 failed" in proc.stdout


@pytest.fixture
def toy(monkeypatch):
    """An op `toy_scale` (y = 2x) whose `cpu` kernel is whatever the test sets."""
    kernel = {"fn": lambda x: 2 * x}
    register("toy_scale", "cpu")(lambda x: kernel["fn"](x))
    register("toy_scale", "torch")(lambda x: 2 * x)
    register("toy_scale", "reference")(lambda x: (2 * x.double()).to(x.dtype))
    router.refresh()

    def public(x):
        return router.dispatch("toy_scale", x.device.type, x)

    register_selftest("toy_scale", public, inputs=lambda seed, **c: ((torch.randn(64, dtype=torch.float64),), {}),
                      dtypes=(torch.float32,), cases=[{}])
    yield kernel
    registry._IMPLS.pop("toy_scale")
    selftests._SELFTESTS.pop("toy_scale")
    router.refresh()


def test_correct_kernel_passes(toy):
    result = run_check("toy_scale", "cpu", "cpu", torch.float32, {})
    assert result.status == "pass" and [c[0] for c in result.checks] == ["out0", "grad0"]


def test_wrong_kernel_fails_with_error_against_bound(toy):
    toy["fn"] = lambda x: 2 * x * (1 + 1e-3)  # 0.1 % off: far beyond fp32's floor
    result = run_check("toy_scale", "cpu", "cpu", torch.float32, {})
    assert result.status == "FAIL"
    name, err, bound = result.checks[0]
    assert name == "out0" and err > bound


def test_crashing_kernel_fails_with_its_error(toy):
    def crash(x):
        raise RuntimeError("illegal memory access")

    toy["fn"] = crash
    result = run_check("toy_scale", "cpu", "cpu", torch.float32, {})
    assert result.status == "FAIL" and "illegal memory access" in result.error


def test_unservable_case_is_skipped_not_failed(toy):
    registry._IMPLS["toy_scale"]["cpu"] = registry.Impl("toy_scale", "cpu", lambda x: 2 * x,
                                                        supports=lambda x: "no fp32 here")
    result = run_check("toy_scale", "cpu", "cpu", torch.float32, {})
    assert result.status == "skip" and "no fp32 here" in result.error and result.passed


def test_main_exit_code_and_table_report_a_failure(toy, tmp_path, capsys):
    toy["fn"] = lambda x: x
    code = selftest.main(types.SimpleNamespace(json=str(tmp_path / "r.json")))
    out = capsys.readouterr().out
    assert code == 1
    line = next(ln for ln in out.splitlines() if ln.startswith("toy_scale") and " cpu " in ln)
    assert "FAIL" in line and "<=" in line
    data = json.loads((tmp_path / "r.json").read_text())
    assert not data["passed"]


def test_register_selftest_validates():
    with pytest.raises(TypeError, match="callables"):
        register_selftest("x", None, inputs=lambda s: None, dtypes=(torch.float32,), cases=[{}])
    with pytest.raises(ValueError, match="non-empty"):
        register_selftest("x", lambda: None, inputs=lambda s: None, dtypes=(), cases=[{}])


def test_case_for_call_maps_routed_arguments():
    x = torch.zeros(2, 3)
    case = selftests.case_for_call("bias_act", (x, None, x, 5, 0.01, 1), {})
    assert case == {"activation": "gelu", "bias": False, "residual": True}
