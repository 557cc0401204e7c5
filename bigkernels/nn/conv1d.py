"""Drop-ins for nn.Conv1d (+ activation) and nn.Sequential(nn.Conv1d,
nn.BatchNorm1d, activation): the Conv2d modules' code on ops.conv1d (conv2d
over a height of 1). Same constructors, parameter names and state_dicts as
the torch modules they replace (Conv1dBNAct's map onto the Sequential as
Conv2dBNAct's do: conv.* <-> 0.*, bn.* <-> 1.*)."""
from torch import nn

from .conv import Conv2dBNAct, _FusedConv


class FusedConv1d(_FusedConv, nn.Conv1d):
    """nn.Conv1d + fused bias, residual and activation: forward(x, residual=None)
    = act(conv1d(x) + bias + residual)."""
    _op = "conv1d"


class Conv1dBNAct(Conv2dBNAct):
    """act(BatchNorm1d(Conv1d(x)) + residual), fused: batch statistics in
    training, the BN folded into the conv in eval (see Conv2dBNAct)."""
    _conv, _bn, _op = nn.Conv1d, nn.BatchNorm1d, "conv1d"
