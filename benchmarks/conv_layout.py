"""How oneDNN's convolution fares on NCHW tensors against the same
convolution run another way, for every convolution of the models bench's CNNs
(bigkernels/bench/families/models.py) at that bench's input sizes:
  nchw  F.conv2d on the NCHW tensors as they are (what eager torch runs)
  cl    copies to channels_last, F.conv2d there, the result copied back (copies timed)
  gemm  1x1 convolutions only: a matrix product per image, W[K, C] @ x[n][C, H*W]
Forward (no grad) and backward (data + weight gradients, convolution_backward),
fp32, the implementations alternated per call (a shared VM's load hits each
alike), medians. Prints per geometry, then per model the sums over its convs.

    python benchmarks/conv_layout.py [--threads 2] [--reps 15] [--models resnet50-224,...]
"""
import argparse
import collections

import torch
import torch.nn.functional as F
from torch import nn

from bigkernels.bench.families import models as model_cases
from bigkernels.bench.timer import interleaved_medians

CL = torch.channels_last


def geometries(name, build, make_input):
    """(x shape, weight shape, stride, padding, groups) -> count, for each conv of the model."""
    model, found = build(False), collections.Counter()

    def hook(conv, inputs, _out):
        found[(tuple(inputs[0].shape), tuple(conv.weight.shape), conv.stride, conv.padding, conv.groups)] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(make_input())
    for h in handles:
        h.remove()
    return found


def gemm_1x1(x, w, stride):
    if stride != (1, 1):
        x = x[:, :, ::stride[0], ::stride[1]]
    n, c, h, wd = x.shape
    return torch.matmul(w.reshape(w.shape[0], c), x.reshape(n, c, h * wd)).view(n, w.shape[0], h, wd)


def implementations(xs, ws, stride, padding, groups):
    x, w = torch.randn(xs), torch.randn(ws)
    x_cl, w_cl = x.contiguous(memory_format=CL), w.contiguous(memory_format=CL)
    g = torch.randn(F.conv2d(x, w, None, stride, padding, 1, groups).shape)
    mask = [True, True, False]

    def bwd_nchw():
        torch.ops.aten.convolution_backward(g, x, w, None, stride, padding, (1, 1), False, (0, 0), groups, mask)

    def bwd_cl():
        gx, _, _ = torch.ops.aten.convolution_backward(g.contiguous(memory_format=CL), x.contiguous(memory_format=CL),
                                                      w_cl, None, stride, padding, (1, 1), False, (0, 0), groups,
                                                      mask)
        gx.contiguous()

    fwd = {"nchw": lambda: F.conv2d(x, w, None, stride, padding, 1, groups),
           "cl": lambda: F.conv2d(x.contiguous(memory_format=CL), w_cl, None, stride, padding, 1,
                                  groups).contiguous()}
    if ws[2:] == (1, 1) and padding == (0, 0) and groups == 1:
        fwd["gemm"] = lambda: gemm_1x1(x, w, stride)
    return fwd, {"nchw": bwd_nchw, "cl": bwd_cl}


def alternate(fns, reps):
    """Median ms of each, `reps` rounds of one call each (budget 0: the rounds alone)."""
    return {k: s * 1e3 for k, s in interleaved_medians(fns, min_reps=reps, budget_s=0).items()}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--models", default="cnn-32,resnet18,resnet18-224,resnet34-224,resnet50-224")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    specs = {n: (b, m) for n, b, m, _ in model_cases._specs(False, "cpu")}
    measured, totals = {}, {}
    print("x | weight | stride | count | forward ms: nchw cl gemm | backward ms: nchw cl")
    for name in args.models.split(","):
        total = collections.Counter()
        for geo, count in geometries(name, *specs[name]).items():
            if geo not in measured:
                fwd, bwd = implementations(*geo)
                with torch.no_grad():
                    measured[geo] = alternate(fwd, args.reps), alternate(bwd, args.reps)
                f, b = measured[geo]
                gemm = f.get("gemm", float("nan"))
                print(f"{list(geo[0])} | {list(geo[1])} | {geo[2][0]} | {count} | "
                      f"{f['nchw']:.2f} {f['cl']:.2f} {gemm:.2f} | {b['nchw']:.2f} {b['cl']:.2f}", flush=True)
            f, b = measured[geo]
            total["fwd nchw"] += count * f["nchw"]
            total["fwd best"] += count * min(f.values())
            total["bwd nchw"] += count * b["nchw"]
            total["bwd best"] += count * min(b.values())
        totals[name] = total
    print("\nmodel | forward ms: nchw, best per conv | backward ms: nchw, best per conv")
    for name, t in totals.items():
        print(f"{name} | {t['fwd nchw']:.1f} {t['fwd best']:.1f} | {t['bwd nchw']:.1f} {t['bwd best']:.1f}")


if __name__ == "__main__":
    main()
