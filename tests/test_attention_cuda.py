"""attention's CUDA kernels (csrc/cuda/attention) under the emulator
(`cuda_sim`) against the float64 reference with the tolerance rule: out,
lse and the gradients (through out and lse) over dtype x head dim x causal
x mask x GQA x sequence lengths, pairwise by default and exhaustively under
`slow`; every schedule agrees (bit for bit, except dQ: float atomics)."""
import itertools

import pytest
import torch

import bigkernels
from bigkernels.ops import attention
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend
from tests.test_attention import make_inputs, run

pytestmark = pytest.mark.sim

F16, BF16, F64 = torch.float16, torch.bfloat16, torch.float64

# Factors of the matrix. Lengths: not multiples of the 64-row / 64- or 32-key
# tiles, Sq < Skv and Sq > Skv (bottom-right causal leaves fully masked
# rows), a single query (decoding shape), equal lengths over two tiles.
FACTORS = {
    "dtype": [F16, BF16],
    "d": [40, 64, 80, 96, 128, 256],
    "causal": [False, True],
    "mask": [None, "bool", "bool_bcast", "additive", "additive_bcast"],
    "gqa": [1, 4, 8],
    "lengths": [(37, 101), (130, 45), (1, 70), (129, 129)],
}


def pairwise(factors):
    """A greedy covering array: every pair of values of every two factors
    appears in some case (deterministic: the first best candidate wins)."""
    names = list(factors)
    uncovered = {(a, i, b, j) for a, b in itertools.combinations(range(len(names)), 2)
                 for i in range(len(factors[names[a]])) for j in range(len(factors[names[b]]))}
    cases = []
    while uncovered:
        best, best_gain = None, -1
        for combo in itertools.product(*(range(len(factors[n])) for n in names)):
            gain = sum((a, combo[a], b, combo[b]) in uncovered for a, b in itertools.combinations(range(len(names)), 2))
            if gain > best_gain:
                best, best_gain = combo, gain
        uncovered -= {(a, best[a], b, best[b]) for a, b in itertools.combinations(range(len(names)), 2)}
        cases.append(tuple(factors[n][i] for n, i in zip(names, best)))
    return cases


PAIRWISE = pairwise(FACTORS)
EXHAUSTIVE = list(itertools.product(*FACTORS.values()))


def case_id(case):
    dtype, d, causal, mask, gqa, (sq, skv) = case
    return f"{str(dtype)[6:]}-d{d}-{'causal' if causal else 'full'}-{mask}-gqa{gqa}-{sq}x{skv}"


def forward(backend, q, k, v, mask, causal, dtype):
    m = mask if mask is None or mask.dtype == torch.bool else mask.to(dtype)
    with torch.no_grad(), bigkernels.use_backend(backend):
        return attention(q.to(dtype), k.to(dtype), v.to(dtype), causal=causal, attn_mask=m, return_lse=True)


def check_case(case, batch=1, hkv=2):
    """Forward (out, lse) and backward (dq, dk, dv of a loss through out and lse: dLSE too)."""
    dtype, d, causal, mask_kind, gqa, (sq, skv) = case
    q, k, v, mask, grad = make_inputs(dtype, batch, hkv * gqa, hkv, sq, skv, d, mask_kind)
    (out, lse, grads), ref, theirs = (run(b, q, k, v, mask, causal, t, grad)
                                      for b, t in (("cuda_sim", dtype), ("reference", F64), ("torch", dtype)))
    assert out.dtype == dtype and out.shape == q.shape and lse.dtype == torch.float32
    assert_close(out, ref[0], theirs[0], name="out")
    assert torch.equal(torch.isneginf(lse), torch.isneginf(ref[1])), "lse: -inf exactly where no key is visible"
    fin = torch.isfinite(ref[1])
    assert_close(lse[fin], ref[1][fin], theirs[1][fin], name="lse", scale=max(1.0, ref[1][fin].abs().max().item()))
    for name, ours, r, t in zip(("dq", "dk", "dv"), grads, ref[2], theirs[2]):
        assert ours.dtype == dtype and not torch.isnan(ours).any(), name
        assert_close(ours, r, t, name=name, scale=max(1.0, r.abs().max().item()))


