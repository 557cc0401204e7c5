"""Where a benchmark ran: device, versions, commit, date, and the machine's
practical peak (oneDNN's 3x3 convolution, 256 channels, channels_last), so
that every ratio is reported beside a % of what this machine can do."""
import datetime
import os
import subprocess

import torch

from .timer import median_seconds

_PEAK = {}


def device_name(device):
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip() + f" x{os.cpu_count()}"
    except OSError:
        pass
    return f"cpu x{os.cpu_count()}"


def commit():
    env = os.environ.get("BIGKERNELS_COMMIT")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def describe(device):
    from ..info import versions

    v = versions()
    return {
        "device": device_name(device),
        "device_type": device,
        "threads": torch.get_num_threads(),
        "bigkernels": v["bigkernels"], "torch": v["torch"], "cuda": v["cuda"], "triton": v["triton"],
        "commit": commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def measure_peak(device, quick=True):
    """Practical peak in GFLOP/s, measured now: a 3x3, 256->256 channel
    convolution in channels_last (oneDNN on CPU, cuDNN on GPU), fp32 on CPU,
    bf16 on GPU."""
    n, c, hw = (4, 256, 28) if device == "cpu" else (64, 256, 56)
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    x = torch.randn(n, c, hw, hw, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(c, c, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        seconds = median_seconds(lambda: torch.nn.functional.conv2d(x, w, padding=1), device,
                                 budget_s=0.5 if quick else 2.0)
    return 2.0 * n * c * c * 9 * hw * hw / seconds / 1e9


def peak_gflops(device, quick=True):
    """measure_peak, once per process (the run's headline peak)."""
    if device not in _PEAK:
        _PEAK[device] = measure_peak(device, quick)
    return _PEAK[device]
