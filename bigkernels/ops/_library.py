"""The `bigkernels` op namespace and the per-backend variants of each kernel op.

A kernel op `name` exists in three variants, so that the router can choose
among them while each stays a plain custom op (fake kernel, autograd,
opcheck, torch.compile):
  bigkernels::name          C++ kernels: CPU key = `cpu` backend, CUDA key = `cuda`
  bigkernels::name_sim      the CUDA kernels under the emulator, on CPU tensors (tests)
  bigkernels::name_triton   Triton kernels (defined by bigkernels/triton with triton_op)
Schemas live here, in Python, so the ops exist even when _C is absent.
"""
import torch

LIB = torch.library.Library("bigkernels", "DEF")
NATIVE_VARIANTS = ("", "_sim")
_DEFINED: set = set()  # op names defined by define_native (see register_autograd)


def qualname(name: str) -> str:
    return f"bigkernels::{name}"


def define_native(name: str, schema: str, fake):
    """Define `name` and `name_sim` with one schema ("(Tensor x, ...) -> Tensor")
    and register the same fake kernel for both."""
    for suffix in NATIVE_VARIANTS:
        LIB.define(name + suffix + schema)
        _DEFINED.add(name + suffix)
        torch.library.register_fake(qualname(name + suffix), fake, lib=LIB)


def define_cpu_native(name: str, schema: str, fake):
    """Define `name` alone, for a C++ CPU kernel with no CUDA counterpart (so
    no emulated `_sim` variant): a CPU helper such as max_pool2d, where torch's
    own kernels serve the GPU."""
    LIB.define(name + schema)
    _DEFINED.add(name)
    torch.library.register_fake(qualname(name), fake, lib=LIB)


def define(name: str, schema: str, fake, *, cpu):
    """Define one op implemented in Python (no _sim variant): its schema, fake
    kernel and CPU kernel; register_autograd below takes it like a native op."""
    LIB.define(name + schema)
    _DEFINED.add(name)
    torch.library.register_fake(qualname(name), fake, lib=LIB)
    LIB.impl(name, cpu, "CPU")


def op(name: str):
    """The OpOverload torch.ops.bigkernels.<name>.default."""
    return getattr(torch.ops.bigkernels, name).default


def wants_grad(*args):
    """Whether a call on these arguments records a gradient: grad mode on and
    a tensor among them (or in a list among them) requiring grad."""
    if not torch.is_grad_enabled():
        return False
    for a in args:
        if isinstance(a, torch.Tensor):
            if a.requires_grad:
                return True
        elif isinstance(a, (list, tuple)) and any(isinstance(t, torch.Tensor) and t.requires_grad for t in a):
            return True
    return False


def call(name: str, *args, grad=None):
    """op(name)(*args), entered below the Autograd key when no argument needs a
    gradient (grad mode off, or no input requiring grad): the Autograd kernel
    of our ops is Python (register_autograd below), and crossing into it only
    to forward the call cost ~10 us per call (a 64 x 32 x 8 x 8 conv2d, 2026-11-25).
    While torch.compile traces, the plain call, which Dynamo understands.
    grad: wants_grad(*args) when the caller has it already."""
    overload = op(name)
    if (wants_grad(*args) if grad is None else grad) or torch.compiler.is_compiling():
        return overload(*args)
    with torch._C._AutoDispatchBelowAutograd():
        return overload(*args)


def register_autograd(name: str, backward, *, setup_context=None, materialize_grads=True):
    """torch.library.register_autograd(qualname(name), ...), the same kernel
    at the Autograd key, for an op defined by define_native; other ops (the
    Triton variants, defined with triton_op) go to torch's own function.

    Why not torch's: its kernel calls torch._library.utils.fill_defaults on
    every differentiable call, which reads the pybind `schema.arguments` list
    twice per argument: 27 us per conv2d call, 19 us per bn_act or attention
    call (torch 2.13, measured on our 2-core dev VM), more than the op's own
    Python layer. Our schemas are positional with no defaults, so the inputs
    are complete as the dispatcher passes them; the defaults (if any) are
    filled from a list read once here.

    materialize_grads=False (honoured for the ops defined here; the Triton
    variants keep torch's default, zeros): an output that nothing
    used reaches `backward` as None instead of a tensor of zeros. For ops
    whose second output is internal (linear's and conv2d's saved
    pre-activation): torch filled a zero tensor of the layer's size per
    backward (16 MB, 3.9 ms per feed-forward layer of the transformer bench)."""
    if name not in _DEFINED:
        torch.library.register_autograd(qualname(name), backward, setup_context=setup_context, lib=LIB)
        return
    from torch import _C

    overload = op(name)
    schema = overload._schema
    arguments = list(schema.arguments)
    if any(a.kwarg_only for a in arguments):
        raise NotImplementedError(f"{name}: keyword-only arguments are not supported here")
    defaults = [a.default_value for a in arguments]
    n_args = len(arguments)
    after_autograd = _C._after_autograd_keyset

    def full(args):
        return args if len(args) == n_args else (*args, *defaults[len(args):])

    def forward(ctx, keyset, *args):
        if not materialize_grads:
            ctx.set_materialize_grads(False)
        with _C._AutoDispatchBelowAutograd():
            result = overload.redispatch(keyset & after_autograd, *args)
            if setup_context is not None:
                setup_context(ctx=ctx, inputs=full(args), output=result)
            return result

    def backward_fn(ctx, *grads):
        previous = ctx.needs_input_grad
        try:
            ctx.needs_input_grad = previous[1:]  # without the keyset's slot
            if _C.is_grad_enabled():  # create_graph: the backward is recorded
                result = backward(ctx, *grads)
            else:  # nothing is recorded: its ops skip our Python Autograd kernels
                with _C._AutoDispatchBelowAutograd():
                    result = backward(ctx, *grads)
        finally:
            ctx.needs_input_grad = previous
        return (None, *result) if isinstance(result, tuple) else (None, result)

    generated = type(f"GeneratedBackwardFor_bigkernels_{name}_default", (torch.autograd.Function,),
                     {"forward": staticmethod(forward), "backward": staticmethod(backward_fn)})

    def autograd_impl(keyset, *args):
        if _C.is_grad_enabled() and _C._any_requires_grad(*args):
            return generated.apply(keyset, *args)
        with _C._AutoDispatchBelowAutograd():
            return overload.redispatch(keyset & after_autograd, *args)

    LIB.impl(name, autograd_impl, "Autograd", with_keyset=True)
