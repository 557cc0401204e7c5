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


# (dtype, d, hq, hkv, new tokens, cache length, key ranges the split-KV kernel uses)
DECODE_CASES = [(F16, 64, 8, 1, 1, 200, 4), (BF16, 128, 4, 4, 3, 200, 4), (F16, 80, 8, 2, 1, 60, 1),
                (BF16, 256, 16, 2, 2, 700, 11), (F16, 40, 8, 8, 1, 130, 3)]


@pytest.mark.parametrize("dtype,d,hq,hkv,n,s_max,splits", DECODE_CASES, ids=str)
def test_decode_appends_in_place_and_matches_reference(dtype, d, hq, hkv, n, s_max, splits):
    """Split-KV decode (flash-decoding) with the GQA group packed in the tile;
    a sequence whose cache is empty, one shorter than a split, one long."""
    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(1)
    b = 3
    k_cache, v_cache = (torch.randn(b, hkv, s_max, d, generator=gen, dtype=F64) for _ in range(2))
    lens = torch.tensor([3, 0, s_max - n - 7], dtype=torch.int32)
    q = torch.randn(b, hq, n, d, generator=gen, dtype=F64)
    k_new, v_new = (torch.randn(b, hkv, n, d, generator=gen, dtype=F64) for _ in range(2))
    outs = {}
    for backend, t in (("cuda_sim", dtype), ("reference", F64), ("torch", dtype)):
        kc, vc = k_cache.to(t), v_cache.to(t)
        with torch.no_grad(), bigkernels.use_backend(backend):
            outs[backend] = attention_decode(q.to(t), kc, vc, lens, k_new=k_new.to(t), v_new=v_new.to(t))
        if backend == "cuda_sim":
            assert torch.ops.bigkernels_sim.attention_decode_last_splits() == splits
            for i, length in enumerate(lens.tolist()):
                assert torch.equal(kc[i, :, length:length + n], k_new[i].to(t))
                assert torch.equal(vc[i, :, length:length + n], v_new[i].to(t))
                assert torch.equal(kc[i, :, :length], k_cache[i, :, :length].to(t))
    assert_close(outs["cuda_sim"], outs["reference"], outs["torch"], name="out")


def test_decode_schedules_agree():
    from tests.sim.schedules import assert_schedule_invariant

    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(2, 8, 1, 64, generator=gen).half()
    kc, vc = (torch.randn(2, 2, 300, 64, generator=gen).half() for _ in range(2))
    lens = torch.tensor([300, 17])

    def fwd():
        with torch.no_grad(), bigkernels.use_backend("cuda_sim"):
            return attention_decode(q, kc, vc, lens)

    assert_schedule_invariant(fwd)
