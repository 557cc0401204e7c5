"""python -m bigkernels.aot [--all] [--only GLOB ...] [--arch 80 --arch 90] [--resources] [--json FILE|-]

Compiles the pinned Triton configs (every config with --all) for each target;
exits 1 if any fails to compile or exceeds the target's shared memory."""
import argparse
import fnmatch
import json
import sys
import time

from .compiler import TARGETS, compile_configs
from .registry import discover


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m bigkernels.aot")
    p.add_argument("--all", action="store_true", help="every declared config, not only the pinned ones")
    p.add_argument("--only", action="append", help="only the configs whose name matches this glob (repeatable)")
    p.add_argument("--arch", type=int, action="append", help=f"compute capability x10 (default {TARGETS})")
    p.add_argument("--resources", action="store_true", help="add registers/spills/occupancy/mma via cuobjdump")
    p.add_argument("--json", default=None, help="write the report here ('-' for stdout)")
    args = p.parse_args(argv)
    quiet = args.json == "-"
    start = time.perf_counter()
    configs = discover(pinned_only=not args.all)
    if args.only:
        configs = [c for c in configs if any(fnmatch.fnmatch(c["name"], g) for g in args.only)]

    def progress(r):
        if not quiet:
            print(f"{'FAIL' if r.error else 'ok  '} sm_{r.arch} {r.name} ({r.seconds:.2f} s) {r.error}", flush=True)

    results = compile_configs(configs, tuple(args.arch or TARGETS), progress=progress)
    report = {"configs": len(configs), "seconds": round(time.perf_counter() - start, 2),
              "failed": [f"{r.name}@sm_{r.arch}: {r.error}" for r in results if r.error]}
    if args.resources:
        from .resources import row

        report["rows"] = [row(r) for r in results]
    else:
        report["results"] = [r.to_json() for r in results]
    if args.json == "-":
        json.dump(report, sys.stdout)
    elif args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if not quiet:
        print(f"{len(results)} compiles of {len(configs)} configs in {report['seconds']} s; "
              f"{len(report['failed'])} failed", file=sys.stderr)
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
