"""The measurements behind conv2d's CPU routing rule (docs/conv.md, "Routing
on the CPU"): ops.conv2d under use_backend("cpu") against use_backend("torch"),
the two alternated per call (a shared VM's load hits both alike), median wall
clock of N calls, one thread. Prints torch / cpu (> 1: our kernel is faster).

    python benchmarks/conv_routing.py [--threads 1] [--reps 150]
"""
import argparse
import statistics
import time

import torch

from bigkernels import ops, use_backend

SHAPES = [  # N, C, H (= W), K, kernel size
    (64, 1, 8, 32, 3), (64, 32, 8, 32, 3), (64, 32, 4, 64, 3), (16, 3, 32, 64, 3), (16, 64, 32, 64, 3),
    (16, 64, 32, 64, 1), (16, 128, 8, 256, 3), (8, 256, 8, 256, 3), (4, 512, 4, 512, 3), (2, 32, 4, 32, 3),
    (64, 32, 16, 32, 3),
]


def alternate(a, b, reps):
    for _ in range(5):
        a(), b()
    ta, tb = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t1)
        ta.append(t1 - t0)
    return statistics.median(ta), statistics.median(tb)


def forced(name, fn):
    def run():
        with use_backend(name):
            fn()

    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("x -> K, kernel | activation | torch/cpu fwd+bwd | torch/cpu forward (no grad)")
    for n, c, h, k, r in SHAPES:
        x = torch.randn(n, c, h, h, requires_grad=True)
        w = torch.randn(k, c, r, r, requires_grad=True)
        for act in ("none", "relu"):
            def fwd(act=act, x=x, w=w, r=r):
                return ops.conv2d(x, w, None, 1, r // 2, activation=act)

            cpu, tch = alternate(forced("cpu", lambda: fwd().sum().backward()),
                                 forced("torch", lambda: fwd().sum().backward()), args.reps)
            with torch.no_grad():
                cpu_f, tch_f = alternate(forced("cpu", fwd), forced("torch", fwd), args.reps)
            print(f"{n}x{c}x{h}x{h} -> {k}, {r}x{r} | {act} | {tch / cpu:.2f}x | {tch_f / cpu_f:.2f}x", flush=True)


if __name__ == "__main__":
    main()
