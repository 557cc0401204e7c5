"""`bigkernels.swap(model)`: replace torch modules by bigkernels' in place, keep
the checkpoint format, report what happened; `bigkernels.unswap(model)` undoes it.

How the checkpoint format is kept (the approach of timm's converters and HF's
`conversion_mapping`, done at runtime): each replacement is a *group* of slots
in one parent module (one slot for an LSTM; conv + bn + act for a fused chain).
The new modules reuse the originals' tensors where they can; the keys of the
new slots are mapped onto the old ones, by tensor identity first and by name
second. When a group's keys differ, the parent gets a state_dict post-hook
(new -> old names) and a load pre-hook (old -> new), so `state_dict()` of the
swapped model equals the original's keys and both load with strict=True. The
whole map, qualified from the root, is `report.state_dict_map`.

Converters are registered per torch type (`register_converter`) by the family
rules in swap_rules.py; a family whose modules do not exist yet is skipped
with a reason, never faked. Chains of conv + BN + activation (+ residual add)
are matched by swap_fx.py.
"""
import logging
from dataclasses import dataclass, field

from torch import nn

log = logging.getLogger("bigkernels.swap")

FAMILIES = ("conv", "lstm", "attention", "linear")
_CONVERTERS = {}  # torch type -> (family, fn(module) -> new module)
_PARENT_PASSES = {}  # family -> fn(parent, qualified name, report, record), run after the children's converters


class Unsupported(Exception):
    """Raised by a converter: the module stays, and the message is the skip reason."""


def register_converter(torch_type, fn, *, family):
    """fn(module) -> replacement module (raise Unsupported(reason) to skip).
    Only modules of exactly `torch_type` are converted: a subclass may have
    its own forward, which a replacement would silently drop."""
    if not (isinstance(torch_type, type) and issubclass(torch_type, nn.Module)):
        raise TypeError(f"torch_type must be an nn.Module subclass, got {torch_type!r}")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    _CONVERTERS[torch_type] = (family, fn)


