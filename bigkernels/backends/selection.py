"""The backend the user asked for: `use_backend(name)` (a context manager that
is also a global setter) or the BIGKERNELS_BACKEND environment variable.
`Forcing` and `forced_from_environment` serve other forced choices too
(conv2d's path, ops/conv_path.py)."""
import os

from .registry import BACKENDS

_STATE = {"forced": None}


def validate_choice(name, choices, what):
    """None for "auto" (or None), else `name` if it is one of `choices`; errors name `what`."""
    if name is None or name == "auto":
        return None
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str (one of auto, {', '.join(choices)}), got {type(name).__name__}")
    if name not in choices:
        raise ValueError(f"{what} must be one of auto, {', '.join(choices)}; got {name!r}")
    return name


def _validate(name):
    return validate_choice(name, BACKENDS, "backend")


def forced_backend():
    """The forced backend name, or None for `auto`."""
    return _STATE["forced"]


class Forcing:
    """A forced choice, kept in `state["forced"]`: `with Sub(name): ...`
    restores the previous one on exit; a bare `Sub(name)` call sets it
    globally. Subclasses set `state` and `validate`."""

    state: dict
    validate = staticmethod(_validate)

    def __init__(self, name):
        self._name = self.validate(name)
        self._previous = self.state["forced"]
        self.state["forced"] = self._name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.state["forced"] = self._previous
        return False


class use_backend(Forcing):
    """Force a backend for every op: `with use_backend("cpu"): ...` restores the
    previous choice on exit; a bare `use_backend("cpu")` call sets it globally.
    `use_backend("auto")` (or None) returns to automatic selection."""

    state = _STATE


def forced_from_environment(variable, validate):
    """The validated value of an environment variable (None when unset); a bad value raises naming it."""
    try:
        return validate(os.environ.get(variable) or None)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{variable}: {exc}") from None


_STATE["forced"] = forced_from_environment("BIGKERNELS_BACKEND", _validate)
