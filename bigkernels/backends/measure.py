"""Measured `auto`: among the backends that can serve a call (and passed their
self-test), time each on first use for the call's shape bucket and keep the
fastest, as torch.backends.cudnn.benchmark does. Cached in memory and on
disk (bigkernels/backends/cache.py).

The static priority (the op's auto order) applies instead when
BIGKERNELS_AUTOTUNE=0, while torch.compile traces, while a CUDA graph is
captured (no timing, allocation or sync then), and on the CPU, where the
order comes from our own benchmarks. Tests add "cpu" to DEVICES to exercise
the logic with fake backends."""
import os
import time

import torch

from . import cache
from .trust import busy

_STATE = {"devices": ("cuda",)}
_CHOICES: dict = {}  # (op, device, backends, bucket) -> backend name
# Timing: one warm-up call (compiles/loads the kernel, fills caches), then the
# median of 5 calls. Estimate, not yet measured on a GPU: bias_act on 1M fp32
# elements moves 12 MB, ~4 us at an H100's 3.35 TB/s plus a launch, so the
# six calls cost well under a millisecond per backend and bucket.
WARMUP, REPEATS = 1, 5


def enabled() -> bool:
    return os.environ.get("BIGKERNELS_AUTOTUNE", "1") != "0"


def _bucket_dim(n):
    """Sizes round up to a power of two: 1000 and 1024 share a decision, 1025 does not."""
    return 1 << (int(n) - 1).bit_length() if n > 1 else int(n)


def wanted(device_type) -> bool:
    """Should the router collect every servable backend (not just the first)?
    Checked before any environment read: torch.compile traces it."""
    if device_type not in _STATE["devices"] or torch.compiler.is_compiling():
        return False
    return enabled()


def bucket(args, kwargs):
    """The call's shape bucket: tensor dtypes and rounded shapes, plus the
    non-float scalars and lists of ints (flags, codes, strides pick different
    kernels; floats do not)."""
    def one(a):
        if isinstance(a, torch.Tensor):
            # dimension order by stride: NCHW and channels_last are different kernels' cases
            order = tuple(sorted(range(a.dim()), key=lambda d: -a.stride(d)))
            return (str(a.dtype).replace("torch.", ""), tuple(_bucket_dim(s) for s in a.shape), order)
        if isinstance(a, (bool, int, str)) or a is None:
            return a
        if isinstance(a, (list, tuple)) and all(isinstance(v, int) for v in a):
            return tuple(a)  # stride, padding, ...: different problems, not a size to round
        return "·"

    return tuple(one(a) for a in args) + tuple((k, one(v)) for k, v in sorted(kwargs.items()))


def _device(args, kwargs):
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            return a.device
    return None


def choose(op, device_type, candidates, args, kwargs):
    """The fastest of `candidates` (Impls in static priority order) for this call."""
    # torch.compile traces the static priority: no shape arithmetic in the graph.
    if device_type not in _STATE["devices"] or len(candidates) < 2 or torch.compiler.is_compiling():
        return candidates[0]
    now_busy = busy()  # capturing a CUDA graph: the cached decision or the static priority
    if not now_busy and not enabled():
        return candidates[0]
    device = _device(args, kwargs)
    key = (op, str(device), tuple(c.backend for c in candidates), bucket(args, kwargs))
    name = _CHOICES.get(key)
    if name is None:
        if now_busy:
            return candidates[0]
        name = _CHOICES[key] = _decide(key, candidates, args, kwargs)
    return next(c for c in candidates if c.backend == name)


def _decide(key, candidates, args, kwargs):
    op, device, backends, shape_bucket = key
    disk_key = {"backends": list(backends), "bucket": repr(shape_bucket)}
    path = cache.path_for("measure", device, op, disk_key)
    record = cache.read(path)
    if record is not None and record.get("key") == disk_key and record.get("choice") in backends:
        return record["choice"]
    times = {c.backend: time_call(c.fn, args, kwargs, device) for c in candidates}
    choice = min(backends, key=lambda b: times[b])  # ties keep the static order
    cache.write(path, {"key": disk_key, "choice": choice, "seconds": times,
                       "environment": cache.environment(device)})
    return choice


def time_call(fn, args, kwargs, device):
    """Median seconds of REPEATS calls; inf if the call raises (never chosen)."""
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    samples = []
    try:
        with torch.no_grad():
            for i in range(WARMUP + REPEATS):
                sync()
                start = time.perf_counter()
                fn(*args, **kwargs)
                sync()
                if i >= WARMUP:
                    samples.append(time.perf_counter() - start)
    except Exception:  # a backend that crashes here loses the race; trust.py reports kernel errors
        return float("inf")
    return sorted(samples)[len(samples) // 2]


def clear_memory():
    _CHOICES.clear()
