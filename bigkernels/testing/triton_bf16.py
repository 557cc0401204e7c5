"""Correct bf16 `tl.dot` under Triton's interpreter.

The interpreter stores bf16 as raw uint16 and its `create_dot` hands those
bit patterns straight to np.matmul (Triton 3.9.0: a 32x32 bf16 product off by
~5e10; triton issue #11584). We widen bf16 operands to fp32 before the
product, as the GPU's tensor cores effectively do (exact products, fp32
accumulation). `install()` first probes the installed Triton and stands down
when its bf16 dot is already right."""
import numpy as np

_STATE = {"installed": False, "needed": None}


def _bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _probe_dot_is_correct():
    import torch
    import triton
    import triton.language as tl

    @triton.jit
    def _dot_kernel(a_ptr, b_ptr, c_ptr, N: tl.constexpr):
        idx = tl.arange(0, N)
        a = tl.load(a_ptr + idx[:, None] * N + idx[None, :])
        b = tl.load(b_ptr + idx[:, None] * N + idx[None, :])
        tl.store(c_ptr + idx[:, None] * N + idx[None, :], tl.dot(a, b))

    n = 16
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).bfloat16()
    b = torch.randn(n, n, generator=gen).bfloat16()
    c = torch.empty(n, n, dtype=torch.float32)
    _dot_kernel[(1,)](a, b, c, N=n)
    want = a.float() @ b.float()
    return bool(torch.allclose(c, want, rtol=1e-4, atol=1e-4))


def install():
    """Patch the interpreter if (and only if) its bf16 dot is wrong. Returns
    True when the patch is active. Safe to call repeatedly."""
    if _STATE["installed"]:
        return True
    from triton.runtime import interpreter
    import triton.language as tl

    if _STATE["needed"] is None:
        _STATE["needed"] = not _probe_dot_is_correct()
    if not _STATE["needed"]:
        return False
    builder_cls = type(interpreter.interpreter_builder)
    original = builder_cls.create_dot

    def create_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
        if a.dtype == tl.bfloat16 or b.dtype == tl.bfloat16:
            a_data = _bf16_bits_to_f32(a.data) if a.dtype == tl.bfloat16 else a.data.astype(np.float32)
            b_data = _bf16_bits_to_f32(b.data) if b.dtype == tl.bfloat16 else b.data.astype(np.float32)
            out = np.matmul(a_data, b_data, dtype=np.float32).astype(d.data.dtype) + d.data
            return interpreter.TensorHandle(out, d.dtype.scalar)
        return original(self, a, b, d, input_precision, max_num_imprecise_acc)

    builder_cls.create_dot = create_dot
    _STATE["installed"] = True
    return True


def active() -> bool:
    return _STATE["installed"]
