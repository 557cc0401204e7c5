"""conv2d's cudnn path inside the cuda backend (bigkernels/ops/conv_path.py),
on the emulator: torch's CPU convolution stands in for cuDNN, the epilogue is
our CUDA kernel (bias_act.cu) under the emulator. Part 1's check (float64
reference, tolerance rule, forward and every gradient) over a covering array;
which path serves a call (forced, the fused kernels' domain, measured per
shape bucket and cached, each path trusted first)."""
import json
import os
import subprocess
import sys
import time

import pytest
import torch

import bigkernels
from bigkernels.backends import BackendError, measure, registry, sim_loader, trust
from bigkernels.ops import activation as acts
from bigkernels.ops import conv2d, conv_path
from bigkernels.ops._library import op
from bigkernels.ops.activation import ACTIVATIONS
from bigkernels.testing.tolerance import assert_close
from tests import test_conv_cuda_sim as sim_tests
from tests.backends import ensure_backend
from tests.test_conv import make_inputs, run

pytestmark = pytest.mark.sim

CL, NCHW = torch.channels_last, torch.contiguous_format
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the fused kernels cannot serve (the stem's C=3, C/groups=3) beside what they can (so the path is forced).
GEOMETRIES = {
    "stem-C3-s2": ((2, 3, 11, 10), (10, 3, 5, 5), 2, 2, 1, 1),
    "grouped-Cg3": ((2, 6, 7, 9), (8, 3, 3, 3), 1, (1, 0), (1, 2), 2),
    "3x3-C16": ((2, 16, 9, 7), (10, 16, 3, 3), 1, 1, 1, 1),
    "dw5": ((1, 4, 9, 8), (8, 1, 5, 5), 1, "same", 1, 4),
}
FACTORS = [list(ACTIVATIONS), list(GEOMETRIES), [torch.float32, torch.float16, torch.bfloat16], [NCHW, CL],
           [True, False], [True, False]]


@pytest.fixture(autouse=True)
def emulator(monkeypatch):
    ensure_backend("cuda_sim")
    for name, geometry in GEOMETRIES.items():
        monkeypatch.setitem(sim_tests.GEOMETRIES, name, geometry)


@pytest.mark.parametrize("row", sim_tests.covering_rows(FACTORS), ids=sim_tests._id)
def test_pairwise_against_reference(row):
    """Forced cudnn path, forward and gradients of x, weight, bias, residual
    (the activation's backward through our kernel, the rest cuDNN's)."""
    with conv_path.use_conv_path("cudnn"):
        sim_tests._check(*row)


def _launched(fn):
    sim_loader.launched_kernels()
    fn()
    return " ".join(sim_loader.launched_kernels())


def _fwd_bwd(geo, dtype, act="silu", fmt=CL):
    _, args, conv_args = make_inputs(GEOMETRIES[geo] + (fmt,), dtype)

    def fn():
        y = run("cuda_sim", *args, conv_args, act)
        torch.autograd.grad(y.sum(), args[:2])
    return fn


def test_forced_path_runs_cuDNN_and_our_epilogue_only():
    with conv_path.use_conv_path("cudnn"):
        launched = _launched(_fwd_bwd("3x3-C16", torch.float16))
    assert "bias_act_kernel" in launched  # forward epilogue and the activation's backward
    assert not any(k in launched for k in ("conv_fprop_kernel", "conv_dgrad_kernel", "conv_wgrad_kernel"))
    with conv_path.use_conv_path("fused"):
        assert "conv_fprop_kernel" in _launched(_fwd_bwd("3x3-C16", torch.float16))


@pytest.mark.parametrize("geo,dtype", [("stem-C3-s2", torch.float16), ("grouped-Cg3", torch.bfloat16),
                                       ("3x3-C16", torch.float32)])
def test_calls_the_fused_kernels_cannot_serve_stay_on_the_backend(geo, dtype):
    """C/groups not a multiple of 8, fp32 outside depthwise: served by the cudnn path, not refused."""
    launched = _launched(_fwd_bwd(geo, dtype))
    assert "bias_act_kernel" in launched and "conv_fprop_kernel" not in launched
    with conv_path.use_conv_path("fused"), pytest.raises(BackendError, match="forced to 'fused'"):
        _fwd_bwd(geo, dtype)()


def test_float64_is_refused_with_the_reason():
    x, w = torch.randn(1, 8, 6, 6, dtype=torch.float64), torch.randn(8, 8, 3, 3, dtype=torch.float64)
    with pytest.raises(BackendError, match="fp32/fp16/bf16"), bigkernels.use_backend("cuda_sim"):
        conv2d(x, w)


@pytest.mark.parametrize("fmt", [NCHW, CL], ids=["nchw", "cl"])
def test_op_saves_the_pre_activation_only_when_asked(fmt):
    """y = act(conv + bias + residual) and z = its argument, from one epilogue
    launch, in x's memory format; z is empty when the backward does not need it."""
    F = torch.nn.functional
    args64, args, conv_args = make_inputs(GEOMETRIES["grouped-Cg3"] + (fmt,), torch.bfloat16)
    x, w, b, r = (t.detach() for t in args)
    stride, padding, dilation, groups = conv_args
    call = (x, w, b, r, [stride] * 2, list(padding), list(dilation), groups, acts.code("gelu"), 0.01)
    y, z = op("conv2d_cudnn_sim")(*call, True)
    assert y.is_contiguous(memory_format=fmt) and z.is_contiguous(memory_format=fmt)
    ref_z = F.conv2d(*(t.detach() for t in args64[:3]), *conv_args) + args64[3].detach()
    their_z = F.conv2d(x, w, b, *conv_args) + r  # torch in bf16: the tolerance baseline
    assert_close(z, ref_z, their_z, name="z", scale=max(1.0, ref_z.abs().max().item()))
    assert_close(y, F.gelu(ref_z), F.gelu(their_z), name="y", scale=max(1.0, ref_z.abs().max().item()))
    y2, z2 = op("conv2d_cudnn_sim")(*call, False)
    assert z2.numel() == 0 and torch.equal(y2, y)


def test_opcheck():
    """conv2d_cudnn_sim as a custom op: schema, fake kernel, autograd (the
    composite backward), AOT dispatch; with and without the saved pre-activation."""
    _, args, conv_args = make_inputs(GEOMETRIES["grouped-Cg3"] + (CL,), torch.float16)
    stride, padding, dilation, groups = conv_args
    conv = ([stride] * 2, list(padding), list(dilation), groups)
    for act, save in (("silu", True), ("relu", False)):  # relu's backward reads y: nothing saved
        torch.library.opcheck(op("conv2d_cudnn_sim"), (*args, *conv, acts.code(act), 0.01, save))


def test_compiles_without_graph_breaks():
    """fullgraph through the router to conv2d_cudnn_sim (an fp32 stem: the cudnn path unforced), with gradients."""
    args64, args, conv_args = make_inputs(GEOMETRIES["stem-C3-s2"] + (CL,), torch.float32)
    sim_tests.compiled_matches_eager(
        lambda x, w, b, r: conv2d(x, w, b, *conv_args, activation="hardswish", residual=r), args)


def test_environment_variable_forces_the_path():
    code = "import bigkernels.ops.conv_path as p; print(p.forced_path())"
    env = {k: v for k, v in os.environ.items() if k != "BIGKERNELS_BACKEND"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "BIGKERNELS_CONV_PATH": "cudnn"},
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "cudnn"
    bad = subprocess.run([sys.executable, "-c", code], env={**env, "BIGKERNELS_CONV_PATH": "cublas"},
                         capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode != 0 and "BIGKERNELS_CONV_PATH" in bad.stderr
    with pytest.raises(ValueError, match="conv path must be one of"):
        conv_path.use_conv_path("gemm")


# ------------------------------------------------------------ measured choice
@pytest.fixture
def measured(monkeypatch, tmp_path):
    """Measurement (and, where asked, trust) on CPU tensors for the emulated
    backend, as tests/test_trust.py does for fake backends; `paths` is the
    backend's {path: fn} table, which a test slows down or breaks."""
    monkeypatch.setenv("BIGKERNELS_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("BIGKERNELS_AUTOTUNE", raising=False)
    monkeypatch.delenv("BIGKERNELS_SELFTEST", raising=False)
    monkeypatch.setitem(measure._STATE, "devices", ("cuda", "cpu"))
    trust.clear_memory()
    measure.clear_memory()
    conv_path.clear_memory()
    yield registry.impls("conv2d")["cuda_sim"].fn.paths
    trust.clear_memory()
    measure.clear_memory()
    conv_path.clear_memory()


DELAY = 0.2  # seconds added to one path: well above the emulated kernels' run-to-run noise on a loaded machine


def _slow(fn, seconds):
    def slow(*args):
        time.sleep(seconds)
        return fn(*args)
    return slow


def _path_of(x_shape, *, grad=False, dtype=torch.float16):
    """Which path served one fp16 call of the C16 geometry at x_shape."""
    (n, c, h, w), ws = x_shape, GEOMETRIES["3x3-C16"][1]
    x = torch.randn(n, c, h, w, dtype=dtype).contiguous(memory_format=CL).requires_grad_(grad)
    call = lambda: conv2d(x, torch.randn(ws, dtype=dtype), padding=1, activation="relu")  # noqa: E731
    call()  # the decision (and the timing of both paths, if any)
    return "fused" if "conv_fprop_kernel" in _launched(call) else "cudnn"


def _measure_files(root):
    return [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "measure")) for f in fs]


def test_the_slower_path_loses_and_the_choice_is_cached_per_bucket(measured, tmp_path, monkeypatch):
    fused, cudnn = measured["fused"], measured["cudnn"]
    monkeypatch.setitem(measured, "fused", _slow(fused, DELAY))  # the static first choice, made slower
    with bigkernels.use_backend("cuda_sim"):
        assert _path_of((2, 16, 9, 7)) == "cudnn"
        (path,) = _measure_files(tmp_path)
        record = json.load(open(path))
        assert record["choice"] == "cudnn" and record["seconds"]["fused"] >= DELAY
        assert conv_path.MEASURE_OP in path
        monkeypatch.setitem(measured, "fused", fused)
        monkeypatch.setitem(measured, "cudnn", _slow(cudnn, DELAY))  # now cudnn is the slow one ...
        assert _path_of((2, 16, 10, 8)) == "cudnn"  # ... but the same bucket is not timed again
        measure.clear_memory()
        assert _path_of((2, 16, 9, 7)) == "cudnn"  # a new process: the disk answers
        assert len(_measure_files(tmp_path)) == 1
        assert _path_of((2, 16, 17, 7)) == "fused"  # a new bucket is timed: the faster path wins
        assert _path_of((2, 16, 9, 7), grad=True) == "fused"  # training calls: their own bucket, fwd + bwd timed
        assert len(_measure_files(tmp_path)) == 3
        monkeypatch.setenv("BIGKERNELS_AUTOTUNE", "0")
        monkeypatch.setitem(measured, "fused", _slow(fused, DELAY))
        assert _path_of((2, 16, 33, 7)) == "fused"  # measurement off: the static priority


def test_a_forced_or_unservable_call_is_not_measured(measured, monkeypatch):
    monkeypatch.setattr(measure, "time_call", lambda *a: pytest.fail("timed"))
    with bigkernels.use_backend("cuda_sim"):
        with conv_path.use_conv_path("fused"):
            assert _path_of((2, 16, 9, 7)) == "fused"
        assert _path_of((2, 16, 9, 7), dtype=torch.float32) == "cudnn"  # the fused kernels serve fp16/bf16


def test_a_path_that_fails_its_selftest_is_never_measured(measured, tmp_path, monkeypatch):
    """Trust on first use per path: cudnn is the fastest here but wrong, so its
    self-test (the conv2d self-test with path=cudnn) fails and fused serves."""
    monkeypatch.setattr(trust, "CHECKED_BACKENDS", trust.CHECKED_BACKENDS + ("cuda_sim",))
    monkeypatch.setitem(trust._STATE, "devices", ("cuda", "cpu"))
    cudnn = measured["cudnn"]
    monkeypatch.setitem(measured, "fused", _slow(measured["fused"], DELAY))
    monkeypatch.setitem(measured, "cudnn", lambda *a: cudnn(*a) + 0.25)
    with bigkernels.use_backend("cuda_sim"):
        assert _path_of((2, 16, 9, 7)) == "fused"
    decisions = {dict(k[4])["path"]: v for k, v in trust._DECISIONS.items() if k[0] == "conv2d"}
    assert decisions["fused"] is None and "self-test of conv2d on cuda_sim" in decisions["cudnn"]
    assert not _measure_files(tmp_path)  # one trusted path: nothing to measure
    monkeypatch.setitem(measured, "cudnn", cudnn)
    trust.clear_memory()
    for d, _, fs in os.walk(os.path.join(tmp_path, "trust")):
        for f in fs:
            os.remove(os.path.join(d, f))
    with bigkernels.use_backend("cuda_sim"):
        assert _path_of((2, 16, 9, 7)) == "cudnn"  # trusted now, and faster
