"""Trust on first use and measured `auto`, on the CPU: fake backends with
injected failures and timings, the on-disk cache, the switches, and
torch.compile. The checks normally run on CUDA tensors only; the fixture
widens them to CPU tensors (a test-only switch)."""
import json
import os
import threading
import time
import warnings

import pytest
import torch

import bigkernels
from bigkernels.backends import BackendError, cache, measure, register, registry, router, trust
from bigkernels.testing import selftests
from bigkernels.testing.selftests import register_selftest


@pytest.fixture
def on_cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("BIGKERNELS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BIGKERNELS_SELFTEST", raising=False)
    monkeypatch.delenv("BIGKERNELS_AUTOTUNE", raising=False)
    monkeypatch.setitem(trust._STATE, "devices", ("cuda", "cpu"))
    monkeypatch.setitem(measure._STATE, "devices", ("cuda", "cpu"))
    monkeypatch.setattr(router, "_WARNED", set())
    trust.clear_memory()
    measure.clear_memory()
    yield tmp_path / "cache"
    trust.clear_memory()
    measure.clear_memory()


@pytest.fixture
def toy(on_cpu):
    """Op `toy_trust` (y = 2x): a `triton` kernel the test controls, then torch.
    `calls` counts triton kernel calls (self-test and measurement included)."""
    state = {"fn": lambda x: 2 * x, "calls": 0, "delay": 0.0}

    def triton_impl(x):
        state["calls"] += 1
        time.sleep(state["delay"])
        return state["fn"](x)

    register("toy_trust", "triton")(triton_impl)
    register("toy_trust", "torch")(lambda x: 2 * x)
    register("toy_trust", "reference")(lambda x: (2 * x.double()).to(x.dtype))
    router.set_auto_order("toy_trust", "cpu", ("triton", "torch"))
    router.refresh()
    register_selftest("toy_trust", lambda x: router.dispatch("toy_trust", x.device.type, x),
                      inputs=lambda seed: ((torch.randn(32, dtype=torch.float64),), {}),
                      dtypes=(torch.float32,), cases=[{}], features=lambda x: {})
    yield state
    registry._IMPLS.pop("toy_trust")
    router._AUTO_ORDER.pop(("toy_trust", "cpu"))
    selftests._SELFTESTS.pop("toy_trust")
    router.refresh()


def _select(x):
    return router.select("toy_trust", "cpu", (x,), {}).backend


def _files(root, kind):
    return [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, kind)) for f in fs]


def test_failed_selftest_falls_back_warns_once_and_is_cached(toy, on_cpu):
    toy["fn"] = lambda x: 2 * x + 1e-3  # wrong by far more than fp32's floor
    x = torch.randn(100)
    with pytest.warns(RuntimeWarning, match=r"backend 'triton' cannot serve.*self-test of toy_trust on triton "
                                            r"\(float32.*out0 error .* > "):
        assert _select(x) == "torch"
    calls = toy["calls"]
    assert calls >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _select(torch.randn(7)) == "torch"  # same op/dtype/features: no new test, no new warning
    assert toy["calls"] == calls
    (path,) = _files(on_cpu, "trust")
    record = json.load(open(path))
    assert "out0 error" in record["failure"] and record["key"]["dtype"] == "torch.float32"
    trust.clear_memory()  # a new process: the disk answers, the kernel is not run again
    assert _select(x) == "torch" and toy["calls"] == calls


