"""Resource table of compiled Triton cubins: registers, spills, shared memory,
occupancy, tensor-core instruction counts (cuobjdump -res-usage / -sass, the
cuobjdump that ships with Triton's NVIDIA backend). The same columns as the
CUDA kernels' table, so `bench --static` shows both."""
import json
import math
import os
import re
import shutil
import subprocess
import tempfile

# Per-SM limits for occupancy (CUDA Programming Guide, compute capability
# table): 64K registers, 64 resident warps, 32 resident blocks; shared memory
# per SM 164 KB (A100, sm_80) / 228 KB (H100, sm_90), 1 KB reserved per block.
# Registers are allocated per warp in units of 256.
SM_LIMITS = {80: {"gpu": "A100", "smem": 167936}, 90: {"gpu": "H100", "smem": 233472}}
REGS_PER_SM, WARPS_PER_SM, BLOCKS_PER_SM, RESERVED_SMEM, REG_UNIT = 65536, 64, 32, 1024, 256
# Tensor-core SASS opcodes: mma.sync lowers to HMMA/IMMA/DMMA (sm_80+),
# wgmma to HGMMA/IGMMA/QGMMA (sm_90 only).
MMA_OPS = ("HMMA", "IMMA", "DMMA")
WGMMA_OPS = ("HGMMA", "IGMMA", "QGMMA")
_OPCODE = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*)")
_RES = re.compile(r"REG:(\d+)\s+STACK:(\d+)\s+SHARED:(\d+)\s+LOCAL:(\d+)")
COLUMNS = ("module", "name", "arch", "num_warps", "num_stages", "regs", "spill_bytes", "shared", "occupancy",
           "mma", "wgmma", "seconds", "error")


def cuobjdump_path():
    try:
        import triton.backends.nvidia as nv

        bundled = os.path.join(os.path.dirname(nv.__file__), "bin", "cuobjdump")
        if os.path.exists(bundled):
            return bundled
    except ImportError:
        pass
    return shutil.which("cuobjdump")


def occupancy(arch, regs, shared, num_warps):
    """Fraction of the SM's 64 warps resident, limited by registers, shared memory and block count."""
    per_warp = math.ceil(max(regs, 1) * 32 / REG_UNIT) * REG_UNIT
    smem = SM_LIMITS.get(arch, SM_LIMITS[90])["smem"]
    blocks = min(REGS_PER_SM // (per_warp * num_warps), smem // (shared + RESERVED_SMEM),
                 WARPS_PER_SM // num_warps, BLOCKS_PER_SM)
    return blocks * num_warps / WARPS_PER_SM


def inspect_cubin(cubin, tool=None):
    """{'regs', 'local', 'static_shared', 'opcodes': {opcode: count}} from cuobjdump."""
    tool = tool or cuobjdump_path()
    if tool is None:
        raise RuntimeError("cuobjdump not found (Triton's NVIDIA backend ships it under triton/backends/nvidia/bin)")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        res = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True, check=True).stdout
        sass = subprocess.run([tool, "-sass", f.name], capture_output=True, text=True, check=True).stdout
    m = _RES.search(res)
    if m is None:
        raise RuntimeError(f"cannot parse cuobjdump -res-usage output: {res[:200]!r}")
    opcodes = {}
    for op in _OPCODE.findall(sass):
        opcodes[op] = opcodes.get(op, 0) + 1
    return {"regs": int(m[1]), "local": int(m[4]), "static_shared": int(m[3]), "opcodes": opcodes}


def row(result, tool=None):
    """A table row for one CompileResult (resource columns empty when it failed)."""
    out = {k: None for k in COLUMNS}
    out.update(module=result.module, name=result.name, arch=f"sm_{result.arch}", num_warps=result.num_warps,
               num_stages=result.num_stages, seconds=round(result.seconds, 3), error=result.error)
    if result.cubin:
        info = inspect_cubin(result.cubin, tool)
        shared = result.shared + info["static_shared"]
        # Triton kernels declare no local arrays: local memory is register spill.
        out.update(regs=info["regs"], spill_bytes=info["local"], shared=shared,
                   occupancy=round(occupancy(result.arch, info["regs"], shared, result.num_warps), 3),
                   mma=sum(info["opcodes"].get(o, 0) for o in MMA_OPS),
                   wgmma=sum(info["opcodes"].get(o, 0) for o in WGMMA_OPS))
    return out


def default_results_path():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(root, "benchmarks", "results", "triton_aot.json")


def static_table(path=None, *, compute=False, pinned_only=True):
    """Rows of the Triton resource table: read from `path` (default: the
    committed benchmarks/results/triton_aot.json), or compiled now when
    `compute` is set or no file exists (pinned configs unless pinned_only=False)."""
    path = path or default_results_path()
    if not compute and os.path.exists(path):
        with open(path) as f:
            return json.load(f)["rows"]
    from .compiler import run_in_subprocess

    args = ["--resources"] + ([] if pinned_only else ["--all"])
    code, report, err = run_in_subprocess(*args)
    if report is None:
        raise RuntimeError(f"AOT compile failed (exit {code}): {err[-2000:]}")
    return report["rows"]


def render_table(rows):
    """Plain-text table, one line per (config, target)."""
    head = ("config", "arch", "warps", "stages", "regs", "spill B", "smem B", "occup.", "mma", "wgmma", "s", "error")
    lines = [f"{head[0]:<44}" + "".join(f"{h:>8}" for h in head[1:-1]) + "  " + head[-1]]
    for r in rows:
        cells = [r["arch"], r["num_warps"], r["num_stages"], r["regs"], r["spill_bytes"], r["shared"],
                 r["occupancy"], r["mma"], r["wgmma"], r["seconds"]]
        lines.append(f"{r['name']:<44}" + "".join(f"{'-' if c is None else c:>8}" for c in cells)
                     + ("  " + r["error"] if r["error"] else ""))
    return "\n".join(lines)
