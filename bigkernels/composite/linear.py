"""The oneDNN path of the fused linear layer, act(x W^T + b), for its `cpu` and
`torch` backends (bigkernels/ops/linear.py).

On the CPU, float32 and bfloat16 run their GEMMs through oneDNN
(torch.ops.mkldnn._linear_pointwise, the matmul of torch.compile's CPU
freezing path) instead of F.linear's MKL sgemm, which takes its generic code
path on AMD CPUs. Measured on the 2-core Zen 4 dev VM (torch 2.13, 2 threads,
GFLOP/s, MKL -> oneDNN): forward 2048x512x2048 142 -> 204, 2048x2048x512
142 -> 215, 1600x256x1024 187 -> 207; the input gradient dY W 172-195 ->
208-217. The weight gradient stays on MKL (dY^T X: oneDNN's strided forms
measured 113-195 against MKL's 152-189, no winner). The functions below are
the CPU kernels of the `onednn_linear` op (bigkernels/ops/linear.py, which
owns its schema and autograd); `linear` is the plain composition that serves
everything else (CUDA, float16 and float64 on the CPU, oneDNN disabled).

`own_act` picks the activation's implementation where it is a pass of its own
(the forward that saves the pre-activation, and every backward): our C++
bias_act kernels (the `cpu` backend) or torch's ops (the `torch` backend).
gelu_tanh on 2048 x 2048 fp32 (dev VM): forward 9.1 -> 2.7 ms, backward 6.8 ->
3.2 ms."""
import torch
import torch.nn.functional as F

from ..ops.activation import ACTIVATIONS, apply

# oneDNN post-ops for the forward that saves nothing: (attr, scalars, algorithm).
# relu6 and leaky_relu take torch's op after the GEMM.
_POST_OPS = {"none": ("none", [], ""), "relu": ("relu", [], ""), "gelu": ("gelu", [], "none"),
             "gelu_tanh": ("gelu", [], "tanh"), "silu": ("swish", [], ""), "sigmoid": ("sigmoid", [], ""),
             "tanh": ("tanh", [], ""), "hardswish": ("hardswish", [], "")}


@torch._dynamo.assume_constant_result  # a flag torch.compile may not trace: fixed at trace time
def _onednn_enabled():
    return torch.backends.mkldnn.is_available() and torch._C._get_mkldnn_enabled()


# oneDNN only for GEMMs this large (multiply-adds) with in_features >= ONEDNN_MIN_K: below
# them MKL's call is faster (dev VM, MKL/oneDNN time, forward and input gradient:
# 64x128x128 0.64/0.57, 64x512x128 0.80/1.19; from 16M up oneDNN was as fast or
# faster at every K measured, 32-2048: 1.00-1.10x for K < 256, 1.06-1.8x above).
# A forward with the activation as oneDNN's post-op (no gradient) saves torch's
# activation pass too: oneDNN wins from 4M (1.07-1.13x at 1024x32x128 ..
# 256x128x512, 0.96-1.01x at 1-2M).
ONEDNN_MIN_MACS = 1 << 24
ONEDNN_MIN_MACS_FUSED = 1 << 22
ONEDNN_MIN_K = 32


def fuses_activation(activation, grad):
    """Whether oneDNN's forward applies this activation (code) itself: no gradient, a post-op."""
    return not grad and activation != 0 and ACTIVATIONS[activation] in _POST_OPS


def onednn_unsupported(x, weight, fused=False):
    """Why oneDNN does not serve this call, or None when it does (`fused`: the
    activation is oneDNN's post-op, fuses_activation)."""
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.bfloat16):
        return "oneDNN's GEMM serves float32/bfloat16 CPU tensors here"
    if not _onednn_enabled():
        return "oneDNN is not available, or torch.backends.mkldnn.enabled is False"
    if x.numel() == 0 or weight.numel() == 0:
        return "an empty GEMM"
    min_macs = ONEDNN_MIN_MACS_FUSED if fused else ONEDNN_MIN_MACS
    if weight.shape[1] < ONEDNN_MIN_K or x.numel() * weight.shape[0] < min_macs:
        return "a GEMM this small runs faster on MKL"
    return None


def _rows(t):
    return t.reshape(-1, t.shape[-1])


def _gemm(x2, weight, bias=None, attr="none", scalars=(), algorithm=""):
    return torch.ops.mkldnn._linear_pointwise(x2, weight, bias, attr, list(scalars), algorithm)


def _activate(z, activation, alpha, own_act):
    if own_act:
        return torch.ops.bigkernels.bias_act.default(z, None, None, activation, alpha, z.dim() - 1)
    return apply(z, ACTIVATIONS[activation], alpha)


def onednn_forward(x, weight, bias, activation, alpha, save, own_act):
    """(y, z): y = act(x W^T + b); z the pre-activation when `save` and there is
    an activation (the backward needs it), else an empty tensor."""
    name = ACTIVATIONS[activation]
    out_shape = (*x.shape[:-1], weight.shape[0])
    x2, w = _rows(x), weight.contiguous()
    empty = x.new_empty(0)
    if name == "none":
        return _gemm(x2, w, bias).view(out_shape), empty
    if save or name not in _POST_OPS:
        z = _gemm(x2, w, bias).view(out_shape)
        return _activate(z, activation, alpha, own_act), (z if save else empty)
    return _gemm(x2, w, bias, *_POST_OPS[name]).view(out_shape), empty


def activation_backward(grad_y, z, name, alpha):
    """dL/dz from dL/dy and the pre-activation z, torch's formulas."""
    aten = torch.ops.aten
    if name == "none":
        return grad_y
    if name == "relu":
        return aten.threshold_backward(grad_y, z, 0)
    if name == "relu6":
        return grad_y * ((z > 0) & (z < 6))
    if name == "leaky_relu":
        return aten.leaky_relu_backward(grad_y, z, alpha, False)
    if name == "silu":
        return aten.silu_backward(grad_y, z)
    if name in ("gelu", "gelu_tanh"):
        return aten.gelu_backward(grad_y, z, approximate="none" if name == "gelu" else "tanh")
    if name == "hardswish":
        return aten.hardswish_backward(grad_y, z)
    if name == "sigmoid":
        return aten.sigmoid_backward(grad_y, z.sigmoid())
    return aten.tanh_backward(grad_y, z.tanh())


def onednn_backward(grad_y, x, weight, z, activation, alpha, needs, own_act):
    """(dx, dweight, dbias) for needs = (x, weight, bias); an empty tensor for each not needed.
    dx through oneDNN, dweight and dbias as MKL's GEMM and a row sum."""
    if own_act and ACTIVATIONS[activation] != "none":
        dz = torch.ops.bigkernels.bias_act_backward.default(grad_y, z, None, None, activation, alpha, z.dim() - 1)
    else:
        dz = activation_backward(grad_y, z, ACTIVATIONS[activation], alpha)
    dz = _rows(dz).contiguous()
    empty = x.new_empty(0)
    dx = _gemm(dz, weight.t()).view(x.shape) if needs[0] else empty
    dw = torch.mm(dz.t(), _rows(x)) if needs[1] else empty
    db = dz.sum(0) if needs[2] else empty
    return dx, dw, db


def linear(x, weight, bias, activation, alpha):
    """The plain composition: F.linear (cuBLAS, MKL) and torch's activation."""
    return apply(F.linear(x, weight, bias), ACTIVATIONS[activation], alpha)
