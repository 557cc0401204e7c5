"""attention: the C++ CPU kernel (and the torch backend) against the float64
reference with the tolerance rule, forward, lse and backward, over a covering
array of dtype x head dim x mask x GQA x causal x sequence lengths."""
import pytest
import torch

import bigkernels
from bigkernels.ops import attention
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend

F32, F16, BF16, F64 = torch.float32, torch.float16, torch.bfloat16, torch.float64

# (dtype, B, Hq, Hkv, Sq, Skv, D, causal, mask): pairwise-ish coverage of
# dtypes x head dims (incl. non powers of two) x GQA x masks x causal, with
# sequence lengths that are not multiples of the 64 x 128 tiles and Sq != Skv
# both ways (bottom-right causal; Sq > Skv leaves fully masked rows).
# float32 with Sq filling >= 3/4 of the 16-query vectors it takes (8 with AVX2)
# runs the lanes kernels (forward_lanes.cpp, backward_lanes.cpp), else the BLAS
# tiles; 37, 65 and 90 queries end on a block of 3, 1 and 2 vectors.
CASES = [
    (F32, 2, 4, 2, 37, 53, 40, True, "bool"),
    (F32, 2, 2, 2, 65, 65, 32, False, None),
    (F32, 1, 4, 2, 90, 90, 16, True, "additive"),
    (F32, 1, 2, 1, 5, 77, 48, False, "bool"),
    (F32, 1, 2, 2, 180, 70, 64, True, None),
    (F32, 2, 3, 1, 115, 200, 8, False, "additive"),
    (F32, 1, 2, 2, 250, 257, 256, False, "bool_bcast"),
    (F16, 2, 4, 4, 70, 70, 80, True, None),
    (F16, 1, 4, 1, 19, 140, 96, False, "bool"),
    (F16, 1, 2, 1, 150, 33, 112, True, "additive"),
    (BF16, 1, 2, 2, 64, 128, 160, False, None),
    (BF16, 2, 4, 2, 100, 45, 192, True, "bool_bcast"),
    (BF16, 1, 1, 1, 1, 300, 64, False, "additive_bcast"),
    (F64, 1, 4, 2, 77, 91, 24, True, "additive"),
    (F64, 2, 2, 1, 33, 33, 72, False, "bool"),
]


def _mask(kind, b, hq, sq, skv, gen):
    if kind is None:
        return None
    if kind == "bool":  # per batch and head, ~25 % masked
        return torch.rand(b, hq, sq, skv, generator=gen) > 0.25
    if kind == "bool_bcast":  # key padding: (B, 1, 1, Skv), last 10 keys of batch 0 masked
        m = torch.ones(b, 1, 1, skv, dtype=torch.bool)
        m[0, ..., -10:] = False
        return m
    if kind == "additive":
        m = torch.randn(b, 1, sq, skv, generator=gen, dtype=F64)
        m[..., :3] = float("-inf")
        return m
    if kind == "additive_bcast":
        return torch.randn(skv, generator=gen, dtype=F64)
    raise ValueError(kind)


def make_inputs(dtype, b, hq, hkv, sq, skv, d, mask_kind, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, s, d, generator=gen, dtype=F64) for h, s in ((hq, sq), (hkv, skv), (hkv, skv)))
    mask = _mask(mask_kind, b, hq, sq, skv, gen)
    grad = torch.randn(b, hq, sq, d, generator=gen, dtype=F64)
    return q, k, v, mask, grad


def run(backend, q, k, v, mask, causal, dtype, grad, **kw):
    """out, lse and (dq, dk, dv) of `backend` in `dtype`, the loss using lse too."""
    leaves = [t.detach().to(dtype).requires_grad_() for t in (q, k, v)]
    m = mask if mask is None or mask.dtype == torch.bool else mask.to(dtype)
    with bigkernels.use_backend(backend):
        out, lse = attention(*leaves, causal=causal, attn_mask=m, return_lse=True, **kw)
    g_lse = torch.where(torch.isfinite(lse), torch.full_like(lse, 0.5), torch.zeros_like(lse))
    grads = torch.autograd.grad([out, lse], leaves, [grad.to(dtype), g_lse])
    return out, lse, grads


