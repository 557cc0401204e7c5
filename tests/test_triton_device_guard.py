"""Every Triton-backed op runs its launches under a guard that makes the
tensors' CUDA device current (Triton launches on the current device). No
GPU here: FakeTensors on cuda:1 stand in for the call, and the guard's
device switch is recorded instead of made."""
import contextlib

import torch
from torch._subclasses.fake_tensor import FakeTensorMode

from bigkernels.triton import _op


def test_the_guard_switches_to_the_first_tensors_device(monkeypatch):
    entered, seen = [], []

    @contextlib.contextmanager
    def fake_device(device):
        entered.append(str(device))
        yield

    monkeypatch.setattr(torch.cuda, "device", fake_device)
    guarded = _op.on_tensor_device(lambda *args, scale=1.0: seen.append((len(args), scale)))
    with FakeTensorMode():
        x = torch.empty(2, device="cuda:1")
    guarded(3, x, scale=2.0)
    assert entered == ["cuda:1"] and seen == [(2, 2.0)]
    guarded(torch.empty(2))  # a CPU tensor: no CUDA device is touched
    assert entered == ["cuda:1"] and len(seen) == 2


def test_the_guard_keeps_the_signature_custom_ops_read():
    def op(x: torch.Tensor, alpha: float, flag: bool = False) -> torch.Tensor:
        return x

    import inspect

    assert inspect.signature(_op.on_tensor_device(op)) == inspect.signature(op)
