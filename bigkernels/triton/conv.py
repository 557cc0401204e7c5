"""Triton implicit-GEMM convolution with the fused epilogue
y = act(conv(x, w) + bias + residual).

GEMM view per group g: M = N*P*Q output pixels, N = K/groups output
channels, reduction over (r, s, C/groups). The A tile is gathered straight
from x through its strides (no im2col buffer; channels-last x makes the
channel axis contiguous, so each tap's tile is BK contiguous values per
pixel), B from w; fp32 accumulation in tl.dot. Backward: the activation's
derivative with the foundation's Triton epilogue kernel, then
aten.convolution_backward (data/weight gradients in Triton are not done)."""
from typing import List, Optional, Tuple

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._op import kernel_op
from . import conv_depthwise
from .activation import act_forward
from .epilogue import _launch as _bias_act_launch

# Pinned: one config (tests run interpreted; autotuning on a GPU is future work).
BM, BN, BK = 32, 32, 16


@triton.jit
def _conv_fwd_kernel(x_ptr, w_ptr, bias_ptr, res_ptr, y_ptr, z_ptr,
                     NB, H, W, P, Q, R, S, CG, KG, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, alpha,
                     sxn, sxc, sxh, sxw, swk, swc, swr, sws, syn, syc, syh, syw,
                     ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, SAVE_Z: tl.constexpr,
                     BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, PREC: tl.constexpr):
    pid_m, pid_n, g = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_m = pid_m * BM + tl.arange(0, BM)
    offs_n = pid_n * BN + tl.arange(0, BN)
    offs_k = tl.arange(0, BK)
    m_ok = offs_m < NB * P * Q
    n_ok = offs_n < KG
    n_img = offs_m // (P * Q)
    p = (offs_m // Q) % P
    q = offs_m % Q
    kout = g * KG + offs_n  # output channel
    acc = tl.zeros((BM, BN), dtype=tl.float32)
    for r in range(R):
        for s in range(S):
            h = p * stride_h - pad_h + r * dil_h
            w = q * stride_w - pad_w + s * dil_w
            pix_ok = m_ok & (h >= 0) & (h < H) & (w >= 0) & (w < W)
            x_row = x_ptr + n_img.to(tl.int64) * sxn + h * sxh + w * sxw
            for c0 in range(0, CG, BK):
                c = c0 + offs_k
                c_ok = c < CG
                a = tl.load(x_row[:, None] + (g * CG + c)[None, :] * sxc, mask=pix_ok[:, None] & c_ok[None, :],
                            other=0.0)
                b = tl.load(w_ptr + kout[None, :] * swk + c[:, None] * swc + r * swr + s * sws,
                            mask=c_ok[:, None] & n_ok[None, :], other=0.0)
                acc += tl.dot(a, b, input_precision=PREC)
    out_off = n_img.to(tl.int64)[:, None] * syn + kout[None, :] * syc + p[:, None] * syh + q[:, None] * syw
    mask = m_ok[:, None] & n_ok[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + kout, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    if HAS_RES:
        acc += tl.load(res_ptr + out_off, mask=mask, other=0.0).to(tl.float32)
    if SAVE_Z:
        tl.store(z_ptr + out_off, acc.to(z_ptr.dtype.element_ty), mask=mask)
    acc = act_forward(acc, alpha, ACT)
    tl.store(y_ptr + out_off, acc.to(y_ptr.dtype.element_ty), mask=mask)


def _precision(x):
    # fp32 follows torch's TF32 switch for convolutions, as cuDNN's conv does;
    # fp16/bf16 ignore it ("tf32" is Triton's default)
    if x.dtype == torch.float32 and not (x.is_cuda and torch.backends.cudnn.allow_tf32):
        return "ieee"
    return "tf32"


def _out(x, weight, stride, padding, dilation):
    from ..ops.conv import memory_format, out_size

    shape = (x.shape[0], weight.shape[0],
             out_size(x.shape[2], weight.shape[2], stride[0], padding[0], dilation[0]),
             out_size(x.shape[3], weight.shape[3], stride[1], padding[1], dilation[1]))
    return torch.empty(shape, dtype=x.dtype, device=x.device).contiguous(memory_format=memory_format(x))


def _fake(x, weight, bias, residual, stride, padding, dilation, groups, activation, alpha, save_preact):
    y = _out(x, weight, stride, padding, dilation)
    return y, (torch.empty_like(y) if save_preact else x.new_empty(0))


@kernel_op("bigkernels::conv2d_triton", _fake)
def conv2d_triton(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor],
                  residual: Optional[torch.Tensor], stride: List[int], padding: List[int], dilation: List[int],
                  groups: int, activation: int, alpha: float, save_preact: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    y = _out(x, weight, stride, padding, dilation)
    z = torch.empty_like(y) if save_preact else x.new_empty(0)
    if y.numel() == 0:
        return y, z
    if residual is not None and residual.stride() != y.stride():
        residual = torch.empty_like(y).copy_(residual)
    if conv_depthwise.is_depthwise(x, weight, groups):
        conv_depthwise.launch(x, weight, bias, residual, y, z if save_preact else None, stride, padding, dilation,
                              activation, alpha)
        return y, z
    nb, _, h, w = x.shape
    kg, cg = weight.shape[0] // groups, weight.shape[1]
    p, q = y.shape[2], y.shape[3]
    grid = (triton.cdiv(nb * p * q, BM), triton.cdiv(kg, BN), groups)
    wrap_triton(_conv_fwd_kernel)[grid](
        x, weight, bias if bias is not None else y, residual if residual is not None else y, y,
        z if save_preact else y, nb, h, w, p, q, weight.shape[2], weight.shape[3], cg, kg, stride[0], stride[1],
        padding[0], padding[1], dilation[0], dilation[1], alpha, *x.stride(), *weight.stride(), *y.stride(),
        ACT=activation, HAS_BIAS=bias is not None, HAS_RES=residual is not None, SAVE_Z=save_preact,
        BM=BM, BN=BN, BK=BK, PREC=_precision(x))
    return y, z


def _fake_bwd(grad_y, x, weight, saved, stride, padding, dilation, groups, activation, alpha, mask):
    from ..ops.conv import _fake_backward

    return _fake_backward(grad_y, x, weight, saved, stride, padding, dilation, groups, activation, alpha, mask)


@kernel_op("bigkernels::conv2d_backward_triton", _fake_bwd)
def conv2d_backward_triton(grad_y: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, saved: torch.Tensor,
                           stride: List[int], padding: List[int], dilation: List[int], groups: int,
                           activation: int, alpha: float, output_mask: List[bool]
                           ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from ..ops.conv import memory_format

    gz = grad_y
    if activation != 0:
        gy = grad_y if grad_y.stride() == saved.stride() else torch.empty_like(saved).copy_(grad_y)
        gz = _bias_act_launch(saved, None, None, gy, torch.empty_like(saved), activation, alpha, 1, True)
    gx, gw, gb = torch.ops.aten.convolution_backward(
        gz, x, weight, [weight.shape[0]], stride, padding, dilation, False, [0, 0], groups, list(output_mask[:3]))
    # a fresh empty per unused output: outputs may not alias one another
    gx = gx.contiguous(memory_format=memory_format(x)) if output_mask[0] else x.new_empty(0)
    gw = gw.contiguous(memory_format=memory_format(weight)) if output_mask[1] else x.new_empty(0)
    gb = gb if output_mask[2] else x.new_empty(0)
    gz_out = gz if (output_mask[3] and activation != 0) else x.new_empty(0)
    return gx, gw, gb, gz_out


# AOT configs (bigkernels/aot): as conv2d_triton launches (the pinned 32 x 32 x 16
# tiles, default 4 warps / 3 stages), every tensor in the input dtype: inference
# (bias + relu), training (bias + residual + silu, saving the pre-activation) and
# the bare conv. Pinned (CI): bf16 inference.
_ACT = {"none": 0, "relu": 1, "silu": 4}  # bigkernels/ops/activation.py codes
_VARIANTS = (("relu_b", "relu", True, False, False), ("silu_b_r_z", "silu", True, True, True),
             ("none", "none", False, False, False))


def _aot_configs():
    from ._op import aot_signature

    configs = []
    for dt in ("fp16", "bf16", "fp32"):
        sig = aot_signature(_conv_fwd_kernel, {**{p: "*" + dt for p in ("x_ptr", "w_ptr", "bias_ptr", "res_ptr",
                                                                          "y_ptr", "z_ptr")}, "alpha": "fp32"})
        for tag, act, has_bias, has_res, save_z in _VARIANTS:
            configs.append(dict(name=f"conv2d_fwd_{dt}_{tag}", kernel=_conv_fwd_kernel, signature=sig,
                                constexprs=dict(ACT=_ACT[act], HAS_BIAS=has_bias, HAS_RES=has_res, SAVE_Z=save_z,
                                                BM=BM, BN=BN, BK=BK, PREC="tf32"),
                                num_warps=4, num_stages=3, pinned=dt == "bf16" and tag == "relu_b"))
    return configs


AOT_CONFIGS = _aot_configs()
