"""attention_varlen (packed sequences) and attention_decode (KV cache)."""
import pytest
import torch

import bigkernels
from bigkernels.ops import attention, attention_decode, attention_varlen
from bigkernels.ops._library import op
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend

LENS_Q, LENS_K = [5, 1, 70, 9], [7, 3, 70, 130]  # 70/130: more than one 64 x 128 tile


def _cu(lens):
    return torch.tensor([0] + torch.tensor(lens).cumsum(0).tolist(), dtype=torch.int64)


def _packed(dtype, hq=4, hkv=2, d=24, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(sum(LENS_Q), hq, d, generator=gen, dtype=torch.float64)
    k = torch.randn(sum(LENS_K), hkv, d, generator=gen, dtype=torch.float64)
    v = torch.randn(sum(LENS_K), hkv, d, generator=gen, dtype=torch.float64)
    g = torch.randn(sum(LENS_Q), hq, d, generator=gen, dtype=torch.float64)
    return q, k, v, g


def _run(backend, q, k, v, g, dtype, causal):
    leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    with bigkernels.use_backend(backend):
        out = attention_varlen(*leaves, _cu(LENS_Q), _cu(LENS_K), max(LENS_Q), max(LENS_K), causal=causal)
    return (out, *torch.autograd.grad(out, leaves, g.to(dtype)))


@pytest.mark.parametrize("dtype,causal", [(torch.float32, True), (torch.bfloat16, False), (torch.float64, True)],
                         ids=str)
def test_varlen_matches_reference(dtype, causal):
    ensure_backend("cpu")
    q, k, v, g = _packed(dtype)
    ours = _run("cpu", q, k, v, g, dtype, causal)
    ref = _run("reference", q, k, v, g, torch.float64, causal)
    theirs = _run("torch", q, k, v, g, dtype, causal)
    for name, a, r, t in zip(("out", "dq", "dk", "dv"), ours, ref, theirs):
        assert_close(a, r, t, name=name, scale=max(1.0, r.abs().max().item()))


def test_varlen_equals_dense_per_sequence():
    q, k, v, _ = (t.float() for t in _packed(torch.float32))
    out = attention_varlen(q, k, v, _cu(LENS_Q), _cu(LENS_K), 70, 130, causal=True)
    cq, ck = _cu(LENS_Q), _cu(LENS_K)
    for b in range(len(LENS_Q)):
        qs, ks = slice(cq[b], cq[b + 1]), slice(ck[b], ck[b + 1])
        dense = attention(*(t[s].transpose(0, 1)[None] for t, s in ((q, qs), (k, ks), (v, ks))), causal=True)
        torch.testing.assert_close(out[qs], dense[0].transpose(0, 1), atol=1e-5, rtol=1e-5)


def test_varlen_opcheck():
    ensure_backend("cpu")
    q, k, v, _ = (t.float() for t in _packed(torch.float32, d=8))
    args = (q.requires_grad_(), k.requires_grad_(), v.requires_grad_(), _cu(LENS_Q), _cu(LENS_K), 70, 130, True, 0.3)
    torch.library.opcheck(op("attention_varlen"), args)


@pytest.mark.parametrize("bad,error,words", [
    (dict(cu_seqlens_q=torch.tensor([0, 5, 6])), ValueError, "cu_seqlens_q must start at 0"),
    (dict(cu_seqlens_q=torch.tensor([0.0, 85.0])), ValueError, "1-D int32/int64"),
    (dict(max_seqlen_k=100), ValueError, "max_seqlen_k=100 is shorter"),
    (dict(max_seqlen_q=7.0), TypeError, "max_seqlen_q must be an int"),
    (dict(q=torch.randn(85, 4)), ValueError, "q must be 3-D"),
])
def test_varlen_bad_input(bad, error, words):
    q, k, v, _ = (t.float() for t in _packed(torch.float32))
    args = dict(q=q, k=k, v=v, cu_seqlens_q=_cu(LENS_Q), cu_seqlens_k=_cu(LENS_K), max_seqlen_q=70,
                max_seqlen_k=130)
    args.update(bad)
    with pytest.raises(error, match=words):
        attention_varlen(**args)


@pytest.mark.parametrize("backend", ["cpu", "torch", "reference", pytest.param("triton", marks=pytest.mark.triton)])
def test_decode_appends_in_place_and_matches_dense(backend):
    """The backends that append apart from their kernel (append_to_cache, the
    cpu op's glue): the caches bit for bit as a scatter of the new rows; the
    triton path splits the keys in 16-key chunks here (flash-decoding)."""
    ensure_backend(backend)
    gen = torch.Generator().manual_seed(1)
    b, hq, hkv, s_max, d, n = 3, 4, 2, 200, 16, 2
    k_cache, v_cache = (torch.randn(b, hkv, s_max, d, generator=gen) for _ in range(2))
    lens = torch.tensor([3, 0, 150], dtype=torch.int32)
    q = torch.randn(b, hq, n, d, generator=gen)
    k_new, v_new = (torch.randn(b, hkv, n, d, generator=gen) for _ in range(2))
    kc, vc = k_cache.clone(), v_cache.clone()
    with torch.no_grad(), bigkernels.use_backend(backend):
        out = attention_decode(q, kc, vc, lens, k_new=k_new, v_new=v_new)
    want_k, want_v = k_cache.clone(), v_cache.clone()
    for i, length in enumerate(lens.tolist()):
        want_k[i, :, length:length + n] = k_new[i]
        want_v[i, :, length:length + n] = v_new[i]
    assert torch.equal(kc, want_k) and torch.equal(vc, want_v)
    for i, length in enumerate(lens.tolist()):
        used = length + n
        dense = attention(q[i:i + 1], kc[i:i + 1, :, :used], vc[i:i + 1, :, :used], causal=True)
        torch.testing.assert_close(out[i:i + 1], dense, atol=1e-5, rtol=1e-5)


def test_decode_append_casts_to_the_cache_dtype():
    ensure_backend("cpu")
    kc, vc = torch.zeros(1, 2, 8, 16, dtype=torch.bfloat16), torch.zeros(1, 2, 8, 16, dtype=torch.bfloat16)
    k_new, v_new = torch.randn(1, 2, 3, 16), torch.randn(1, 2, 3, 16)
    with torch.no_grad():
        out = attention_decode(torch.randn(1, 2, 3, 16).bfloat16(), kc, vc, torch.tensor([4]), k_new=k_new,
                               v_new=v_new)
    assert out.dtype == torch.bfloat16
    assert torch.equal(kc[0, :, 4:7], k_new[0].bfloat16()) and torch.equal(vc[0, :, 4:7], v_new[0].bfloat16())


def _decode_args(dtype=torch.float32, n=2):
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(2, 4, n, 16, generator=gen, dtype=dtype)
    kc, vc = (torch.randn(2, 2, 40, 16, generator=gen, dtype=dtype) for _ in range(2))
    k_new, v_new = (torch.randn(2, 2, n, 16, generator=gen, dtype=dtype) for _ in range(2))
    return q, kc, vc, torch.tensor([5, 31]), k_new, v_new


def test_decode_opcheck():
    """The cpu op: schema (k_cache/v_cache mutated, nothing else), fake kernel, AOT dispatch."""
    ensure_backend("cpu")
    q, kc, vc, lens, k_new, v_new = _decode_args()
    torch.library.opcheck(op("attention_decode"), (q, kc, vc, lens, k_new, v_new, 0.25))
    torch.library.opcheck(op("attention_decode"), (q, kc, vc, lens, None, None, 0.25))


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_decode_compiles_with_the_append(backend):
    """torch.compile(fullgraph=True): the caches' mutation is functionalised
    and lands in the caller's tensors; output as eager."""
    ensure_backend(backend)
    q, kc, vc, lens, k_new, v_new = _decode_args()
    ek, ev = kc.clone(), vc.clone()

    def step(q, kc, vc, lens, k_new, v_new):
        return attention_decode(q, kc, vc, lens, k_new=k_new, v_new=v_new)

    with torch.no_grad(), bigkernels.use_backend(backend):
        eager = step(q, ek, ev, lens, k_new, v_new)
        out = torch.compile(step, backend="aot_eager", fullgraph=True)(q, kc, vc, lens, k_new, v_new)
    torch.testing.assert_close(out, eager, atol=1e-6, rtol=1e-6)
    assert torch.equal(kc, ek) and torch.equal(vc, ev)
    assert torch.equal(kc[1, :, 31:33], k_new[1]) and torch.equal(vc[0, :, 5:7], v_new[0])


def test_decode_bad_input():
    kc = torch.zeros(1, 2, 8, 16)
    q = torch.randn(1, 2, 1, 16)
    new = torch.randn(1, 2, 1, 16)
    with pytest.raises(ValueError, match="exceed the cache length"):
        attention_decode(q, kc, kc.clone(), torch.tensor([8]), k_new=new, v_new=new)
    with pytest.raises(ValueError, match="cache_seqlens must be"):
        attention_decode(q, kc, kc.clone(), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="cache_seqlens must be >= 0"):
        attention_decode(q, kc, kc.clone(), torch.tensor([-1]))
    with pytest.raises(ValueError, match="inference-only"):
        attention_decode(q.clone().requires_grad_(), kc, kc.clone(), torch.tensor([1]))
    with pytest.raises(ValueError, match="k_new must be"):
        attention_decode(q, kc, kc.clone(), torch.tensor([1]), k_new=torch.randn(1, 2, 1, 8), v_new=new)
    with pytest.raises(ValueError, match="v_new must be"):
        attention_decode(q, kc, kc.clone(), torch.tensor([1]), k_new=new, v_new=torch.randn(1, 2, 2, 16))
    with pytest.raises(ValueError, match="k_new and v_new must be given together"):
        attention_decode(q, kc, kc.clone(), torch.tensor([1]), k_new=new)
    with pytest.raises(ValueError, match="k_new is on meta"):
        attention_decode(q, kc, kc.clone(), torch.tensor([1]), k_new=new.to("meta"), v_new=new)
    with pytest.raises(ValueError, match="v_cache is on meta"):
        attention_decode(q, kc, kc.to("meta"), torch.tensor([1]))
    with pytest.raises(TypeError, match="k_cache and v_cache must have one dtype"):
        attention_decode(q, kc, kc.double(), torch.tensor([1]))
    with pytest.raises(TypeError, match="q=torch.float64, k_cache=torch.float32"):
        attention_decode(q.double(), kc, kc.clone(), torch.tensor([1]))
    with pytest.raises(TypeError, match="k_new must be float16"):
        attention_decode(q, kc, kc.clone(), torch.tensor([1]), k_new=new.int(), v_new=new)


@pytest.mark.triton
@pytest.mark.parametrize("dtype,causal", [(torch.float32, True), (torch.float16, False)], ids=str)
def test_varlen_triton_matches_reference(dtype, causal):
    """Interpreted: short ragged sequences, one with a single query."""
    ensure_backend("triton")
    lens_q, lens_k = [5, 1, 20], [7, 3, 33]
    cu_q, cu_k = _cu(lens_q), _cu(lens_k)
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(sum(lens_q), 4, 24, generator=gen, dtype=torch.float64)
    k, v = (torch.randn(sum(lens_k), 2, 24, generator=gen, dtype=torch.float64) for _ in range(2))
    g = torch.randn_like(q)

    def run(backend, dt):
        leaves = [t.to(dt).requires_grad_() for t in (q, k, v)]
        with bigkernels.use_backend(backend):
            out = attention_varlen(*leaves, cu_q, cu_k, 20, 33, causal=causal)
        return (out, *torch.autograd.grad(out, leaves, g.to(dt)))

    ours, ref, theirs = run("triton", dtype), run("reference", torch.float64), run("torch", dtype)
    for name, a, r, t in zip(("out", "dq", "dk", "dv"), ours, ref, theirs):
        assert_close(a, r, t, name=name, scale=max(1.0, r.abs().max().item()))
