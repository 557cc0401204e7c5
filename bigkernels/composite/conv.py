"""torch backend of the fused convolution: oneDNN/cuDNN conv (bias folded
into it), then torch's add and activation ops."""
import torch
import torch.nn.functional as F

from ..ops.activation import ACTIVATIONS, apply


def conv2d(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha):
    z = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if residual is not None:
        z = z + residual
    return apply(z, ACTIVATIONS[activation], alpha)


def bn_act(z, weight, bias, residual, mean, var, eps, activation, alpha):
    """torch's native batch norm (returns the batch mean and invstd), add, act."""
    acc = torch.float64 if z.dtype == torch.float64 else torch.float32
    if mean is None:
        y, mean, invstd = torch.ops.aten.native_batch_norm(z, weight, bias, None, None, True, 0.0, eps)
        var = invstd.to(acc).pow(-2) - eps
    else:
        y = F.batch_norm(z, mean, var, weight, bias, False, 0.0, eps)
    if residual is not None:
        y = y + residual
    return apply(y, ACTIVATIONS[activation], alpha), mean.to(acc), var.to(acc)
