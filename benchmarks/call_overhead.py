"""What one layer call costs beyond its arithmetic, at sizes where that cost
is most of the time (the quick models bench's CNN): Conv2dBNAct against the
torch Sequential it replaces (conv, BatchNorm2d, ReLU), and batch_norm_act
against F.batch_norm + relu, each training (forward + backward) and in eval.
One thread; the two sides alternated per round of R calls (a shared VM's load
hits both alike); the best round's mean per call, in microseconds.

    python benchmarks/call_overhead.py [--rounds 15] [--calls 200]
"""
import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from bigkernels import ops
from bigkernels.nn import Conv2dBNAct

SHAPES = [(8, 32, 8, 8), (64, 32, 8, 8)]  # N, C (in = out), H, W


def best_round(fns, rounds, calls):
    for f in fns.values():
        for _ in range(20):
            f()
    best = {k: float("inf") for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            best[k] = min(best[k], (time.perf_counter() - t0) / calls * 1e6)
    return best


def module_cases(shape):
    n, c, h, w = shape
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
    ours = Conv2dBNAct.from_modules(ref[0], ref[1], ref[2])
    x = torch.randn(shape, requires_grad=True)

    def train(m):
        return lambda: m.train()(x).sum().backward()

    def infer(m):
        def run():
            with torch.no_grad():
                m.eval()(x)
        return run

    return {"Conv2dBNAct train": (train(ref), train(ours)), "Conv2dBNAct eval": (infer(ref), infer(ours))}


def bn_cases(shape):
    c = shape[1]
    z = torch.randn(shape, requires_grad=True)
    weight, bias = torch.ones(c, requires_grad=True), torch.zeros(c, requires_grad=True)
    stats = [torch.zeros(c), torch.ones(c)]
    g = torch.randn(shape)
    torch_fn = lambda: F.relu(F.batch_norm(z, *stats, weight, bias, True, 0.1, 1e-5)).backward(g)
    ours_fn = lambda: ops.batch_norm_act(z, *stats, weight, bias, True, 0.1, 1e-5,
                                         activation="relu").backward(g)
    return {"batch_norm_act train": (torch_fn, ours_fn)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("case | shape | torch us | bigkernels us | bigkernels - torch us")
    for shape in SHAPES:
        for name, (ref, ours) in {**module_cases(shape), **bn_cases(shape)}.items():
            t = best_round({"torch": ref, "ours": ours}, args.rounds, args.calls)
            print(f"{name} | {list(shape)} | {t['torch']:.1f} | {t['ours']:.1f} | {t['ours'] - t['torch']:+.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
