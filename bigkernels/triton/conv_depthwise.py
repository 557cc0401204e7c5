"""Triton depthwise convolution (groups == C_in, weight (C_in * mult, 1, kH, kW))
with the fused epilogue act(conv + bias + residual), for kernel sizes 3 to 31.

Depthwise has no reduction over channels, so a GEMM tile would waste 15 of
every 16 lanes of its K dimension (BK >= 16 for tl.dot): this kernel is a
direct convolution instead, a tile of BP output pixels x BC channels per
program, one multiply-add per tap over the whole tile; channels-last x makes
each tap's BC channel values contiguous."""
import triton
import triton.language as tl
from torch.library import wrap_triton

from .activation import act_forward

BP, BC = 32, 16  # pinned: pixels x channels per program


@triton.jit
def _dw_kernel(x_ptr, w_ptr, bias_ptr, res_ptr, y_ptr, z_ptr, NB, K, H, W, P, Q, R, S, MULT,
               stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, alpha,
               sxn, sxc, sxh, sxw, swk, swr, sws, syn, syc, syh, syw,
               ACT: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_RES: tl.constexpr, SAVE_Z: tl.constexpr,
               BP: tl.constexpr, BC: tl.constexpr):
    offs_m = tl.program_id(0) * BP + tl.arange(0, BP)
    kout = tl.program_id(1) * BC + tl.arange(0, BC)
    m_ok = offs_m < NB * P * Q
    k_ok = kout < K
    cin = kout // MULT
    n_img = offs_m // (P * Q)
    p = (offs_m // Q) % P
    q = offs_m % Q
    acc = tl.zeros((BP, BC), dtype=tl.float32)
    for r in range(R):
        for s in range(S):
            h = p * stride_h - pad_h + r * dil_h
            w = q * stride_w - pad_w + s * dil_w
            ok = m_ok & (h >= 0) & (h < H) & (w >= 0) & (w < W)
            a = tl.load(x_ptr + (n_img.to(tl.int64) * sxn + h * sxh + w * sxw)[:, None] + cin[None, :] * sxc,
                        mask=ok[:, None] & k_ok[None, :], other=0.0).to(tl.float32)
            wv = tl.load(w_ptr + kout * swk + r * swr + s * sws, mask=k_ok, other=0.0).to(tl.float32)
            acc += a * wv[None, :]
    out_off = n_img.to(tl.int64)[:, None] * syn + kout[None, :] * syc + p[:, None] * syh + q[:, None] * syw
    mask = m_ok[:, None] & k_ok[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + kout, mask=k_ok, other=0.0).to(tl.float32)[None, :]
    if HAS_RES:
        acc += tl.load(res_ptr + out_off, mask=mask, other=0.0).to(tl.float32)
    if SAVE_Z:
        tl.store(z_ptr + out_off, acc.to(z_ptr.dtype.element_ty), mask=mask)
    acc = act_forward(acc, alpha, ACT)
    tl.store(y_ptr + out_off, acc.to(y_ptr.dtype.element_ty), mask=mask)


def is_depthwise(x, weight, groups):
    return groups > 1 and groups == x.shape[1] and weight.shape[1] == 1


def launch(x, weight, bias, residual, y, z, stride, padding, dilation, activation, alpha):
    nb, c, h, w = x.shape
    k, p, q = weight.shape[0], y.shape[2], y.shape[3]
    grid = (triton.cdiv(nb * p * q, BP), triton.cdiv(k, BC))
    wrap_triton(_dw_kernel)[grid](
        x, weight, bias if bias is not None else y, residual if residual is not None else y, y,
        z if z is not None else y, nb, k, h, w, p, q, weight.shape[2], weight.shape[3], k // c,
        stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], alpha,
        *x.stride(), weight.stride(0), weight.stride(2), weight.stride(3), *y.stride(),
        ACT=activation, HAS_BIAS=bias is not None, HAS_RES=residual is not None, SAVE_Z=z is not None,
        BP=BP, BC=BC)


# AOT configs (bigkernels/aot): as launch() runs (BP x BC = 32 x 16, default
# 4 warps / 3 stages), every tensor in the input dtype. Pinned (CI): bf16 bias + relu.
def _aot_configs():
    from ._op import aot_signature

    variants = (("relu_b", 1, True, False, False), ("silu_b_r_z", 4, True, True, True))
    configs = []
    for dt in ("fp16", "bf16", "fp32"):
        sig = aot_signature(_dw_kernel, {**{p: "*" + dt for p in ("x_ptr", "w_ptr", "bias_ptr", "res_ptr", "y_ptr",
                                                                    "z_ptr")}, "alpha": "fp32"})
        for tag, act, has_bias, has_res, save_z in variants:
            configs.append(dict(name=f"conv_dw_fwd_{dt}_{tag}", kernel=_dw_kernel, signature=sig,
                                constexprs=dict(ACT=act, HAS_BIAS=has_bias, HAS_RES=has_res, SAVE_Z=save_z, BP=BP,
                                                BC=BC),
                                num_warps=4, num_stages=3, pinned=dt == "bf16" and tag == "relu_b"))
    return configs


AOT_CONFIGS = _aot_configs()
