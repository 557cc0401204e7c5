"""Trust on first use with a real kernel: bias_act's Triton kernel, run by the
interpreter on CPU tensors (test-only switch), its self-test against the
float64 reference, an injected wrong kernel, and torch.compile."""
import warnings

import pytest
import torch

from bigkernels.backends import registry, router, trust
from bigkernels.backends.availability import triton_interpreted
from bigkernels.ops import bias_act
from bigkernels.ops._library import op
from tests.test_trust import on_cpu  # noqa: F401  (fixture)

pytestmark = [pytest.mark.triton, pytest.mark.skipif(not triton_interpreted(), reason="needs the interpreter")]


@pytest.fixture
def triton_first(on_cpu, monkeypatch):  # noqa: F811
    monkeypatch.setenv("BIGKERNELS_AUTOTUNE", "0")
    monkeypatch.setitem(router._AUTO_ORDER, ("bias_act", "cpu"), ("triton", "cpu", "torch"))
    return on_cpu


def _broken(monkeypatch):
    """The real Triton kernel, 0.05 off: what a miscompile on an unseen GPU looks like."""
    good = registry.impls("bias_act")["triton"]
    monkeypatch.setitem(registry._IMPLS["bias_act"], "triton",
                        registry.Impl("bias_act", "triton", lambda *a: op("bias_act_triton")(*a) + 0.05,
                                      good.supports, good.kernel))


def _args():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 6, 5, 7, generator=gen).half(), torch.randn(6, generator=gen).half()


def _chosen(x, b):
    return router.select("bias_act", "cpu", (x, b, None, 5, 0.01, 1), {}).backend


def test_interpreted_kernel_passes_its_selftest(triton_first):
    x, b = _args()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _chosen(x, b) == "triton"
    (key, failure), = trust._DECISIONS.items()
    assert key[:4] == ("bias_act", "triton", "cpu", torch.float16) and failure is None
    assert dict(key[4]) == {"activation": "gelu", "bias": True, "residual": False}


def test_wrong_kernel_falls_back_and_compile_uses_the_decision(triton_first, monkeypatch):
    _broken(monkeypatch)
    x, b = _args()
    with pytest.warns(RuntimeWarning, match=r"'triton' cannot serve.*self-test of bias_act on triton \(float16.*"
                                            r"gelu.*out0 error"):
        y = bias_act(x, b, activation="gelu")
    want = torch.nn.functional.gelu(x.float() + b.float()[:, None, None]).half()
    assert (y.float() - want.float()).abs().max() < 1e-2  # served by `cpu`, not the broken kernel

    # torch.compile traces the cached decision, without a graph break or a new self-test
    monkeypatch.setattr(trust, "run", lambda *a: pytest.fail("self-test while tracing"))
    compiled = torch.compile(lambda x, b: bias_act(x, b, activation="gelu"), backend="aot_eager", fullgraph=True)
    assert (compiled(x, b).float() - want.float()).abs().max() < 1e-2


def test_no_selftest_while_tracing_static_priority_applies(triton_first, monkeypatch):
    _broken(monkeypatch)
    monkeypatch.setattr(trust, "run", lambda *a: pytest.fail("self-test while tracing"))
    x, b = _args()
    compiled = torch.compile(lambda x, b: bias_act(x, b, activation="gelu"), backend="aot_eager", fullgraph=True)
    y = compiled(x, b)
    want = torch.nn.functional.gelu(x.float() + b.float()[:, None, None])
    # no decision cached: the static order's first backend (here the broken triton) was traced
    assert ((y.float() - want) - 0.05).abs().max() < 1e-2
    assert trust._DECISIONS == {}