def register_parent_pass(family, fn):
    """fn(parent, name, report, record) runs on every module swap() walks,
    after its children were converted: the matches that span several slots
    (conv + BN + activation chains, a Linear and the activation after it)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    _PARENT_PASSES[family] = fn


@dataclass
class SwapReport:
    backend: str = "auto"
    swapped: list = field(default_factory=list)   # (qualified name, from type, to type, backend)
    skipped: list = field(default_factory=list)   # (qualified name, type, reason)
    notes: list = field(default_factory=list)     # e.g. FX tracing fell back to Sequential matches
    state_dict_map: dict = field(default_factory=dict)  # swapped key -> original key, where they differ

    def __str__(self):
        lines = [f"bigkernels.swap: {len(self.swapped)} swapped, {len(self.skipped)} skipped "
                 f"(backend {self.backend})"]
        lines += _table(("module", "from", "to", "backend"), self.swapped)
        if self.skipped:
            lines += ["skipped:"] + _table(("module", "type", "reason"), self.skipped)
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _table(header, rows):
    rows = [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join("{:<%d}" % w for w in widths)
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]


# ---- groups: one replacement of slots in a parent, with its key map ----------

def _keys(slots):
    """{qualified key: tensor} over the given {slot name: module}."""
    out = {}
    for slot, module in slots.items():
        for k, t in module.state_dict(keep_vars=True).items():
            out[f"{slot}.{k}"] = t
    return out


def _strip(name):
    return name.split(".", 1)[1] if "." in name else name


def key_map(old_slots, new_slots):
    """{new key: old key} for the keys that differ; raises Unsupported when a
    key on either side has no counterpart of the same shape."""
    old, new = _keys(old_slots), _keys(new_slots)
    by_id = {id(t): k for k, t in old.items()}
    mapping = {}
    for k, t in new.items():
        target = by_id.get(id(t))
        if target is None and k in old:
            target = k
        if target is None:  # a copy: match the name below the slot (fused.bn.weight -> bn.weight)
            tail = k.split(".", 1)[1] if "." in k else k
            hits = [o for o in old if o.endswith("." + tail) or o.endswith("." + _strip(tail))]
            hits = [o for o in hits if o not in mapping.values()]
            target = hits[0] if len(hits) == 1 else None
        if target is None or tuple(old[target].shape) != tuple(t.shape):
            raise Unsupported(f"state_dict key {k!r} of the replacement has no counterpart in the original")
        mapping[k] = target
    missing = set(old) - set(mapping.values())
    if missing:
        raise Unsupported(f"original state_dict keys {sorted(missing)} have no counterpart in the replacement")
    return {k: v for k, v in mapping.items() if k != v}


def _state_dict_post_hook(module, state_dict, prefix, local_metadata):
    for new, old in module._bigkernels_keys.items():
        if prefix + new in state_dict:
            value = state_dict.pop(prefix + new)
            state_dict.setdefault(prefix + old, value)


def _load_pre_hook(module, state_dict, prefix, *args):
    by_old = {}
    for new, old in module._bigkernels_keys.items():
        by_old.setdefault(old, []).append(new)
    for old, news in by_old.items():
        if prefix + old in state_dict:
            value = state_dict.pop(prefix + old)
            for new in news:
                state_dict[prefix + new] = value


def install(parent, old_slots, new_slots, record, parent_name):
    """Put new_slots into parent (after checking the key map); remember how to undo it."""
    mapping = key_map(old_slots, new_slots)
    for slot, module in new_slots.items():
        module._bigkernels_swapped = True  # swap() does not walk into what it put in
        setattr(parent, slot, module)
    if mapping:
        if not hasattr(parent, "_bigkernels_keys"):
            parent._bigkernels_keys = {}
            parent.register_state_dict_post_hook(_state_dict_post_hook)
            parent.register_load_state_dict_pre_hook(_load_pre_hook)
        parent._bigkernels_keys.update(mapping)
    record.append((parent, dict(old_slots)))
    prefix = f"{parent_name}." if parent_name else ""
    return {prefix + k: prefix + v for k, v in mapping.items()}


# ---- the public calls ---------------------------------------------------------

def _type_name(module):
    t = type(module)
    if t.__module__.startswith("torch.nn.modules"):
        return f"nn.{t.__name__}"
    if t.__module__.startswith("bigkernels.nn."):  # the public name: bigkernels.nn.LSTM
        return f"bigkernels.nn.{t.__name__}"
    return f"{t.__module__}.{t.__qualname__}"


def swap(model, *, conv=True, lstm=True, attention=True, linear=True, backend=None):
    """Replace, in place and recursively, torch's LSTM/GRU/RNN (and cells),
    MultiheadAttention, Linear and conv + batch norm + activation (+ residual) chains (Conv2d, Conv1d)
    by bigkernels modules. Returns a SwapReport (also logged at INFO).

    backend: None/"auto" or a backend name; the router is process-wide, so a
    forced name is applied with `bigkernels.use_backend(backend)`, as if you
    had called it yourself, and shown in the report."""
    from .backends import selection
    from . import swap_rules

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for name, flag in (("conv", conv), ("lstm", lstm), ("attention", attention), ("linear", linear)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
    forced = selection._validate(backend)
    if forced is not None:
        selection.use_backend(forced)
    report = SwapReport(backend=forced or "auto")
    enabled = {f for f, on in zip(FAMILIES, (conv, lstm, attention, linear)) if on}
    record = model.__dict__.setdefault("_bigkernels_swaps", [])
    swap_rules.register_all()
    _walk(model, "", enabled, report, record)
    swap_rules.after_swap(model, record)
    for row in report.swapped:
        log.info("swapped %s: %s -> %s (backend %s)", *row)
    for row in report.skipped:
        log.info("skipped %s (%s): %s", *row)
    for note in report.notes:
        log.info("%s", note)
    return report


def _walk(module, name, enabled, report, record):
    for child_name, child in list(module.named_children()):
        qual = f"{name}.{child_name}" if name else child_name
        entry = _CONVERTERS.get(type(child))
        if entry is not None:
            family, fn = entry
            if family not in enabled:
                continue
            try:
                new = fn(child)
                report.state_dict_map.update(install(module, {child_name: child}, {child_name: new}, record, name))
            except Unsupported as exc:
                report.skipped.append((qual, _type_name(child), str(exc)))
                continue
            report.swapped.append((qual, _type_name(child), _type_name(new), report.backend))
            continue
        if getattr(child, "_bigkernels_swapped", False) or type(child).__module__.startswith("bigkernels.nn."):
            continue  # ours already (a second swap() call, or a model built from bigkernels.nn)
        _walk(child, qual, enabled, report, record)
    for family, parent_pass in _PARENT_PASSES.items():
        if family in enabled:
            parent_pass(module, name, report, record)


def _remove_hooks(parent):
    # Found by identity, not through the handles: a deepcopy of a swapped
    # model shares the handles' weak references with the original's hooks.
    for hooks in (parent._state_dict_hooks, parent._load_state_dict_pre_hooks):
        for key, hook in list(hooks.items()):
            if getattr(hook, "hook", hook) in (_state_dict_post_hook, _load_pre_hook):
                del hooks[key]


def unswap(model):
    """Restore the torch modules swap() replaced, with the current values of
    every parameter and buffer (they were shared or are copied back)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    record = model.__dict__.pop("_bigkernels_swaps", [])
    if not record:
        return model
    state = model.state_dict()  # in the original names, through the hooks
    for parent, old_slots in reversed(record):
        for slot, module in old_slots.items():
            setattr(parent, slot, module)
        parent.__dict__.pop("forward", None)  # an FX-rewritten forward
        _remove_hooks(parent)
        parent.__dict__.pop("_bigkernels_keys", None)
        for restore in parent.__dict__.pop("_bigkernels_undo", []):
            restore()
    model.load_state_dict(state, strict=True)
    return model
