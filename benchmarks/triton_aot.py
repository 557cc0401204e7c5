"""Compile every declared Triton config (AOT_CONFIGS in bigkernels/triton/*)
for sm_80 and sm_90 on this machine, no GPU needed, and write the resource
table (registers, spills, shared memory, occupancy on A100/H100, mma/wgmma
counts) to benchmarks/results/triton_aot.{json,txt}. Exits 1 if any config
fails to compile or exceeds the target's shared memory.

    python benchmarks/triton_aot.py [--pinned] [--out DIR]
"""
import argparse
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bigkernels.aot import render_table, run_in_subprocess  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pinned", action="store_true", help="only the pinned configs (what CI compiles)")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results"))
    args = p.parse_args()
    # a fresh Triton cache, so that the table's compile times are compiles, not cache hits
    with tempfile.TemporaryDirectory(prefix="bigkernels-aot-") as cache:
        code, report, err = run_in_subprocess("--resources", *([] if args.pinned else ["--all"]),
                                              env={"TRITON_CACHE_DIR": cache})
    if report is None:
        sys.stderr.write(err)
        return code or 1
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "triton_aot.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = render_table(report["rows"])
    with open(os.path.join(args.out, "triton_aot.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    print(f"{report['configs']} configs, {len(report['rows'])} compiles in {report['seconds']} s; "
          f"{len(report['failed'])} failed: {report['failed']}")
    return 1 if report["failed"] else code


if __name__ == "__main__":
    sys.exit(main())
