"""Which torch module becomes which bigkernels module, per family.

Each family's modules are looked up in bigkernels.nn when swap() runs: a
family not built yet gives skip rows that say so, never a stand-in. The new
module is built with the original's constructor arguments and then takes the
original's very tensors (`load_state_dict(assign=True)`), so an optimizer
built before the swap still holds the parameters that train.
"""
import torch.nn.functional as F
from torch import nn

from . import swap_fx
from .swap import Unsupported, _type_name, install, register_converter, register_parent_pass

def _pool_kwargs(m):
    if m.return_indices:
        raise Unsupported("return_indices=True: its int64 indices are torch's format (for MaxUnpool2d); "
                          "left to torch")
    return dict(kernel_size=m.kernel_size, stride=m.stride, padding=m.padding, dilation=m.dilation,
                ceil_mode=m.ceil_mode)


# torch type -> (bigkernels.nn name, family, constructor attributes read off the original, or a
# function of the original returning the constructor's keyword arguments)
_RNN = ("input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout", "bidirectional")
RULES = {
    nn.LSTM: ("LSTM", "lstm", _RNN + ("proj_size",)),
    nn.GRU: ("GRU", "lstm", _RNN),
    nn.RNN: ("RNN", "lstm", _RNN + ("nonlinearity",)),
    nn.LSTMCell: ("LSTMCell", "lstm", ("input_size", "hidden_size", "bias")),
    nn.GRUCell: ("GRUCell", "lstm", ("input_size", "hidden_size", "bias")),
    nn.RNNCell: ("RNNCell", "lstm", ("input_size", "hidden_size", "bias", "nonlinearity")),
    nn.MultiheadAttention: ("MultiheadAttention", "attention", None),
    nn.Linear: ("Linear", "linear", lambda m: dict(in_features=m.in_features, out_features=m.out_features,
                                                   bias=m.bias is not None)),
    nn.MaxPool2d: ("MaxPool2d", "conv", _pool_kwargs),
}


def _ours(name):
    from . import nn as bk_nn

    cls = getattr(bk_nn, name, None)
    if cls is None:
        raise Unsupported(f"bigkernels.nn.{name} does not exist in this build")
    return cls


def _factory(module):
    t = next(iter(module.parameters()), None)
    return {} if t is None else {"device": t.device, "dtype": t.dtype}


def _mha_kwargs(m):
    return dict(embed_dim=m.embed_dim, num_heads=m.num_heads, dropout=m.dropout,
                bias=m.in_proj_bias is not None, add_bias_kv=m.bias_k is not None,
                add_zero_attn=m.add_zero_attn, kdim=m.kdim, vdim=m.vdim, batch_first=m.batch_first)


def _forced_backend_serves(family):
    """A forced backend with no implementation of the family's op (linear has
    cpu, torch and reference, no triton or cuda kernel) leaves those modules
    torch's, so that swap(model, backend="triton") runs instead of raising on
    every Linear."""
    from .backends import registry, selection

    forced = selection.forced_backend()
    if family == "linear" and forced is not None and forced not in registry.impls("linear"):
        raise Unsupported(f"the forced backend '{forced}' does not implement linear "
                          f"(implemented by: {', '.join(sorted(registry.impls('linear')))})")


def _converter(torch_type, ours_name, attrs, family):
    def convert(module):
        _forced_backend_serves(family)
        cls = _ours(ours_name)
        if attrs is None:
            kwargs = _mha_kwargs(module)
        elif callable(attrs):
            kwargs = attrs(module)
        else:
            kwargs = {a: getattr(module, a) for a in attrs}
        new = cls(**kwargs, **_factory(module))
        try:
            new.load_state_dict(module.state_dict(keep_vars=True), strict=True, assign=True)
        except RuntimeError as exc:
            raise Unsupported(f"{cls.__name__} does not take {torch_type.__name__}'s state_dict: "
                              f"{str(exc)[:160]}") from None
        new.train(module.training)
        return new

    return convert


_ACT_NAMES = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.SiLU: "silu", nn.Hardswish: "hardswish",
              nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.LeakyReLU: "leaky_relu"}


def act_name(act):
    if act is None:
        return "none"
    if isinstance(act, nn.GELU):
        return "gelu" if act.approximate == "none" else "gelu_tanh"
    return _ACT_NAMES[type(act)]


