"""What a benchmark family declares: cases, each a set of implementations
timed against one baseline in the same run."""
from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class Case:
    family: str
    name: str                      # e.g. "bias_act fwd" or "lstm b1 inference"
    params: dict                   # shape, dtype, mode...: recorded verbatim
    impls: dict                    # implementation name -> zero-argument callable (inputs prepared)
    baseline: str                  # key of impls that the others are compared with
    flops: Optional[float] = None  # per call, for TFLOP/s (None: not a compute-bound op)
    bytes: Optional[float] = None  # per call, for GB/s
    # Checked once before timing: returns None if the implementations agree, else a message.
    validate: Optional[Callable[[], Optional[str]]] = None
    notes: dict = field(default_factory=dict)


# Set by the runner from the command line (`--no-compile`): whether cases time
# torch.compile beside eager (Inductor spends minutes per graph on 2 CPU cores).
OPTIONS = {"compile": True}


def runnable(runs, device, notes):
    """The GPU cases' implementations that run here, each tried once
    (name -> zero-argument call); the others are named in `notes` with why
    (a backend missing from this build or GPU, a dtype or head dim it lacks)."""
    import torch

    kept = {}
    for name, run in runs.items():
        try:
            run()
            torch.cuda.synchronize(device)
            kept[name] = run
        except Exception as exc:
            notes[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
    return kept
