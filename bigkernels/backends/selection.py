"""The backend the user asked for: `use_backend(name)` (a context manager that
is also a global setter) or the BIGKERNELS_BACKEND environment variable."""
import os

from .registry import BACKENDS

_STATE = {"forced": None}


def _validate(name):
    if name is None or name == "auto":
        return None
    if not isinstance(name, str):
        raise TypeError(f"backend must be a str (one of auto, {', '.join(BACKENDS)}), got {type(name).__name__}")
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of auto, {', '.join(BACKENDS)}; got {name!r}")
    return name


def forced_backend():
    """The forced backend name, or None for `auto`."""
    return _STATE["forced"]


class use_backend:
    """Force a backend for every op: `with use_backend("cpu"): ...` restores the
    previous choice on exit; a bare `use_backend("cpu")` call sets it globally.
    `use_backend("auto")` (or None) returns to automatic selection."""

    def __init__(self, name):
        self._name = _validate(name)
        self._previous = _STATE["forced"]
        _STATE["forced"] = self._name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _STATE["forced"] = self._previous
        return False


def _from_environment():
    value = os.environ.get("BIGKERNELS_BACKEND")
    if value:
        try:
            _STATE["forced"] = _validate(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"BIGKERNELS_BACKEND: {exc}") from None


_from_environment()
