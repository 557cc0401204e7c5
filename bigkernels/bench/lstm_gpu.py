"""GPU cases of the LSTM family (issues 3 and 14): torch.nn.LSTM (cuDNN)
against bigkernels.nn.LSTM (auto, and the cuda and triton backends forced),
the input projection included, inference (no_grad) and forward+backward, in
one run:
  - the issues' sweep: T 100, one layer, I = H in {256, 512, 1024}, batch
    {1, 8, 32}, fp32 and bf16 (goals: >= 2x inference, >= 1.3x fwd+bwd);
  - a shape where cuDNN runs a persistent algorithm (fp16, one layer,
    unidirectional, H 512 a multiple of 128, batch 32; goal >= 0.9x);
  - large batch (256, H 512; goal >= 1.0x).
Every case records which cuDNN kernels torch launched (torch.profiler), and
from their names the algorithm ("persistent" when a kernel name says so).
An implementation that cannot run a case is named in its notes, not timed.

Written without a GPU to run it (none was lent to this project): the first
GPU run is its first test; `python -m bigkernels gpu-check` runs it."""
import torch

from .case import Case, runnable
from .flops import lstm_flops

T = 100
# (label, B, H, dtypes)
SWEEP = [(f"B{b} H{h}", b, h, (torch.float32, torch.bfloat16)) for b in (1, 8, 32) for h in (256, 512, 1024)]
SPECIAL = [("cudnn-persistent B32 H512", 32, 512, (torch.float16,)), ("large batch B256 H512", 256, 512,
                                                                       (torch.float32, torch.bfloat16))]
QUICK = ("B1 H256", "B32 H1024", "cudnn-persistent B32 H512", "large batch B256 H512")


def cudnn_algorithm(kernel_names):
    """The cuDNN RNN algorithm that a list of launched kernel names shows."""
    names = [n.lower() for n in kernel_names]
    if any("persist" in n for n in names):
        return "persistent"
    if any("rnn" in n or "lstm" in n for n in names):
        return "standard"
    return "unknown (no RNN kernel among the launches)"


def _launched_kernels(run, device):
    """Names of the GPU kernels one call launches, most frequent first."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize(device)
    counts = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            counts[event.name] = counts.get(event.name, 0) + 1
    return [name[:100] for name, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:10]]


def _run(module, x, train, backend=None):
    """One call of module on x (forward+backward when train), under a forced
    bigkernels backend when given (torch's module ignores it)."""
    import contextlib

    import bigkernels

    grad = torch.randn(x.shape[0], x.shape[1], module.hidden_size, device=x.device, dtype=x.dtype)

    def call():
        with bigkernels.use_backend(backend) if backend else contextlib.nullcontext():
            if not train:
                with torch.no_grad():
                    module(x)
                return
            x.grad = None
            module(x)[0].backward(grad)

    return call


def _validate(ours, theirs, x):
    def check():
        with torch.no_grad():
            a, b = ours(x)[0].float(), theirs(x)[0].float()
        err = (a - b).abs().max().item()
        return None if err < 2e-2 else f"max difference {err:.3g} from torch's LSTM"
    return check


def cases(quick, device):
    from ..nn import LSTM

    out = []
    for label, b, h, dtypes in SWEEP + SPECIAL:
        if quick and label not in QUICK:
            continue
        for dtype in dtypes[-1:] if quick else dtypes:
            for train in (False, True):
                torch.manual_seed(0)
                theirs = torch.nn.LSTM(h, h, 1).to(device=device, dtype=dtype)
                ours = LSTM(h, h, 1).to(device=device, dtype=dtype)
                ours.load_state_dict(theirs.state_dict())
                x = torch.randn(T, b, h, device=device, dtype=dtype, requires_grad=train)
                runs = {"torch_cudnn": _run(theirs, x, train)}
                for backend in ("auto", "cuda", "triton"):
                    runs[f"bigkernels_{backend}"] = _run(ours, x, train, backend)
                notes = {}
                kept = runnable(runs, device, notes)
                if "torch_cudnn" not in kept:
                    continue
                try:
                    kernels = _launched_kernels(kept["torch_cudnn"], device)
                    notes["cudnn_kernels"] = kernels
                    notes["cudnn_algorithm"] = cudnn_algorithm(kernels)
                except Exception as exc:  # the profiler without CUPTI
                    notes["cudnn_algorithm"] = f"not recorded: {type(exc).__name__}: {exc}"[:200]
                mode = "fwd+bwd" if train else "inference"
                out.append(Case(
                    "lstm", f"gpu {label} {mode} {str(dtype)[6:]}",
                    dict(kind="LSTM", T=T, B=b, I=h, H=h, layers=1, dtype=str(dtype)[6:], mode=mode),
                    kept, "torch_cudnn", flops=lstm_flops(T, b, h, h, 1) * (3 if train else 1), notes=notes,
                    validate=None if train or "bigkernels_auto" not in kept else _validate(ours, theirs, x)))
    return out
