"""Command line: python -m bigkernels {info,bench,selftest,gpu-check,train}."""
import argparse
import json
import sys


def _info(args):
    from . import info

    data = info.report()
    print(json.dumps(data, indent=2, default=str) if args.json else info.render(data))
    return 0


def _bench(args):
    if args.static:
        from .bench import static

        return static.main()
    from .bench import runner

    return runner.main(args)


def _selftest(args):
    from . import selftest

    return selftest.main(args)


def _gpu_check(args):
    from . import gpu_check

    return gpu_check.main(args)


def _train(args):
    from . import train

    try:
        return train.run(args)
    except ValueError as exc:
        args.parser.error(str(exc))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bigkernels")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="versions, build, devices, backends, op x backend table")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_info)
    p = sub.add_parser("bench", help="run the benchmark suite on the device present")
    p.add_argument("--quick", action="store_true", help="a few representative cases per family")
    p.add_argument("--family", action="append", help="only these families (repeatable)")
    p.add_argument("--case", action="append", help="only the cases whose name contains this text (repeatable)")
    p.add_argument("--out", default=None, help="results folder (default: benchmarks/results or ./bench-results)")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--no-compile", action="store_true", help="leave torch.compile out of the cases that time it")
    p.add_argument("--static", action="store_true",
                   help="show the resource tables (registers, spills, shared memory, occupancy, tensor-core "
                        "instructions) of the CUDA kernels and Triton configs instead of timing")
    p.set_defaults(func=_bench)
    p = sub.add_parser("selftest", help="check every kernel on this device against the reference")
    p.add_argument("--json", default=None, help="write the results to this file")
    p.set_defaults(func=_selftest)
    p = sub.add_parser("gpu-check", help="on a GPU machine: build if needed, selftest, gpu tests, bench -> OUTDIR")
    p.add_argument("outdir", help="folder for logs, JSON results and plots")
    p.add_argument("--full", action="store_true", help="the full benchmark suite instead of --quick")
    p.set_defaults(func=_gpu_check)
    p = sub.add_parser("train", help="train a bigkernels model on offline data; prints one JSON line")
    from .train import add_arguments

    add_arguments(p)
    p.set_defaults(func=_train, parser=p)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
