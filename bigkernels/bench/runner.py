"""`python -m bigkernels bench`: every registered family's cases on the device
present; a table, JSON lines under the results folder, and a speedup plot."""
import importlib
import json
import os
import pkgutil
import sys

import torch

from . import environment, families, report
from .case import OPTIONS
from .timer import interleaved_medians


def discover(names=None):
    found = {}
    for info in pkgutil.iter_modules(families.__path__):
        if names and info.name not in names:
            continue
        found[info.name] = importlib.import_module(f"{families.__name__}.{info.name}")
    missing = set(names or ()) - set(found)
    if missing:
        raise SystemExit(f"unknown benchmark family: {', '.join(sorted(missing))}; known: "
                         f"{', '.join(i.name for i in pkgutil.iter_modules(families.__path__))}")
    return found


def _progress(items, desc):
    try:
        from tqdm import tqdm

        return tqdm(items, desc=desc, file=sys.stderr, leave=False)
    except ImportError:
        return items


def run_case(case, device, quick):
    """Times every implementation of one case; returns one record per implementation."""
    if case.validate is not None:
        problem = case.validate()
        if problem:
            raise AssertionError(f"{case.family}/{case.name}: implementations disagree: {problem}")
    budget = 0.3 if quick else 1.5
    times = interleaved_medians(case.impls, device, budget_s=budget)
    base = times[case.baseline]
    records = []
    for name, seconds in times.items():
        records.append({
            "family": case.family, "case": case.name, "params": case.params, "implementation": name,
            "baseline": case.baseline, "time_s": seconds, "baseline_time_s": base, "speedup": base / seconds,
            "tflops": case.flops / seconds / 1e12 if case.flops else None,
            "gbps": case.bytes / seconds / 1e9 if case.bytes else None,
            **({"notes": case.notes} if case.notes else {}),
        })
    return records


def default_out_dir():
    here = os.path.join(os.getcwd(), "benchmarks", "results")
    return here if os.path.isdir(here) else os.path.join(os.getcwd(), "bench-results")


def main(args):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    env = environment.describe(device)
    peak = environment.peak_gflops(device, args.quick)
    env["peak_gflops"] = peak
    print(f"bigkernels bench on {env['device']} ({device}, {env['threads']} threads), commit {env['commit']}; "
          f"practical peak {peak:.0f} GFLOP/s (3x3 conv, 256 ch, channels_last; measured again after each case "
          f"for its % of peak)", flush=True)
    records = []
    failures = []
    peak_before = peak
    OPTIONS["compile"] = not getattr(args, "no_compile", False)
    for family, module in discover(args.family).items():
        cases = module.cases(args.quick, device)
        if getattr(args, "case", None):
            cases = [c for c in cases if any(text in c.name for text in args.case)]
        for case in _progress(cases, family):
            try:
                recs = run_case(case, device, args.quick)
            except Exception as exc:  # one broken case must not hide the others' results
                failures.append(f"{family}/{case.name}: {type(exc).__name__}: {exc}")
                continue
            # The peak again, right after the case: a shared machine's speed drifts by tens of
            # percent over a run, and % of peak compares the case with the machine as it was then,
            # the higher of the peaks measured just before and just after it (one slow moment in a
            # peak measurement must not flatter the case).
            peak_after = environment.measure_peak(device, quick=True)
            case_peak, peak_before = max(peak_before, peak_after), peak_after
            for rec in recs:
                rec.update(env)
                rec["quick"] = bool(args.quick)
                rec["case_peak_gflops"] = case_peak
                rec["pct_of_peak"] = 100.0 * rec["tflops"] * 1e3 / case_peak if rec["tflops"] else None
            records.extend(recs)
    print(report.table(records))
    out_dir = args.out or default_out_dir()
    os.makedirs(out_dir, exist_ok=True)
    slug = report.slug(env["device_type"], env["device"])
    path = os.path.join(out_dir, f"{slug}.jsonl")
    with open(path, "a") as f:
        for rec in records:
            f.write(json.dumps(rec, default=str) + "\n")
    print(f"\n{len(records)} records appended to {path}")
    if not args.no_plot and records:
        png = report.plot(records, os.path.join(out_dir, f"{slug}-speedup.png"))
        if png:
            print(f"plot: {png}")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0
