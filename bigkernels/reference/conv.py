"""Reference fused convolution: the same formula in float64, cast back."""
import torch

from ..composite import conv as composite


def _f64(t):
    return None if t is None else t.to(torch.float64)


def conv2d(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha):
    y = composite.conv2d(_f64(x), _f64(weight), _f64(bias), _f64(residual), stride, padding, dilation, groups,
                         activation, alpha)
    return y.to(x.dtype)


def bn_act(z, weight, bias, residual, mean, var, eps, activation, alpha):
    from ..composite.conv import ACTIVATIONS, apply

    z64 = z.to(torch.float64)
    shape = [1, -1] + [1] * (z.dim() - 2)
    if mean is None:
        dims = [d for d in range(z.dim()) if d != 1]
        var, mean = torch.var_mean(z64, dim=dims, unbiased=False)
    y = (z64 - mean.to(torch.float64).view(shape)) / torch.sqrt(var.to(torch.float64).view(shape) + eps)
    if weight is not None:
        y = y * weight.to(torch.float64).view(shape)
    if bias is not None:
        y = y + bias.to(torch.float64).view(shape)
    if residual is not None:
        y = y + residual.to(torch.float64)
    acc = torch.float64 if z.dtype == torch.float64 else torch.float32
    return apply(y, ACTIVATIONS[activation], alpha).to(z.dtype), mean.to(acc), var.to(acc)
