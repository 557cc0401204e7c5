"""Convolution benchmarks (CPU, fp32, channels_last unless noted), each
against eager torch in the same run:
  - a ResNet-style network (BasicBlocks): eval forward and a training step
    (forward + backward + SGD), torch modules vs the same weights in
    Conv2dBNAct modules;
  - per layer: conv + BN + ReLU over ResNet-18/50 layer shapes (eval: torch
    conv -> bn -> relu vs the folded fused conv; train: forward + backward);
  - depthwise conv + bias + ReLU at kernel sizes 3, 7 and 13;
  - Conv1d + BN + ReLU blocks (Conv1dBNAct), eval and training;
  - max pooling on NCHW input (ops.max_pool2d against F.max_pool2d, and
    torch's channels_last kernel for scale), eval and forward + backward.
GPU: bigkernels/bench/conv_gpu.py."""
import copy

import torch
from torch import nn

from ...nn import Conv2dBNAct
from .. import conv_gpu
from ..case import Case
from ..flops import forward_flops

CL = torch.channels_last
# (name, N, C_in, H, C_out, kernel, stride): ResNet-18 basic-block and
# ResNet-50 bottleneck convs at 224x224 input, batch reduced for 2 CPU cores.
LAYERS = [
    ("r18.l1.3x3", 8, 64, 56, 64, 3, 1),
    ("r18.l2.3x3s2", 8, 64, 56, 128, 3, 2),
    ("r18.l3.3x3", 8, 256, 14, 256, 3, 1),
    ("r18.l4.3x3", 8, 512, 7, 512, 3, 1),
    ("r50.l1.1x1", 8, 256, 56, 64, 1, 1),
    ("r50.l1.1x1up", 8, 64, 56, 256, 1, 1),
    ("r50.l3.1x1", 8, 1024, 14, 256, 1, 1),
    ("r50.l4.3x3", 8, 512, 7, 512, 3, 1),
]
QUICK_LAYERS = ("r18.l1.3x3", "r18.l3.3x3", "r50.l1.1x1")
DEPTHWISE = [(3, 8, 128, 56), (7, 8, 128, 28), (13, 8, 128, 28)]  # kernel, N, C, H


