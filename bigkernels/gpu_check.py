"""`python -m bigkernels gpu-check OUTDIR [--full]`: everything a person with a
GPU for a few minutes should run, in one call, with its output in OUTDIR:

  build     python setup.py build_ext --inplace for the detected arch, only if
            _C is missing, has no CUDA kernels, or was built for other arches
  info      python -m bigkernels info --json            -> info.json
  selftest  python -m bigkernels selftest --json        -> selftest.json
  tests     pytest -m gpu (when the source tree is here) -> gpu-tests.xml
  bench     python -m bigkernels bench --quick|--full --out OUTDIR/bench

Each step runs in a fresh process (a rebuilt _C is loaded by the next one),
logs to OUTDIR/<step>.log, and the summary goes to OUTDIR/gpu_check.json.
The aim is well under 10 minutes on an H100 (building one arch only, bench
--quick); not yet timed on a GPU. The per-step timeouts below stop a hung
step, not a slow run. On a machine without a GPU it says so, runs the CPU
selftest, and exits 2."""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_S = {"build": 360, "info": 60, "selftest": 120, "tests": 300, "bench": 420}


def arch_flag(major, minor):
    """TORCH_CUDA_ARCH_LIST entry for the detected GPU: sm_90 needs 9.0a for wgmma/TMA."""
    return f"{major}.{minor}a" if (major, minor) == (9, 0) else f"{major}.{minor}"


def needs_build(loaded, build_info, major, minor):
    """Why _C must be (re)built for this GPU, or None."""
    if not loaded:
        return "bigkernels._C is not loaded"
    if not build_info.get("cuda_built"):
        return "bigkernels._C was built without CUDA"
    arches = build_info.get("cuda_arch_list")
    built = [a.strip().split("+")[0].rstrip("a") for a in arches.replace(",", ";").replace(" ", ";").split(";")] \
        if arches else []
    if arches and f"{major}.{minor}" not in built:
        return f"bigkernels._C was built for {arches}, not {major}.{minor}"
    return None


def selftest_step(outdir):
    return ("selftest", [sys.executable, "-m", "bigkernels", "selftest", "--json",
                         os.path.join(outdir, "selftest.json")], {})


def steps(outdir, *, full=False, source_tree=True, build_reason=None, arch=None):
    """[(name, argv, extra environment)] in the order they run."""
    py = sys.executable
    plan = []
    if build_reason and source_tree:
        plan.append(("build", [py, "setup.py", "build_ext", "--inplace"],
                     {"TORCH_CUDA_ARCH_LIST": arch, "MAX_JOBS": str(os.cpu_count() or 4)}))
    plan.append(("info", [py, "-m", "bigkernels", "info", "--json"], {}))
    plan.append(selftest_step(outdir))
    if source_tree:
        plan.append(("tests", [py, "-m", "pytest", "-q", "-m", "gpu", "tests",
                               "--junitxml", os.path.join(outdir, "gpu-tests.xml")], {}))
    plan.append(("bench", [py, "-m", "bigkernels", "bench", "--full" if full else "--quick",
                           "--out", os.path.join(outdir, "bench")], {}))
    return plan


def _run_step(name, argv, env, outdir):
    start = time.perf_counter()
    log = os.path.join(outdir, f"{name}.log")
    # `info --json` prints its JSON on stdout: that stream is the result file
    stdout_path = os.path.join(outdir, "info.json") if name == "info" else log
    with open(log, "w") as f, open(stdout_path, "w") if stdout_path != log else f as out:
        try:
            proc = subprocess.run(argv, cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                  stderr=f if out is not f else subprocess.STDOUT, timeout=TIMEOUT_S[name])
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = f"timeout after {TIMEOUT_S[name]} s"
    seconds = round(time.perf_counter() - start, 1)
    print(f"  {name:<9} {'ok' if code == 0 else 'FAILED (' + str(code) + ')':<24} {seconds:>7} s   {log}", flush=True)
    return {"step": name, "argv": argv, "returncode": code, "seconds": seconds, "log": log}


def main(args):
    import torch

    from . import _native

    outdir = os.path.abspath(args.outdir)
    os.makedirs(outdir, exist_ok=True)
    source_tree = os.path.exists(os.path.join(ROOT, "setup.py")) and os.path.isdir(os.path.join(ROOT, "tests"))
    summary = {"outdir": outdir, "gpu": None, "steps": []}
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU is visible here (torch.cuda.is_available() is False); "
              "running the CPU selftest only. Run it on a machine with a GPU.")
        summary["steps"].append(_run_step(*selftest_step(outdir), outdir))
        _write(outdir, summary)
        return 2
    major, minor = torch.cuda.get_device_capability()
    summary["gpu"] = {"name": torch.cuda.get_device_name(), "capability": f"{major}.{minor}"}
    reason = needs_build(_native.loaded(), _native.build_info(), major, minor)
    print(f"gpu-check on {summary['gpu']['name']} (sm_{major}{minor}) -> {outdir}")
    if reason:
        print(f"  build needed: {reason}" + ("" if source_tree else " (no source tree here: skipped)"))
    for name, argv, env in steps(outdir, full=args.full, source_tree=source_tree, build_reason=reason,
                                 arch=arch_flag(major, minor)):
        summary["steps"].append(_run_step(name, argv, env, outdir))
        if name == "build" and summary["steps"][-1]["returncode"] != 0:
            break  # nothing else can run against a failed build
    _write(outdir, summary)
    return 0 if all(s["returncode"] == 0 for s in summary["steps"]) else 1


def _write(outdir, summary):
    with open(os.path.join(outdir, "gpu_check.json"), "w") as f:
        json.dump(summary, f, indent=1)
