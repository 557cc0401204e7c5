"""Activations in Triton, selected by a constexpr code (bigkernels/ops/activation.py order)."""
import triton
import triton.language as tl


@triton.jit
def _sigmoid(z):
    return 1.0 / (1.0 + tl.exp(-z))


@triton.jit
def _tanh(z):
    # tanh through exp: available on every target and in the interpreter.
    return 2.0 * _sigmoid(2.0 * z) - 1.0


@triton.jit
def act_forward(z, alpha, ACT: tl.constexpr):
    if ACT == 1:
        z = tl.maximum(z, 0.0)
    elif ACT == 2:
        z = tl.minimum(tl.maximum(z, 0.0), 6.0)
    elif ACT == 3:
        z = tl.where(z > 0, z, z * alpha)
    elif ACT == 4:
        z = z * _sigmoid(z)
    elif ACT == 5:
        z = 0.5 * z * (1.0 + tl.math.erf(z * 0.7071067811865476))
    elif ACT == 6:
        z = 0.5 * z * (1.0 + _tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)))
    elif ACT == 7:
        z = z * tl.minimum(tl.maximum(z + 3.0, 0.0), 6.0) / 6.0
    elif ACT == 8:
        z = _sigmoid(z)
    elif ACT == 9:
        z = _tanh(z)
    return z


@triton.jit
def act_derivative(z, alpha, ACT: tl.constexpr):
    one = tl.full(z.shape, 1.0, tl.float32)
    zero = tl.zeros(z.shape, tl.float32)
    d = one
    if ACT == 1:
        d = tl.where(z > 0, one, zero)
    elif ACT == 2:
        d = tl.where((z > 0) & (z < 6.0), one, zero)
    elif ACT == 3:
        d = tl.where(z > 0, one, zero + alpha)
    elif ACT == 4:
        s = _sigmoid(z)
        d = s * (1.0 + z * (1.0 - s))
    elif ACT == 5:
        d = 0.5 * (1.0 + tl.math.erf(z * 0.7071067811865476)) + z * 0.3989422804014327 * tl.exp(-0.5 * z * z)
    elif ACT == 6:
        t = _tanh(0.7978845608028654 * (z + 0.044715 * z * z * z))
        d = 0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * z * z)
    elif ACT == 7:
        d = tl.where(z <= -3.0, zero, tl.where(z < 3.0, z / 3.0 + 0.5, one))
    elif ACT == 8:
        s = _sigmoid(z)
        d = s * (1.0 - s)
    elif ACT == 9:
        t = _tanh(z)
        d = 1.0 - t * t
    return d
