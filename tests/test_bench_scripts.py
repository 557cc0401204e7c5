"""The session-10 benchmark scripts compute what they claim to time (docs/models.md,
session 10; docs/conv.md, "The CPU kernels per ISA"): a committed number must
come from a script that runs and times the right thing."""
import importlib.util
import os
import subprocess
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conv_layout_finds_every_conv_and_its_variants_agree():
    layout = _script("conv_layout")
    from bigkernels.bench.families import models as model_cases

    build, make_input = next((b, m) for n, b, m, _ in model_cases._specs(False, "cpu") if n == "resnet18")
    found = layout.geometries("resnet18", build, make_input)
    assert sum(found.values()) == 20  # stem, 16 block convs, 3 downsampling 1x1s
    for stride in (1, 2):
        x, w = torch.randn(2, 8, 9, 9), torch.randn(16, 8, 1, 1)
        torch.testing.assert_close(layout.gemm_1x1(x, w, (stride, stride)), F.conv2d(x, w, stride=stride))
    fwd, bwd = layout.implementations((2, 8, 9, 9), (16, 8, 1, 1), (2, 2), (0, 0), 1)
    assert set(fwd) == {"nchw", "cl", "gemm"} and set(bwd) == {"nchw", "cl"}
    with torch.no_grad():
        ref = fwd["nchw"]()
        for name in ("cl", "gemm"):
            out = fwd[name]()
            assert out.is_contiguous()
            torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_cpu_allocator_raises_the_thresholds_in_its_own_process():
    code = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('a', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); m.tuned_malloc(); print('ok')")
    run = subprocess.run([sys.executable, "-c", code, os.path.join(ROOT, "benchmarks", "cpu_allocator.py")],
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_call_overhead_times_both_sides():
    overhead = _script("call_overhead")
    cases = {**overhead.module_cases((2, 4, 5, 5)), **overhead.bn_cases((2, 4, 5, 5))}
    assert set(cases) == {"Conv2dBNAct train", "Conv2dBNAct eval", "batch_norm_act train"}
    times = overhead.best_round({"torch": cases["Conv2dBNAct train"][0], "ours": cases["Conv2dBNAct train"][1]},
                                rounds=1, calls=2)
    assert set(times) == {"torch", "ours"} and all(0 < t < float("inf") for t in times.values())
