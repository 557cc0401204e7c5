"""Trust on first use: before a `cuda` or `triton` kernel first serves an
(op, dtype, feature set) on this GPU model / driver / torch / Triton /
bigkernels combination, its registered self-test (bigkernels/testing/
selftests.py: one small call, forward and backward, against the float64
reference; bias_act's is 420 elements, and 60 of them take 0.3 s on our
2-core CI machine) must pass. A failure is a reason the router sees: `auto` falls
back to the next backend and warns once; a forced backend raises.

Decisions live in memory (a dict lookup per call, so torch.compile traces
through) and on disk (bigkernels/backends/cache.py). Nothing runs while
torch.compile traces or a CUDA graph is captured: the cached decision, or
none (the static priority), applies. BIGKERNELS_SELFTEST=0 turns it off."""
import os

import torch

from . import cache

# Backends whose kernels are checked, and the device types where that happens.
# Tests widen DEVICES to ("cuda", "cpu") to exercise the logic with the
# Triton interpreter and fake backends on CPU tensors.
CHECKED_BACKENDS = ("cuda", "triton")
_STATE = {"devices": ("cuda",), "running": False}
_DECISIONS: dict = {}  # (op, backend, device, dtype, features) -> None (trusted) or the failure


def enabled() -> bool:
    return os.environ.get("BIGKERNELS_SELFTEST", "1") != "0"


def busy() -> bool:
    """Nothing may run now: tracing for torch.compile, or capturing a CUDA graph."""
    if torch.compiler.is_compiling():
        return True
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def _first_tensor(args, kwargs):
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            return a
    return None


def call_key(impl, device_type, args, kwargs, extra=None):
    """(op, backend, device, dtype, features) for a routed call, or None when
    this call is not checked (backend, device, no floating tensor, no self-test).
    extra: features to override (an op's alternative code path, e.g. conv2d's)."""
    if impl.backend not in CHECKED_BACKENDS or device_type not in _STATE["devices"]:
        return None
    from ..testing.selftests import case_for_call

    x = _first_tensor(args, kwargs)
    case = case_for_call(impl.op, args, kwargs)
    if x is None or case is None:
        return None
    if extra:
        case = {**case, **extra}
    return (impl.op, impl.backend, str(x.device), x.dtype, tuple(sorted(case.items())))


def check(impl, device_type, args, kwargs, extra=None):
    """None if the kernel may serve this call, else why not (its self-test failed)."""
    # first what needs no call: the cpu and torch backends (every CPU call) are never checked
    if impl.backend not in CHECKED_BACKENDS or device_type not in _STATE["devices"] or _STATE["running"]:
        return None
    now_busy = busy()  # while tracing, only dict lookups below (no environment reads)
    if not now_busy and not enabled():
        return None
    key = call_key(impl, device_type, args, kwargs, extra)
    if key is None:
        return None
    if key in _DECISIONS:
        return _DECISIONS[key]
    if now_busy:
        return None  # no decision yet, and none may be made now: the static priority applies
    _DECISIONS[key] = _decide(key)
    return _DECISIONS[key]


def _decide(key):
    op, backend, device, dtype, features = key
    disk_key = {"backend": backend, "dtype": str(dtype), "features": dict(features)}
    path = cache.path_for("trust", device, op, disk_key)
    record = cache.read(path)
    if record is not None and record.get("key") == disk_key:
        return record["failure"]
    failure = run(op, backend, device, dtype, dict(features))
    cache.write(path, {"key": disk_key, "failure": failure, "environment": cache.environment(device)})
    return failure


def run(op, backend, device, dtype, case):
    """Run the self-test now (outside any no_grad/inference/autocast context of the caller)."""
    from ..testing.selftests import run_check

    _STATE["running"] = True
    try:
        with torch.inference_mode(False), torch.enable_grad(), \
                torch.autocast(device.split(":")[0], enabled=False):
            result = run_check(op, backend, device, dtype, case)
    finally:
        _STATE["running"] = False
    if result.status != "FAIL":
        return None
    what = f"{op} on {backend} ({str(dtype).replace('torch.', '')}, {case})"
    if result.error:
        return f"self-test of {what} failed: {result.error}"
    bad = [f"{n} error {e:.3g} > {b:.3g}" for n, e, b in result.checks if not e <= b]
    return f"self-test of {what} failed: {'; '.join(bad) or 'NaN in the output'}"


def clear_memory():
    """Forget in-memory decisions (the disk cache stays)."""
    _DECISIONS.clear()
