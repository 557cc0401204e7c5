"""Static resource table of the CUDA kernels, without a GPU.

For every kernel instantiation in the given .cu files (default: all of
csrc/cuda/**/*.cu) and each architecture (sm_80, sm_90a): registers, spill
stores/loads and stack (ptxas -v), static shared memory, theoretical
occupancy on an H100 (132 SMs; 64K registers, 64 warps, 32 blocks and
228 KiB shared memory per SM), and the number of tensor-core instructions in
the SASS (cuobjdump, shipped in the Triton wheel). Goal: zero spills.

  python benchmarks/resource_table.py                  # every instantiation
  python benchmarks/resource_table.py --files csrc/cuda/epilogue/bias_act.cu   # a manifest

Writes benchmarks/results/resource_table.jsonl and .md.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # a checkout, installed or not
from bigkernels.aot.resources import WARPS_PER_SM, cuobjdump_path, occupancy  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARCHS = ("sm_80", "sm_90a")
# Threads per block of each kernel (the cubin does not record it): used for occupancy.
BLOCK_THREADS = {"bias_act_kernel": 256, "gemm_mma_kernel": 128,
                 # csrc/cuda/lstm: kLstmThreads
                 **dict.fromkeys(("lstm_fwd_persistent", "lstm_fwd_persistent_mma", "lstm_fwd_gates_step", "lstm_fwd_step_mma",
                                  "lstm_fwd_proj_step", "lstm_bwd_persistent", "lstm_bwd_dh_step",
                                  "lstm_bwd_gates_step", "gru_persistent", "gru_step", "cell_kernel"), 128),
                 # csrc/cuda/conv
                 "conv_fprop_kernel": 128, "conv_dgrad_kernel": 128, "conv_wgrad_kernel": 128,
                 "conv_wgrad_sum_kernel": 256, "depthwise_fwd_kernel": 256, "depthwise_dgrad_kernel": 256,
                 "depthwise_wgrad_kernel": 256, "bn_partial_kernel": 256, "bn_finish_kernel": 256,
                 "bn_apply_kernel": 256,
                 # csrc/cuda/attention (the backward above D=128 runs 256 threads: benchmarks/attention_occupancy.py)
                 "attention_fwd_kernel": 128, "attention_bwd_kernel": 128, "attention_bwd_preprocess_kernel": 128,
                 "attention_bwd_convert_dq_kernel": 256, "attention_decode_kernel": 128,
                 "attention_decode_combine_kernel": 128}
TENSOR_CORE_OPS = ("HMMA", "HGMMA", "IMMA", "DMMA", "BMMA")


def _demangle(names):
    tool = shutil.which("cu++filt") or "/usr/local/cuda/bin/cu++filt"
    if not os.path.exists(tool):
        tool = shutil.which("c++filt")
    if not tool or not names:
        return {n: n for n in names}
    out = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, out)) if len(out) == len(names) else {n: n for n in names}


def _ptxas_info(stderr):
    """Per mangled function: registers, smem, stack, spills (ptxas -v)."""
    info, cur = {}, None
    for line in stderr.splitlines():
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            cur = info.setdefault(m.group(1), {})
            continue
        m = re.search(r"Compiling entry function '(\S+)'", line)
        if m:
            cur = info.setdefault(m.group(1), {})
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            cur.update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["registers"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            cur["smem"] = int(s.group(1)) if s else 0
    return info


def _tensor_core_counts(cuobjdump, cubin):
    text = subprocess.run([cuobjdump, "-sass", cubin], capture_output=True, text=True).stdout
    counts, cur = {}, None
    for line in text.splitlines():
        m = re.search(r"Function : (\S+)", line)
        if m:
            cur = m.group(1)
            counts[cur] = 0
        elif cur and re.search(r"\b(%s)\b" % "|".join(TENSOR_CORE_OPS), line):
            counts[cur] += 1
    return counts


def rows_for(cu, arch, cuobjdump):
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        cmd = ["nvcc", "-std=c++17", "-O3", f"-arch={arch}", "-cubin", "-Xptxas", "-v",
               "-I", os.path.join(ROOT, "csrc"), cu, "-o", cubin]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"nvcc failed for {cu} ({arch}):\n{r.stderr}")
        info = _ptxas_info(r.stderr)
        tc = _tensor_core_counts(cuobjdump, cubin) if cuobjdump else {}
    names = _demangle(sorted(info))
    rows = []
    for mangled, d in sorted(info.items()):
        if "registers" not in d:
            continue  # device functions without an entry point
        name = names[mangled]
        m = re.search(r"(\w+)\s*[<(]", name.replace("(anonymous namespace)", "anon"))
        base = m.group(1) if m else name
        threads = BLOCK_THREADS.get(base, 256)
        warps = (threads + 31) // 32
        occ = occupancy(90, d["registers"], d.get("smem", 0), warps)
        blocks = round(occ * WARPS_PER_SM) // warps
        rows.append(dict(file=os.path.relpath(cu, ROOT), arch=arch, kernel=name, registers=d["registers"],
                         spill_stores=d.get("spill_stores", 0), spill_loads=d.get("spill_loads", 0),
                         stack=d.get("stack", 0), smem=d.get("smem", 0), threads=threads,
                         h100_blocks_per_sm=blocks, h100_occupancy=round(occ, 3),
                         tensor_core_instructions=tc.get(mangled)))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", nargs="*", help="the .cu files (default: csrc/cuda/**/*.cu)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "resource_table"))
    args = ap.parse_args()
    files = args.files or sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "**", "*.cu"), recursive=True))
    cuobjdump = cuobjdump_path()
    rows = [row for cu in files for arch in ARCHS for row in rows_for(os.path.abspath(cu), arch, cuobjdump)]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    cols = ["arch", "kernel", "registers", "spill_stores", "spill_loads", "smem", "threads",
            "h100_occupancy", "tensor_core_instructions"]
    with open(args.out + ".md", "w") as f:
        f.write("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n")
        for row in rows:
            f.write("| " + " | ".join(str(row[c]).replace("|", "\\|") for c in cols) + " |\n")
    spills = [r for r in rows if r["spill_stores"] or r["spill_loads"]]
    print(f"{len(rows)} kernel instantiations, {len(spills)} with spills -> {args.out}.jsonl/.md")
    return 1 if spills else 0


if __name__ == "__main__":
    raise SystemExit(main())
