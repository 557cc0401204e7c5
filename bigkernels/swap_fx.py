"""Conv2d + BatchNorm2d (Conv1d + BatchNorm1d) + activation (+ residual add)
chains, for swap().

Two matchers:
- nn.Sequential: consecutive children conv, [bn], [act] (at least one of the
  two after the conv); the chain goes into the conv's slot, the rest become
  nn.Identity (so the Sequential's indices stay).
- hand-written forwards: the parent is traced by torch.fx with every child a
  leaf; conv -> bn -> [add(., other)] -> [act] is rewritten into one call of
  the fused module, and the rewritten code becomes the instance's `forward`
  (the class's forward is untouched, so unswap just deletes it).  The trace
  is taken in train and in eval mode and must be the same code: a forward
  that branches on self.training cannot be frozen into one graph.
  An untraceable forward keeps its Sequential matches only; the report says so.

The activation is fused only when it comes after the add: the op computes
act(conv(x) + bias + residual), ResNet's conv2 -> bn2 -> +identity -> relu.
"""
import operator
import types

import torch
import torch.nn.functional as F
from torch import fx, nn

from .swap import Unsupported, _type_name, install

ACT_MODULES = (nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.LeakyReLU, nn.Hardswish, nn.Sigmoid, nn.Tanh)
ACT_FUNCTIONS = {F.relu: nn.ReLU, torch.relu: nn.ReLU, torch.relu_: nn.ReLU, F.relu6: nn.ReLU6,
                 F.silu: nn.SiLU, F.hardswish: nn.Hardswish, torch.sigmoid: nn.Sigmoid, torch.tanh: nn.Tanh}
