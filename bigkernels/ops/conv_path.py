"""conv2d's two paths inside the `cuda` backend (and, on the emulator, `cuda_sim`):

  fused   our kernel does the whole call: the implicit GEMM (or the depthwise
          kernel) with bias, residual and activation in its epilogue (csrc/cuda/conv).
  cudnn   torch's convolution without bias (cuDNN), then ONE epilogue kernel of
          ours, bias + residual + activation, writing the pre-activation when the
          backward needs it (op bigkernels::conv2d_cudnn, csrc/torch/conv_cudnn_glue.h).
          Backward: our activation-backward kernel (bias_act_backward), then
          cuDNN's convolution_backward for the data, weight and bias gradients.

Which path serves a call (docs/conv.md, "Pairing with cuDNN"):
  1. a forced path: BIGKERNELS_CONV_PATH=fused|cudnn, or `use_conv_path(name)`;
  2. `cudnn` where the fused kernels cannot serve the call (fp32 outside
     depthwise, C/groups not a multiple of 8, ...): the call stays on `cuda`;
  3. else the faster of the two, measured on first use per shape bucket on
     the user's GPU (backends/measure.py: the backend choice's timing, memory
     and disk cache, off under BIGKERNELS_AUTOTUNE=0, torch.compile tracing or
     CUDA graph capture, where `fused` applies), forward only for calls without
     gradients, forward + backward for the others; each path is trusted first
     through its own self-test (backends/trust.py: the conv2d self-test's
     `path` feature).
"""
import torch

from ..backends import measure, trust
from ..backends.availability import has_kernel
from ..backends.registry import Impl, impls
from ..backends.selection import Forcing, forced_from_environment, validate_choice
from ._library import op, wants_grad

PATHS = ("fused", "cudnn")
MEASURE_OP = "conv2d.path"  # measure's cache key for the choice between paths
_STATE = {"forced": None}
_CUDNN_KERNEL = {"cuda": ("bigkernels::conv2d_cudnn", "cuda"), "cuda_sim": ("bigkernels::conv2d_cudnn_sim", "cpu")}
_HAS_CUDNN: dict = {}
_CANDIDATES: dict = {}


def _validate(name):
    return validate_choice(name, PATHS, "conv path")


def forced_path():
    return _STATE["forced"]


class use_conv_path(Forcing):
    """Force conv2d's path on the cuda/cuda_sim backends (tests, benchmarks):
    `with use_conv_path("cudnn"): ...` restores the previous one on exit; a
    bare call sets it globally; "auto" (or None) returns to the measured choice."""

    state = _STATE
    validate = staticmethod(_validate)


_STATE["forced"] = forced_from_environment("BIGKERNELS_CONV_PATH", _validate)


def has_cudnn(backend):
    """Whether this build has the cudnn path's kernel for `backend` (a build
    from before it lacks it: the fused kernels alone then serve)."""
    if not _HAS_CUDNN.get(backend):  # cached once present (the emulator registers late)
        _HAS_CUDNN[backend] = has_kernel(*_CUDNN_KERNEL[backend])
    return _HAS_CUDNN[backend]


def supports(backend, fused_supports):
    """The backend's capability check: the fused kernels' domain, widened by the
    cudnn path to every fp32/fp16/bf16 call (unless the fused path is forced)."""
    def check(x, *args):
        forced = _STATE["forced"]
        if forced == "fused":
            reason = fused_supports(x, *args)
            return reason and f"{reason} (conv path forced to 'fused')"
        if not has_cudnn(backend):
            if forced == "cudnn":
                return "the conv path forced to 'cudnn' is not in this build of the kernels (rebuild them)"
            return fused_supports(x, *args)
        if x.dtype == torch.float64:
            return "the cuda conv paths serve fp32/fp16/bf16 (float64 runs on cpu/torch)"
        return None

    return check


def first_path(fused_supports, args):
    """The path a call takes without measurement: forced, else fused where it serves."""
    forced = _STATE["forced"]
    if forced is not None:
        return forced
    return "fused" if fused_supports(*args) is None else "cudnn"


def _grad_mask(args):
    """Which of x, weight, bias, residual get a gradient (a bit each; 0 = none): part of the bucket."""
    if not wants_grad(*args[:4]):
        return 0
    return sum(1 << i for i, t in enumerate(args[:4]) if t is not None and t.requires_grad)


def _timed(fn):
    """fn as measure times it: the forward, plus the backward for calls that get gradients."""
    def run(*args, grad):
        if not grad:
            return fn(*args)
        with torch.enable_grad():
            leaves = [t.detach().requires_grad_(bool(grad >> i & 1)) if t is not None else None
                      for i, t in enumerate(args[:4])]
            y = fn(*leaves, *args[4:])
            torch.autograd.grad(y, [t for t in leaves if t is not None and t.requires_grad], y)

    return run


def routed(backend, fused_supports, run):
    """The backend's conv2d: the call's path (see the module docstring), then
    run[path](*args). run: {"fused": fn, "cudnn": fn}, read per call (tests
    slow one down to check that measurement picks the other)."""
    def conv2d(*args):
        return run[choose(backend, fused_supports, run, args)](*args)

    conv2d.paths = run
    return conv2d


def choose(backend, fused_supports, run, args):
    first = first_path(fused_supports, args)
    device_type = args[0].device.type
    if first != "fused" or _STATE["forced"] is not None or not measure.wanted(device_type):
        return first
    paths = [first]
    impl = impls("conv2d")[backend]  # the alternative path must pass its own self-test (the first passed the router's)
    if has_cudnn(backend) and trust.check(impl, device_type, args, {}, extra={"path": "cudnn"}) is None:
        paths.append("cudnn")
    if len(paths) < 2:
        return first
    grad = _grad_mask(args)
    key = (backend, tuple(paths), grad)
    if key not in _CANDIDATES:
        # measure.choose reads .backend (here: the path's name) and .fn (timed on first use)
        _CANDIDATES[key] = [Impl(MEASURE_OP, p, _timed(lambda *a, p=p: run[p](*a))) for p in paths]
    return measure.choose(MEASURE_OP, device_type, _CANDIDATES[key], args, {"grad": grad}).backend


def cudnn_backward(suffix):
    """The cudnn path's backward: dL/dz = grad_y * act'(saved) by our
    bias_act_backward kernel (saved: the pre-activation, or y where the
    derivative reads off y), then cuDNN's data/weight/bias gradients. Why not
    our dgrad/wgrad: this path serves where cuDNN won the measurement (the
    gradients are the same GEMM shapes transposed, and the measurement of a
    training call timed this very backward) or where our kernels cannot
    serve the call at all."""
    name = "bias_act_backward" + suffix  # defined by ops/epilogue.py, which may import after this module

    def backward(grad_y, x, weight, saved, stride, padding, dilation, groups, act, alpha, mask):
        gz = grad_y
        if act != 0:
            g = grad_y if grad_y.stride() == saved.stride() else torch.empty_like(saved).copy_(grad_y)
            gz = op(name)(g, saved, None, None, act, alpha, 1)
        gx, gw, gb = torch.ops.aten.convolution_backward(gz, x, weight, [weight.shape[0]], stride, padding, dilation,
                                                         False, [0, 0], groups, list(mask[:3]))
        return gx, gw, gb, gz

    return backward


def clear_memory():
    _CANDIDATES.clear()
