"""Triton fused BN + residual + activation after a convolution (the
`triton` variant of bigkernels::bn_act; same contract as csrc/cpu/conv/bn_act.cpp):
  forward: per-channel statistics (one program per channel block, rows in
  order: deterministic, no atomics), then y = act(z * scale + shift + res);
  backward: per-channel sum(g), sum(g * xhat), then dz (and d residual).
Per-channel arithmetic on C values is plain torch, in float64."""
from typing import List, Optional, Tuple

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from ._op import kernel_op
from .activation import act_derivative, act_forward

BM, BC, BLOCK = 64, 16, 1024  # pinned: rows x channels per reduction step; elements per pointwise program


@triton.jit
def _reduce_kernel(z_ptr, gy_ptr, res_ptr, a_ptr, b_ptr, mean_ptr, invstd_ptr, out0_ptr, out1_ptr,
                   C, HW, ROWS, sn, sc, shw, alpha, ACT: tl.constexpr, BACKWARD: tl.constexpr,
                   HAS_RES: tl.constexpr, BM: tl.constexpr, BC: tl.constexpr):
    # forward: sums of d and d^2 with d = z - a[c] (a = the shift); backward:
    # sums of g and g * xhat, g = gy * act'(z * a + b + res).
    offs_c = tl.program_id(0) * BC + tl.arange(0, BC)
    c_ok = offs_c < C
    a = tl.load(a_ptr + offs_c, mask=c_ok, other=0.0)
    if BACKWARD:
        b = tl.load(b_ptr + offs_c, mask=c_ok, other=0.0)
        mu = tl.load(mean_ptr + offs_c, mask=c_ok, other=0.0)
        inv = tl.load(invstd_ptr + offs_c, mask=c_ok, other=0.0)
    s0 = tl.zeros((BM, BC), dtype=tl.float32)
    s1 = tl.zeros((BM, BC), dtype=tl.float32)
    for r0 in range(0, ROWS, BM):
        rows = r0 + tl.arange(0, BM)
        off = ((rows // HW).to(tl.int64) * sn + (rows % HW) * shw)[:, None] + offs_c[None, :] * sc
        mask = (rows < ROWS)[:, None] & c_ok[None, :]
        z = tl.load(z_ptr + off, mask=mask, other=0.0).to(tl.float32)
        if BACKWARD:
            v = z * a[None, :] + b[None, :]
            if HAS_RES:
                v += tl.load(res_ptr + off, mask=mask, other=0.0).to(tl.float32)
            g = tl.load(gy_ptr + off, mask=mask, other=0.0).to(tl.float32) * act_derivative(v, alpha, ACT)
            g = tl.where(mask, g, 0.0)
            s0 += g
            s1 += g * ((z - mu[None, :]) * inv[None, :])
        else:
            d = tl.where(mask, z - a[None, :], 0.0)
            s0 += d
            s1 += d * d
    tl.store(out0_ptr + offs_c, tl.sum(s0, axis=0), mask=c_ok)
    tl.store(out1_ptr + offs_c, tl.sum(s1, axis=0), mask=c_ok)


@triton.jit
def _pointwise_kernel(z_ptr, gy_ptr, res_ptr, scale_ptr, shift_ptr, mean_ptr, k0_ptr, k1_ptr, out_ptr, gres_ptr,
                      numel, C, inner, alpha, ACT: tl.constexpr, BACKWARD: tl.constexpr, HAS_RES: tl.constexpr,
                      WRITE_GZ: tl.constexpr, WRITE_GRES: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    c = (offs // inner) % C
    z = tl.load(z_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    sc = tl.load(scale_ptr + c, mask=mask, other=0.0)
    v = z * sc + tl.load(shift_ptr + c, mask=mask, other=0.0)
    if HAS_RES:
        v += tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if BACKWARD:
        g = tl.load(gy_ptr + offs, mask=mask, other=0.0).to(tl.float32) * act_derivative(v, alpha, ACT)
        if WRITE_GRES:
            tl.store(gres_ptr + offs, g.to(gres_ptr.dtype.element_ty), mask=mask)
        if WRITE_GZ:
            mu = tl.load(mean_ptr + c, mask=mask, other=0.0)
            k0 = tl.load(k0_ptr + c, mask=mask, other=0.0)
            k1 = tl.load(k1_ptr + c, mask=mask, other=0.0)
            tl.store(out_ptr + offs, (sc * g - k0 - k1 * (z - mu)).to(out_ptr.dtype.element_ty), mask=mask)
    else:
        tl.store(out_ptr + offs, act_forward(v, alpha, ACT).to(out_ptr.dtype.element_ty), mask=mask)


def _layout(z):
    """(rows per image = H*W..., n stride, c stride, hw stride, flat inner) of a dense z."""
    hw = z[0, 0].numel() if z.dim() > 2 else 1
    if z.is_contiguous():
        return hw, z.shape[1] * hw, hw, 1, hw
    return hw, z.shape[1] * hw, 1, z.shape[1], 1  # channels_last (the op layer guarantees one of the two)


def _reduce(z, gy, res, a, b, mean, invstd, act, alpha, backward):
    c = z.shape[1]
    hw, sn, sc, shw, _ = _layout(z)
    out0, out1 = (torch.empty(c, dtype=torch.float32, device=z.device) for _ in range(2))
    wrap_triton(_reduce_kernel)[(triton.cdiv(c, BC),)](
        z, gy if gy is not None else z, res if res is not None else z, a, b if b is not None else a,
        mean if mean is not None else a, invstd if invstd is not None else a, out0, out1, c, hw,
        z.shape[0] * hw, sn, sc, shw, alpha, ACT=act, BACKWARD=backward, HAS_RES=res is not None, BM=BM, BC=BC)
    return out0.double(), out1.double()


def _channel_terms(mean, var, weight, bias, eps):
    invstd = torch.rsqrt(var.double() + eps)
    scale = invstd * (weight.double() if weight is not None else 1.0)
    shift = (bias.double() if bias is not None else 0.0) - mean.double() * scale
    return scale, shift, invstd


def _f32(*ts):
    return [t.float().contiguous() for t in ts]


def _fake_fwd(z, weight, bias, residual, mean, var, eps, activation, alpha):
    from ..ops.batchnorm import _fake_forward

    return _fake_forward(z, weight, bias, residual, mean, var, eps, activation, alpha)


@kernel_op("bigkernels::bn_act_triton", _fake_fwd)
def bn_act_triton(z: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                  residual: Optional[torch.Tensor], mean: Optional[torch.Tensor], var: Optional[torch.Tensor],
                  eps: float, activation: int, alpha: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    count = z.numel() // z.shape[1]
    if mean is None or var is None:
        k = z[(0,) * 1].reshape(z.shape[1], -1)[:, 0].float().contiguous() if count else z.new_zeros(z.shape[1])
        s0, s1 = _reduce(z, None, None, k, None, None, None, 0, 0.0, False)
        m = s0 / max(count, 1)
        mean, var = k.double() + m, (s1 / max(count, 1) - m * m).clamp_min(0.0)
    scale, shift, _ = _channel_terms(mean, var, weight, bias, eps)
    y = torch.empty_like(z)
    if z.numel():
        wrap_triton(_pointwise_kernel)[(triton.cdiv(z.numel(), BLOCK),)](
            z, z, residual if residual is not None else z, *_f32(scale, shift), scale, scale, scale, y, y,
            z.numel(), z.shape[1], _layout(z)[4], alpha, ACT=activation, BACKWARD=False,
            HAS_RES=residual is not None, WRITE_GZ=False, WRITE_GRES=False, BLOCK=BLOCK)
    return y, mean.float().clone(), var.float().clone()


def _fake_bwd(grad_y, z, weight, bias, residual, mean, var, eps, activation, alpha, batch_stats, mask):
    from ..ops.batchnorm import _fake_backward

    return _fake_backward(grad_y, z, weight, bias, residual, mean, var, eps, activation, alpha, batch_stats, mask)


@kernel_op("bigkernels::bn_act_backward_triton", _fake_bwd)
def bn_act_backward_triton(grad_y: torch.Tensor, z: torch.Tensor, weight: Optional[torch.Tensor],
                           bias: Optional[torch.Tensor], residual: Optional[torch.Tensor], mean: torch.Tensor,
                           var: torch.Tensor, eps: float, activation: int, alpha: float, batch_stats: bool,
                           output_mask: List[bool]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    scale, shift, invstd = _channel_terms(mean, var, weight, bias, eps)
    gy = grad_y if grad_y.stride() == z.stride() else torch.empty_like(z).copy_(grad_y)
    sc32, sh32, mu32, inv32 = _f32(scale, shift, mean, invstd)
    sum_g, sum_gx = _reduce(z, gy, residual, sc32, sh32, mu32, inv32, activation, alpha, True)
    count = max(z.numel() // z.shape[1], 1)
    k0 = scale * (sum_g / count) if batch_stats else torch.zeros_like(scale)
    k1 = scale * invstd * (sum_gx / count) if batch_stats else torch.zeros_like(scale)
    gz = torch.empty_like(z) if output_mask[0] else z.new_empty(0)
    gres = torch.empty_like(z) if output_mask[3] and residual is not None else z.new_empty(0)
    if z.numel() and (gz.numel() or gres.numel()):
        wrap_triton(_pointwise_kernel)[(triton.cdiv(z.numel(), BLOCK),)](
            z, gy, residual if residual is not None else z, sc32, sh32, mu32, *_f32(k0, k1),
            gz if gz.numel() else z, gres if gres.numel() else z, z.numel(), z.shape[1], _layout(z)[4], alpha,
            ACT=activation, BACKWARD=True, HAS_RES=residual is not None, WRITE_GZ=bool(gz.numel()),
            WRITE_GRES=bool(gres.numel()), BLOCK=BLOCK)

    def param_grad(v, like, want):
        return v.to(like.dtype) if want and like is not None else z.new_empty(0)

    return gz, param_grad(sum_gx, weight, output_mask[1]), param_grad(sum_g, bias, output_mask[2]), gres


# AOT configs (bigkernels/aot): as bn_act_triton / bn_act_backward_triton launch
# (BM x BC = 64 x 16 reduction tiles, BLOCK 1024, default 4 warps / 3 stages):
# activations in the input dtype, per-channel terms and sums in fp32. Forward:
# the statistics reduction and y = relu(z * scale + shift + residual); backward:
# the two sums and dz + d residual. Pinned (CI): bf16 forward.
def _aot_configs():
    from ._op import aot_signature

    configs = []
    for dt in ("fp16", "bf16", "fp32"):
        act_t = {p: "*" + dt for p in ("z_ptr", "gy_ptr", "res_ptr")}
        sig = aot_signature(_reduce_kernel, {**act_t, **{p: "*fp32" for p in ("a_ptr", "b_ptr", "mean_ptr",
                                                                               "invstd_ptr", "out0_ptr", "out1_ptr")},
                                             "alpha": "fp32"})
        for backward in (False, True):
            configs.append(dict(name=f"bn_reduce_{dt}_{'bwd_relu_r' if backward else 'fwd_stats'}",
                                kernel=_reduce_kernel, signature=sig,
                                constexprs=dict(ACT=1 if backward else 0, BACKWARD=backward, HAS_RES=backward,
                                                BM=BM, BC=BC),
                                num_warps=4, num_stages=3, pinned=dt == "bf16" and not backward))
        sig = aot_signature(_pointwise_kernel, {**act_t, "out_ptr": "*" + dt, "gres_ptr": "*" + dt, "alpha": "fp32",
                                                **{p: "*fp32" for p in ("scale_ptr", "shift_ptr", "mean_ptr",
                                                                        "k0_ptr", "k1_ptr")}})
        for backward in (False, True):
            configs.append(dict(name=f"bn_pointwise_{dt}_relu_r_{'bwd' if backward else 'fwd'}",
                                kernel=_pointwise_kernel, signature=sig,
                                constexprs=dict(ACT=1, BACKWARD=backward, HAS_RES=True, WRITE_GZ=backward,
                                                WRITE_GRES=backward, BLOCK=BLOCK),
                                num_warps=4, num_stages=3, pinned=dt == "bf16" and not backward))
    return configs


AOT_CONFIGS = _aot_configs()
