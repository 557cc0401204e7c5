"""The lowest time any fp32 CPU kernel can take for the LSTM issue's batch-1
inference case (2 layers, H = 256, T = 100), measured on this machine, beside
torch.nn.LSTM's and ours in the same run.

At batch 1 every layer-step is a GEMV that reads the layer's whole W_hh
(4H x H floats, 1 MiB at H = 256) and cannot start before the previous step's
h is known, so a layer costs at least T x (the time to re-read W_hh once).
The best a kernel can do is what our team kernel does: each of the threads
keeps its slice of W_hh in its own core's L2 and re-reads it every step, with
one barrier per step. benchmarks/probes/l2_stream.c times exactly that traffic
with nothing else (no multiply, no gates); the input projections are counted
at the machine's practical peak. Their sum is the floor:

    floor = layers x T x stream_step + projection FLOPs / peak

    python benchmarks/lstm_b1_floor.py [--budget 3] [--out benchmarks/results]

Needs gcc with OpenMP (-march=native: it measures this machine)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

from bigkernels import nn as bnn
from bigkernels.bench.environment import describe, peak_gflops
from bigkernels.bench.timer import interleaved_medians

HERE = os.path.dirname(os.path.abspath(__file__))
T, B, I, H, LAYERS = 100, 1, 256, 256, 2


def stream_step_us(bytes_per_thread, threads, iters=3000, repeats=5):
    """Median over `repeats` runs of the probe's microseconds per step."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "l2_stream")
        subprocess.run(["gcc", "-O2", "-march=native", "-fopenmp", os.path.join(HERE, "probes", "l2_stream.c"),
                        "-o", exe], check=True)
        runs = [float(subprocess.run([exe, str(bytes_per_thread), str(threads), str(iters)], check=True,
                                     capture_output=True, text=True).stdout.split()[0]) for _ in range(repeats)]
    return sorted(runs)[len(runs) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=3.0, help="seconds per implementation")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    threads = torch.get_num_threads()
    w_hh_bytes = 4 * H * H * 4
    step_us = stream_step_us(w_hh_bytes // threads, threads)
    peak = peak_gflops("cpu", quick=False)
    projection_flops = sum(2 * T * B * 4 * H * (I if layer == 0 else H) for layer in range(LAYERS))
    floor_ms = LAYERS * T * step_us / 1e3 + projection_flops / (peak * 1e9) * 1e3

    torch.manual_seed(0)
    theirs = torch.nn.LSTM(I, H, LAYERS)
    ours = bnn.LSTM(I, H, LAYERS)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(T, B, I)
    with torch.no_grad():
        times = interleaved_medians({"torch": lambda: theirs(x), "bigkernels": lambda: ours(x)},
                                    budget_s=args.budget)
    torch_ms, ours_ms = times["torch"] * 1e3, times["bigkernels"] * 1e3
    record = {
        "case": f"LSTM {LAYERS} layers, H={H}, I={I}, T={T}, B={B}, inference, fp32",
        "threads": threads, "w_hh_bytes_per_thread": w_hh_bytes // threads,
        "stream_step_us": step_us, "peak_gflops": peak,
        "floor_ms": floor_ms, "torch_ms": torch_ms, "bigkernels_ms": ours_ms,
        "speedup": torch_ms / ours_ms, "speedup_at_floor": torch_ms / floor_ms,
        **describe("cpu"),
    }
    print(f"re-reading {w_hh_bytes // threads // 1024} KiB of W_hh per thread on {threads} threads: "
          f"{step_us:.2f} us a step")
    print(f"practical peak {peak:.0f} GFLOP/s; input projections {projection_flops / 1e6:.0f} MFLOP")
    print(f"floor {floor_ms:.2f} ms | torch.nn.LSTM {torch_ms:.2f} ms | bigkernels {ours_ms:.2f} ms "
          f"({record['speedup']:.2f}x) | a kernel at the floor: {record['speedup_at_floor']:.2f}x")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "lstm_b1_floor.jsonl"), "a") as f:
        f.write(json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
