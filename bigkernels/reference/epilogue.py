"""Reference fused epilogue: the same formula in float64, cast back."""
import torch

from ..composite import epilogue as composite


def bias_act(x, bias, residual, activation, alpha, channel_dim):
    def f64(t):
        return None if t is None else t.to(torch.float64)

    y = composite.bias_act(f64(x), f64(bias), f64(residual), activation, alpha, channel_dim)
    return y.to(x.dtype)
