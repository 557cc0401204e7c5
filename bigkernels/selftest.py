"""`python -m bigkernels selftest [--json FILE]`: every registered op x
backend available on this device x dtype x case, against the float64
reference with the tolerance rule (bigkernels/testing/selftests.py).

On the CPU it covers the `cpu`, `torch` and `reference` backends (the Triton
interpreter and the CUDA emulator are the test suite's job); on a GPU, every
CUDA and Triton kernel too. Exit code 1 if any check fails."""
import json
import sys
import time

import torch

from . import backends, info
from .backends.availability import unavailable_reason
from .testing.selftests import run_check, selftests

# Backends checked per device: never the test-only emulator; the reference is
# checked on the CPU (in every dtype, against itself in float64).
DEVICE_BACKENDS = {"cpu": ("cpu", "torch", "reference"), "cuda": ("cuda", "triton", "torch")}


def plan(device):
    """[(op, backend, dtype, case)] for every registered check runnable here."""
    from .backends.router import _unavailable

    items = []
    for op, spec in sorted(selftests().items()):
        table = backends.impls(op)
        for backend in DEVICE_BACKENDS[device]:
            impl = table.get(backend)
            if impl is None or unavailable_reason(backend, device) or _unavailable(impl, device):
                continue
            items.extend((op, backend, dtype, case) for dtype in spec.dtypes for case in spec.cases)
    return items


def run(devices=None):
    devices = devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    results = []
    for device in devices:
        for op, backend, dtype, case in plan(device):
            results.append(run_check(op, backend, device, dtype, case))
    return results


def _case_text(case):
    return ",".join(k if v is True else f"{k}={v}" for k, v in case.items() if v is not False)


def render(results):
    lines = [f"{'op':<12}{'backend':<10}{'device':<7}{'dtype':<10}{'case':<44}{'status':<7}worst error <= bound"]
    for r in results:
        lines.append(f"{r.op:<12}{r.backend:<10}{r.device:<7}{r.dtype:<10}{_case_text(r.case):<44}{r.status:<7}"
                     f"{r.summary()}")
    failed = [r for r in results if not r.passed]
    skipped = sum(r.status == "skip" for r in results)
    lines.append(f"{len(results)} checks: {len(results) - len(failed) - skipped} passed, {len(failed)} failed, "
                 f"{skipped} skipped (backend cannot serve the case)")
    return "\n".join(lines)


def to_json(results, seconds):
    return {"versions": info.versions(), "seconds": round(seconds, 2),
            "passed": all(r.passed for r in results),
            "results": [{"op": r.op, "backend": r.backend, "device": r.device, "dtype": r.dtype, "case": r.case,
                         "status": r.status, "error": r.error, "seconds": round(r.seconds, 4),
                         "checks": [{"output": n, "error": e, "bound": b} for n, e, b in r.checks]}
                        for r in results]}


def main(args):
    start = time.perf_counter()
    results = run()
    seconds = time.perf_counter() - start
    print(render(results))
    print(f"({seconds:.1f} s)")
    if getattr(args, "json", None):
        with open(args.json, "w") as f:
            json.dump(to_json(results, seconds), f, indent=1)
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(None))
