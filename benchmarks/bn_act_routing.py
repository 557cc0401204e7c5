"""Which backend should serve batch_norm_act in CPU training (docs/conv.md,
"Routing on the CPU"): ops.batch_norm_act forward + backward (training, ReLU)
under use_backend("cpu") (our C++ kernel) against use_backend("torch")
(torch's native batch norm, add, activation), the two alternated per call,
medians; then whole training steps of the models bench's CNNs with bn_act's
auto order set each way (everything else as `auto`). Prints torch / cpu
(> 1: our kernel is faster).

    python benchmarks/bn_act_routing.py [--budget 1.0] [--no-models]
"""
import argparse
import itertools

import torch

from bigkernels import ops, use_backend
from bigkernels.backends import router, set_auto_order
from bigkernels.bench.families import models as model_cases
from bigkernels.bench.timer import interleaved_medians

SHAPES = [  # N, C, H (= W)
    (64, 32, 4), (64, 64, 4), (8, 512, 4), (64, 32, 8), (8, 256, 8), (8, 128, 16), (16, 64, 16), (8, 64, 32),
    (16, 64, 32), (4, 64, 56),
]


def step(backend, z, residual, params):
    mean, var, weight, bias = params

    def run():
        with use_backend(backend):
            y = ops.batch_norm_act(z, mean, var, weight, bias, True, 0.1, 1e-5, activation="relu", residual=residual)
            y.sum().backward()

    return run


def model_steps(budget):
    """Training steps of the models bench's CNNs, bn_act's CPU auto order
    ("cpu", "torch") against ("torch", "cpu"), alternated per step."""
    print("model | layout | train step, bn_act cpu first (ms) | torch first (ms) | torch first / cpu first")
    library_order = router._AUTO_ORDER[("bn_act", "cpu")]  # restored after each model
    for (name, build, make_input, classes), fmt in itertools.product(
            model_cases._specs(False, "cpu"), (torch.contiguous_format, torch.channels_last)):
        if not name.startswith(("cnn", "resnet18")):
            continue
        torch.manual_seed(0)
        model = build(True).to(memory_format=fmt)
        x = make_input().contiguous(memory_format=fmt)
        y = torch.randint(0, classes, x.shape[:1])
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def train_step(order):
            def run():
                set_auto_order("bn_act", "cpu", order)
                loss, _ = model_cases._loss(model, x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            return run

        try:
            t = interleaved_medians({"cpu": train_step(("cpu", "torch")), "torch": train_step(("torch", "cpu"))},
                                    budget_s=3 * budget)
        finally:
            set_auto_order("bn_act", "cpu", library_order)
        layout = "NCHW" if fmt is torch.contiguous_format else "channels_last"
        print(f"{name} | {layout} | {t['cpu'] * 1e3:.2f} | {t['torch'] * 1e3:.2f} | {t['torch'] / t['cpu']:.3f}",
              flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=1.0, help="seconds per backend and configuration")
    parser.add_argument("--no-models", action="store_true", help="only the op-level table")
    args = parser.parse_args()
    print(f"{torch.get_num_threads()} threads; torch / cpu, forward + backward, training, relu")
    print("N x C x H x W | elements | NCHW | NCHW + residual | channels_last | channels_last + residual")
    for n, c, h in SHAPES:
        cells = []
        for fmt in (torch.contiguous_format, torch.channels_last):
            for with_residual in (False, True):
                z = torch.randn(n, c, h, h).contiguous(memory_format=fmt).requires_grad_()
                r = torch.randn(n, c, h, h).contiguous(memory_format=fmt).requires_grad_() if with_residual else None
                params = (torch.zeros(c), torch.ones(c), torch.ones(c, requires_grad=True),
                          torch.zeros(c, requires_grad=True))
                t = interleaved_medians({"cpu": step("cpu", z, r, params), "torch": step("torch", z, r, params)},
                                        budget_s=args.budget)
                cells.append(f"{t['torch'] / t['cpu']:.2f}")
        print(f"{n} x {c} x {h} x {h} | {n * c * h * h} | " + " | ".join(cells), flush=True)
    if not args.no_models:
        model_steps(args.budget)


if __name__ == "__main__":
    main()
