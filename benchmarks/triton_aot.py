"""Compile every declared Triton config (AOT_CONFIGS in bigkernels/triton/*)
for sm_80 and sm_90 on this machine, no GPU needed, and write the resource
table (registers, spills, shared memory, occupancy on A100/H100, mma/wgmma
counts) to benchmarks/results/triton_aot.{json,txt}. Exits 1 if any config
fails to compile or exceeds the target's shared memory.

    python benchmarks/triton_aot.py [--pinned] [--out DIR]
    python benchmarks/triton_aot.py --only 'attn_fwd_*varlen*'   # recompile those, update their rows

With --only, the committed table keeps its other rows; rows of configs no
longer declared are dropped.
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
    p.add_argument("--only", action="append", default=[], help="recompile only configs matching this glob")
    args = p.parse_args()
    # a fresh Triton cache, so that the table's compile times are compiles, not cache hits
    with tempfile.TemporaryDirectory(prefix="bigkernels-aot-") as cache:
        only = [a for g in args.only for a in ("--only", g)]
        code, report, err = run_in_subprocess("--resources", *([] if args.pinned else ["--all"]), *only,
                                              env={"TRITON_CACHE_DIR": cache})
    if report is None:
        sys.stderr.write(err)
        return code or 1
    os.makedirs(args.out, exist_ok=True)
    if args.only:
        report = _merged(os.path.join(args.out, "triton_aot.json"), report, args.pinned)
    with open(os.path.join(args.out, "triton_aot.json"), "w") as f:
        json.dump(report, f, indent=1)
    text = render_table(report["rows"])
    with open(os.path.join(args.out, "triton_aot.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    print(f"{report['configs']} configs, {len(report['rows'])} compiles in {report['seconds']} s; "
          f"{len(report['failed'])} failed: {report['failed']}")
    return 1 if report["failed"] else code


def _merged(path, update, pinned):
    """The committed table with `update`'s rows replacing those of the same
    name, in declaration order; configs no longer declared are dropped."""
    from bigkernels.aot import registry

    with open(path) as f:
        old = json.load(f)
    declared = [c["name"] for c in registry.discover(pinned_only=pinned)]
    fresh = {r["name"] for r in update["rows"]}
    rows = [r for r in old["rows"] if r["name"] not in fresh] + update["rows"]
    order = {name: i for i, name in enumerate(declared)}
    rows = sorted((r for r in rows if r["name"] in order), key=lambda r: (order[r["name"]], r["arch"]))
    failed = [f for f in old["failed"] if f.split("@")[0] in order and f.split("@")[0] not in fresh]
    return {"configs": len(declared), "seconds": old["seconds"], "failed": failed + update["failed"], "rows": rows}


if __name__ == "__main__":
    sys.exit(main())
