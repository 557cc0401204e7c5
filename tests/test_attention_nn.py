"""bigkernels.nn attention modules against torch's, sharing state_dicts."""
import pytest
import torch

import bigkernels.nn as bnn

E, H = 32, 4


def _x(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _pair(**kw):
    torch.manual_seed(0)
    ref = torch.nn.MultiheadAttention(E, H, **kw)
    ours = bnn.MultiheadAttention(E, H, **kw)
    ours.load_state_dict(ref.state_dict())
    return ref, ours


# (constructor kwargs, L, S, mask kinds, is_causal)
CASES = [
    (dict(batch_first=True), 9, 9, ("attn_bool",), True),
    (dict(), 7, 11, ("kpm_bool",), False),
    (dict(batch_first=True, kdim=24, vdim=20), 6, 13, ("attn_float", "kpm_bool"), False),
    (dict(add_bias_kv=True), 8, 8, ("attn_bool3d",), False),
    (dict(add_zero_attn=True, batch_first=True), 5, 12, ("kpm_float",), False),
    (dict(bias=False, add_bias_kv=True, add_zero_attn=True), 6, 6, ("attn_bool", "kpm_bool"), False),
]


def _masks(kinds, n, l, s):
    # bias_k/zero_attn extend S inside the module; masks are given for the user's S.
    gen = torch.Generator().manual_seed(5)
    out = {}
    if "attn_bool" in kinds:
        out["attn_mask"] = torch.ones(l, s, dtype=torch.bool).triu(1 + s - l)
    if "attn_bool3d" in kinds:
        out["attn_mask"] = torch.rand(n * H, l, s, generator=gen) > 0.8
    if "attn_float" in kinds:
        out["attn_mask"] = torch.randn(l, s, generator=gen)
    if "kpm_bool" in kinds:
        kpm = torch.zeros(n, s, dtype=torch.bool)
        kpm[0, -3:] = True
        out["key_padding_mask"] = kpm
    if "kpm_float" in kinds:
        out["key_padding_mask"] = torch.randn(n, s, generator=gen)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(sorted(c[0])) + "-" + "-".join(c[3]))
def test_multihead_attention_matches_torch(case):
    kw, l, s, kinds, causal = case
    ref, ours = _pair(dropout=0.0, **kw)
    n = 3
    bf = kw.get("batch_first", False)
    shape = (lambda t, e: (n, t, e) if bf else (t, n, e))
    q = _x(*shape(l, E), seed=1).requires_grad_()
    k = _x(*shape(s, kw.get("kdim", E)), seed=2)
    v = _x(*shape(s, kw.get("vdim", E)), seed=3)
    masks = _masks(kinds, n, l, s)
    expected, _ = ref(q, k, v, need_weights=False, is_causal=causal, **masks)
    got, w = ours(q, k, v, need_weights=False, is_causal=causal, **masks)
    assert w is None
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    g = _x(*got.shape, seed=4)
    (gq_ref,) = torch.autograd.grad(expected, q, g)
    (gq,) = torch.autograd.grad(got, q, g)
    torch.testing.assert_close(gq, gq_ref, atol=2e-5, rtol=1e-4)
    # parameter gradients too (in_proj, out_proj, bias_k...)
    for (name, p_ref), (_, p) in zip(ref.named_parameters(), ours.named_parameters()):
        a = torch.autograd.grad(ref(q, k, v, need_weights=False, is_causal=causal, **masks)[0], p_ref, g)[0]
        b = torch.autograd.grad(ours(q, k, v, need_weights=False, is_causal=causal, **masks)[0], p, g)[0]
        torch.testing.assert_close(b, a, atol=5e-5, rtol=1e-4, msg=name)


