"""Activation names shared by every fused op. The integer code is each
name's index here and matches `bk::Act` in csrc/common/activation.h."""
import torch.nn.functional as F

ACTIVATIONS = ("none", "relu", "relu6", "leaky_relu", "silu", "gelu", "gelu_tanh", "hardswish", "sigmoid", "tanh")
ALIASES = {"identity": "none", "linear": "none", "swish": "silu"}


def canonical(activation, argname="activation"):
    if not isinstance(activation, str):
        raise TypeError(f"{argname} must be a str, one of {ACTIVATIONS}; got {type(activation).__name__}")
    name = ALIASES.get(activation, activation)
    if name not in ACTIVATIONS:
        raise ValueError(f"{argname} must be one of {ACTIVATIONS}; got {activation!r}")
    return name


def code(activation) -> int:
    return ACTIVATIONS.index(canonical(activation))


def apply(z, name, negative_slope=0.01):
    """The activation as torch's own functional ops (torch and reference backends)."""
    if name == "none":
        return z
    if name == "leaky_relu":
        return F.leaky_relu(z, negative_slope)
    if name == "gelu":
        return F.gelu(z)
    if name == "gelu_tanh":
        return F.gelu(z, approximate="tanh")
    return {"relu": F.relu, "relu6": F.relu6, "silu": F.silu, "hardswish": F.hardswish,
            "sigmoid": torch_sigmoid, "tanh": torch_tanh}[name](z)


def torch_sigmoid(z):
    return z.sigmoid()


def torch_tanh(z):
    return z.tanh()
