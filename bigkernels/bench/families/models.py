"""Whole models: a training step and inference, bigkernels (swapped) against
eager torch (the same model with kernels=False) and torch.compile of the
eager model. Quick mode: small shapes, no torch.compile (Inductor spends tens
of seconds per graph on a 2-core machine, more than the whole quick run)."""
import copy

import torch
import torch.nn.functional as F

from ... import models as M
from ..case import OPTIONS, Case
from ..flops import forward_flops


def _specs(quick, device):
    # (name, builder(kernels), input maker, number of classes)
    specs = [
        ("cnn", lambda k: M.SimpleCNN(10, 1, width=32, kernels=k), lambda: torch.randn(64, 1, 8, 8), 10),
        ("lstm", lambda k: M.LSTMClassifier(32, 256, 10, 2, kernels=k), lambda: torch.randn(16, 50, 32), 10),
        ("transformer", lambda k: M.TransformerClassifier(10, input_dim=16, d_model=128, nhead=4, num_layers=2,
                                                          max_len=64, dropout=0.0, kernels=k),
         lambda: torch.randn(16, 64, 16), 10),
        ("gpt", lambda k: M.GPT(256, 4, 4, 2, 128, 128, kernels=k), lambda: torch.randint(0, 256, (8, 128)), 256),
    ]
    if not quick:
        # sizes where the kernels, not the per-call overhead, take the time (% of peak beside each ratio)
        specs += [
            ("resnet18", lambda k: M.resnet18(10, 3, small_input=True, kernels=k),
             lambda: torch.randn(16, 3, 32, 32), 10),
            # ImageNet-sized input: the 7x7 stem and its 3x3 stride-2 max-pool on 112 x 112 planes
            ("resnet18-224", lambda k: M.resnet18(10, 3, kernels=k), lambda: torch.randn(4, 3, 224, 224), 10),
            ("lstm-512", lambda k: M.LSTMClassifier(128, 512, 10, 2, kernels=k), lambda: torch.randn(16, 100, 128),
             10),
            ("transformer-256", lambda k: M.TransformerClassifier(10, input_dim=64, d_model=256, nhead=8,
                                                                  num_layers=4, max_len=256, dropout=0.0, kernels=k),
             lambda: torch.randn(16, 256, 64), 10),
            ("gpt-512", lambda k: M.GPT(256, 6, 8, 4, 512, 256, kernels=k), lambda: torch.randint(0, 256, (8, 256)),
             256),
            # the rest of bigkernels.models, each at a size a user would train on a CPU
            ("cnn-32", lambda k: M.SimpleCNN(10, 3, width=64, kernels=k), lambda: torch.randn(64, 3, 32, 32), 10),
            ("resnet34-224", lambda k: M.resnet34(10, 3, kernels=k), lambda: torch.randn(4, 3, 224, 224), 10),
            ("resnet50-224", lambda k: M.resnet50(10, 3, kernels=k), lambda: torch.randn(4, 3, 224, 224), 10),
            ("lstm-lm-512", lambda k: M.LSTMLanguageModel(256, 256, 512, 2, kernels=k),
             lambda: torch.randint(0, 256, (16, 100)), 256),
        ]
    return specs


def _loss(model, x, y):
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)), out


def _case(name, build, make_input, classes, train, quick, device):
    torch.manual_seed(0)
    eager = build(False).to(device)
    ours = build(True).to(device)
    ours.load_state_dict(eager.state_dict(), strict=True)
    models = {"torch": eager, "bigkernels": ours}
    if not quick and OPTIONS["compile"]:
        models["torch.compile"] = torch.compile(copy.deepcopy(eager))
    x = make_input().to(device)
    # token models (integer input) predict every position, classifiers one label per sample
    y = torch.randint(0, classes, x.shape[:1] if x.is_floating_point() else x.shape[:2], device=device)
    impls = {}
    for impl, model in models.items():
        model.train(train)
        if train:
            opt = torch.optim.SGD(model.parameters(), lr=1e-3)

            def step(model=model, opt=opt):
                loss, _ = _loss(model, x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        else:
            def step(model=model):
                with torch.no_grad():
                    model(x)
        impls[impl] = step

    def validate():
        ours.eval(), eager.eval()
        with torch.no_grad():
            a, b = _loss(ours, x, y)[1], _loss(eager, x, y)[1]
        ours.train(train), eager.train(train)
        err = (a.float() - b.float()).abs().max().item()
        return None if err < 1e-3 else f"bigkernels vs torch logits differ by {err:.3g}"

    swapped = len(ours.swap_report.swapped) if ours.swap_report else 0
    flops = forward_flops(eager, x) * (3 if train else 1)
    return Case("models", f"{name} {'train step' if train else 'inference'}",
                {"model": name, "input": list(x.shape), "mode": "train" if train else "eval", "swapped": swapped},
                impls, baseline="torch", flops=flops, validate=validate)


def cases(quick, device):
    return [_case(n, b, m, c, train, quick, device) for n, b, m, c in _specs(quick, device) for train in (False, True)]