ACT_METHODS = {"relu": nn.ReLU, "relu_": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
ADDS = (operator.add, operator.iadd, torch.add)
# the convolutions that fuse, and the batch norm each fuses with
CONV_BN = {nn.Conv2d: nn.BatchNorm2d, nn.Conv1d: nn.BatchNorm1d}

# Set by swap_rules: fn(conv, bn, act_module) -> fused module (raises Unsupported).
FUSER = {"fn": None}


def _fuse(conv, bn, act):
    if FUSER["fn"] is None:
        raise Unsupported("bigkernels.nn has no fused convolution modules in this build")
    return FUSER["fn"](conv, bn, act)


def fuse_conv_chains(parent, name, report, record):
    if isinstance(parent, nn.Sequential):
        _sequential(parent, name, report, record)
    elif any(type(c) in CONV_BN for c in parent.children()) and not isinstance(parent, (nn.ModuleList,
                                                                                         nn.ModuleDict)):
        _traced(parent, name, report, record)


def _nothing_follows(conv):
    return f"no {CONV_BN[type(conv)].__name__} or activation follows it"


def _qual(name, slot):
    return f"{name}.{slot}" if name else slot


def _swap_group(parent, name, report, record, slots, conv_slot, conv, bn, act, residual=False):
    """Install fused conv(+bn)(+act) into conv_slot; other slots become Identity."""
    fused = _fuse(conv, bn, act)
    new = {s: (fused if s == conv_slot else nn.Identity()) for s in slots}
    report.state_dict_map.update(install(parent, slots, new, record, name))
    parts = [_type_name(m) for m in (conv, bn) if m is not None] + (["add"] if residual else [])
    parts = "+".join(parts + ([_type_name(act)] if act is not None else []))
    report.swapped.append((_qual(name, conv_slot), parts, _type_name(fused), report.backend))
    return fused


def _sequential(seq, name, report, record):
    items = list(seq._modules.items())
    i = 0
    while i < len(items):
        slot, conv = items[i]
        if type(conv) not in CONV_BN:
            i += 1
            continue
        bn_type = CONV_BN[type(conv)]
        slots = {slot: conv}
        bn = act = None
        j = i + 1
        if j < len(items) and type(items[j][1]) is bn_type:
            bn = items[j][1]
            slots[items[j][0]] = bn
            j += 1
        if j < len(items) and type(items[j][1]) in ACT_MODULES:
            act = items[j][1]
            slots[items[j][0]] = act
            j += 1
        if bn is None and act is None:
            report.skipped.append((_qual(name, slot), _type_name(conv), _nothing_follows(conv)))
        else:
            try:
                _swap_group(seq, name, report, record, slots, slot, conv, bn, act)
            except Unsupported as exc:
                report.skipped.append((_qual(name, slot), _type_name(conv), str(exc)))
        i = j


class _ChildrenAreLeaves(fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return True


def _trace(parent):
    graphs = []
    was = parent.training
    try:
        for mode in (was, not was):
            parent.training = mode  # only the parent's own forward is traced; children are leaves
            graphs.append(_ChildrenAreLeaves().trace(parent))
    finally:
        parent.training = was
    if graphs[0].python_code("self").src != graphs[1].python_code("self").src:
        raise fx.proxy.TraceError("the forward differs between train and eval mode")
    return graphs[0]


def _act_of(node, parent):
    """The activation module that `node` applies, or None."""
    if node.op == "call_module":
        m = parent.get_submodule(node.target)
        return m if type(m) in ACT_MODULES else None
    if node.op == "call_function" and node.target in ACT_FUNCTIONS and len(node.args) == 1:
        return ACT_FUNCTIONS[node.target]()
    if node.op == "call_method" and node.target in ACT_METHODS and len(node.args) == 1:
        return ACT_METHODS[node.target]()
    return None


def _only_user(node):
    return next(iter(node.users)) if len(node.users) == 1 else None


def _traced(parent, name, report, record):
    if "forward" in parent.__dict__:
        # Rewritten by an earlier swap() (or patched by the user): torch.fx
        # would trace the class's forward and drop that instance forward.
        report.notes.append(f"{name or '<root>'} ({_type_name(parent)}) has an instance-level forward "
                            "(an earlier swap() or a patch): not traced again")
        return
    try:
        graph = _trace(parent)
    except Exception as exc:  # fx raises many types (TraceError, TypeError, NotImplementedError...)
        report.notes.append(f"{name or '<root>'} ({_type_name(parent)}): torch.fx could not trace its forward "
                            f"({type(exc).__name__}: {str(exc)[:120]}); only nn.Sequential chains are fused there")
        for slot, child in parent.named_children():
            if type(child) in CONV_BN:
                report.skipped.append((_qual(name, slot), _type_name(child),
                                       "parent's forward is not traceable by torch.fx"))
        return
    calls = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    changed = False
    for node in list(graph.nodes):
        if node.op != "call_module" or type(parent.get_submodule(node.target)) not in CONV_BN:
            continue
        conv_slot, conv = node.target, parent.get_submodule(node.target)
        if "." in conv_slot or calls[conv_slot] != 1:
            report.skipped.append((_qual(name, conv_slot), _type_name(conv), "called more than once in the forward"))
            continue
        chain, end, bn, act, residual = [node], node, None, None, None
        nxt = _only_user(end)
        if nxt is not None and nxt.op == "call_module" and calls.get(nxt.target) == 1 \
                and type(parent.get_submodule(nxt.target)) is CONV_BN[type(conv)] and len(nxt.args) == 1:
            bn, end = parent.get_submodule(nxt.target), nxt
            chain.append(nxt)
            nxt = _only_user(end)
        if nxt is not None and nxt.op == "call_function" and nxt.target in ADDS \
                and len(nxt.args) == 2 and not nxt.kwargs:
            other = nxt.args[1] if nxt.args[0] is end else nxt.args[0]
            if isinstance(other, fx.Node) and other is not end:
                residual, end = other, nxt
                chain.append(nxt)
                nxt = _only_user(end)
        if nxt is not None and _act_of(nxt, parent) is not None:
            act, end = _act_of(nxt, parent), nxt
            chain.append(nxt)
        if bn is None and act is None:
            report.skipped.append((_qual(name, conv_slot), _type_name(conv), _nothing_follows(conv)))
            continue
        slots = {conv_slot: conv}
        if bn is not None:
            slots[chain[1].target] = bn
        try:
            _swap_group(parent, name, report, record, slots, conv_slot, conv, bn, act, residual is not None)
        except Unsupported as exc:
            report.skipped.append((_qual(name, conv_slot), _type_name(conv), str(exc)))
            continue
        with graph.inserting_after(end):
            args = (node.args[0],) if residual is None else (node.args[0], residual)
            fused_node = graph.call_module(conv_slot, args=args)
        end.replace_all_uses_with(fused_node)
        for dead in reversed(chain):
            graph.erase_node(dead)
        changed = True
    if changed:
        graph.lint()
        code = fx.GraphModule(parent, graph)
        # The generated forward only reads attributes of `self` named in the
        # graph, which the parent has: bind it to the parent itself.
        parent.forward = types.MethodType(type(code).forward, parent)
