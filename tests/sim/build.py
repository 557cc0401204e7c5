"""Builds the emulator's C++ test binary (tests/sim/csrc + csrc/sim + the
testing kernels of csrc/cuda/testing) into build/sim/bin-<hash>/, where the
hash covers every source and header it may include and the flags: a changed
.cu/.cuh/.h rebuilds it, an unchanged tree reuses it. Objects compile in
parallel (-O2); the final rename makes concurrent builders safe."""
import glob
import hashlib
import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSRC = os.path.join(ROOT, "csrc")
TESTS = os.path.join(ROOT, "tests", "sim", "csrc")
FLAGS = ["-O2", "-std=c++17", "-DBK_SIM", "-DBK_SIM_HOST_API", f"-I{CSRC}", f"-I{TESTS}"]


def _cuda_include():
    from bigkernels.backends.sim_loader import _cuda_include as inc

    return inc()


def _sources():
    srcs = sorted(glob.glob(os.path.join(TESTS, "*.cu")) + glob.glob(os.path.join(TESTS, "*.cpp")))
    srcs += sorted(glob.glob(os.path.join(CSRC, "sim", "*.cpp")))
    srcs += sorted(glob.glob(os.path.join(CSRC, "cuda", "testing", "*.cu")))
    return srcs


def _digest(srcs, flags):
    h = hashlib.sha256(" ".join(flags).encode())
    deps = set(srcs)
    for pattern in ("common/**/*.h", "device/*.cuh", "sim/*.h", "cuda/**/*.h"):
        deps.update(glob.glob(os.path.join(CSRC, pattern), recursive=True))
    deps.update(glob.glob(os.path.join(TESTS, "*.h")))
    for path in sorted(deps):
        h.update(path.encode())
        with open(path, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def binary():
    """Path of the up-to-date test binary, building it if needed."""
    flags = FLAGS + [f"-I{_cuda_include()}"]
    srcs = _sources()
    out_dir = os.path.join(ROOT, "build", "sim", "bin-" + _digest(srcs, flags))
    exe = os.path.join(out_dir, "sim_tests")
    if os.path.exists(exe):
        return exe
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bin-tmp-", dir=os.path.dirname(out_dir))

    def compile_one(src):
        obj = os.path.join(tmp, os.path.relpath(src, ROOT).replace(os.sep, "__") + ".o")
        subprocess.run(["g++", *flags, "-x", "c++", "-c", src, "-o", obj], check=True, capture_output=True, text=True)
        return obj

    try:
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            objs = list(pool.map(compile_one, srcs))
    except subprocess.CalledProcessError as e:
        raise RuntimeError(f"building the emulator tests failed:\n{e.stderr}") from None
    subprocess.run(["g++", *objs, "-lpthread", "-o", os.path.join(tmp, "sim_tests")], check=True)
    try:
        os.rename(tmp, out_dir)
    except OSError:  # another process finished first: use its binary
        pass
    return exe
