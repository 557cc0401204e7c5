"""The router: forcing, auto fallback with one warning, errors, info."""
import os
import shutil
import subprocess
import sys
import warnings

import pytest
import torch

import bigkernels
from bigkernels.backends import BackendError, register, registry, router
from bigkernels.ops import bias_act

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_use_backend_is_context_manager_and_setter():
    assert bigkernels.backends.forced_backend() is None
    with bigkernels.use_backend("torch"):
        assert bigkernels.backends.forced_backend() == "torch"
        with bigkernels.use_backend("reference"):
            assert bigkernels.backends.forced_backend() == "reference"
        assert bigkernels.backends.forced_backend() == "torch"
    assert bigkernels.backends.forced_backend() is None
    bigkernels.use_backend("cpu")
    assert bigkernels.backends.forced_backend() == "cpu"


@pytest.mark.parametrize("name,error", [("cudnn", ValueError), (3, TypeError)])
def test_use_backend_rejects_unknown(name, error):
    with pytest.raises(error, match="backend must be"):
        bigkernels.use_backend(name)


def test_forced_backend_that_cannot_serve_raises():
    with bigkernels.use_backend("cuda"), pytest.raises(BackendError, match="forced backend 'cuda' cannot serve"):
        bias_act(torch.randn(3), activation="relu")


@pytest.fixture
def toy_op():
    """A throwaway op with a fast backend that refuses odd sizes."""
    calls = []
    register("toy", "cpu", supports=lambda x: "odd sizes unsupported" if x.numel() % 2 else None)(
        lambda x: calls.append("cpu") or x)
    register("toy", "torch")(lambda x: calls.append("torch") or x)
    router.refresh()
    yield calls
    registry._IMPLS.pop("toy")
    router.refresh()


def test_auto_falls_back_and_warns_once(toy_op):
    router.dispatch("toy", "cpu", torch.zeros(2))
    with pytest.warns(RuntimeWarning, match="backend 'cpu' cannot serve this call \\(odd sizes unsupported\\); using 'torch'"):
        router.dispatch("toy", "cpu", torch.zeros(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        router.dispatch("toy", "cpu", torch.zeros(5))
    assert toy_op == ["cpu", "torch", "torch"]
    with bigkernels.use_backend("cpu"), pytest.raises(BackendError, match="odd sizes unsupported"):
        router.dispatch("toy", "cpu", torch.zeros(3))


def test_auto_never_picks_reference():
    assert router.select("bias_act", "cpu", (torch.zeros(2),), {}).backend == "cpu"


def test_environment_variable_forces_backend():
    code = "import bigkernels; print(bigkernels.backends.forced_backend())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "BIGKERNELS_BACKEND": "torch"},
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "torch"
    bad = subprocess.run([sys.executable, "-c", code], env={**os.environ, "BIGKERNELS_BACKEND": "nope"},
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "BIGKERNELS_BACKEND" in bad.stderr


def test_import_without_native_extension_warns_and_works(tmp_path):
    """A copy of the package without _C: one warning naming the problem; the
    torch and reference backends still serve the op."""
    shutil.copytree(os.path.join(ROOT, "bigkernels"), tmp_path / "bigkernels",
                    ignore=shutil.ignore_patterns("*.so", "_build_info.py", "__pycache__"))
    # An editable install's meta-path finder would serve _C from the real
    # checkout: drop it so the copy is alone, as a build without _C would be.
    code = ("import sys, warnings, torch\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
            "warnings.simplefilter('always')\n"
            "with warnings.catch_warnings(record=True) as w:\n    import bigkernels\n"
            "print(sum('not built' in str(x.message) for x in w))\n"
            "print(bigkernels.backends()['backends']['cpu']['cpu'])\n"
            "print(bigkernels.ops.bias_act(torch.tensor([-1.0, 2.0]), activation='relu').tolist())\n")
    env = {k: v for k, v in os.environ.items() if k != "BIGKERNELS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "1" and "not built" in lines[1] and lines[2] == "[0.0, 2.0]"


def test_info_lists_ops_and_backends():
    info = bigkernels.backends()
    assert info["backends"]["cpu"]["cpu"] is None
    assert info["ops"]["bias_act"]["torch"]["cpu"] is None
    out = subprocess.run([sys.executable, "-m", "bigkernels", "info"], capture_output=True, text=True, cwd=ROOT,
                         check=True).stdout
    assert "bias_act" in out and "torch" in out and "triton" in out
