"""One timer for every benchmark: medians after warm-up.

GPU: triton.testing.do_bench (CUDA events, L2 flush between reps) when
Triton is present, else CUDA events. CPU: the median of repeated wall-clock
runs after warm-up, repeated until `budget_s` is spent (at least `min_reps`)."""
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
