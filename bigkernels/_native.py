"""Loads bigkernels._C, the C++ CPU (and, where built, CUDA) kernels.

The extension registers implementations for schemas that bigkernels.ops
defines in Python, so it is loaded after them. A missing extension, or one
built against another torch, never breaks `import bigkernels`: one warning
names the versions, and the `cpu`/`cuda` backends are marked unavailable.
"""
import importlib
import warnings

import torch

_STATE = {"loaded": False, "error": None, "build_info": {}}


def _build_info():
    try:
        from ._build_info import BUILD_INFO
    except ImportError:
        return {}
    return dict(BUILD_INFO)


def load():
    if _STATE["loaded"] or _STATE["error"]:
        return _STATE["loaded"]
    info = _build_info()
    _STATE["build_info"] = info
    built_for = info.get("torch_version")
    if built_for is None:
        _STATE["error"] = "bigkernels._C was not built (pip install --no-build-isolation -e .)"
    elif built_for != torch.__version__:
        _STATE["error"] = f"bigkernels._C was built against torch {built_for}, but torch {torch.__version__} is installed"
    else:
        try:
            # the ISA read now, not at the first routed call: that may come while torch.compile
            # traces, and Dynamo refuses to trace importlib
            _STATE["cpu_isa"] = importlib.import_module("bigkernels._C").cpu_isa()
            _STATE["loaded"] = True
        except ImportError as exc:
            _STATE["error"] = f"bigkernels._C failed to load: {exc}"
    if _STATE["error"]:
        warnings.warn(
            f"{_STATE['error']}; the cpu and cuda backends are unavailable, torch/reference/triton still work. "
            "Rebuild with: pip install --no-build-isolation -e .",
            RuntimeWarning,
            stacklevel=2,
        )
    return _STATE["loaded"]


def loaded():
    return _STATE["loaded"]


def error():
    return _STATE["error"]


def build_info():
    return dict(_STATE["build_info"])


def cpu_isa():
    """'avx512', 'avx2' or 'base': the clones the C++ CPU kernels run (None without _C)."""
    return _STATE["cpu_isa"] if _STATE["loaded"] else None  # fixed for the process (read once in C++ too)


def cuda_built():
    return bool(_STATE["loaded"] and _STATE["build_info"].get("cuda_built"))
