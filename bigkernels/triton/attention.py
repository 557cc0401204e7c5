"""Triton attention, FlashAttention-2 style (semantics: bigkernels/reference/attention.py).

Forward: one program per (query block, batch * head); K/V blocks streamed
through an online softmax in base 2 (scores pre-multiplied by scale*log2 e).
Causal runs in two stages: key blocks that every row of the query block sees
(no mask code at all), then the blocks on the diagonal, bottom-right aligned,
with the causal, sequence-end and user masks. Without causal, the first stage
covers all whole key blocks and the second the ragged tail.
Backward (no atomics, deterministic): delta = rowsum(dO * O) - dLSE in torch,
then one kernel per key block for dK/dV (looping over the GQA group's query
heads and the visible query blocks) and one per query block for dQ.
Masks are read through their broadcast strides; any head dim <= 256 is padded
to a power of two inside the kernels (loads masked)."""
import triton
import triton.language as tl

from ._op import interpreted

LOG2E = 1.4426950408889634
MAX_HEAD_DIM = 256


def _fwd_configs():
    if interpreted():  # pinned: the interpreter runs every config it is given
        return [triton.Config({"BLOCK_M": 16, "BLOCK_N": 16}, num_warps=4, num_stages=1)]
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
            for bm in (64, 128) for bn in (32, 64, 128) for w in (4, 8) for s in (2, 3)
            if not (w == 8 and bm * bn < 128 * 128) and bn <= bm]


def _fwd_smem_bytes(config, block_d, elem_bytes):
    """Shared memory of a forward config as Triton lays out fp32 tiles: Q, the
    pipelined K/V stages and the P tile (within 0.1 % of the AOT-measured
    164,352 B at D=128, 128 x 64, 2 stages, and 721,408 B at D=256, 128 x 128,
    3 stages). 16-bit tiles measure well below it (49-66 KB where this gives
    66-164 KB), so it only ever prunes fp32 configs."""
    bm, bn, stages = config.kwargs["BLOCK_M"], config.kwargs["BLOCK_N"], config.num_stages
    return elem_bytes * (bm * block_d + (stages - 1) * 2 * bn * block_d) + 4 * bm * bn


def _prune_fwd_configs(configs, named_args, **kwargs):
    """Drops the configs whose fp32 tiles exceed the device's shared memory (the
    autotuner would only fail to launch them); keeps the smallest otherwise."""
    args = {**named_args, **kwargs}
    q = args.get("Q")
    if q is None or q.element_size() < 4 or not hasattr(q, "device") or q.device.type != "cuda":
        return configs
    limit = triton.runtime.driver.active.utils.get_device_properties(q.device.index)["max_shared_mem"]
    fits = [c for c in configs if _fwd_smem_bytes(c, args["BLOCK_D"], q.element_size()) <= limit]
    return fits or [min(configs, key=lambda c: _fwd_smem_bytes(c, args["BLOCK_D"], q.element_size()))]


def _bwd_block(d):
    return 16 if interpreted() else (64 if d <= 64 else 32)


@triton.jit
def _mask_scores(s, offs_m, cols, mask_ptr, ms_i, ms_j, Sq, Skv,
                 CAUSAL: tl.constexpr, MASK_KIND: tl.constexpr, EDGE: tl.constexpr):
    """Applies the user mask (always) and, on edge tiles, the sequence end and
    the causal limit to base-2 scores s (rows offs_m, keys cols)."""
    if MASK_KIND == 1:
        keep = tl.load(mask_ptr + offs_m[:, None] * ms_i + cols[None, :] * ms_j,
                       mask=(offs_m[:, None] < Sq) & (cols[None, :] < Skv), other=0)
        s = tl.where(keep != 0, s, float("-inf"))
    if MASK_KIND == 2:
        add = tl.load(mask_ptr + offs_m[:, None] * ms_i + cols[None, :] * ms_j,
                      mask=(offs_m[:, None] < Sq) & (cols[None, :] < Skv), other=0.0)
        s = s + add * 1.4426950408889634
    if EDGE:
        ok = cols[None, :] < Skv
        if CAUSAL:
            ok = ok & (cols[None, :] <= offs_m[:, None] + (Skv - Sq))
        s = tl.where(ok, s, float("-inf"))
    return s


