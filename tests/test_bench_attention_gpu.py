"""The GPU cases of the attention benchmark, built on the CPU at a toy size:
every implementation is tried once, the ones that cannot run the case are
named in its notes instead of timed, and the baseline is SDPA as dispatched.
(No GPU here: this checks the case logic, not GPU numbers.)"""
import torch

from bigkernels.bench import attention_gpu
from bigkernels.bench.runner import run_case


def test_gpu_cases_keep_what_runs_and_name_what_does_not(monkeypatch):
    monkeypatch.setattr(attention_gpu, "TOKENS", 128)
    monkeypatch.setattr(attention_gpu, "HIDDEN", 128)
    monkeypatch.setattr(attention_gpu, "SEQLEN", 64)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a, **k: None)

    def no_flex(*args):
        raise RuntimeError("FlexAttention left out of this test")

    monkeypatch.setattr(attention_gpu, "_flex", no_flex)
    cases = attention_gpu.cases(True, "cpu")
    assert [c.name for c in cases] == [f"attention {m}{c} bfloat16 D128 S64" for m in ("fwd", "fwd+bwd")
                                       for c in ("", " causal")]
    for case in cases:
        assert case.baseline == "torch_sdpa" and "bigkernels_auto" in case.impls
        assert case.params["B"] * case.params["S"] == 128
        assert "flex_attention" in case.notes and "flex_attention" not in case.impls
        # the cuda backend needs a GPU: tried, failed, named
        assert "bigkernels_cuda" in case.notes and "bigkernels_cuda" not in case.impls
        causal = 0.5 if case.params["causal"] else 1.0
        assert case.flops == 4 * 2 * 1 * 64 * 64 * 128 * causal * (3.5 if case.params["mode"] == "fwd+bwd" else 1)
        records = run_case(case, "cpu", True)
        assert {r["implementation"] for r in records} == set(case.impls)
        assert all(r["notes"] == case.notes for r in records)
