"""Fused convolution modules: drop-ins for nn.Conv2d (+ activation) and for
nn.Sequential(nn.Conv2d, nn.BatchNorm2d, activation); the Conv1d ones
(nn/conv1d.py) share their code.

Conv2dBNAct's state_dict maps one-to-one onto nn.Sequential(conv, bn, act):
    conv.weight, conv.bias            <->  0.weight, 0.bias
    bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked
                                      <->  1.weight, ... 1.num_batches_tracked
(`to_sequential_keys` / `from_sequential_keys` convert a state_dict, and
`to_sequential` / `from_modules` convert modules.)"""
import torch
import torch.nn.functional as F
from torch import nn

from .. import ops
from ..ops import activation as acts

# torch activation modules -> (our name, negative_slope)
_ACT_MODULES = {nn.Identity: "none", nn.ReLU: "relu", nn.ReLU6: "relu6", nn.LeakyReLU: "leaky_relu",
                nn.SiLU: "silu", nn.Hardswish: "hardswish", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh"}


def activation_of(module):
    """(name, negative_slope) for a torch activation module or None."""
    if module is None:
        return "none", 0.01
    if isinstance(module, nn.GELU):
        return ("gelu_tanh" if module.approximate == "tanh" else "gelu"), 0.01
    for cls, name in _ACT_MODULES.items():
        if type(module) is cls:
            return name, float(getattr(module, "negative_slope", 0.01))
    raise ValueError(f"act must be one of {[c.__name__ for c in _ACT_MODULES] + ['GELU']} or None, "
                     f"got {type(module).__name__}")


def activation_module(name, negative_slope=0.01):
    if name == "gelu":
        return nn.GELU()
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    return {v: k for k, v in _ACT_MODULES.items()}[name]()


def _keep_format(param, source):
    """Give param the memory format of source (a channels_last model stays
    channels_last: a NCHW weight under a channels_last input costs a weight
    copy each forward and one for its gradient)."""
    from ..ops.conv import memory_format

    fmt = memory_format(source)
    if fmt is not torch.contiguous_format:
        param.data = param.data.contiguous(memory_format=fmt)


def _pad_input(conv, x):
    """Non-zero padding modes, as nn.Conv2d._conv_forward does."""
    if conv.padding_mode == "zeros":
        return x, conv.padding
    return F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode), 0


class _FusedConv:
    """The fused conv modules' shared part: act(conv(x) + bias + residual) through
    the op named by `_op` (conv1d or conv2d) on the torch conv's own parameters."""
    _op = "conv2d"

    def __init__(self, *args, activation="none", negative_slope=0.01, **kwargs):
        super().__init__(*args, **kwargs)
        self.activation = acts.canonical(activation)
        self.negative_slope = float(negative_slope)

    def forward(self, x, residual=None):
        x, padding = _pad_input(self, x)
        return getattr(ops, self._op)(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups,
                                      activation=self.activation, residual=residual,
                                      negative_slope=self.negative_slope)

    def extra_repr(self):
        return super().extra_repr() + f", activation={self.activation}"

    @classmethod
    def from_modules(cls, conv, act=None):
        name, slope = activation_of(act)
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                conv.groups, conv.bias is not None, conv.padding_mode, activation=name, negative_slope=slope,
                device=conv.weight.device, dtype=conv.weight.dtype)
        m.load_state_dict(conv.state_dict())
        _keep_format(m.weight, conv.weight)
        return m


class FusedConv2d(_FusedConv, nn.Conv2d):
    """nn.Conv2d + fused bias, residual and activation: forward(x, residual=None)
    = act(conv2d(x) + bias + residual). Same constructor, parameters and
    state_dict as nn.Conv2d, plus `activation` (ops.activation.ACTIVATIONS)."""


