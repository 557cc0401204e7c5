"""torch backend of the fused convolution: oneDNN/cuDNN conv (bias folded
into it), then torch's add and activation ops."""
import torch.nn.functional as F

from ..ops.activation import ACTIVATIONS, apply


def conv2d(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha):
    z = F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    if residual is not None:
        z = z + residual
    return apply(z, ACTIVATIONS[activation], alpha)
