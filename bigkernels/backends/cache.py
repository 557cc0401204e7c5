"""On-disk cache shared by the self-test (trust.py) and measurement
(measure.py) decisions: one small JSON file per combination, written
atomically (temp file + os.replace), so that DDP ranks racing on the same key
each leave a whole file and the last writer wins with an equal answer.

Location: $BIGKERNELS_CACHE_DIR, else $XDG_CACHE_HOME/bigkernels, else
~/.cache/bigkernels. Files live under <kind>/<environment hash>/<op>/, where
the environment is the GPU model, driver, CUDA, torch, Triton and bigkernels
versions: any of them changing gives fresh decisions."""
import hashlib
import json
import os
import platform
import tempfile

_ENV: dict = {}


def cache_dir():
    explicit = os.environ.get("BIGKERNELS_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "bigkernels")


def environment(device: str) -> dict:
    """What a decision depends on besides the call: computed once per device."""
    if device not in _ENV:
        import torch

        from .. import __version__

        try:
            import triton

            triton_version = triton.__version__
        except ImportError:
            triton_version = None
        env = {"torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton_version,
               "bigkernels": __version__}
        if device.startswith("cuda"):
            props = torch.cuda.get_device_properties(torch.device(device))
            driver = getattr(torch._C, "_cuda_getDriverVersion", lambda: None)()
            env.update(gpu=props.name, capability=f"{props.major}.{props.minor}", driver=driver)
        else:
            env.update(gpu=None, cpu=platform.processor() or platform.machine())
        _ENV[device] = env
    return _ENV[device]


def digest(obj, n=16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def path_for(kind, device, op, key) -> str:
    """The file of one combination: kind ('trust' or 'measure'), device, op and a key dict."""
    return os.path.join(cache_dir(), kind, digest(environment(device)), op, digest(key) + ".json")


def read(path):
    """The cached record, or None when absent or unreadable (a torn or foreign file is ignored)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write(path, record):
    """Atomic: readers see the old file or the new one, never a partial one.
    A read-only cache directory only costs the caching, never the call."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
    except OSError:
        return False
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, sort_keys=True, default=str)
        os.replace(tmp, path)
        return True
    except OSError:
        if os.path.exists(tmp):
            os.remove(tmp)
        return False
