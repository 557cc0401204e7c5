"""The bench runner's % of peak: each case against the higher of the peaks
measured just before and just after it (a shared machine drifts over a run),
the run's first peak kept."""
import json
import types
from argparse import Namespace

from bigkernels.bench import environment, runner
from bigkernels.bench.case import Case


def _family(flops):
    cases = [Case("toy", f"case {i}", {}, {"base": lambda: None, "ours": lambda: None}, "base", flops=flops)
             for i in range(3)]
    return types.SimpleNamespace(cases=lambda quick, device: cases)


def test_each_case_is_compared_with_the_peaks_measured_around_it(monkeypatch, tmp_path):
    peaks = iter([100.0, 50.0, 200.0, 400.0])  # the run's first peak, then one after each case
    monkeypatch.setattr(environment, "_PEAK", {})
    monkeypatch.setattr(environment, "measure_peak", lambda device, quick=True: next(peaks))
    monkeypatch.setattr(runner, "discover", lambda names=None: {"toy": _family(flops=1e9)})
    monkeypatch.setattr(runner, "interleaved_medians", lambda impls, device, budget_s: {"base": 0.02, "ours": 0.01})
    args = Namespace(quick=True, family=None, case=None, out=str(tmp_path), no_plot=True, no_compile=True)
    assert runner.main(args) == 0
    records = [json.loads(line) for line in open(next(tmp_path.glob("*.jsonl")))]
    ours = [r for r in records if r["implementation"] == "ours"]
    # case 0 between 100 and 50, case 1 between 50 and 200, case 2 between 200 and 400
    assert [r["case_peak_gflops"] for r in ours] == [100.0, 200.0, 400.0]
    assert all(r["peak_gflops"] == 100.0 for r in records)
    # 1 GFLOP in 10 ms = 100 GFLOP/s: 100 %, 50 %, 25 % of the three case peaks
    assert [round(r["pct_of_peak"], 6) for r in ours] == [100.0, 50.0, 25.0]
