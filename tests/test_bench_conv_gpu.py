"""The GPU cases of the convolution benchmark, built on the CPU at a toy
size: every implementation is tried once, the ones that cannot run a case
are named in its notes instead of timed, the baseline is cuDNN's conv with
separate pointwise ops. (No GPU here: this checks the case logic only.)"""
import torch

from bigkernels.bench import conv_gpu
from bigkernels.bench.runner import run_case


def test_gpu_cases_keep_what_runs_and_name_what_does_not(monkeypatch):
    monkeypatch.setattr(conv_gpu, "BATCH", 2)
    monkeypatch.setattr(conv_gpu, "LAYERS", [("toy.3x3", 8, 6, 16, 3, 1)])
    monkeypatch.setattr(conv_gpu, "QUICK_LAYERS", ("toy.3x3",))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)

    def no_compile(*args, **kwargs):
        raise RuntimeError("torch.compile left out of this test")

    monkeypatch.setattr(torch, "compile", no_compile)
    cases = conv_gpu.cases(True, "cpu")
    assert [c.name for c in cases] == ["toy.3x3 conv+bn+relu eval bfloat16", "toy.3x3 conv+bn+relu train fwd+bwd bfloat16"]
    for case in cases:
        assert case.baseline == "cudnn+pointwise" and "bigkernels_auto" in case.impls
        # the cuda backend on each of its paths (fused kernels, cuDNN + our epilogue): no GPU here
        assert "torch.compile" in case.notes
        assert {"bigkernels_cuda_fused", "bigkernels_cuda_cudnn"} <= set(case.notes) - set(case.impls)
        train = case.params["mode"] == "train"
        assert case.flops == 2.0 * 2 * 16 * 6 * 6 * 8 * 9 * (3 if train else 1)
        assert (case.validate is None) == train
        records = run_case(case, "cpu", True)
        assert {r["implementation"] for r in records} == set(case.impls)