def check_against_reference(backend, case):
    dtype, b, hq, hkv, sq, skv, d, causal, mask_kind = case
    q, k, v, mask, grad = make_inputs(dtype, b, hq, hkv, sq, skv, d, mask_kind)
    ours = run(backend, q, k, v, mask, causal, dtype, grad)
    ref = run("reference", q, k, v, mask, causal, F64, grad)
    theirs = run("torch", q, k, v, mask, causal, dtype, grad)
    assert ours[0].dtype == dtype and ours[0].shape == q.shape
    assert_close(ours[0], ref[0], theirs[0], name="out")
    # lse: -inf exactly where the reference has no visible key
    assert torch.equal(torch.isneginf(ours[1]), torch.isneginf(ref[1]))
    fin = torch.isfinite(ref[1])
    assert_close(ours[1][fin], ref[1][fin], theirs[1][fin], name="lse", scale=max(1.0, ref[1][fin].abs().max()))
    for name, go, gr, gt in zip(("dq", "dk", "dv"), ours[2], ref[2], theirs[2]):
        assert not torch.isnan(go).any(), name
        assert_close(go, gr, gt, name=name, scale=max(1.0, gr.abs().max().item()))


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)).replace("torch.", ""))
def test_cpu_kernel_matches_reference(case):
    ensure_backend("cpu")
    check_against_reference("cpu", case)


# Interpreted Triton: small shapes (pinned 16 x 16 tiles), still ragged.
TRITON_CASES = [
    (F32, 2, 4, 2, 21, 37, 40, True, "bool"),
    (F32, 1, 2, 1, 33, 18, 24, False, "additive"),
    (F16, 1, 2, 2, 30, 30, 80, True, None),
    (F16, 2, 2, 1, 17, 40, 16, False, "bool_bcast"),
    (BF16, 1, 4, 2, 40, 19, 32, True, "additive"),
    (BF16, 1, 2, 2, 1, 45, 64, False, "additive_bcast"),
]


@pytest.mark.triton
@pytest.mark.parametrize("case", TRITON_CASES, ids=lambda c: "-".join(map(str, c)).replace("torch.", ""))
def test_triton_kernels_match_reference(case):
    ensure_backend("triton")
    check_against_reference("triton", case)


@pytest.mark.parametrize("case", CASES[::3], ids=lambda c: "-".join(map(str, c)).replace("torch.", ""))
def test_torch_backend_matches_reference(case):
    check_against_reference("torch", case)


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_fully_masked_rows_are_zero_with_zero_gradient(backend):
    ensure_backend(backend)
    q, k, v, _, grad = make_inputs(F32, 1, 2, 2, 12, 20, 16, None)
    mask = torch.ones(1, 2, 12, 20, dtype=torch.bool)
    mask[0, 1, 3] = False  # one row sees nothing
    out, lse, (dq, dk, dv) = run(backend, q, k, v, mask, False, F32, grad)
    assert torch.all(out[0, 1, 3] == 0) and torch.all(dq[0, 1, 3] == 0)
    assert not any(torch.isnan(t).any() for t in (out, dq, dk, dv))
    # additive -inf everywhere in a row, and causal with Sq > Skv
    add = torch.zeros(12, 20, dtype=F32)
    add[5] = float("-inf")
    out2, _, (dq2, _, _) = run(backend, q, k, v, add, False, F32, grad)
    assert torch.all(out2[..., 5, :] == 0) and torch.all(dq2[..., 5, :] == 0)
    out3, _, g3 = run(backend, k[:, :, :20], q[:, :, :12], q[:, :, :12], None, True, F32, grad[:, :, :1].expand(1, 2, 20, 16))
    assert torch.all(out3[:, :, :8] == 0) and not any(torch.isnan(t).any() for t in g3)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_late_first_visible_key_with_very_negative_scores(dtype):
    """Queries whose first key blocks are all masked, then see only scores near
    -300: the online softmax must keep its running max at -inf until a key is
    visible (a stand-in max of 0 would underflow every exp to 0)."""
    ensure_backend("cpu")
    q, k, v, _, grad = make_inputs(dtype, 1, 2, 1, 110, 200, 24, None, seed=5)
    mask = torch.full((110, 200), -300.0, dtype=F64)
    mask[:, :130] = float("-inf")  # two whole 64-key blocks and part of a third
    mask[::2, :150] = float("-inf")
    ours = run("cpu", q, k, v, mask, False, dtype, grad)
    ref = run("reference", q, k, v, mask, False, F64, grad)
    theirs = run("torch", q, k, v, mask, False, dtype, grad)
    assert_close(ours[0], ref[0], theirs[0], name="out")
    assert_close(ours[1], ref[1], theirs[1], name="lse", scale=ref[1].abs().max())
    for name, go, gr, gt in zip(("dq", "dk", "dv"), ours[2], ref[2], theirs[2]):
        assert_close(go, gr, gt, name=name, scale=max(1.0, gr.abs().max().item()))


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_float32_matches_reference(causal):
    """The float32 kernels (queries along the vector lanes) with dropout: the
    same Philox mask as the float64 reference, several query and key blocks,
    GQA, a mask, and lengths that are not block multiples."""
    ensure_backend("cpu")
    q, k, v, mask, grad = make_inputs(F32, 2, 4, 2, 115, 140, 40, "bool", seed=7)
    results = []
    for backend, dtype in (("cpu", F32), ("reference", F64), ("torch", F32)):
        torch.manual_seed(11)
        results.append(run(backend, q, k, v, mask, causal, dtype, grad, dropout_p=0.25))
    ours, ref, theirs = results
    assert_close(ours[0], ref[0], theirs[0], name="out")
    for name, go, gr, gt in zip(("dq", "dk", "dv"), ours[2], ref[2], theirs[2]):
        assert_close(go, gr, gt, name=name, scale=max(1.0, gr.abs().max().item()))