def test_passing_selftest_trusts_the_kernel(toy, on_cpu, monkeypatch):
    monkeypatch.setenv("BIGKERNELS_AUTOTUNE", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _select(torch.randn(10)) == "triton"
    assert toy["calls"] >= 1
    (path,) = _files(on_cpu, "trust")
    assert json.load(open(path))["failure"] is None


def test_crashing_kernel_is_named_with_its_error(toy, monkeypatch):
    monkeypatch.setenv("BIGKERNELS_AUTOTUNE", "0")

    def crash(x):
        raise RuntimeError("CUDA error: an illegal instruction was encountered")

    toy["fn"] = crash
    with pytest.warns(RuntimeWarning, match="toy_trust on triton.*illegal instruction"):
        assert _select(torch.randn(4)) == "torch"


def test_forced_backend_that_fails_its_selftest_raises(toy):
    toy["fn"] = lambda x: -x
    with bigkernels.use_backend("triton"), pytest.raises(BackendError, match="forced backend 'triton'.*self-test"):
        router.dispatch("toy_trust", "cpu", torch.randn(3))


def test_selftest_switch_off(toy, monkeypatch):
    monkeypatch.setenv("BIGKERNELS_SELFTEST", "0")
    monkeypatch.setenv("BIGKERNELS_AUTOTUNE", "0")
    toy["fn"] = lambda x: -x
    assert _select(torch.randn(3)) == "triton" and toy["calls"] == 0


def test_measured_auto_picks_the_fastest_and_caches_per_bucket(toy, on_cpu, monkeypatch):
    toy["delay"] = 0.002  # triton (first in the static order) is 2 ms slower per call
    assert _select(torch.randn(1000)) == "torch"
    calls = toy["calls"]
    assert _select(torch.randn(1024)) == "torch" and toy["calls"] == calls  # same bucket: no timing
    toy["delay"] = 0.0
    measure.clear_memory()
    assert _select(torch.randn(1000)) == "torch" and toy["calls"] == calls  # the disk remembers
    assert _select(torch.randn(1025)) in ("triton", "torch") and toy["calls"] > calls  # new bucket: timed
    assert len(_files(on_cpu, "measure")) == 2
    monkeypatch.setenv("BIGKERNELS_AUTOTUNE", "0")
    assert _select(torch.randn(5000)) == "triton"  # static priority


def test_measurement_never_picks_a_failing_kernel(toy, monkeypatch):
    toy["fn"] = lambda x: 2 * x + 1  # would be fastest (no delay) but is wrong
    with pytest.warns(RuntimeWarning, match="self-test"):
        assert _select(torch.randn(64)) == "torch"


def test_bucket_rounds_shapes_and_keeps_flags():
    a = measure.bucket((torch.zeros(3, 1000), None, 5, 0.1), {})
    assert a == measure.bucket((torch.zeros(4, 1024), None, 5, 0.7), {})
    assert a != measure.bucket((torch.zeros(4, 1025), None, 5, 0.1), {})
    assert a != measure.bucket((torch.zeros(4, 1000), None, 6, 0.1), {})
    assert a != measure.bucket((torch.zeros(4, 1000, dtype=torch.float16), None, 5, 0.1), {})
    assert measure.bucket(([1, 1], (3, 4)), {}) == ((1, 1), (3, 4))  # strides, paddings: exact, not rounded
    assert measure.bucket(([1, 1],), {}) != measure.bucket(([2, 2],), {})


def test_cache_writes_are_atomic_under_races(tmp_path, monkeypatch):
    monkeypatch.setenv("BIGKERNELS_CACHE_DIR", str(tmp_path))
    path = cache.path_for("trust", "cpu", "op", {"k": 1})
    big = {"failure": "x" * 100_000}  # large enough that a torn write would be visible
    torn = []

    def writer():
        for _ in range(20):
            cache.write(path, big)

    def reader():
        for _ in range(200):
            if os.path.exists(path) and cache.read(path) != big:
                torn.append(1)

    threads = [threading.Thread(target=f) for f in (writer, writer, writer, reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not torn and cache.read(path) == big
    assert os.listdir(os.path.dirname(path)) == [os.path.basename(path)]  # no temp files left


def test_cache_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("BIGKERNELS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache.cache_dir() == os.path.join(str(tmp_path), "bigkernels")
    monkeypatch.setenv("BIGKERNELS_CACHE_DIR", "/somewhere")
    assert cache.cache_dir() == "/somewhere"


def test_unwritable_cache_costs_only_the_caching(toy, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("BIGKERNELS_CACHE_DIR", str(blocker / "sub"))  # under a file: cannot be created
    monkeypatch.setenv("BIGKERNELS_AUTOTUNE", "0")
    assert _select(torch.randn(3)) == "triton"


def test_nothing_runs_during_cuda_graph_capture(toy, monkeypatch):
    """While a CUDA graph is captured: no self-test, no timing; the cached
    decision applies, else the static priority."""
    capturing = {"on": False}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_current_stream_capturing", lambda: capturing["on"])
    toy["fn"] = lambda x: 2 * x + 1
    capturing["on"] = True
    with monkeypatch.context() as m:
        m.setattr(trust, "run", lambda *a: pytest.fail("self-test during capture"))
        m.setattr(measure, "time_call", lambda *a: pytest.fail("timing during capture"))
        assert _select(torch.randn(8)) == "triton"  # nothing decided yet: static priority
        assert trust._DECISIONS == {} and measure._CHOICES == {}
    capturing["on"] = False
    with pytest.warns(RuntimeWarning, match="self-test"):
        assert _select(torch.randn(8)) == "torch"  # decided outside capture
    capturing["on"] = True
    with monkeypatch.context() as m:
        m.setattr(trust, "run", lambda *a: pytest.fail("self-test during capture"))
        assert _select(torch.randn(8)) == "torch"  # the cached decision applies


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode], ids=["no_grad", "inference_mode"])
def test_selftest_runs_with_gradients_whatever_the_callers_mode(toy, monkeypatch, context):
    monkeypatch.setenv("BIGKERNELS_AUTOTUNE", "0")
    with context(), warnings.catch_warnings():
        warnings.simplefilter("error")  # a self-test broken by the caller's mode would warn and fall back
        assert _select(torch.randn(8)) == "triton"
    assert list(trust._DECISIONS.values()) == [None]
