"""What glibc's malloc costs a CPU training or inference step: each case timed
in a fresh process with glibc's defaults, and in another whose mmap and
trim thresholds are raised first (mallopt), so that freed activation-sized
buffers stay in the heap instead of going back to the OS and faulting in
again, zeroed, on the next step. Both sides of each case (eager torch and
bigkernels) run in the same process, so the ratio between them is fair in
either setting; the absolute times say how much of a step is page faults.

    python benchmarks/cpu_allocator.py [--models resnet50-224,cnn-32] [--rounds 9]

The setting is the process's own (`tuned_malloc` below; or
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=268435456
before python starts; jemalloc or tcmalloc via LD_PRELOAD do the same).
"""
import argparse
import ctypes
import json
import subprocess
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def tuned_malloc():
    """Raise glibc's thresholds (32 MiB is M_MMAP_THRESHOLD's ceiling on 64-bit)."""
    libc = ctypes.CDLL("libc.so.6")
    if not (libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) and libc.mallopt(M_TRIM_THRESHOLD, 256 << 20)):
        raise RuntimeError("mallopt refused the thresholds")


def one_process(models, rounds, threads):
    """Run in the child: median step times of eager and bigkernels, per case."""
    import torch
    import torch.nn.functional as F

    from bigkernels.bench.families import models as model_cases
    from bigkernels.bench.timer import interleaved_medians

    torch.set_num_threads(threads)
    specs = {n: (b, m, c) for n, b, m, c in model_cases._specs(False, "cpu")}
    out = {}
    # one convolution alone, called repeatedly: its 12.8 MB output is freed and allocated again each call
    x, w = torch.randn(4, 64, 56, 56), torch.randn(256, 64, 1, 1)
    with torch.no_grad():
        conv = interleaved_medians({"torch": lambda: F.conv2d(x, w)}, min_reps=4 * rounds, budget_s=0)
    out["conv 1x1 4x64x56x56 -> 256 alone"] = {k: s * 1e3 for k, s in conv.items()}
    for name in models:
        build, make_input, classes = specs[name]
        for train in (False, True):
            torch.manual_seed(0)
            x = make_input()
            y = torch.randint(0, classes, x.shape[:1] if x.is_floating_point() else x.shape[:2])
            steps = {}
            for kernels in (False, True):
                model = build(kernels).train(train)
                opt = torch.optim.SGD(model.parameters(), lr=1e-3)

                def step(model=model, opt=opt, x=x, y=y, train=train):
                    if not train:
                        with torch.no_grad():
                            return model(x)
                    logits = model(x)
                    logits = logits[0] if isinstance(logits, tuple) else logits
                    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()

                steps["bigkernels" if kernels else "torch"] = step
            medians = interleaved_medians(steps, min_reps=rounds, budget_s=0)
            out[f"{name} {'train step' if train else 'inference'}"] = {k: s * 1e3 for k, s in medians.items()}
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="cnn-32,resnet18-224,resnet50-224,lstm-512,gpt-512")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", choices=["default", "tuned"])
    args = parser.parse_args()
    models = args.models.split(",")
    if args.child:
        if args.child == "tuned":
            tuned_malloc()
        print(json.dumps(one_process(models, args.rounds, args.threads)))
        return
    results = {}
    for setting in ("default", "tuned"):
        run = subprocess.run([sys.executable, __file__, "--child", setting, "--models", args.models,
                              "--rounds", str(args.rounds), "--threads", str(args.threads)],
                             capture_output=True, text=True, check=True)
        results[setting] = json.loads(run.stdout.strip().splitlines()[-1])
    print("case | glibc default: torch ms, bigkernels ms, ratio | thresholds raised: torch ms, bigkernels ms, ratio")
    for case in results["default"]:
        cells = []
        for setting in ("default", "tuned"):
            t = results[setting][case]
            cells.append(f"{t['torch']:.1f} {t['bigkernels']:.1f} {t['torch'] / t['bigkernels']:.2f}x"
                         if "bigkernels" in t else f"{t['torch']:.2f} (torch only)")
        print(f"{case} | {cells[0]} | {cells[1]}")


if __name__ == "__main__":
    main()