@pytest.mark.parametrize("threads", [2, 4])
@pytest.mark.parametrize("dtype,hq,sq,causal,mask_kind,dropout", [
    (F32, 1, 1, False, None, 0.0),
    (F32, 2, 3, True, "bool", 0.0),
    (F64, 1, 3, True, "additive", 0.2),
    (F64, 2, 1, False, None, 0.3),
])
def test_split_keys_when_query_blocks_are_fewer_than_threads(threads, dtype, hq, sq, causal, mask_kind, dropout):
    """Decoding shapes (a few queries, batch 1) split the keys across threads
    and merge the splits by their maxima: the same answer as the reference,
    forward and backward, with masks, causal and dropout (its mask is indexed
    by position, so splitting does not change it)."""
    ensure_backend("cpu")
    q, k, v, mask, grad = make_inputs(dtype, 1, hq, 1, sq, 300, 24, mask_kind, seed=9)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results = []
        for backend, dt in (("cpu", dtype), ("reference", F64), ("torch", dtype)):
            torch.manual_seed(3)
            results.append(run(backend, q, k, v, mask, causal, dt, grad, dropout_p=dropout))
    finally:
        torch.set_num_threads(previous)
    ours, ref, theirs = results
    assert_close(ours[0], ref[0], theirs[0], name="out")
    fin = torch.isfinite(ref[1])
    assert torch.equal(torch.isneginf(ours[1]), torch.isneginf(ref[1]))
    assert_close(ours[1][fin], ref[1][fin], theirs[1][fin], name="lse", scale=max(1.0, ref[1][fin].abs().max()))
    for name, go, gr, gt in zip(("dq", "dk", "dv"), ours[2], ref[2], theirs[2]):
        assert_close(go, gr, gt, name=name, scale=max(1.0, gr.abs().max().item()))


def test_bottom_right_causal_is_documented_convention():
    """Sq < Skv: query i sees keys j <= i + Skv - Sq (decoding: the last
    query sees every key), unlike SDPA's top-left is_causal."""
    q, k, v, _, _ = make_inputs(F64, 1, 1, 1, 3, 8, 8, None)
    out = attention(q, k, v, causal=True)
    full = attention(q[:, :, -1:], k, v)  # last query: every key
    torch.testing.assert_close(out[:, :, -1:], full)
    first = attention(q[:, :, :1], k[:, :, :6], v[:, :, :6])  # first query: keys 0..5
    torch.testing.assert_close(out[:, :, :1], first)


def test_strided_inputs_read_in_place():
    """(B, S, H, D) tensors transposed to (B, H, S, D), as attention layers make them."""
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, 50, 4, 32, generator=gen).transpose(1, 2)
    k = torch.randn(2, 70, 2, 32, generator=gen).transpose(1, 2)
    v = torch.randn(2, 70, 2, 32, generator=gen).transpose(1, 2)
    with bigkernels.use_backend("cpu"):
        out = attention(q, k, v, causal=True)
    with bigkernels.use_backend("reference"):
        ref = attention(q.double(), k.double(), v.double(), causal=True)
    torch.testing.assert_close(out.double(), ref, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_float64(causal):
    ensure_backend("cpu")
    q, k, v, mask, _ = make_inputs(F64, 1, 2, 1, 9, 13, 8, "additive")

    def f(q, k, v):
        with bigkernels.use_backend("cpu"):
            out, lse = attention(q, k, v, causal=causal, attn_mask=mask, return_lse=True)
        return out, torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))

    torch.autograd.gradcheck(f, [t.requires_grad_() for t in (q, k, v)])
