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


# AOT configs (bigkernels/aot): the kernel as launched above (BLOCK 1024, the
# default 4 warps / 3 stages), for the signature Triton specialises a typical
# call to (32-bit sizes, aligned). Pinned: fp32/fp16/bf16 x {relu, silu, gelu} x fwd/bwd
# with bias and residual (18 configs, compiled in CI for sm_80 and sm_90);
# the committed script compiles every activation and optional-input variant.
_ACT_CODES = {"none": 0, "relu": 1, "relu6": 2, "leaky_relu": 3, "silu": 4, "gelu": 5, "gelu_tanh": 6,
              "hardswish": 7, "sigmoid": 8, "tanh": 9}  # bigkernels/ops/activation.py order
_PINNED_ACTS = ("relu", "silu", "gelu")


def _aot_configs():
    configs = []
    for dtype in ("fp32", "fp16", "bf16"):
        ptrs = {p: "*" + dtype for p in ("x_ptr", "bias_ptr", "res_ptr", "gy_ptr", "out_ptr")}
        signature = {**ptrs, "numel": "i32", "channels": "i32", "inner": "i32", "alpha": "fp32",
                     "ACT": "constexpr", "HAS_BIAS": "constexpr", "HAS_RES": "constexpr", "BACKWARD": "constexpr",
                     "BLOCK": "constexpr"}
        for act, code in _ACT_CODES.items():
            for backward in (False, True):
                for has_bias, has_res in ((True, True), (True, False), (False, False)):
                    inputs = ("_b" if has_bias else "") + ("_r" if has_res else "")
                    configs.append(dict(
                        name=f"bias_act_{dtype}_{act}{inputs}_{'bwd' if backward else 'fwd'}",
                        kernel=_bias_act_kernel, signature=signature,
                        constexprs={"ACT": code, "HAS_BIAS": has_bias, "HAS_RES": has_res, "BACKWARD": backward,
                                    "BLOCK": BLOCK},
                        # 16-aligned tensors and numel % 16 == 0, as Triton specialises the usual
                        # launch: 128-bit loads/stores (11 LDG/STG instead of 32 at BLOCK 1024, bf16)
                        aligned=[*ptrs, "numel"],
                        num_warps=4, num_stages=3, pinned=act in _PINNED_ACTS and has_bias and has_res))
    return configs


AOT_CONFIGS = _aot_configs()