@triton.jit
def _dropout_scale(seed, offset, bh, offs_m, cols, Sq, Skv, threshold, keep_scale):
    """1 / (1 - p) where the shared Philox keeps element (b*Hq + h, i, j), else 0
    (bigkernels/ops/philox.py: counter = offset + flat index, integer test)."""
    index = offset + (bh.to(tl.int64) * Sq + offs_m[:, None]) * Skv + cols[None, :]
    c0 = (index & 0xFFFFFFFF).to(tl.uint32)
    c1 = (index >> 32).to(tl.uint32)
    zero = tl.zeros_like(c0)
    word, _, _, _ = tl.philox(seed, c0, c1, zero, zero)
    x = word.to(tl.int32, bitcast=True)
    folded = tl.where(x < 0, -x - 1, x)
    return tl.where(folded.to(tl.int64) >= threshold, keep_scale, 0.0)


@triton.jit
def _fwd_stage(acc, m_i, l_i, q, K, V, sk_n, sv_n, offs_m, offs_n, offs_d, lo, hi, mask_ptr, ms_i, ms_j,
               Sq, Skv, D, qk_scale, seed, offset, bh, threshold, keep_scale, CAUSAL: tl.constexpr,
               MASK_KIND: tl.constexpr, EDGE: tl.constexpr, BLOCK_N: tl.constexpr, PREC: tl.constexpr,
               DROPOUT: tl.constexpr):
    for n0 in range(lo, hi, BLOCK_N):
        cols = n0 + offs_n
        kt = tl.load(K + cols[None, :] * sk_n + offs_d[:, None], mask=(cols[None, :] < Skv) & (offs_d[:, None] < D),
                     other=0.0)
        s = tl.dot(q, kt, input_precision=PREC) * qk_scale
        s = _mask_scores(s, offs_m, cols, mask_ptr, ms_i, ms_j, Sq, Skv, CAUSAL, MASK_KIND, EDGE)
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a row with nothing visible yet
        p = tl.math.exp2(s - m_safe[:, None])
        alpha = tl.math.exp2(m_i - m_safe)
        v = tl.load(V + (n0 + offs_n)[:, None] * sv_n + offs_d[None, :],
                    mask=((n0 + offs_n)[:, None] < Skv) & (offs_d[None, :] < D), other=0.0)
        l_i = l_i * alpha + tl.sum(p, 1)  # the normaliser sums the undropped P
        if DROPOUT:
            p = p * _dropout_scale(seed, offset, bh, offs_m, cols, Sq, Skv, threshold, keep_scale)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PREC)
        m_i = m_new
    return acc, m_i, l_i


@triton.jit
def _seq(CuQ, CuK, b, Sq, Skv, VARLEN: tl.constexpr):
    """(first query row, first key row, Sq, Skv) of sequence b: packed
    offsets under VARLEN (batch strides are 0 there), else the dense sizes."""
    if VARLEN:
        q0 = tl.load(CuQ + b)
        k0 = tl.load(CuK + b)
        return q0, k0, (tl.load(CuQ + b + 1) - q0).to(tl.int32), (tl.load(CuK + b + 1) - k0).to(tl.int32)
    return tl.zeros([], tl.int64), tl.zeros([], tl.int64), Sq, Skv


@triton.autotune(configs=_fwd_configs(), key=["BLOCK_D", "CAUSAL", "MASK_KIND"],
                 prune_configs_by={"early_config_prune": _prune_fwd_configs})
