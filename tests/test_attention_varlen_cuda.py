"""attention_varlen and attention_decode on the CUDA kernels under the
emulator (`cuda_sim`), against the float64 reference with the tolerance
rule: packed sequences with empty and length-1 members, GQA, both dtypes;
decode with the in-place cache append."""
import pytest
import torch

import bigkernels
from bigkernels.ops import attention_decode, attention_varlen
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend
from tests.sim.pairwise import exhaustive, pairwise

pytestmark = pytest.mark.sim

F16, BF16, F64 = torch.float16, torch.bfloat16, torch.float64
# single queries and keys, more than one tile (empty sequences: below; the
# reference cannot take them)
LENS_Q, LENS_K = [5, 1, 70, 9, 3], [7, 3, 130, 1, 1]


def _cu(lens):
    return torch.tensor([0] + torch.tensor(lens).cumsum(0).tolist(), dtype=torch.int64)


def _run(backend, q, k, v, g, dtype, causal):
    leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    with bigkernels.use_backend(backend):
        out = attention_varlen(*leaves, _cu(LENS_Q), _cu(LENS_K), max(LENS_Q), max(LENS_K), causal=causal)
    return (out, *torch.autograd.grad(out, leaves, g.to(dtype)))


@pytest.mark.parametrize("dtype,d,gqa,causal", [(F16, 40, 1, True), (BF16, 128, 4, False), (F16, 256, 8, True),
                                                (BF16, 64, 2, True)], ids=str)
def test_varlen_matches_reference(dtype, d, gqa, causal):
    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(d)
    hkv = 1 if gqa == 8 else 2
    q = torch.randn(sum(LENS_Q), hkv * gqa, d, generator=gen, dtype=F64)
    k, v = (torch.randn(sum(LENS_K), hkv, d, generator=gen, dtype=F64) for _ in range(2))
    g = torch.randn_like(q)
    ours, ref, theirs = (_run(b, q, k, v, g, t, causal) for b, t in (("cuda_sim", dtype), ("reference", F64),
                                                                   ("torch", dtype)))
    for name, a, r, t in zip(("out", "dq", "dk", "dv"), ours, ref, theirs):
        assert a.dtype == dtype and not torch.isnan(a).any(), name
        assert_close(a, r, t, name=name, scale=max(1.0, r.abs().max().item()))


def test_varlen_empty_sequences():
    """An empty sequence and one with queries but no keys (the reference
    cannot take either): out 0, gradients 0, the neighbours as if alone."""
    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(5)
    lq, lk = [3, 2, 0, 4], [5, 0, 0, 6]
    q = torch.randn(9, 2, 64, generator=gen).half().requires_grad_()
    k, v = (torch.randn(11, 2, 64, generator=gen).half().requires_grad_() for _ in range(2))
    g = torch.randn(9, 2, 64, generator=gen).half()
    with bigkernels.use_backend("cuda_sim"):
        out = attention_varlen(q, k, v, _cu(lq), _cu(lk), 4, 6, causal=True)
    grads = torch.autograd.grad(out, (q, k, v), g)
    assert torch.all(out[3:5] == 0) and torch.all(grads[0][3:5] == 0)
    assert not any(torch.isnan(t).any() for t in (out, *grads))
    for qs, ks in ((slice(0, 3), slice(0, 5)), (slice(5, 9), slice(5, 11))):
        alone = [t[s].detach().double().requires_grad_() for t, s in ((q, qs), (k, ks), (v, ks))]
        with bigkernels.use_backend("reference"):
            ref = attention_varlen(*alone, _cu([qs.stop - qs.start]), _cu([ks.stop - ks.start]), 6, 6, causal=True)
        ref_grads = torch.autograd.grad(ref, alone, g[qs].double())
        torch.testing.assert_close(out[qs].double(), ref, atol=3e-3, rtol=3e-3)
        for ours, r, s in zip(grads, ref_grads, (qs, ks, ks)):
            torch.testing.assert_close(ours[s].double(), r, atol=1e-2, rtol=1e-2)


def test_varlen_without_any_key():
    """Every key sequence empty (max_seqlen_k = 0): out 0, gradients 0 (no kernel to launch for them)."""
    ensure_backend("cuda_sim")
    q = torch.randn(5, 2, 64).half().requires_grad_()
    k, v = (torch.zeros(0, 2, 64).half().requires_grad_() for _ in range(2))
    with bigkernels.use_backend("cuda_sim"):
        out = attention_varlen(q, k, v, _cu([2, 3]), _cu([0, 0]), 3, 0)
    (dq,) = torch.autograd.grad(out, (q,), torch.ones_like(out))
    assert torch.all(out == 0) and torch.all(dq == 0)


