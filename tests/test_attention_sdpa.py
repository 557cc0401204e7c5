"""bigkernels.ops.scaled_dot_product_attention stands in for torch's (same
signature and semantics, top-left causal), and patch_sdpa() routes torch's."""
import inspect

import pytest
import torch
import torch.nn.functional as F

import bigkernels
from bigkernels.composite.attention import TORCH_SDPA
from bigkernels.ops import scaled_dot_product_attention as sdpa


def _t(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_signature_is_torchs():
    ours = inspect.signature(sdpa)
    assert list(ours.parameters) == ["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale",
                                     "enable_gqa"]
    assert [p.default for p in ours.parameters.values()][3:] == [None, 0.0, False, None, False]


# (q shape, kv shape, mask shape or None, is_causal, enable_gqa, dtype)
CASES = [
    ((2, 4, 33, 16), (2, 4, 33, 16), None, True, False, torch.float32),
    ((2, 4, 10, 16), (2, 4, 47, 16), None, True, False, torch.float32),     # top-left, L < S
    ((1, 2, 50, 24), (1, 2, 20, 24), None, True, False, torch.float32),     # top-left, L > S
    ((2, 4, 30, 16), (2, 4, 30, 16), (30, 30), True, False, torch.float32),  # mask & causal combine
    ((2, 8, 17, 32), (2, 2, 29, 32), (2, 1, 17, 29), False, True, torch.float32),  # GQA, additive
    ((3, 21, 40), (3, 35, 40), (3, 21, 35), False, False, torch.float32),    # 3-D
    ((2, 4, 19, 64), (2, 4, 19, 64), None, True, False, torch.bfloat16),
    ((1, 4, 25, 48), (1, 2, 31, 48), (25, 31), True, True, torch.float16),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-causal{c[3]}-gqa{c[4]}-{c[5]}")
def test_matches_torch(case):
    qs, ks, ms, causal, gqa, dtype = case
    q, k, v = _t(*qs, dtype=dtype, seed=0), _t(*ks, dtype=dtype, seed=1), _t(*ks, dtype=dtype, seed=2)
    mask = None
    if ms is not None:
        mask = _t(*ms, seed=3) > -0.5 if len(ms) != 4 else _t(*ms, dtype=dtype, seed=3)
    expected = TORCH_SDPA(q.double(), k.double(), v.double(), attn_mask=None if mask is None else (
        mask if mask.dtype == torch.bool else mask.double()), is_causal=causal, enable_gqa=gqa)
    ours = sdpa(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=gqa, scale=0.3 if gqa else None)
    if gqa:
        expected = TORCH_SDPA(q.double(), k.double(), v.double(), attn_mask=None if mask is None else (
            mask if mask.dtype == torch.bool else mask.double()), is_causal=causal, enable_gqa=gqa, scale=0.3)
    theirs = TORCH_SDPA(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=gqa, scale=0.3 if gqa else None)
    assert ours.shape == expected.shape and ours.dtype == dtype
    err, terr = (ours.double() - expected).abs().max().item(), (theirs.double() - expected).abs().max().item()
    floor = {torch.float32: 2e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}[dtype]
    assert err <= 2 * terr + floor, (err, terr)


def test_unservable_calls_go_to_torch():
    q, k = _t(2, 3, 4, 5, 8), _t(2, 3, 4, 7, 8)  # 5-D
    torch.testing.assert_close(sdpa(q, k, k), TORCH_SDPA(q, k, k))
    q, k, v = _t(2, 4, 5, 8), _t(2, 4, 7, 8), _t(2, 4, 7, 6)  # Ev != E
    torch.testing.assert_close(sdpa(q, k, v), TORCH_SDPA(q, k, v))
    with pytest.raises(RuntimeError):  # GQA without enable_gqa: torch's own error
        sdpa(_t(1, 4, 5, 8), _t(1, 2, 5, 8), _t(1, 2, 5, 8))


def test_patch_sdpa_context_manager_and_handle():
    original = F.scaled_dot_product_attention
    with bigkernels.patch_sdpa():
        assert F.scaled_dot_product_attention is sdpa
        assert torch.nn.functional.scaled_dot_product_attention is sdpa
    assert F.scaled_dot_product_attention is original
    handle = bigkernels.patch_sdpa()
    try:
        assert F.scaled_dot_product_attention is sdpa
    finally:
        handle.undo()
    assert F.scaled_dot_product_attention is original
    handle.undo()  # idempotent
    assert F.scaled_dot_product_attention is original


def test_patched_torch_module_uses_our_attention(monkeypatch):
    """torch.nn.MultiheadAttention (need_weights=False, slow path) calls
    F.scaled_dot_product_attention: patched, our op serves it."""
    calls = []
    import bigkernels.ops.attention_sdpa as mod

    real = mod.attention
    monkeypatch.setattr(mod, "attention", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    x = _t(2, 9, 32)
    expected, _ = mha(x, x, x, need_weights=False)
    with bigkernels.patch_sdpa():
        ours, _ = mha(x, x, x, need_weights=False)
    assert calls, "the patched function was not called"
    torch.testing.assert_close(ours, expected, atol=2e-5, rtol=1e-5)


def test_backward_matches_torch():
    q, k, v = (_t(2, 4, 23, 16, seed=s).requires_grad_() for s in range(3))
    g = _t(2, 4, 23, 16, seed=9)
    ours = torch.autograd.grad(sdpa(q, k, v, is_causal=True), (q, k, v), g)
    theirs = torch.autograd.grad(TORCH_SDPA(q, k, v, is_causal=True), (q, k, v), g)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