@triton.jit
def _attn_fwd(Q, K, V, O, LSE, Mask, sq_b, sq_h, sq_s, sk_b, sk_h, sk_s, sv_b, sv_h, sv_s, so_b, so_h, so_s,
              ms_b, ms_h, ms_i, ms_j, Hq, group, Sq_max, Skv_max, D, qk_scale, seed, offset, threshold, keep_scale,
              CuQ, CuK, total_q, CAUSAL: tl.constexpr, MASK_KIND: tl.constexpr, BLOCK_D: tl.constexpr,
              PREC: tl.constexpr, DROPOUT: tl.constexpr, VARLEN: tl.constexpr, BLOCK_M: tl.constexpr,
              BLOCK_N: tl.constexpr):
    pid_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // Hq
    h = bh % Hq
    hk = h // group
    q_start, k_start, Sq, Skv = _seq(CuQ, CuK, b, Sq_max, Skv_max, VARLEN)
    m0 = pid_m * BLOCK_M
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q = tl.load(Q + b.to(tl.int64) * sq_b + h * sq_h + (q_start + offs_m[:, None]) * sq_s + offs_d[None, :],
                mask=(offs_m[:, None] < Sq) & (offs_d[None, :] < D), other=0.0)
    Kb = K + b.to(tl.int64) * sk_b + hk * sk_h + k_start * sk_s
    Vb = V + b.to(tl.int64) * sv_b + hk * sv_h + k_start * sv_s
    mask_ptr = Mask + b.to(tl.int64) * ms_b + h * ms_h
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    if CAUSAL:
        # keys every row of the block sees: j < m0 + 1 + Skv - Sq (the first row's limit)
        full = tl.minimum(tl.maximum(m0 + 1 + Skv - Sq, 0), Skv) // BLOCK_N * BLOCK_N
        end = tl.minimum(tl.maximum(m0 + BLOCK_M + Skv - Sq, 0), Skv)
    else:
        full = Skv // BLOCK_N * BLOCK_N
        end = Skv
    acc, m_i, l_i = _fwd_stage(acc, m_i, l_i, q, Kb, Vb, sk_s, sv_s, offs_m, offs_n, offs_d, 0, full, mask_ptr,
                               ms_i, ms_j, Sq, Skv, D, qk_scale, seed, offset, bh, threshold, keep_scale,
                               CAUSAL, MASK_KIND, False, BLOCK_N, PREC, DROPOUT)
    acc, m_i, l_i = _fwd_stage(acc, m_i, l_i, q, Kb, Vb, sk_s, sv_s, offs_m, offs_n, offs_d, full, end, mask_ptr,
                               ms_i, ms_j, Sq, Skv, D, qk_scale, seed, offset, bh, threshold, keep_scale,
                               CAUSAL, MASK_KIND, True, BLOCK_N, PREC, DROPOUT)
    seen = l_i > 0
    out = acc / tl.where(seen, l_i, 1.0)[:, None]
    tl.store(O + b.to(tl.int64) * so_b + h * so_h + (q_start + offs_m[:, None]) * so_s + offs_d[None, :],
             out.to(O.dtype.element_ty), mask=(offs_m[:, None] < Sq) & (offs_d[None, :] < D))
    lse = tl.where(seen, (m_i + tl.math.log2(tl.where(seen, l_i, 1.0))) * 0.6931471805599453, float("-inf"))
    if VARLEN:  # lse (Hq, total_q)
        lse_ptr = LSE + h.to(tl.int64) * total_q + q_start
    else:  # lse (B, Hq, Sq)
        lse_ptr = LSE + bh.to(tl.int64) * Sq
    tl.store(lse_ptr + offs_m, lse, mask=offs_m < Sq)


@triton.jit
def _bwd_tile(q, do, k, v, lse2, delta, offs_m, cols, mask_ptr, ms_i, ms_j, Sq, Skv, qk_scale, seed, offset, bh,
              threshold, keep_scale, CAUSAL: tl.constexpr, MASK_KIND: tl.constexpr, PREC: tl.constexpr,
              DROPOUT: tl.constexpr):
    """(P Z, dS) of one (query block, key block) tile: Z the dropout scale
    (1 without dropout), dS = P (Z dO V^T - delta)."""
    s = tl.dot(q, tl.trans(k), input_precision=PREC) * qk_scale
    s = _mask_scores(s, offs_m, cols, mask_ptr, ms_i, ms_j, Sq, Skv, CAUSAL, MASK_KIND, True)
    p = tl.math.exp2(s - lse2[:, None])  # lse2 = +inf on rows that saw nothing: P = 0
    dp = tl.dot(do, tl.trans(v), input_precision=PREC)
    if DROPOUT:
        z = _dropout_scale(seed, offset, bh, offs_m, cols, Sq, Skv, threshold, keep_scale)
        return p * z, p * (dp * z - delta[:, None])
    return p, p * (dp - delta[:, None])


