"""torch backend of the fused epilogue: add, add, activation as torch ops."""
from ..ops.activation import ACTIVATIONS, apply


def bias_shape(x, channel_dim):
    return [x.shape[channel_dim] if d == channel_dim else 1 for d in range(x.dim())]


def bias_act(x, bias, residual, activation, alpha, channel_dim):
    z = x if bias is None else x + bias.view(bias_shape(x, channel_dim))
    if residual is not None:
        z = z + residual
    return apply(z, ACTIVATIONS[activation], alpha)