def test_varlen_schedules_agree():
    from tests.sim.schedules import assert_schedule_invariant

    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(sum(LENS_Q), 4, 64, generator=gen).half()
    k, v = (torch.randn(sum(LENS_K), 2, 64, generator=gen).half() for _ in range(2))

    def fwd():
        with torch.no_grad(), bigkernels.use_backend("cuda_sim"):
            return attention_varlen(q, k, v, _cu(LENS_Q), _cu(LENS_K), max(LENS_Q), max(LENS_K), causal=True)

    assert_schedule_invariant(fwd)


# Decode with the in-kernel cache append, pairwise over dtype x head dim x
# GQA ratio x new tokens (exhaustive under `slow`). Every case has batch 3: a
# length-0 cache, an append at or across a split boundary (keys 127 | 128: the
# splits are 64 keys here), and a long cache that is no tile multiple. 9 new
# tokens x GQA 8 = 72 query rows: two query tiles, only the first stores.
DECODE_FACTORS = {"dtype": [F16, BF16], "d": [40, 64, 128, 256], "gqa": [1, 4, 8], "n": [1, 3, 9]}
DECODE_PAIRWISE = pairwise(DECODE_FACTORS)
S_MAX = 250  # 4 key ranges of 64 (the plan's split on the emulator's 132 SMs)


def _decode_id(c):
    return f"{str(c['dtype'])[6:]}-d{c['d']}-gqa{c['gqa']}-n{c['n']}"


