"""One timer for every benchmark: medians after warm-up.

GPU: triton.testing.do_bench (CUDA events, L2 flush between reps) when
Triton is present, else CUDA events. CPU: the median of repeated wall-clock
runs after warm-up, repeated until `budget_s` is spent (at least `min_reps`).
`interleaved_medians` times several implementations of one case in rounds
(each runs once per round), so that a shared machine's load, which drifts
over seconds, falls on all of them alike instead of on whichever ran last."""
import statistics
import time

import torch


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, device="cpu", *, warmup=2, min_reps=5, budget_s=1.0):
    if device == "cuda":
        try:
            from triton.testing import do_bench

            return do_bench(fn, warmup=25, rep=int(budget_s * 1000), return_mode="median") / 1e3
        except ImportError:
            return _cuda_events_median(fn, warmup, min_reps)
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < budget_s and len(times) < 1000):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _cuda_events_median(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(reps, 20)):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def interleaved_medians(fns, device="cpu", *, warmup=2, min_reps=5, budget_s=1.0):
    """{name: median seconds} for a dict of callables; on the GPU each is timed on its own."""
    if device == "cuda":
        return {name: median_seconds(fn, device, warmup=warmup, min_reps=min_reps, budget_s=budget_s)
                for name, fn in fns.items()}
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    start = time.perf_counter()
    rounds = 0
    while rounds < min_reps or (time.perf_counter() - start < budget_s * len(fns) and rounds < 1000):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        rounds += 1
    return {name: statistics.median(ts) for name, ts in times.items()}
