"""Ahead-of-time compile of every Triton kernel for real GPU targets, on a
machine without a GPU (CI), and the resource table of the resulting cubins.

Each Triton module under bigkernels/triton/ declares its configs in a
module-level `AOT_CONFIGS` list of plain dicts (no import of this package
needed, so the kernel layer stays below the tooling):

    dict(name="bias_act_bf16_gelu_fwd", kernel=_bias_act_kernel,
         signature={"x_ptr": "*bf16", ..., "ACT": "constexpr"},
         constexprs={"ACT": 5, ...}, num_warps=4, num_stages=3, pinned=True)

`pinned=True` marks the configs CI compiles (the ones tests and launches
use); the committed script (benchmarks/triton_aot.py) compiles all of them.
Compiling needs the real `triton.jit` functions, so it never runs under
TRITON_INTERPRET=1: `run_in_subprocess` unsets it."""
from .compiler import TARGETS, CompileResult, compile_config, compile_configs, run_in_subprocess
from .registry import discover
from .resources import render_table, static_table

__all__ = ["TARGETS", "CompileResult", "compile_config", "compile_configs", "discover", "render_table",
           "run_in_subprocess", "static_table"]