def _decode_inputs(d, gqa, n, s_max=S_MAX, seed=1, hkv=2):
    gen = torch.Generator().manual_seed(seed)
    b = 3
    k_cache, v_cache = (torch.randn(b, hkv, s_max, d, generator=gen, dtype=F64) for _ in range(2))
    lens = torch.tensor([0, 128 - n // 2 - 1 if n > 1 else 127, s_max - n - 5], dtype=torch.int32)
    q = torch.randn(b, hkv * gqa, n, d, generator=gen, dtype=F64)
    k_new, v_new = (torch.randn(b, hkv, n, d, generator=gen, dtype=F64) for _ in range(2))
    return q, k_cache, v_cache, lens, k_new, v_new


def _scattered(cache, lens, new):
    """What the caches must hold after the append (written out, not the helper under test)."""
    out = cache.clone()
    for i, length in enumerate(lens.tolist()):
        out[i, :, length:length + new.shape[2]] = new[i].to(cache.dtype)
    return out


def _decode(backend, dtype, q, k_cache, v_cache, lens, k_new, v_new):
    """One decode step on copies of the caches: (out, k_cache, v_cache after it)."""
    kc, vc = k_cache.to(dtype), v_cache.to(dtype)
    with torch.no_grad(), bigkernels.use_backend(backend):
        out = attention_decode(q.to(dtype), kc, vc, lens, k_new=k_new.to(dtype), v_new=v_new.to(dtype))
    return out, kc, vc


def check_decode(dtype, d, gqa, n):
    ensure_backend("cuda_sim")
    q, k_cache, v_cache, lens, k_new, v_new = _decode_inputs(d, gqa, n)
    out, kc, vc = _decode("cuda_sim", dtype, q, k_cache, v_cache, lens, k_new, v_new)
    assert torch.ops.bigkernels_sim.attention_decode_last_splits() == 4
    # the cache: the new rows bit for bit (in the cache dtype), every other position untouched
    assert torch.equal(kc, _scattered(k_cache.to(dtype), lens, k_new.to(dtype))), "k_cache after the append"
    assert torch.equal(vc, _scattered(v_cache.to(dtype), lens, v_new.to(dtype))), "v_cache after the append"
    ref = _decode("reference", F64, q, k_cache, v_cache, lens, k_new, v_new)[0]
    theirs = _decode("torch", dtype, q, k_cache, v_cache, lens, k_new, v_new)[0]
    assert out.dtype == dtype and not torch.isnan(out).any()
    assert_close(out, ref, theirs, name="out")


def test_decode_pairwise_covers_every_pair():
    names = list(DECODE_FACTORS)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            seen = {(c[a], c[b]) for c in DECODE_PAIRWISE}
            assert len(seen) == len(DECODE_FACTORS[a]) * len(DECODE_FACTORS[b]), (a, b)


@pytest.mark.parametrize("case", DECODE_PAIRWISE, ids=_decode_id)
def test_decode_append_matches_reference(case):
    check_decode(**case)


@pytest.mark.slow
@pytest.mark.parametrize("case", exhaustive(DECODE_FACTORS), ids=_decode_id)
def test_decode_append_matches_reference_exhaustive(case):
    check_decode(**case)


# (dtype, d, hq, hkv, new tokens, cache length, key ranges the split-KV kernel uses)
DECODE_SPLITS = [(F16, 80, 8, 2, 1, 60, 1), (BF16, 256, 16, 2, 2, 700, 11), (F16, 64, 8, 1, 0, 200, 4)]


@pytest.mark.parametrize("dtype,d,hq,hkv,n,s_max,splits", DECODE_SPLITS, ids=str)
def test_decode_split_counts(dtype, d, hq, hkv, n, s_max, splits):
    """One key range (o written directly), 11 ranges, and no append at all."""
    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(1)
    b = 3
    k_cache, v_cache = (torch.randn(b, hkv, s_max, d, generator=gen, dtype=F64) for _ in range(2))
    lens = torch.tensor([3, 0, s_max - n - 7], dtype=torch.int32)
    q = torch.randn(b, hq, max(n, 1), d, generator=gen, dtype=F64)
    new = {}
    if n:
        new = {name: torch.randn(b, hkv, n, d, generator=gen, dtype=F64).to(dtype) for name in ("k_new", "v_new")}
    outs = {}
    for backend, t in (("cuda_sim", dtype), ("reference", F64), ("torch", dtype)):
        kc, vc = k_cache.to(dtype).to(t), v_cache.to(dtype).to(t)
        with torch.no_grad(), bigkernels.use_backend(backend):
            outs[backend] = attention_decode(q.to(t), kc, vc, lens, **{k: v.to(t) for k, v in new.items()})
        if backend == "cuda_sim":
            assert torch.ops.bigkernels_sim.attention_decode_last_splits() == splits
            if n:
                assert torch.equal(kc, _scattered(k_cache.to(dtype), lens, new["k_new"]))
                assert torch.equal(vc, _scattered(v_cache.to(dtype), lens, new["v_new"]))
            else:
                assert torch.equal(kc, k_cache.to(dtype)) and torch.equal(vc, v_cache.to(dtype))
    assert_close(outs["cuda_sim"], outs["reference"], outs["torch"], name="out")


def test_decode_unaligned_cache_is_written_back():
    """A cache whose rows are not 16-byte aligned is copied for the kernel; the append still lands in it."""
    ensure_backend("cuda_sim")
    q, k_cache, v_cache, lens, k_new, v_new = _decode_inputs(40, 4, 3)
    wide_k, wide_v = (torch.zeros(3, 2, S_MAX, 44, dtype=F16) for _ in range(2))
    kc, vc = wide_k[..., :40], wide_v[..., :40]  # row stride 44: not a multiple of 8
    kc.copy_(k_cache.half())
    vc.copy_(v_cache.half())
    with torch.no_grad(), bigkernels.use_backend("cuda_sim"):
        attention_decode(q.half(), kc, vc, lens, k_new=k_new.half(), v_new=v_new.half())
    assert torch.equal(kc, _scattered(k_cache.half(), lens, k_new.half()))
    assert torch.equal(vc, _scattered(v_cache.half(), lens, v_new.half()))
    assert torch.all(wide_k[..., 40:] == 0)


def test_decode_schedules_agree():
    """Output and caches (the append crosses the 64-key split boundary; 9 x 8
    query rows: two query tiles read the new rows, one writes them)."""
    from tests.sim.schedules import assert_schedule_invariant

    ensure_backend("cuda_sim")
    q, k_cache, v_cache, lens, k_new, v_new = _decode_inputs(64, 8, 9)
    assert_schedule_invariant(lambda: _decode("cuda_sim", F16, q, k_cache, v_cache, lens, k_new, v_new))


def test_decode_opcheck_sim():
    """Schema (the caches are mutated, nothing else), fake kernel, AOT dispatch."""
    from bigkernels.ops._library import op

    ensure_backend("cuda_sim")
    q, k_cache, v_cache, lens, k_new, v_new = (t.half() if t.is_floating_point() else t.long()
                                               for t in _decode_inputs(64, 4, 2))
    torch.library.opcheck(op("attention_decode_sim"), (q, k_cache, v_cache, lens, k_new, v_new, 0.125))
    torch.library.opcheck(op("attention_decode_sim"), (q, k_cache, v_cache, lens, None, None, 0.125))


def test_decode_compiles_with_the_append():
    """torch.compile(fullgraph=True) of a decode step: the mutation of the
    caches is functionalised and written back to the caller's tensors."""
    ensure_backend("cuda_sim")
    q, k_cache, v_cache, lens, k_new, v_new = (t.half() if t.is_floating_point() else t
                                               for t in _decode_inputs(64, 4, 2))
    kc, vc = k_cache.clone(), v_cache.clone()

    def step(q, kc, vc, lens, k_new, v_new):
        return attention_decode(q, kc, vc, lens, k_new=k_new, v_new=v_new)

    with torch.no_grad(), bigkernels.use_backend("cuda_sim"):
        out = torch.compile(step, backend="aot_eager", fullgraph=True)(q, kc, vc, lens, k_new, v_new)
        eager, ek, ev = _decode("cuda_sim", F16, q, k_cache, v_cache, lens, k_new, v_new)
    assert torch.equal(out, eager)
    assert torch.equal(kc, ek) and torch.equal(vc, ev)
    assert torch.equal(kc, _scattered(k_cache, lens, k_new))
