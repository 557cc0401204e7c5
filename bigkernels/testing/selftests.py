"""Self-test registry: each kernel family registers, from its op module, how
to check its op on one backend against the float64 reference with the
tolerance rule. `python -m bigkernels selftest` runs every registered check;
the trust-on-first-use cache (bigkernels/backends/trust.py) runs the one
matching a call before `auto` first uses a cuda or triton kernel.

    register_selftest("bias_act", bias_act, inputs=make_inputs,
                      dtypes=(torch.float32, ...), cases=[{"activation": "gelu", ...}],
                      features=lambda x, bias, *rest: {...})

inputs(seed, **case) -> (args, kwargs): float64 CPU tensors; every floating
tensor is cast to the tested dtype and device, and gets a gradient.
features(*dispatch_args, **dispatch_kwargs) -> case: the case that matches a
routed call (the router sees the op's dispatch arguments)."""
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from .tolerance import FLOOR, max_error


@dataclass(frozen=True)
class SelfTest:
    op: str
    fn: Callable
    inputs: Callable
    dtypes: tuple
    cases: tuple
    features: Optional[Callable] = None
    backward: bool = True


@dataclass
class Result:
    op: str
    backend: str
    device: str
    dtype: str
    case: dict
    status: str = "pass"  # pass | FAIL | skip
    checks: list = field(default_factory=list)  # [(output name, error, bound)]
    error: str = ""
    seconds: float = 0.0

    @property
    def passed(self):
        return self.status != "FAIL"

    def summary(self):
        worst = max(self.checks, key=lambda c: c[1] / c[2] if c[2] else 0.0, default=None)
        return self.error or (f"{worst[0]}: {worst[1]:.3g} <= {worst[2]:.3g}" if worst else "")


_SELFTESTS: dict = {}


def register_selftest(op, fn, *, inputs, dtypes, cases, features=None, backward=True):
    if not callable(fn) or not callable(inputs):
        raise TypeError("register_selftest: fn and inputs must be callables")
    if not dtypes or not cases:
        raise ValueError(f"register_selftest({op!r}): dtypes and cases must be non-empty")
    _SELFTESTS[op] = SelfTest(op, fn, inputs, tuple(dtypes), tuple(cases), features, backward)


def selftests() -> dict:
    return dict(_SELFTESTS)


def case_for_call(op, args, kwargs):
    """The registered case matching a routed call, or None (no self-test known)."""
    spec = _SELFTESTS.get(op)
    if spec is None or spec.features is None:
        return None
    return spec.features(*args, **kwargs)


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def _cast(args, kwargs, dtype, device):
    leaves = []

    def cast(v):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            t = v.detach().to(device=device, dtype=dtype).requires_grad_()
            leaves.append(t)
            return t
        return v

    return [cast(a) for a in args], {k: cast(v) for k, v in kwargs.items()}, leaves


def _run(spec, backend, cast, backward, grad_seed):
    from ..backends import use_backend

    new_args, new_kwargs, leaves = cast
    with use_backend(backend):
        outs = _tensors(spec.fn(*new_args, **new_kwargs))
    grads = []
    differentiable = [o for o in outs if o.requires_grad]  # not integer outputs (indices, lengths)
    if backward and leaves and differentiable:
        gen = torch.Generator().manual_seed(grad_seed)
        gouts = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o) for o in differentiable]
        with use_backend(backend):
            grads = torch.autograd.grad(differentiable, leaves, gouts, allow_unused=True)
    return outs, list(grads)


def _bound(ours, ref, theirs, scale=1.0):
    # The tolerance rule (bigkernels/testing/tolerance.py): 2x torch's own error + a per-dtype floor.
    return max_error(ours, ref), 2.0 * max_error(theirs, ref) + FLOOR[ours.dtype] * scale


def run_check(op, backend, device, dtype, case, *, seed=0):
    """One registered check of `backend` on `device` (one dtype, one case)."""
    from ..backends import BackendError

    spec = _SELFTESTS[op]
    result = Result(op, backend, device, str(dtype).replace("torch.", ""), dict(case))
    start = time.perf_counter()
    try:
        args64, kwargs64 = spec.inputs(seed, **case)
        ours = _run(spec, backend, _cast(args64, kwargs64, dtype, device), spec.backward, seed + 1)
        ref = _run(spec, "reference", _cast(args64, kwargs64, torch.float64, "cpu"), spec.backward, seed + 1)
        # the tolerance baseline: torch on the CPU in the same dtype
        theirs = _run(spec, "torch", _cast(args64, kwargs64, dtype, "cpu"), spec.backward, seed + 1)
        for kind, o_list, r_list, t_list in (("out", ours[0], ref[0], theirs[0]), ("grad", ours[1], ref[1], theirs[1])):
            for i, (o, r, t) in enumerate(zip(o_list, r_list, t_list)):
                if o is None or r is None:
                    continue
                # gradients that sum over many elements (a bias grad) scale the floor
                scale = max(1.0, r.abs().max().item()) if kind == "grad" and r.numel() else 1.0
                err, bound = _bound(o.cpu(), r, t, scale)
                result.checks.append((f"{kind}{i}", err, bound))
                if not err <= bound or (torch.isnan(o).any() and not torch.isnan(r).any()):
                    result.status = "FAIL"
    except BackendError as exc:
        result.status, result.error = "skip", str(exc).split(": ", 1)[-1]
    except Exception as exc:  # a crashing kernel is a failed self-test, reported with its error
        result.status, result.error = "FAIL", f"{type(exc).__name__}: {exc}"
    result.seconds = time.perf_counter() - start
    return result


def randn64(gen, *shape, scale=1.0):
    """float64 CPU normal samples from `gen` (for the families' selftest inputs)."""
    return torch.randn(shape, generator=gen, dtype=torch.float64) * scale