class TorchBlock(nn.Module):
    """torchvision's BasicBlock shape: conv-bn-relu, conv-bn, + identity, relu."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + identity)


class FusedBlock(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.c1 = Conv2dBNAct.from_modules(block.conv1, block.bn1, nn.ReLU())
        self.c2 = Conv2dBNAct.from_modules(block.conv2, block.bn2, nn.ReLU())
        self.down = None if block.down is None else Conv2dBNAct.from_modules(block.down[0], block.down[1], None)

    def forward(self, x):
        identity = x if self.down is None else self.down(x)
        return self.c2(self.c1(x), identity)


def resnet(widths=(64, 128, 256, 512), blocks=2):
    """A ResNet-18-style trunk (stem conv + 4 stages of BasicBlocks)."""
    layers = [nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()]
    cin = widths[0]
    for i, w in enumerate(widths):
        for j in range(blocks):
            layers.append(TorchBlock(cin, w, 2 if (j == 0 and i > 0) else 1))
            cin = w
    return nn.Sequential(*layers)


def fused(model):
    stem = Conv2dBNAct.from_modules(model[0], model[1], nn.ReLU())
    return nn.Sequential(stem, *[FusedBlock(b) for b in list(model)[3:]])


def _randomise_bn(model, seed):
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)


def _validate(a, b, tol):
    def check():
        ya, yb = a(), b()
        err = (ya - yb).abs().max().item() / max(1.0, yb.abs().max().item())
        return None if err <= tol else f"relative max difference {err:.3g} > {tol}"

    return check


def _train_step(model, x, opt):
    def step():
        opt.zero_grad(set_to_none=True)
        y = model(x)
        y.float().mean().backward()
        opt.step()
        return y.detach()

    return step


def network_cases(quick):
    torch.manual_seed(0)
    n, size = (4, 32) if quick else (8, 64)
    ref = resnet().to(memory_format=CL)
    _randomise_bn(ref, 0)
    ours = fused(ref)
    x = torch.randn(n, 3, size, size).contiguous(memory_format=CL)
    ref.eval(), ours.eval()
    params = dict(model="resnet18-style", batch=n, size=size, dtype="float32", layout="channels_last")

    def run_eval(m):
        def f():
            with torch.no_grad():
                return m(x)
        return f

    flops = forward_flops(ref, x)
    cases = [Case("conv", "resnet eval forward", dict(params, mode="eval"),
                  {"torch": run_eval(ref), "bigkernels": run_eval(ours)}, "torch", flops=flops,
                  validate=_validate(run_eval(ours), run_eval(ref), 1e-3))]
    ref_t, ours_t = resnet().to(memory_format=CL), None
    ref_t.load_state_dict(ref.state_dict())
    ours_t = fused(ref_t)
    ref_t.train(), ours_t.train()
    steps = {"torch": _train_step(ref_t, x, torch.optim.SGD(ref_t.parameters(), lr=1e-3)),
             "bigkernels": _train_step(ours_t, x, torch.optim.SGD(ours_t.parameters(), lr=1e-3))}
    # training: forward + the backward's two products per layer (data and weights)
    cases.append(Case("conv", "resnet train step", dict(params, mode="train"), steps, "torch", flops=3 * flops))
    return cases


def layer_cases(quick):
    cases = []
    for name, n, cin, h, cout, k, s in LAYERS:
        if quick and name not in QUICK_LAYERS:
            continue
        torch.manual_seed(0)
        seq = nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
        seq = seq.to(memory_format=CL)
        _randomise_bn(seq, 1)
        ours = Conv2dBNAct.from_modules(seq[0], seq[1], nn.ReLU())
        x = torch.randn(n, cin, h, h).contiguous(memory_format=CL)
        ho = (h + 2 * (k // 2) - k) // s + 1
        flops = 2.0 * n * cout * ho * ho * cin * k * k
        seq.eval(), ours.eval()

        def ev(m, x=x):
            def f():
                with torch.no_grad():
                    return m(x)
            return f

        params = dict(layer=name, N=n, C_in=cin, H=h, C_out=cout, k=k, stride=s, dtype="float32",
                      layout="channels_last")
        cases.append(Case("conv", f"{name} conv+bn+relu eval", dict(params, mode="eval"),
                          {"torch": ev(seq), "bigkernels": ev(ours)}, "torch", flops=flops,
                          validate=_validate(ev(ours), ev(seq), 1e-4)))
        if quick:
            continue
        # copies: the eval case above keeps its modules in eval mode
        seq_t = copy.deepcopy(seq).train()
        ours_t = Conv2dBNAct.from_modules(seq_t[0], seq_t[1], nn.ReLU()).train()
        xg = x.clone().requires_grad_()

        def fb(m, xg=xg):
            def f():
                y = m(xg)
                y.backward(torch.ones_like(y))
                return y.detach()
            return f

        cases.append(Case("conv", f"{name} conv+bn+relu train fwd+bwd", dict(params, mode="train"),
                          {"torch": fb(seq_t), "bigkernels": fb(ours_t)}, "torch", flops=3 * flops))
    return cases


def depthwise_cases(quick):
    from ...nn import FusedConv2d

    cases = []
    for k, n, c, h in DEPTHWISE[:1] if quick else DEPTHWISE:
        torch.manual_seed(0)
        conv = nn.Conv2d(c, c, k, 1, k // 2, groups=c).to(memory_format=CL)
        ours = FusedConv2d.from_modules(conv, nn.ReLU())
        x = torch.randn(n, c, h, h).contiguous(memory_format=CL)

        def ref(conv=conv, x=x):
            with torch.no_grad():
                return torch.relu(conv(x))

        def fused_call(ours=ours, x=x):
            with torch.no_grad():
                return ours(x)

        cases.append(Case("conv", f"depthwise {k}x{k} conv+bias+relu", dict(k=k, N=n, C=c, H=h, dtype="float32",
                                                                            layout="channels_last"),
                          {"torch": ref, "bigkernels": fused_call}, "torch", flops=2.0 * n * c * h * h * k * k,
                          validate=_validate(fused_call, ref, 1e-4)))
    return cases


# (name, N, C_in, L, C_out, kernel): 1-D conv + BN + ReLU blocks (speech/text encoders)
CONV1D = [("conv1d k3", 8, 128, 512, 128, 3), ("conv1d k5 256ch", 8, 256, 256, 256, 5)]


def conv1d_cases(quick):
    """Conv1dBNAct against nn.Sequential(Conv1d, BatchNorm1d, ReLU): eval
    (BN folded) and a training forward+backward."""
    from ...nn import Conv1dBNAct

    cases = []
    for name, n, cin, length, cout, k in CONV1D[:1] if quick else CONV1D:
        torch.manual_seed(0)
        seq = nn.Sequential(nn.Conv1d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm1d(cout), nn.ReLU())
        _randomise_bn(seq, 1)
        x = torch.randn(n, cin, length)
        flops = 2.0 * n * cout * length * cin * k
        params = dict(N=n, C_in=cin, L=length, C_out=cout, k=k, dtype="float32")
        for train in (False, True):
            ref = copy.deepcopy(seq).train(train)
            ours = Conv1dBNAct.from_modules(ref[0], ref[1], nn.ReLU()).train(train)
            xg = x.clone().requires_grad_(train)

            def run(m, xg=xg, train=train):
                def f():
                    if not train:
                        with torch.no_grad():
                            return m(xg)
                    y = m(xg)
                    y.backward(torch.ones_like(y))
                    return y.detach()
                return f

            cases.append(Case("conv", f"{name} conv+bn+relu {'train fwd+bwd' if train else 'eval'}",
                              dict(params, mode="train" if train else "eval"),
                              {"torch": run(ref), "bigkernels": run(ours)}, "torch",
                              flops=flops * (3 if train else 1),
                              validate=None if train else _validate(run(ours), run(ref), 1e-4)))
    return cases


# (name, shape, kernel, stride, padding): a small classifier's pool, a ResNet stem's, a VGG-style 2 x 2
POOLS = [("max_pool2d 2x2 64x32x8x8", (64, 32, 8, 8), 2, 2, 0),
         ("max_pool2d 3x3s2 resnet stem", (8, 64, 112, 112), 3, 2, 1),
         ("max_pool2d 2x2 16x64x32x32", (16, 64, 32, 32), 2, 2, 0)]


def pool_cases(quick):
    import torch.nn.functional as F

    from ...ops import max_pool2d

    cases = []
    for name, shape, k, s, p in POOLS[:2] if quick else POOLS:
        torch.manual_seed(0)
        x = torch.randn(shape)
        x_cl = x.contiguous(memory_format=CL)
        for train in (False, True):
            def run(fn, x, train=train):
                xg = x.clone().requires_grad_(train)

                def f():
                    with torch.set_grad_enabled(train):
                        y = fn(xg, k, s, p)
                        if train:
                            y.backward(torch.ones_like(y))
                    return y.detach()
                return f

            impls = {"torch": run(F.max_pool2d, x), "bigkernels": run(max_pool2d, x),
                     "torch channels_last": run(F.max_pool2d, x_cl)}
            cases.append(Case("conv", f"{name} {'fwd+bwd' if train else 'eval'}",
                              dict(shape=list(shape), kernel=k, stride=s, padding=p, dtype="float32", layout="NCHW",
                                   mode="train" if train else "eval"),
                              impls, "torch", bytes=4.0 * x.numel() * (3 if train else 1.25),
                              validate=None if train else _validate(impls["bigkernels"], impls["torch"], 0.0)))
    return cases


def cases(quick: bool, device: str) -> list:
    if device != "cpu":
        return conv_gpu.cases(quick, device)
    return network_cases(quick) + layer_cases(quick) + depthwise_cases(quick) + conv1d_cases(quick) + pool_cases(quick)
