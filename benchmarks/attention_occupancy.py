"""Occupancy of the CUDA attention kernels with their dynamic shared memory.

benchmarks/resource_table.py reads static shared memory from ptxas and one
block size per kernel name; the attention kernels take their tiles in
dynamic shared memory and the backward runs 8 warps for head dims over 128.
This recomputes, per instantiation of the table's jsonl, the threads, the
dynamic shared memory (the tile formulas of csrc/cuda/attention/*.cuh) and
the occupancy on A100 (sm_80) and H100 (sm_90a), and writes a markdown table.

    python benchmarks/resource_table.py --files csrc/cuda/attention/*.cu \
        --out benchmarks/results/resource_table_attention
    python benchmarks/attention_occupancy.py   # -> benchmarks/results/attention_occupancy.md
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bigkernels.aot.resources import occupancy  # noqa: E402


def tiles(kernel, d):
    """(threads, dynamic shared bytes) of one instantiation: FwdTile / BwdTile."""
    stride = d + 8
    if kernel in ("attention_fwd_kernel", "attention_decode_kernel"):
        block_n = 64 if d <= 128 else 32
        return 128, (64 + 4 * block_n) * stride * 2
    if kernel == "attention_bwd_kernel":
        split = 2 if d > 128 else 1
        block_m = 64 if d <= 64 else 32
        halves = (2 * 64 + 4 * block_m) * stride + 64 * (block_m + 8)
        return 128 * split, halves * 2 + 4 * block_m * 4
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", default=os.path.join(ROOT, "benchmarks", "results", "resource_table_attention.jsonl"))
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "attention_occupancy.md"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.table)]
    lines = ["| arch | kernel | dtype | D | registers | spills (st/ld) | threads | dynamic smem | blocks/SM | "
             "occupancy | HMMA |", "|" + "---|" * 11]
    for r in rows:
        m = re.search(r"(attention_\w+_kernel)<(__half|__nv_bfloat16), (\d+)>", r["kernel"])
        if not m or tiles(m[1], int(m[3])) is None:
            continue
        threads, smem = tiles(m[1], int(m[3]))
        arch = 80 if r["arch"] == "sm_80" else 90
        occ = occupancy(arch, r["registers"], smem + r["smem"], threads // 32)
        blocks = round(occ * 64) // (threads // 32)
        dtype = "bf16" if m[2] == "__nv_bfloat16" else "fp16"
        lines.append(f"| {r['arch']} | {m[1]} | {dtype} | {m[3]} | {r['registers']} | "
                     f"{r['spill_stores']}/{r['spill_loads']} | {threads} | {smem} | {blocks} | {occ:.3f} | "
                     f"{r['tensor_core_instructions']} |")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines) - 2} instantiations -> {args.out}")


if __name__ == "__main__":
    main()
