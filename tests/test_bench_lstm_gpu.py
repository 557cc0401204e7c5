"""The GPU cases of the LSTM benchmark, built on the CPU at a toy size: every
implementation is tried once, the ones that cannot run a case are named in
its notes instead of timed, the baseline is torch's LSTM, and the cuDNN
algorithm is read off the kernel names. (No GPU here: this checks the case
logic only.)"""
import pytest
import torch

from bigkernels.bench import lstm_gpu
from bigkernels.bench.runner import run_case


@pytest.mark.parametrize("names,algorithm", [
    (["void RNN_blockPersist_fp_LSTM<__half, float, float, 128>(...)", "ampere_gemm"], "persistent"),
    (["elemWiseRNNcell<float, float, float, (cudnnRNNMode_t)2>", "sm80_xmma_gemm"], "standard"),
    (["sm80_xmma_gemm_f32f32"], "unknown (no RNN kernel among the launches)"),
])
def test_cudnn_algorithm_from_kernel_names(names, algorithm):
    assert lstm_gpu.cudnn_algorithm(names) == algorithm


def test_gpu_cases_keep_what_runs_and_name_what_does_not(monkeypatch):
    monkeypatch.setattr(lstm_gpu, "T", 3)
    monkeypatch.setattr(lstm_gpu, "SWEEP", [("B2 H8", 2, 8, (torch.float32,))])
    monkeypatch.setattr(lstm_gpu, "SPECIAL", [])
    monkeypatch.setattr(lstm_gpu, "QUICK", ("B2 H8",))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)
    monkeypatch.setattr(lstm_gpu, "_launched_kernels", lambda run, device: ["elemWiseRNNcell<float>"])
    cases = lstm_gpu.cases(True, "cpu")
    assert [c.name for c in cases] == ["gpu B2 H8 inference float32", "gpu B2 H8 fwd+bwd float32"]
    for case in cases:
        assert case.baseline == "torch_cudnn" and "bigkernels_auto" in case.impls
        assert case.notes["cudnn_algorithm"] == "standard"
        # no CUDA kernels in a CPU build: the forced cuda backend cannot run and is named
        assert "bigkernels_cuda" in case.notes and "bigkernels_cuda" not in case.impls
        train = case.params["mode"] == "fwd+bwd"
        assert case.flops == 2 * 3 * 2 * 4 * 8 * (8 + 8) * (3 if train else 1)
        assert (case.validate is None) == train
        records = run_case(case, "cpu", True)
        assert {r["implementation"] for r in records} == set(case.impls)
