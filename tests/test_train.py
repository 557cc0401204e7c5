"""The train CLI: one JSON line, learning within one short epoch, argument
errors; the accuracy goals of the issue under `slow`."""
import json

import pytest
import torch

from bigkernels import cli


def run_cli(capsys, *args):
    # One thread: on a loaded shared 2-core machine two OpenMP threads spin
    # against each other (measured 10x slower per step).
    threads = torch.get_num_threads()
    try:
        assert cli.main(["train", "--no-progress", "--threads", "1", *args]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    return json.loads(lines[-1]), out.err


def test_cnn_one_epoch_prints_metrics_and_json(capsys):
    result, err = run_cli(capsys, "--model", "cnn", "--epochs", "2")
    assert {"model", "test_accuracy", "seconds", "samples_per_second"} <= set(result)
    assert result["model"] == "cnn" and result["seconds"] > 0 and result["samples_per_second"] > 0
    assert result["test_accuracy"] > 0.6  # chance is 0.1; two short epochs reach ~0.9
    assert "epoch 2/2" in err and "test_accuracy" in err


def test_gpt_on_text_beats_uniform(capsys):
    result, _ = run_cli(capsys, "--model", "gpt", "--epochs", "1", "--max-chars", "20000", "--batch-size", "16")
    # A uniform guess over the ~90 characters has perplexity ~90.
    assert result["model"] == "gpt" and 1.0 < result["test_perplexity"] < 40


def test_lstm_language_model_on_text(capsys):
    result, _ = run_cli(capsys, "--model", "lstm", "--data", "text", "--epochs", "1", "--max-chars", "20000",
                        "--batch-size", "16", "--lr", "1e-2")
    assert result["data"] == "text" and result["test_perplexity"] < 40


@pytest.mark.parametrize("args,message", [
    (["--model", "cnn", "--data", "text"], "digits only"),
    (["--model", "gpt", "--data", "digits"], "text only"),
    (["--model", "cnn", "--epochs", "0"], "--epochs must be positive"),
    (["--model", "cnn", "--lr", "-1"], "--lr must be positive"),
    (["--model", "cnn", "--backend", "fastest"], "backend"),
])
def test_bad_arguments(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--no-progress", *args])
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("model,goal", [("cnn", 0.97), ("lstm", 0.93), ("transformer", 0.93)])
def test_digits_accuracy_goal(capsys, model, goal):
    result, _ = run_cli(capsys, "--model", model)
    assert result["test_accuracy"] >= goal and result["seconds"] < 60, result


@pytest.mark.slow
def test_ddp_flag_launches_two_ranks():
    """--ddp 2 relaunches the command through torchrun (gloo on the CPU); ~30 s."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "bigkernels", "train", "--model", "cnn", "--epochs", "2", "--ddp",
                           "2", "--threads", "1", "--no-progress"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["world_size"] == 2 and result["test_accuracy"] > 0.2