def test_need_weights_and_unbatched():
    ref, ours = _pair(batch_first=True)
    x = _x(7, E)  # unbatched (L, E)
    for need in (True, False):
        a, wa = ref(x, x, x, need_weights=need)
        b, wb = ours(x, x, x, need_weights=need)
        torch.testing.assert_close(b, a, atol=2e-5, rtol=1e-4)
    _, w = ours(x, x, x, need_weights=True, average_attn_weights=False)
    assert w.shape == (H, 7, 7)


def test_checkpoints_load_both_ways_and_dropout_trains():
    ref = torch.nn.MultiheadAttention(E, H, dropout=0.1, kdim=16, vdim=16)
    ours = bnn.MultiheadAttention(E, H, dropout=0.1, kdim=16, vdim=16)
    assert list(ref.state_dict()) == list(ours.state_dict())
    ours.load_state_dict(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    assert isinstance(ours, torch.nn.MultiheadAttention)
    x, kv = _x(5, 2, E), _x(6, 2, 16)
    ours.train()
    torch.manual_seed(1)
    a, _ = ours(x, kv, kv, need_weights=False)
    torch.manual_seed(1)
    b, _ = ours(x, kv, kv, need_weights=False)
    ours.eval()
    c, _ = ours(x, kv, kv, need_weights=False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_and_decoder_layers_match_torch(norm_first):
    kw = dict(d_model=E, nhead=H, dim_feedforward=64, dropout=0.0, batch_first=True, norm_first=norm_first)
    torch.manual_seed(0)
    enc_ref = torch.nn.TransformerEncoderLayer(**kw)
    torch.manual_seed(0)
    enc = bnn.TransformerEncoderLayer(**kw)
    assert all(torch.equal(a, b) for a, b in zip(enc_ref.state_dict().values(), enc.state_dict().values()))
    assert isinstance(enc.self_attn, bnn.MultiheadAttention)
    src = _x(2, 10, E)
    causal = torch.nn.Transformer.generate_square_subsequent_mask(10)
    kpm = torch.zeros(2, 10, dtype=torch.bool)
    kpm[1, -2:] = True
    for kwargs in (dict(src_mask=causal, is_causal=True), dict(src_key_padding_mask=kpm)):
        torch.testing.assert_close(enc(src, **kwargs), enc_ref(src, **kwargs), atol=2e-5, rtol=1e-4)
    torch.manual_seed(0)
    dec_ref = torch.nn.TransformerDecoderLayer(**kw)
    torch.manual_seed(0)
    dec = bnn.TransformerDecoderLayer(**kw)
    tgt = _x(2, 7, E, seed=3)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(7)
    out = dec(tgt, src, tgt_mask=tmask, tgt_is_causal=True, memory_key_padding_mask=kpm)
    expected = dec_ref(tgt, src, tgt_mask=tmask, tgt_is_causal=True, memory_key_padding_mask=kpm)
    torch.testing.assert_close(out, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_in_either_layout(batch_first, causal):
    """query is key is value: one packed in-projection, heads as views of it,
    in the caller's layout (no transposed copies); values and gradients as torch's."""
    ref, ours = _pair(dropout=0.0, batch_first=batch_first)
    x = _x(*((3, 9, E) if batch_first else (9, 3, E)), seed=1).requires_grad_()
    masks = dict(attn_mask=torch.nn.Transformer.generate_square_subsequent_mask(9), is_causal=True) if causal else {}
    expected, _ = ref(x, x, x, need_weights=False, **masks)
    got, _ = ours(x, x, x, need_weights=False, **masks)
    assert got.shape == x.shape
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    g = _x(*got.shape, seed=4)
    a = torch.autograd.grad(expected, (x, ref.in_proj_weight, ref.in_proj_bias), g)
    b = torch.autograd.grad(got, (x, ours.in_proj_weight, ours.in_proj_bias), g)
    for name, u, w in zip(("x", "in_proj_weight", "in_proj_bias"), b, a, strict=True):
        torch.testing.assert_close(u, w, atol=5e-5, rtol=1e-4, msg=name)
