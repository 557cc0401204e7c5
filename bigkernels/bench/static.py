"""`python -m bigkernels bench --static`: the resource tables of the CUDA
kernel instantiations (nvcc + cuobjdump: benchmarks/resource_table.py) and of
the Triton configs (AOT compile: bigkernels/aot), without a GPU."""
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUDA_TABLE = os.path.join(ROOT, "benchmarks", "results", "resource_table.jsonl")


def _short(kernel):
    """`void bk::cuda::(anonymous namespace)::bias_act_kernel<float, (bk::Act)5, false>(...)` -> `bias_act_kernel<float, 5, false>`."""
    name = re.sub(r"^void ", "", kernel)
    name = re.sub(r"\(bk::Act\)", "", name)
    name = re.sub(r"^.*::(\w+<)", r"\1", name)
    return re.sub(r"\(bk::\w+\)$|\(.*\)$", "", name)


def cuda_table(path=CUDA_TABLE):
    if not os.path.exists(path):
        return (f"CUDA kernels: no table at {path} (run `python benchmarks/resource_table.py` from a source "
                "checkout with nvcc)")
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    spills = sum(r.get("spill_stores", 0) + r.get("spill_loads", 0) for r in rows)
    lines = [f"CUDA kernels: {len(rows)} instantiations x arch, spill bytes in all: {spills} (goal 0)",
             f"{'arch':<7} {'kernel':<48} {'regs':>5} {'spill':>6} {'smem':>7} {'threads':>7} {'occ':>5} {'mma':>5}"]
    for r in rows:
        lines.append(f"{r['arch']:<7} {_short(r['kernel'])[:48]:<48} {r['registers']:>5} "
                     f"{r.get('spill_stores', 0) + r.get('spill_loads', 0):>6} {r['smem']:>7} {r['threads']:>7} "
                     f"{r['h100_occupancy']:>5} {r['tensor_core_instructions']:>5}")
    return "\n".join(lines)


def triton_table():
    try:
        from ..aot import resources
    except ImportError as exc:
        return f"Triton configs: unavailable ({exc})"
    rows = resources.static_table()
    return f"Triton configs: {len(rows)} (config x arch)\n" + resources.render_table(rows)


def main():
    print(cuda_table())
    print()
    print(triton_table())
    return 0