class Conv2dBNAct(nn.Module):
    """act(BatchNorm2d(Conv2d(x)) + residual), fused. Training: batch
    statistics (the conv, then one fused BN + residual + activation pass,
    running statistics updated as torch does). Eval: BN folded into the conv's
    weight and bias (cached until a parameter or buffer changes), one fused
    convolution. `train()` again loses nothing: the folded copy is derived."""
    _conv, _bn, _op = nn.Conv2d, nn.BatchNorm2d, "conv2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=False, activation="relu", *, negative_slope=0.01, eps=1e-5, momentum=0.1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.conv = self._conv(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                               padding_mode, **kw)
        self.bn = self._bn(out_channels, eps=eps, momentum=momentum, **kw)
        self.activation = acts.canonical(activation)
        self.negative_slope = float(negative_slope)
        self._folded = None  # (key, weight, bias)

    def extra_repr(self):
        return f"activation={self.activation}"

    def _bn_momentum(self):
        bn = self.bn
        if not (bn.training and bn.track_running_stats):
            return 0.0
        bn.num_batches_tracked.add_(1)
        return 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum

    def folded(self):
        """(weight, bias) of the conv with the eval BN folded in:
        w * gamma / sqrt(var + eps), beta + (b - mean) * gamma / sqrt(var + eps)."""
        conv, bn = self.conv, self.bn
        tensors = [t for t in (conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var)
                   if t is not None]
        differentiable = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors)
        if not differentiable and self._folded is not None and self._folded[0] == key:
            return self._folded[1], self._folded[2]
        w, b = _fold(conv, bn)
        if not differentiable:
            self._folded = (key, w, b)
        return w, b

    def forward(self, x, residual=None):
        conv, bn = self.conv, self.bn
        x, padding = _pad_input(conv, x)
        args = (conv.stride, padding, conv.dilation, conv.groups)
        op = getattr(ops, self._op)
        if bn.training or not bn.track_running_stats:
            stats = (bn.running_mean, bn.running_var) if bn.track_running_stats else (None, None)
            if self._op == "conv2d":  # batch statistics from the conv epilogue where the backend has one
                return ops.conv2d_batch_norm_act(x, conv.weight, conv.bias, *args, *stats, bn.weight, bn.bias,
                                                 self._bn_momentum(), bn.eps, activation=self.activation,
                                                 residual=residual, negative_slope=self.negative_slope)
            z = op(x, conv.weight, conv.bias, *args)
            return ops.batch_norm_act(z, *stats, bn.weight, bn.bias, True, self._bn_momentum(), bn.eps,
                                      activation=self.activation, residual=residual,
                                      negative_slope=self.negative_slope)
        w, b = self.folded()
        return op(x, w, b, *args, activation=self.activation, residual=residual, negative_slope=self.negative_slope)

    # ------------------------------------------------------------ conversion
    @classmethod
    def from_modules(cls, conv, bn, act=None):
        name, slope = activation_of(act)
        m = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                conv.groups, conv.bias is not None, name, negative_slope=slope, eps=bn.eps, momentum=bn.momentum,
                padding_mode=conv.padding_mode, device=conv.weight.device, dtype=conv.weight.dtype)
        m.bn.affine, m.bn.track_running_stats = bn.affine, bn.track_running_stats
        if not bn.affine:
            m.bn.weight = m.bn.bias = None
        if not bn.track_running_stats:
            m.bn.running_mean = m.bn.running_var = m.bn.num_batches_tracked = None
        m.conv.load_state_dict(conv.state_dict())
        m.bn.load_state_dict(bn.state_dict())
        _keep_format(m.conv.weight, conv.weight)
        m.train(conv.training)
        return m

    def to_sequential(self):
        """nn.Sequential(conv, batch norm, activation) with copies of this module's state."""
        import copy

        seq = nn.Sequential(copy.deepcopy(self.conv), copy.deepcopy(self.bn),
                            activation_module(self.activation, self.negative_slope))
        return seq.train(self.training)


def to_sequential_keys(state_dict, prefix=""):
    """Conv2dBNAct state_dict keys -> nn.Sequential(conv, bn, act) keys."""
    return {_swap(k, prefix, ("conv.", "0."), ("bn.", "1.")): v for k, v in state_dict.items()}


def from_sequential_keys(state_dict, prefix=""):
    """nn.Sequential(conv, bn, act) state_dict keys -> Conv2dBNAct keys."""
    return {_swap(k, prefix, ("0.", "conv."), ("1.", "bn.")): v for k, v in state_dict.items()}


def _swap(key, prefix, *pairs):
    if key.startswith(prefix):
        rest = key[len(prefix):]
        for old, new in pairs:
            if rest.startswith(old):
                return prefix + new + rest[len(old):]
    return key


def _fold(conv, bn):
    # float64 for the per-channel arithmetic, then the conv's dtype
    w = conv.weight
    invstd = torch.rsqrt(bn.running_var.double() + bn.eps)
    gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(invstd)
    beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(invstd)
    scale = gamma * invstd
    b = conv.bias.double() if conv.bias is not None else torch.zeros_like(invstd)
    bias = beta + (b - bn.running_mean.double()) * scale
    return (w.double() * scale.view(-1, *[1] * (w.dim() - 1))).to(w.dtype), bias.to(w.dtype)


def from_modules(conv, bn=None, act=None):
    """Conv2dBNAct / Conv1dBNAct (with bn) or FusedConv2d / FusedConv1d
    (without) holding copies of the given torch modules' parameters and buffers."""
    from .conv1d import Conv1dBNAct, FusedConv1d

    kinds = {nn.Conv2d: (nn.BatchNorm2d, FusedConv2d, Conv2dBNAct),
             nn.Conv1d: (nn.BatchNorm1d, FusedConv1d, Conv1dBNAct)}
    kind = next((k for k in kinds if isinstance(conv, k)), None)
    if kind is None:
        raise TypeError(f"conv must be an nn.Conv2d or nn.Conv1d, got {type(conv).__name__}")
    bn_type, fused, with_bn = kinds[kind]
    if bn is not None and not isinstance(bn, bn_type):
        raise TypeError(f"bn must be an nn.{bn_type.__name__} (after an nn.{kind.__name__}) or None, "
                        f"got {type(bn).__name__}")
    if bn is None:
        return fused.from_modules(conv, act)
    return with_bn.from_modules(conv, bn, act)