@triton.jit
def _attn_bwd_dkdv(Q, K, V, DO, LSE, Delta, DK, DV, Mask, sq_b, sq_h, sq_s, sk_b, sk_h, sk_s, sv_b, sv_h, sv_s,
                   sd_b, sd_h, sd_s, ms_b, ms_h, ms_i, ms_j, Hq, Hkv, group, Sq_max, Skv_max, D, scale, qk_scale,
                   seed, offset, threshold, keep_scale, CuQ, CuK, total_q, sg_b, sg_h, sg_s,
                   CAUSAL: tl.constexpr, MASK_KIND: tl.constexpr, BLOCK_D: tl.constexpr, PREC: tl.constexpr,
                   DROPOUT: tl.constexpr, VARLEN: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    n0 = tl.program_id(0) * BLOCK_N
    bh = tl.program_id(1)
    b = bh // Hkv
    hk = bh % Hkv
    q_start, k_start, Sq, Skv = _seq(CuQ, CuK, b, Sq_max, Skv_max, VARLEN)
    cols = n0 + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    kv_mask = (cols[:, None] < Skv) & (offs_d[None, :] < D)
    k = tl.load(K + b.to(tl.int64) * sk_b + hk * sk_h + (k_start + cols[:, None]) * sk_s + offs_d[None, :], mask=kv_mask,
                other=0.0)
    v = tl.load(V + b.to(tl.int64) * sv_b + hk * sv_h + (k_start + cols[:, None]) * sv_s + offs_d[None, :], mask=kv_mask,
                other=0.0)
    dk = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], tl.float32)
    start = 0
    if CAUSAL:  # the first query that sees key n0: i >= n0 - (Skv - Sq)
        start = tl.maximum(n0 - (Skv - Sq), 0) // BLOCK_M * BLOCK_M
    for h in range(hk * group, (hk + 1) * group):
        mask_ptr = Mask + b.to(tl.int64) * ms_b + h * ms_h
        if VARLEN:
            row0 = (q_start * 0 + h) * total_q + q_start  # int64 (h is a plain int here)
        else:
            row0 = (b * Hq + h).to(tl.int64) * Sq
        for m0 in range(start, Sq, BLOCK_M):
            offs_m = m0 + tl.arange(0, BLOCK_M)
            rmask = (offs_m[:, None] < Sq) & (offs_d[None, :] < D)
            q = tl.load(Q + b.to(tl.int64) * sq_b + h * sq_h + (q_start + offs_m[:, None]) * sq_s + offs_d[None, :],
                        mask=rmask, other=0.0)
            do = tl.load(DO + b.to(tl.int64) * sd_b + h * sd_h + (q_start + offs_m[:, None]) * sd_s + offs_d[None, :],
                         mask=rmask, other=0.0)
            lse = tl.load(LSE + row0 + offs_m, mask=offs_m < Sq, other=float("-inf"))
            lse2 = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)
            delta = tl.load(Delta + row0 + offs_m, mask=offs_m < Sq, other=0.0)
            p, ds = _bwd_tile(q, do, k, v, lse2, delta, offs_m, cols, mask_ptr, ms_i, ms_j, Sq, Skv, qk_scale,
                              seed, offset, b * Hq + h, threshold, keep_scale, CAUSAL, MASK_KIND, PREC, DROPOUT)
            dv += tl.dot(tl.trans(p).to(do.dtype), do, input_precision=PREC)
            dk += tl.dot(tl.trans(ds).to(q.dtype), q, input_precision=PREC)
    # dK/dV share one layout (sg_*): k's shape, contiguous.
    out = b.to(tl.int64) * sg_b + hk * sg_h + (k_start + cols[:, None]) * sg_s + offs_d[None, :]
    tl.store(DK + out, (dk * scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + out, dv.to(DV.dtype.element_ty), mask=kv_mask)


@triton.jit
def _attn_bwd_dq(Q, K, V, DO, LSE, Delta, DQ, Mask, sq_b, sq_h, sq_s, sk_b, sk_h, sk_s, sv_b, sv_h, sv_s,
                 sd_b, sd_h, sd_s, ms_b, ms_h, ms_i, ms_j, Hq, group, Sq_max, Skv_max, D, scale, qk_scale,
                 seed, offset, threshold, keep_scale, CuQ, CuK, total_q, sg_b, sg_h, sg_s,
                 CAUSAL: tl.constexpr, MASK_KIND: tl.constexpr, BLOCK_D: tl.constexpr, PREC: tl.constexpr,
                 DROPOUT: tl.constexpr, VARLEN: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    m0 = tl.program_id(0) * BLOCK_M
    bh = tl.program_id(1)
    b = bh // Hq
    h = bh % Hq
    hk = h // group
    q_start, k_start, Sq, Skv = _seq(CuQ, CuK, b, Sq_max, Skv_max, VARLEN)
    offs_m = m0 + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    rmask = (offs_m[:, None] < Sq) & (offs_d[None, :] < D)
    q = tl.load(Q + b.to(tl.int64) * sq_b + h * sq_h + (q_start + offs_m[:, None]) * sq_s + offs_d[None, :], mask=rmask,
                other=0.0)
    do = tl.load(DO + b.to(tl.int64) * sd_b + h * sd_h + (q_start + offs_m[:, None]) * sd_s + offs_d[None, :], mask=rmask,
                 other=0.0)
    if VARLEN:
        row0 = h.to(tl.int64) * total_q + q_start
    else:
        row0 = bh.to(tl.int64) * Sq
    lse = tl.load(LSE + row0 + offs_m, mask=offs_m < Sq, other=float("-inf"))
    lse2 = tl.where(lse == float("-inf"), float("inf"), lse * 1.4426950408889634)
    delta = tl.load(Delta + row0 + offs_m, mask=offs_m < Sq, other=0.0)
    mask_ptr = Mask + b.to(tl.int64) * ms_b + h * ms_h
    end = Skv
    if CAUSAL:
        end = tl.minimum(tl.maximum(m0 + BLOCK_M + Skv - Sq, 0), Skv)
    dq = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for n0 in range(0, end, BLOCK_N):
        cols = n0 + tl.arange(0, BLOCK_N)
        kv_mask = (cols[:, None] < Skv) & (offs_d[None, :] < D)
        k = tl.load(K + b.to(tl.int64) * sk_b + hk * sk_h + (k_start + cols[:, None]) * sk_s + offs_d[None, :], mask=kv_mask,
                    other=0.0)
        v = tl.load(V + b.to(tl.int64) * sv_b + hk * sv_h + (k_start + cols[:, None]) * sv_s + offs_d[None, :], mask=kv_mask,
                    other=0.0)
        p, ds = _bwd_tile(q, do, k, v, lse2, delta, offs_m, cols, mask_ptr, ms_i, ms_j, Sq, Skv, qk_scale,
                          seed, offset, bh, threshold, keep_scale, CAUSAL, MASK_KIND, PREC, DROPOUT)
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PREC)
    # dQ: q's shape, contiguous (sg_*).
    tl.store(DQ + b.to(tl.int64) * sg_b + h * sg_h + (q_start + offs_m[:, None]) * sg_s + offs_d[None, :],
             (dq * scale).to(DQ.dtype.element_ty),
             mask=rmask)


# AOT configs (bigkernels/aot): the kernels as bigkernels/triton/attention_ops.py
# and attention_decode.py launch them on a GPU (PREC "ieee": torch's TF32 switch
# is off by default; num_stages 2 for backward and decode; BLOCK_D = the head
# dim padded to a power of two, >= 16). The forward is autotuned: the table
# carries one mid-size config (128 x 64, 4 warps, 2 stages) for every dtype
# (causal), bf16 without causal, with masks, varlen and dropout, and the largest
# autotune entry (128 x 128, 8 warps, 3 stages) at bf16 D=128, and at fp32
# D=256 the one config that fits an A100 (the others are pruned by
# _prune_fwd_configs: 128 x 128 x 3 stages there needs 721 KB). Pinned (CI): bf16, causal, D=128, one per kernel.
def _aot_configs():
    from triton.runtime.autotuner import Autotuner

    from ._op import aot_signature

    configs = []

    def types(kernel, dt, mask_kind=0, varlen=False, dropout=False, extra=()):
        t = {name: "*" + dt for name in ("Q", "K", "V", "O", "DO", "DK", "DV", "DQ")}
        t.update(LSE="*fp32", Delta="*fp32", qk_scale="fp32", keep_scale="fp32", scale="fp32")
        t["Mask"] = {0: "*" + dt, 1: "*u8", 2: "*fp32"}[mask_kind]  # no mask: q is passed
        t["CuQ"] = t["CuK"] = "*i64" if varlen else "*" + dt  # the op hands the kernels int64 offsets
        if dropout:
            t["seed"] = t["offset"] = "i64"
        t.update(extra)
        sig = aot_signature(kernel, {}, default="i32")
        return aot_signature(kernel, {k: v for k, v in t.items() if k in sig})

    def add(name, kernel, dt, d, causal, bm, bn, warps, stages, mask_kind=0, varlen=False, dropout=False,
            pinned=False):
        configs.append(dict(
            name=name, kernel=kernel.fn if isinstance(kernel, Autotuner) else kernel,  # autotuned: its JITFunction
            signature=types(kernel, dt, mask_kind, varlen, dropout),
            constexprs=dict(CAUSAL=causal, MASK_KIND=mask_kind, BLOCK_D=d, PREC="ieee", DROPOUT=dropout,
                            VARLEN=varlen, BLOCK_M=bm, BLOCK_N=bn),
            aligned=[k for k, v in types(kernel, dt, mask_kind, varlen, dropout).items()
                     if v.startswith("*") and k != "Mask"],
            num_warps=warps, num_stages=stages, pinned=pinned))

    for dt in ("fp16", "bf16", "fp32"):
        add(f"attn_fwd_{dt}_d128_causal", _attn_fwd, dt, 128, True, 128, 64, 4, 2, pinned=dt == "bf16")
    add("attn_fwd_bf16_d128", _attn_fwd, "bf16", 128, False, 128, 64, 4, 2)
    add("attn_fwd_bf16_d64_causal", _attn_fwd, "bf16", 64, True, 128, 64, 4, 2)
    add("attn_fwd_bf16_d128_boolmask", _attn_fwd, "bf16", 128, False, 128, 64, 4, 2, mask_kind=1)
    add("attn_fwd_bf16_d128_addmask", _attn_fwd, "bf16", 128, False, 128, 64, 4, 2, mask_kind=2)
    add("attn_fwd_bf16_d128_varlen_causal", _attn_fwd, "bf16", 128, True, 128, 64, 4, 2, varlen=True)
    add("attn_fwd_bf16_d128_dropout", _attn_fwd, "bf16", 128, False, 128, 64, 4, 2, dropout=True)
    add("attn_fwd_bf16_d128_bm128_bn128_w8_s3", _attn_fwd, "bf16", 128, False, 128, 128, 8, 3)
    # fp32 D=256: the one config the smem pruning keeps on sm_80 (64 x 32, 2 stages: 139 KB)
    add("attn_fwd_fp32_d256_bm64_bn32_w4_s2", _attn_fwd, "fp32", 256, False, 64, 32, 4, 2)
    for kernel, tag in ((_attn_bwd_dkdv, "dkdv"), (_attn_bwd_dq, "dq")):
        for dt in ("fp16", "bf16", "fp32"):
            add(f"attn_bwd_{tag}_{dt}_d128_causal", kernel, dt, 128, True, 32, 32, 4, 2, pinned=dt == "bf16")
        add(f"attn_bwd_{tag}_bf16_d64", kernel, "bf16", 64, False, 64, 64, 4, 2)
        add(f"attn_bwd_{tag}_bf16_d128_varlen_causal", kernel, "bf16", 128, True, 32, 32, 4, 2, varlen=True)
    return configs


AOT_CONFIGS = _aot_configs()
