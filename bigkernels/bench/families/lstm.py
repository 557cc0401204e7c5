"""LSTM (and GRU) benchmarks: bigkernels.nn.LSTM/GRU (forced `cpu`, and `auto`)
against torch.nn.LSTM/GRU in the same run. Forward FLOPs count the input projection and
the recurrent GEMMs (2 * 4H * (I + P) per row and step); fwd+bwd counts 3x."""
import torch

from .. import lstm_gpu
from ..case import Case
from ..flops import lstm_flops

FAMILY = "lstm"
# (name, T, B, I, H, layers, proj, train)
HEADLINE = [
    ("b1 inference", 100, 1, 256, 256, 2, 0, False),
    ("b1 fwd+bwd", 100, 1, 256, 256, 2, 0, True),
    ("b16 inference", 100, 16, 256, 256, 2, 0, False),
    ("b16 fwd+bwd", 100, 16, 256, 256, 2, 0, True),
    ("fastrnns inference", 100, 64, 512, 512, 1, 0, False),
    ("fastrnns fwd+bwd", 100, 64, 512, 512, 1, 0, True),
    ("b16 proj128 inference", 100, 16, 256, 256, 2, 128, False),
    ("b16 proj128 fwd+bwd", 100, 16, 256, 256, 2, 128, True),
]


def _sweep(quick):
    bs, hs = ((1, 32), (128, 512)) if quick else ((1, 8, 32, 64), (128, 256, 512, 1024))
    return [(f"sweep B{b} H{h} {mode}", 50, b, h, h, 1, 0, train)
            for b in bs for h in hs for mode, train in (("inference", False), ("fwd+bwd", True))]


def _case(name, T, B, I, H, layers, proj, train, device, kind="LSTM"):
    import bigkernels
    from bigkernels import nn as bnn

    torch.manual_seed(0)
    extra = dict(proj_size=proj) if kind == "LSTM" else {}
    theirs = getattr(torch.nn, kind)(I, H, layers, **extra).to(device)
    ours = getattr(bnn, kind)(I, H, layers, **extra).to(device)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(T, B, I, device=device, requires_grad=train)

    def run(module, backend=None):
        def call():
            with bigkernels.use_backend(backend or "auto"), torch.set_grad_enabled(train):
                y = module(x)[0]
                if train:
                    y.sum().backward()
            return y

        return call

    impls = {"torch": run(theirs), "cpu": run(ours, "cpu"), "auto": run(ours)}
    if device != "cpu":
        impls.pop("cpu")

    def validate():
        with torch.no_grad():
            ref = theirs(x)[0]
            for key in ("cpu", "auto"):
                if key in impls:
                    with bigkernels.use_backend("cpu" if key == "cpu" else "auto"):
                        err = (ours(x)[0] - ref).abs().max().item()
                    if err > 1e-4:
                        return f"{key}: max |y - torch| = {err:.3g}"
        return None

    params = dict(kind=kind, T=T, B=B, I=I, H=H, layers=layers, proj_size=proj,
                  mode="fwd+bwd" if train else "inference",
                  dtype="float32", threads=torch.get_num_threads())
    flops = lstm_flops(T, B, I, H, layers, proj, gates={"LSTM": 4, "GRU": 3, "RNN": 1}[kind]) * (3 if train else 1)
    return Case(FAMILY, name, params, impls, "torch", flops=flops,
                validate=validate)


GRU = [("gru b1 inference", 100, 1, 256, 256, 2, 0, False), ("gru b1 fwd+bwd", 100, 1, 256, 256, 2, 0, True),
       ("gru b16 inference", 100, 16, 256, 256, 2, 0, False), ("gru b16 fwd+bwd", 100, 16, 256, 256, 2, 0, True),
       ("gru b64 H512 inference", 100, 64, 512, 512, 1, 0, False),
       ("gru b64 H512 fwd+bwd", 100, 64, 512, 512, 1, 0, True),
       ("gru b8 H128 inference", 50, 8, 128, 128, 1, 0, False)]
RNN = [("rnn b1 inference", 100, 1, 256, 256, 2, 0, False), ("rnn b1 fwd+bwd", 100, 1, 256, 256, 2, 0, True),
       ("rnn b16 inference", 100, 16, 256, 256, 2, 0, False), ("rnn b16 fwd+bwd", 100, 16, 256, 256, 2, 0, True),
       ("rnn b64 H512 inference", 100, 64, 512, 512, 1, 0, False)]


def cases(quick: bool, device: str) -> list:
    if device != "cpu":
        return lstm_gpu.cases(quick, device)
    return ([_case(*spec, device=device) for spec in HEADLINE + _sweep(quick)]
            + [_case(*spec, device=device, kind="GRU") for spec in GRU]
            + [_case(*spec, device=device, kind="RNN") for spec in RNN])
