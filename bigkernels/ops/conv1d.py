"""conv1d: the fused convolution over one spatial axis, as conv2d over a
height of 1 (a view, no copy), so every conv2d backend, fusion and gradient
serves it."""
from . import _checks
from .conv import conv2d


def _single(value, name, minimum):
    """An int or a 1-tuple/list of one int (nn.Conv1d stores 1-tuples)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int or a 1-tuple of ints, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, activation="none", residual=None,
           negative_slope=0.01):
    """act(conv1d(x, weight) + bias + residual), fused; torch.nn.functional.conv1d's arguments.

    x: (N, C, L) or (C, L); weight: (C_out, C_in/groups, k); padding: int,
    1-tuple, "same" or "valid"; residual: the output's shape. Differentiable
    in x, weight, bias and residual."""
    _checks.tensor(x, "x")
    _checks.tensor(weight, "weight")
    if x.dim() not in (2, 3):
        raise ValueError(f"x must be 3-D (N, C, L) or 2-D (C, L), got shape {list(x.shape)}")
    if weight.dim() != 3:
        raise ValueError(f"weight must be 3-D (C_out, C_in/groups, k), got shape {list(weight.shape)}")
    stride = _single(stride, "stride", 1)
    dilation = _single(dilation, "dilation", 1)
    if not isinstance(padding, str):
        padding = _single(padding, "padding", 0)
        padding = (0, padding)
    if residual is not None:
        _checks.tensor(residual, "residual")
        if residual.dim() != x.dim():
            raise ValueError(f"residual must have the output's {x.dim()} dimensions, got shape {list(residual.shape)}")
        residual = residual.unsqueeze(-2)
    y = conv2d(x.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, stride), padding, (1, dilation), groups,
               activation=activation, residual=residual, negative_slope=negative_slope)
    return y.squeeze(-2)
