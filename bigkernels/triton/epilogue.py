"""Triton fused epilogue y = act(x + bias[c] + residual) and its backward.

Flat 1-D blocks over dense memory; the channel of flat index i is
(i // inner) % channels (inner = 1 for channels-last, H*W for NCHW), as in
csrc/common/bias_act_params.h."""
from typing import Optional

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._op import kernel_op
from .activation import act_derivative, act_forward

BLOCK = 1024  # pinned: a memory-bound op gains nothing from autotuning here


@triton.jit
def _bias_act_kernel(x_ptr, bias_ptr, res_ptr, gy_ptr, out_ptr, numel, channels, inner, alpha,
                     ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, BACKWARD: tl.constexpr,
                     BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    z = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if HAS_BIAS:
        z += tl.load(bias_ptr + (offs // inner) % channels, mask=mask, other=0.0).to(tl.float32)
    if HAS_RES:
        z += tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if BACKWARD:
        g = tl.load(gy_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        out = g * act_derivative(z, alpha, ACT)
    else:
        out = act_forward(z, alpha, ACT)
    tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=mask)


def _channel_inner(x, channel_dim):
    if x.dim() == 0:
        return 1, 1
    channels = x.shape[channel_dim]
    if x.is_contiguous():
        inner = 1
        for d in range(channel_dim + 1, x.dim()):
            inner *= x.shape[d]
        return channels, inner
    return channels, 1  # channels_last: the Python op layer guarantees one of the two


def _launch(x, bias, residual, grad_y, out, activation, alpha, channel_dim, backward):
    numel = x.numel()
    if numel == 0:
        return out
    channels, inner = _channel_inner(x, channel_dim)
    grid = (triton.cdiv(numel, BLOCK),)
    wrap_triton(_bias_act_kernel)[grid](
        x, bias if bias is not None else x, residual if residual is not None else x,
        grad_y if grad_y is not None else x, out, numel, channels, inner, alpha,
        ACT=activation, HAS_BIAS=bias is not None, HAS_RES=residual is not None, BACKWARD=backward, BLOCK=BLOCK)
    return out


@kernel_op("bigkernels::bias_act_triton", lambda x, *a: torch.empty_like(x))
def bias_act_triton(x: torch.Tensor, bias: Optional[torch.Tensor], residual: Optional[torch.Tensor],
                    activation: int, alpha: float, channel_dim: int) -> torch.Tensor:
    return _launch(x, bias, residual, None, torch.empty_like(x), activation, alpha, channel_dim, False)


@kernel_op("bigkernels::bias_act_backward_triton", lambda g, x, *a: torch.empty_like(x))
def bias_act_backward_triton(grad_y: torch.Tensor, x: torch.Tensor, bias: Optional[torch.Tensor],
                             residual: Optional[torch.Tensor], activation: int, alpha: float,
                             channel_dim: int) -> torch.Tensor:
    return _launch(x, bias, residual, grad_y, torch.empty_like(x), activation, alpha, channel_dim, True)
