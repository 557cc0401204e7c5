"""Compile declared Triton configs to cubin for sm_80 / sm_90 without a GPU.

triton.compile(ASTSource(fn, signature, constexprs), target=GPUTarget(...))
runs the whole pipeline (TTIR -> TTGIR -> LLVM -> PTX -> ptxas -> cubin) on
the host. A config that does not lower, or needs more shared memory than the
target has, fails here (CI or the committed script), not on a user's first
call: Triton itself only checks shared memory when the kernel is loaded."""
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from .registry import aligned_args

TARGETS = (80, 90)
# Largest shared memory one block may use (opt-in), bytes: A100 163 KB,
# sm_86/89 99 KB, H100 227 KB (CUDA C Programming Guide, compute capabilities table).
MAX_SHARED = {80: 166912, 86: 101376, 89: 101376, 90: 232448}


@dataclass
class CompileResult:
    name: str
    module: str
    arch: int
    num_warps: int
    num_stages: int
    seconds: float
    shared: int = 0
    error: str = ""
    cubin: bytes = field(default=b"", repr=False)

    def to_json(self):
        out = asdict(self)
        out.pop("cubin")
        return out


def _check_real_triton(kernel, name):
    from triton.runtime.jit import JITFunction

    if not isinstance(kernel, JITFunction):
        raise RuntimeError(f"{name}: the kernel is a {type(kernel).__name__}, not a JITFunction: AOT compile cannot "
                           "run under TRITON_INTERPRET=1 (use bigkernels.aot.run_in_subprocess)")


def compile_config(config, arch):
    """One config for one target (e.g. 80 for sm_80). Errors are returned, not raised."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    start = time.perf_counter()
    result = CompileResult(config["name"], config.get("module", ""), arch, config.get("num_warps", 4),
                           config.get("num_stages", 3), 0.0)
    try:
        _check_real_triton(config["kernel"], config["name"])
        names = list(config["signature"])
        attrs = {(names.index(a),): [["tt.divisibility", 16]] for a in aligned_args(config)}
        src = ASTSource(config["kernel"], dict(config["signature"]), dict(config["constexprs"]), attrs)
        compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32),
                                  options={"num_warps": result.num_warps, "num_stages": result.num_stages})
        result.shared = int(compiled.metadata.shared)
        result.cubin = compiled.asm["cubin"]
        limit = MAX_SHARED.get(arch)
        if limit is not None and result.shared > limit:
            result.error = f"needs {result.shared} B of shared memory; sm_{arch} allows {limit} B per block"
    except Exception as exc:  # any lowering/ptxas failure is a result to report
        result.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    result.seconds = time.perf_counter() - start
    return result


def compile_configs(configs, targets=TARGETS, *, progress=None):
    results = []
    for config in configs:
        for arch in targets:
            result = compile_config(config, arch)
            if progress is not None:
                progress(result)
            results.append(result)
    return results


def subprocess_env():
    """The environment for compiling: never interpreted."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    # Triton 3.9 warns when this is unset; 1 is its current default (fusion on),
    # the same choice a launch on the GPU makes.
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    return env


def run_in_subprocess(*args, cwd=None, timeout=None, env=None):
    """`python -m bigkernels.aot --json - *args` with TRITON_INTERPRET unset;
    returns (exit code, parsed JSON report, stderr)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    full_env = {**subprocess_env(), **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (root, full_env.get("PYTHONPATH", "")) if p)
    proc = subprocess.run([sys.executable, "-m", "bigkernels.aot", "--json", "-", *args], cwd=cwd or root,
                          env=full_env, capture_output=True, text=True, timeout=timeout)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = None
    return proc.returncode, report, proc.stderr
