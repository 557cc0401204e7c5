"""Linear: a drop-in for nn.Linear (a subclass, so isinstance checks, weight
initialisation and checkpoints are torch's), its forward through
bigkernels.ops.linear, with an optional fused activation."""
from torch import nn

from .. import ops
from ..ops import _checks
from ..ops import activation as acts


class Linear(nn.Linear):
    """nn.Linear(in_features, out_features, bias, device, dtype), plus
    `activation` (one of ops.activation.ACTIVATIONS, default "none": exactly
    nn.Linear) and `negative_slope` (leaky_relu). Same parameters (`weight`,
    `bias`) and state_dict keys as nn.Linear."""

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *, activation="none",
                 negative_slope=0.01):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.activation = acts.canonical(activation)
        self.negative_slope = _checks.real(negative_slope, "negative_slope")

    def forward(self, input):
        return ops.linear(input, self.weight, self.bias, self.activation, negative_slope=self.negative_slope)

    def extra_repr(self):
        extra = f", activation={self.activation}" if self.activation != "none" else ""
        return super().extra_repr() + extra