def test_pairwise_covers_every_pair():
    names = list(FACTORS)
    for a, b in itertools.combinations(range(len(names)), 2):
        seen = {(c[a], c[b]) for c in PAIRWISE}
        assert len(seen) == len(FACTORS[names[a]]) * len(FACTORS[names[b]]), (names[a], names[b])


@pytest.mark.parametrize("case", PAIRWISE, ids=case_id)
def test_forward_matches_reference(case):
    ensure_backend("cuda_sim")
    check_case(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", EXHAUSTIVE, ids=case_id)
def test_forward_matches_reference_exhaustive(case):
    ensure_backend("cuda_sim")
    check_case(case)


@pytest.mark.parametrize("d", [32, 48, 160, 192, 24, 112, 224], ids=lambda d: f"d{d}")
def test_every_instantiation(d):
    """Head dims of the other instantiations, and padded ones (24 -> 32, 112 -> 128, 224 -> 256)."""
    ensure_backend("cuda_sim")
    check_case((BF16 if d % 32 else F16, d, d % 3 == 0, "bool_bcast", 2, (70, 66)), batch=2, hkv=1)


def test_fully_masked_rows_are_zero():
    ensure_backend("cuda_sim")
    q, k, v, _, _ = make_inputs(F16, 1, 2, 2, 12, 20, 64, None)
    mask = torch.ones(1, 2, 12, 20, dtype=torch.bool)
    mask[0, 1, 3] = False
    out, lse = forward("cuda_sim", q, k, v, mask, False, F16)
    assert torch.all(out[0, 1, 3] == 0) and torch.isneginf(lse[0, 1, 3]) and not torch.isnan(out).any()
    add = torch.zeros(12, 20)
    add[5] = float("-inf")
    out, lse = forward("cuda_sim", q, k, v, add, False, F16)
    assert torch.all(out[..., 5, :] == 0) and torch.all(torch.isneginf(lse[..., 5]))
    # causal with Sq > Skv: the first Sq - Skv queries see no key
    out, lse = forward("cuda_sim", k, q, q, None, True, F16)
    assert torch.all(out[:, :, :8] == 0) and torch.all(torch.isneginf(lse[:, :, :8]))
    assert torch.isfinite(lse[:, :, 8:]).all()


def test_strided_inputs_read_in_place():
    """(B, S, H, D) tensors viewed as (B, H, S, D), as attention layers make them."""
    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(3)
    q = torch.randn(2, 50, 4, 64, generator=gen, dtype=F64).transpose(1, 2)
    k = torch.randn(2, 70, 2, 64, generator=gen, dtype=F64).transpose(1, 2)
    v = torch.randn(2, 70, 2, 64, generator=gen, dtype=F64).transpose(1, 2)
    out, lse = forward("cuda_sim", q, k, v, None, True, BF16)
    ref_out, ref_lse = forward("reference", q, k, v, None, True, F64)
    torch_out, _ = forward("torch", q, k, v, None, True, BF16)
    assert_close(out, ref_out, torch_out, name="out")


DROPOUT_CASES = [
    (F16, 64, True, "bool", 4, (70, 90)),
    (BF16, 128, False, None, 1, (130, 45)),
    (F16, 256, True, "additive", 2, (37, 101)),
]


@pytest.mark.parametrize("case", DROPOUT_CASES, ids=case_id)
def test_dropout_matches_reference(case):
    """Part 1's Philox mask (seed from torch's generator): the same elements
    are dropped as in the reference, forward and backward; a single element
    dropped differently would exceed the bound by far."""
    ensure_backend("cuda_sim")
    dtype, d, causal, mask_kind, gqa, (sq, skv) = case
    q, k, v, mask, grad = make_inputs(dtype, 2, 2 * gqa, 2, sq, skv, d, mask_kind)
    results = []
    for backend, t in (("cuda_sim", dtype), ("reference", F64), ("torch", dtype)):
        torch.manual_seed(11)
        results.append(run(backend, q, k, v, mask, causal, t, grad, dropout_p=0.3))
    (out, lse, grads), ref, theirs = results
    assert_close(out, ref[0], theirs[0], name="out")
    fin = torch.isfinite(ref[1])
    assert_close(lse[fin], ref[1][fin], theirs[1][fin], name="lse", scale=max(1.0, ref[1][fin].abs().max().item()))
    for name, ours, r, t in zip(("dq", "dk", "dv"), grads, ref[2], theirs[2]):
        assert_close(ours, r, t, name=name, scale=max(1.0, r.abs().max().item()))


def test_unserved_calls_fall_back_with_a_reason():
    """fp32, odd head dims and deterministic mode with gradients are not
    served by the cuda kernels: forced, the router says why."""
    ensure_backend("cuda_sim")
    q = torch.randn(1, 2, 8, 64)
    with bigkernels.use_backend("cuda_sim"), pytest.raises(RuntimeError, match="float16/bfloat16"):
        attention(q, q, q)
    with bigkernels.use_backend("cuda_sim"), pytest.raises(RuntimeError, match="multiples of 8"):
        attention(q[..., :36].half(), q[..., :36].half(), q[..., :36].half())
    h = q.half().requires_grad_()
    torch.use_deterministic_algorithms(True)
    try:
        with bigkernels.use_backend("cuda_sim"), pytest.raises(RuntimeError, match="deterministic"):
            attention(h, h, h)
    finally:
        torch.use_deterministic_algorithms(False)


SCHEDULE_CASES = [
    (F16, 64, True, "bool", 4, (130, 45)),
    (BF16, 128, False, "additive_bcast", 1, (70, 129)),
    (F16, 256, True, None, 2, (37, 101)),
]


@pytest.mark.parametrize("case", SCHEDULE_CASES, ids=case_id)
def test_schedules_agree_bit_for_bit(case):
    from tests.sim.schedules import assert_schedule_invariant

    ensure_backend("cuda_sim")
    dtype, d, causal, mask_kind, gqa, (sq, skv) = case
    q, k, v, mask, _ = make_inputs(dtype, 1, 2 * gqa, 2, sq, skv, d, mask_kind)
    assert_schedule_invariant(lambda: forward("cuda_sim", q, k, v, mask, causal, dtype))


@pytest.mark.parametrize("case", SCHEDULE_CASES[:2], ids=case_id)
def test_backward_schedules_agree_within_tolerance(case):
    """dQ is summed with float atomics (declared): dK and dV, summed in
    registers, must still agree bit for bit."""
    from tests.sim.schedules import assert_schedule_invariant

    ensure_backend("cuda_sim")
    dtype, d, causal, mask_kind, gqa, (sq, skv) = case
    q, k, v, mask, grad = make_inputs(dtype, 1, 2 * gqa, 2, sq, skv, d, mask_kind)
    assert_schedule_invariant(lambda: run("cuda_sim", q, k, v, mask, causal, dtype, grad)[2],
                              float_atomics=True, rtol=1e-2, atol=1e-3)
    assert_schedule_invariant(lambda: run("cuda_sim", q, k, v, mask, causal, dtype, grad)[2][1:])


@pytest.mark.parametrize("op", ["attention", "attention_varlen", "attention_decode"])
@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
def test_trust_selftests_pass_under_the_emulator(op, dtype):
    """The family's registered self-tests (what trust on first use runs before
    `auto` first routes to the cuda kernels on a GPU), every case, run here
    against the emulated kernels: none is skipped as unservable."""
    from bigkernels.testing.selftests import run_check, selftests

    ensure_backend("cuda_sim")
    for case in selftests()[op].cases:
        result = run_check(op, "cuda_sim", "cpu", dtype, case)
        assert result.status == "pass", (case, result.status, result.summary())
        assert result.checks, case


def test_opcheck_sim_ops():
    """Schema, fake kernels, autograd registration and AOT dispatch of the
    emulated variants (the cuda variants share their schemas and fakes)."""
    from bigkernels.ops._library import op

    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(4)
    q = torch.randn(1, 4, 19, 64, generator=gen).half().requires_grad_()
    k, v = (torch.randn(1, 2, 23, 64, generator=gen).half().requires_grad_() for _ in range(2))
    mask = torch.rand(1, 1, 19, 23, generator=gen) > 0.3
    torch.library.opcheck(op("attention_sim"), (q, k, v, mask, True, 0.125, 0.0, 0, 0))
    cu_q, cu_k = torch.tensor([0, 7, 19]), torch.tensor([0, 11, 23])
    qp, kp, vp = (t[0].transpose(0, 1).detach().contiguous().requires_grad_() for t in (q, k, v))
    torch.library.opcheck(op("attention_varlen_sim"), (qp, kp, vp, cu_q, cu_k, 12, 12, True, 0.125))
