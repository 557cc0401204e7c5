"""Every family's registered self-test maps a routed call back to its case:
running a case and reading the case from the call the router sees (what
trust-on-first-use does on a GPU) gives the case back, for every case."""
import pytest
import torch

from bigkernels.backends import router, use_backend
from bigkernels.testing import selftests


def _routed_calls(monkeypatch, op):
    calls = []
    original = router.select

    def recording(name, device_type, args, kwargs):
        if name == op:  # the features as trust reads them: at routing time (conv2d's path reads a forced path)
            calls.append(selftests.case_for_call(op, args, kwargs))
        return original(name, device_type, args, kwargs)

    monkeypatch.setattr(router, "select", recording)
    return calls


CASES = [(op, case) for op, spec in sorted(selftests.selftests().items()) for case in spec.cases]


@pytest.mark.parametrize("op,case", CASES, ids=[f"{op}-{'-'.join(f'{k}={v}' for k, v in c.items())}"
                                                for op, c in CASES])
def test_features_of_the_routed_call_give_the_case_back(monkeypatch, op, case):
    spec = selftests.selftests()[op]
    assert spec.features is not None, f"{op}: no features(): trust on first use cannot check its calls"
    calls = _routed_calls(monkeypatch, op)
    args, kwargs = spec.inputs(0, **case)
    cast = [a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args]
    kwargs = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in kwargs.items()}
    with use_backend("torch"), torch.no_grad():
        spec.fn(*cast, **kwargs)
    assert calls, f"{op}: the self-test's function never reached the router for {op}"
    for found in calls:
        assert found is not None, f"{op}: features() declined a call its own self-test makes"
        # every feature read from the call is the case's value (or the inputs' default for it)
        defaults = {k: v.default for k, v in __import__("inspect").signature(spec.inputs).parameters.items()
                    if k != "seed"}
        for key, value in found.items():
            assert value == case.get(key, defaults.get(key)), (op, key, value, case)