def fuse_conv(conv, bn, act):
    """conv (+ bn) (+ act) -> Conv2dBNAct / FusedConv2d (Conv1dBNAct /
    FusedConv1d) through the conv family's from_modules, then made to hold the
    originals' very tensors (its `conv` and `bn`, or itself as the torch
    conv): an optimizer built before the swap keeps training them, and BN's
    running statistics stay one set of buffers."""
    from . import nn as bk_nn

    make = getattr(bk_nn, "from_modules", None)
    if make is None:
        raise Unsupported(f"bigkernels.nn.{'Conv2dBNAct' if bn is not None else 'FusedConv2d'} "
                          "does not exist in this build")
    try:
        fused = make(conv, bn, act)
    except (TypeError, ValueError) as exc:  # an activation or option the fused op lacks
        raise Unsupported(str(exc)) from None
    pairs = [(fused, conv)] if bn is None else [(getattr(fused, "conv", None), conv), (getattr(fused, "bn", None), bn)]
    for target, source in pairs:
        if not isinstance(target, type(source)):
            raise Unsupported(f"{type(fused).__name__} does not hold a {type(source).__name__} to share tensors with")
        target.load_state_dict(source.state_dict(keep_vars=True), strict=True, assign=True)
    fused.train(conv.training)
    return fused


def _set(module, name, value, record):
    """module.name = value, undone by unswap()."""
    previous = getattr(module, name)
    setattr(module, name, value)

    def undo(module=module, name=name, previous=previous):
        setattr(module, name, previous)

    module.__dict__.setdefault("_bigkernels_undo", []).append(undo)
    record.append((module, {}))


def _fast_path_off(model, record):
    """torch's TransformerEncoderLayer runs a fused C++ fast path in eval
    under no_grad that reads self_attn.in_proj_weight directly and never calls
    self_attn: with our attention swapped in, it must not run. Its gate
    `activation_relu_or_gelu` is an instance attribute used for nothing else.
    TransformerEncoder would also turn a padded batch into a NestedTensor for
    those fast layers (`use_nested_tensor`): off as well."""
    for m in model.modules():
        if isinstance(m, nn.TransformerEncoderLayer) and type(m.self_attn) is not nn.MultiheadAttention \
                and m.activation_relu_or_gelu:
            _set(m, "activation_relu_or_gelu", False, record)
        if isinstance(m, nn.TransformerEncoder) and getattr(m, "use_nested_tensor", False) \
                and any(type(layer.self_attn) is not nn.MultiheadAttention for layer in m.layers):
            _set(m, "use_nested_tensor", False, record)


def _fusable_linear(lin):
    from .nn import Linear

    return type(lin) is Linear and getattr(lin, "_bigkernels_swapped", False) and lin.activation == "none"


def _note_fused(report, name, slot, what):
    qual = f"{name}.{slot}" if name else slot
    report.swapped = [(q, f"{src}+{what}" if q == qual else src, dst, b) for q, src, dst, b in report.swapped]


def _identity(x):
    return x


# the activations torch's transformer layers take as functions (activation="relu"/"gelu" or passed in)
_LAYER_ACT_FUNCTIONS = {F.relu: ("relu", "F.relu"), F.gelu: ("gelu", "F.gelu")}


def fuse_linear_activations(parent, name, report, record):
    """A Linear that swap() just converted, followed by an activation, takes
    the activation into the linear op (a oneDNN post-op when no gradient is
    needed, our bias_act kernel otherwise: one pass over the output fewer
    than torch's separate op). In an nn.Sequential the activation module's
    slot becomes nn.Identity (indices and state_dict keys stay); in torch's
    Transformer{Encoder,Decoder}Layer, whose feed-forward block is
    linear2(dropout(activation(linear1(x)))), `activation` becomes the
    identity (restored by unswap)."""
    from .nn.conv import activation_of

    if isinstance(parent, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
        lin, act = getattr(parent, "linear1", None), parent.activation
        if not _fusable_linear(lin):
            return
        if type(act) in swap_fx.ACT_MODULES:
            lin.activation, lin.negative_slope = activation_of(act)
            report.state_dict_map.update(install(parent, {"activation": act}, {"activation": nn.Identity()},
                                                 record, name))
            _note_fused(report, name, "linear1", _type_name(act))
        elif not isinstance(act, nn.Module) and act in _LAYER_ACT_FUNCTIONS:
            lin.activation, what = _LAYER_ACT_FUNCTIONS[act]
            _set(parent, "activation", _identity, record)
            _note_fused(report, name, "linear1", what)
        return
    if not isinstance(parent, nn.Sequential):
        return
    items = list(parent._modules.items())
    for (slot, lin), (act_slot, act) in zip(items, items[1:]):
        if not _fusable_linear(lin) or type(act) not in swap_fx.ACT_MODULES:
            continue
        lin.activation, lin.negative_slope = activation_of(act)
        report.state_dict_map.update(install(parent, {act_slot: act}, {act_slot: nn.Identity()}, record, name))
        _note_fused(report, name, slot, _type_name(act))


def register_all():
    for torch_type, (ours_name, family, attrs) in RULES.items():
        register_converter(torch_type, _converter(torch_type, ours_name, attrs, family), family=family)
    swap_fx.FUSER["fn"] = fuse_conv
    register_parent_pass("conv", swap_fx.fuse_conv_chains)
    register_parent_pass("linear", fuse_linear_activations)


def after_swap(model, record):
    _fast_path_off(model, record)
