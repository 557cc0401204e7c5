"""One router for every op call: a forced backend serves the call or raises;
`auto` takes the first backend in the op's order that is available and can
serve the call, warning once when a faster one had to be skipped.

Plain Python over cached tables, so that torch.compile traces through it
without a graph break (the choice is made at trace time)."""
import warnings

import torch

from . import availability, measure, trust
from .registry import AUTO_EXCLUDED, impls, ops
from .selection import forced_backend

# auto's order per device type, overridable per op by the family (on the CPU
# the order comes from our own benchmarks: see bigkernels/bench/).
DEFAULT_AUTO_ORDER = {"cuda": ("cuda", "triton", "torch"), "cpu": ("cpu", "torch")}
_AUTO_ORDER: dict = {}
_WARNED: set = set()
_AVAILABLE_CACHE: dict = {}


class BackendError(RuntimeError):
    """A forced backend cannot serve a call, or no backend can."""


def set_auto_order(op: str, device_type: str, order):
    """`order` is a tuple of backend names, or a function of the call's
    arguments returning one (for shape-dependent CPU choices)."""
    if not callable(order):
        order = tuple(b for b in order if b not in AUTO_EXCLUDED)  # once, not per call
    _AUTO_ORDER[(op, device_type)] = order


def auto_order(op, device_type, args, kwargs):
    order = _AUTO_ORDER.get((op, device_type), DEFAULT_AUTO_ORDER.get(device_type, ("torch",)))
    if callable(order):
        order = order(*args, **kwargs)
        return tuple(b for b in order if b not in AUTO_EXCLUDED)
    return order  # filtered by set_auto_order


def _unavailable(impl, device_type):
    key = (impl.op, impl.backend, device_type)
    if key not in _AVAILABLE_CACHE:
        reason = availability.unavailable_reason(impl.backend, device_type)
        if reason is None and impl.kernel and impl.backend in ("cpu", "cuda"):
            if not availability.has_kernel(impl.kernel, device_type):
                reason = f"{impl.kernel} has no {device_type} kernel in this build"
        if reason is None and impl.backend == "cuda_sim" and impl.kernel:
            if not availability.has_kernel(impl.kernel, "cpu"):
                reason = f"{impl.kernel} is not built under the emulator"
        _AVAILABLE_CACHE[key] = reason
    return _AVAILABLE_CACHE[key]


def refresh():
    """(Re)compute availability of every registered impl on every device type,
    ahead of any call: torch.compile then traces only dict lookups. Called once
    the ops are defined and _C is loaded, and again after the emulator loads."""
    _AVAILABLE_CACHE.clear()
    for op in ops():
        for impl in impls(op).values():
            for device_type in DEFAULT_AUTO_ORDER:
                _unavailable(impl, device_type)


def _reason(impl, device_type, args, kwargs):
    reason = _unavailable(impl, device_type)
    if reason is None and impl.supports is not None:
        reason = impl.supports(*args, **kwargs)
    return reason


def _warn_once(op, backend, chosen, reason):
    key = (op, backend, reason)
    if key in _WARNED or torch.compiler.is_compiling():
        return
    _WARNED.add(key)
    warnings.warn(f"bigkernels.{op}: backend '{backend}' cannot serve this call ({reason}); using '{chosen}'",
                  RuntimeWarning, stacklevel=4)


def select(op, device_type, args, kwargs):
    table = impls(op)
    forced = forced_backend()
    if forced is not None:
        impl = table.get(forced)
        if impl is None:
            raise BackendError(f"bigkernels.{op}: the forced backend '{forced}' has no implementation of this op "
                               f"(implemented by: {', '.join(sorted(table))})")
        reason = _reason(impl, device_type, args, kwargs) or trust.check(impl, device_type, args, kwargs)
        if reason is not None:
            raise BackendError(f"bigkernels.{op}: the forced backend '{forced}' cannot serve this call: {reason}")
        return impl
    skipped, candidates = [], []
    for backend in auto_order(op, device_type, args, kwargs):
        impl = table.get(backend)
        if impl is None:
            continue
        # trust: a cuda/triton kernel's self-test on first use (cached; see trust.py)
        reason = _reason(impl, device_type, args, kwargs) or trust.check(impl, device_type, args, kwargs)
        if reason is None:
            candidates.append(impl)
            if not measure.wanted(device_type):
                break
        # Only a backend that is present here but cannot serve this call is
        # worth a warning; one that is absent was reported at import.
        elif not candidates and _unavailable(impl, device_type) is None:
            skipped.append((backend, reason))
    if candidates:
        for name, why in skipped:
            _warn_once(op, name, candidates[0].backend, why)
        # measured choice among the servable backends (static priority when off; see measure.py)
        return measure.choose(op, device_type, candidates, args, kwargs)
    raise BackendError(f"bigkernels.{op}: no backend can serve this call on {device_type} "
                       f"({'; '.join(f'{b}: {r}' for b, r in skipped) or 'none registered'})")


def dispatch(op, device_type, *args, **kwargs):
    return select(op, device_type, args, kwargs).fn(*args, **kwargs)
