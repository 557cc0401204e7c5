"""conv2d's CUDA kernels under the emulator (the `cuda_sim` backend): part 1's
check (float64 reference, tolerance rule, forward and every gradient) over a
covering array of activation x geometry x dtype x layout x bias x residual;
the full product under -m slow. Geometries are the implicit-GEMM kernel's
domain (C/groups a multiple of 8) with K, H, W that are not tile multiples."""
import itertools

import pytest
import torch

import bigkernels
from bigkernels.backends import BackendError
from bigkernels.ops import conv2d
from bigkernels.ops.activation import ACTIVATIONS
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend
from tests.sim.schedules import assert_schedule_invariant
from tests.test_conv import make_inputs, run

pytestmark = pytest.mark.sim

CL, NCHW = torch.channels_last, torch.contiguous_format
# (x shape, weight shape, stride, padding, dilation, groups): the 64x64 tile
# and BK=32 are never multiples here (K 10/72/7/9, C 40 = 32 + 8, M = 510).
# K/groups % 8 == 0 takes the implicit-GEMM backward (K72, C40, s2-dil2-K40,
# grouped, 510-pixels: 2 weight-gradient splits); the others (K 10/7/9) show
# the fallback to torch's convolution_backward.
GEOMETRIES = {
    "3x3": ((2, 16, 9, 7), (10, 16, 3, 3), 1, 1, 1, 1),
    "s2-asym-pad-K72": ((2, 24, 11, 10), (72, 24, 3, 3), 2, (1, 0), 1, 1),
    "dil2-C40": ((1, 40, 13, 9), (24, 40, 3, 3), 1, 2, 2, 1),
    "s2-dil2-K40": ((2, 16, 13, 11), (40, 16, 3, 3), 2, 1, 2, 1),
    "grouped": ((2, 32, 7, 9), (16, 16, 3, 3), (2, 1), 1, (1, 2), 2),
    "1x1-s2": ((3, 8, 7, 7), (7, 8, 1, 1), 2, 0, 1, 1),
    "even-same-dil": ((1, 16, 10, 9), (9, 16, 2, 4), 1, "same", (2, 1), 1),
    "510-pixels": ((2, 8, 15, 17), (8, 8, 3, 3), 1, 1, 1, 1),
}
# Depthwise (groups == C): kernel sizes 3..31, channel multiplier 2, odd and
# asymmetric geometry; fp32 too.
DEPTHWISE = {
    "dw3": ((2, 6, 9, 7), (6, 1, 3, 3), 1, 1, 1, 6),
    "dw5-s2": ((2, 5, 11, 10), (5, 1, 5, 5), 2, 2, 1, 5),
    "dw7-mult2-dil": ((1, 3, 13, 12), (6, 1, 7, 7), 1, 3, (2, 1), 3),
    "dw13-same": ((1, 4, 15, 14), (4, 1, 13, 13), 1, "same", 1, 4),
    "dw31": ((1, 2, 17, 16), (2, 1, 31, 31), 1, 15, 1, 2),
    "dw3x5-s12": ((2, 8, 10, 9), (8, 1, 3, 5), (1, 2), (0, 2), 1, 8),
}
GEOMETRIES.update(DEPTHWISE)
FACTORS = [list(ACTIVATIONS), [g for g in GEOMETRIES if g not in DEPTHWISE], [torch.float16, torch.bfloat16],
           [NCHW, CL], [True, False], [True, False]]
DW_FACTORS = [list(ACTIVATIONS), list(DEPTHWISE), [torch.float32, torch.float16, torch.bfloat16], [NCHW, CL],
              [True, False], [True, False]]


def covering_rows(factors):
    """Greedy pairwise covering array: every pair of values of any two factors
    appears in some row (deterministic; ~the largest pair product in rows)."""
    uncovered = {(i, a, j, b) for i, j in itertools.combinations(range(len(factors)), 2)
                 for a in range(len(factors[i])) for b in range(len(factors[j]))}
    rows = []
    candidates = list(itertools.product(*[range(len(f)) for f in factors]))
    while uncovered:
        best = max(candidates, key=lambda row: sum((i, row[i], j, row[j]) in uncovered
                                                   for i, j in itertools.combinations(range(len(row)), 2)))
        uncovered -= {(i, best[i], j, best[j]) for i, j in itertools.combinations(range(len(best)), 2)}
        rows.append(tuple(f[k] for f, k in zip(factors, best)))
    return rows


def _id(row):
    act, geo, dtype, fmt, bias, res = row
    return f"{act}-{geo}-{str(dtype)[6:]}-{'cl' if fmt is CL else 'nchw'}-b{int(bias)}-r{int(res)}"


def _check(act, geo, dtype, fmt, bias, residual):
    """Part 1's check (tests/test_conv.py), with no upstream gradient where the
    pre-activation sits on a kink (relu family: 0, 6; hardswish: -3, 3): part
    1 moves those off the kinks through the residual, which a call without
    one lacks; there a half-precision rounding of the saved pre-activation
    flips the derivative for every backend alike (the `cpu` kernels fail on
    the same element, found by the exhaustive run)."""
    case = GEOMETRIES[geo] + (fmt,)
    ensure_backend("cuda_sim")
    args64, args, conv_args = make_inputs(case, dtype, bias=bias, residual=residual)
    kw = dict(negative_slope=0.1)
    ours = run("cuda_sim", *args, conv_args, act, **kw)
    ref = run("reference", *args64, conv_args, act, **kw)
    theirs_args = [None if t is None else t.detach().clone().requires_grad_() for t in args]
    theirs = run("torch", *theirs_args, conv_args, act, **kw)
    assert ours.dtype == dtype and ours.shape == ref.shape
    if fmt is CL:
        assert ours.is_contiguous(memory_format=CL), "output must keep x's channels_last format"
    assert_close(ours, ref, theirs, name=f"{act} forward", scale=max(1.0, ref.abs().max().item()))
    with torch.no_grad():
        pre = run("reference", *[None if t is None else t.detach() for t in args64], conv_args, "none")
    near_kink = sum((pre - k).abs() < 0.15 for k in (-3.0, 0.0, 3.0, 6.0)).bool()
    grad64 = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grad64 = grad64.masked_fill(near_kink, 0.0)
    names = [n for n, t in zip(["x", "weight", "bias", "residual"], args) if t is not None]
    g_ours = torch.autograd.grad(ours, [t for t in args if t is not None], grad64.to(dtype))
    g_ref = torch.autograd.grad(ref, [t for t in args64 if t is not None], grad64)
    g_theirs = torch.autograd.grad(theirs, [t for t in theirs_args if t is not None], grad64.to(dtype))
    for name, go, gr, gt in zip(names, g_ours, g_ref, g_theirs):
        assert_close(go, gr, gt, name=f"{act} grad {name}", scale=max(1.0, gr.abs().max().item()))


PAIRWISE = covering_rows(FACTORS) + covering_rows(DW_FACTORS)


@pytest.mark.parametrize("row", PAIRWISE, ids=_id)
def test_pairwise(row):
    _check(*row)


@pytest.mark.slow
@pytest.mark.parametrize("row", list(itertools.product(*FACTORS)) + list(itertools.product(*DW_FACTORS)), ids=_id)
def test_exhaustive(row):
    _check(*row)


@pytest.mark.parametrize("geo,dtype", [("grouped", torch.float16), ("s2-asym-pad-K72", torch.bfloat16),
                                       ("510-pixels", torch.float16), ("dw7-mult2-dil", torch.float32),
                                       ("dw3x5-s12", torch.bfloat16)])
def test_schedules_agree_bit_for_bit(geo, dtype):
    """No float atomics: every emulated schedule gives the same bits (y, the
    saved pre-activation through silu's backward, and the gradients; the
    depthwise weight gradient's shared-memory reduction included)."""
    ensure_backend("cuda_sim")
    _, args, conv_args = make_inputs(GEOMETRIES[geo] + (CL,), dtype)

    def fn():  # every gradient: the fused activation backward, bias and residual outputs of wgrad
        y = run("cuda_sim", *args, conv_args, "silu")
        outs = (y,) + torch.autograd.grad(y.sum(), args)
        return [t.contiguous() for t in outs]  # the helper compares bytes of dense tensors

    assert_schedule_invariant(fn)


@pytest.mark.parametrize("act", list(ACTIVATIONS))
@pytest.mark.parametrize("geo,dtype,fmt", [("s2-asym-pad-K72", torch.bfloat16, NCHW), ("510-pixels", torch.float16, CL),
                                           ("grouped", torch.float16, NCHW), ("dil2-C40", torch.bfloat16, CL)])
def test_fused_activation_backward_equals_two_passes(act, geo, dtype, fmt):
    """The implicit-GEMM gradients with act' applied to their dL/dy tiles in
    shared memory give the bits of the two-pass path (bias_act backward to
    dL/dz, then the plain kernels on dL/dz): data, weight and bias gradients
    and dL/dz itself (the residual's gradient, written by the weight
    gradient's tap-0 blocks). Every activation; leaky_relu's slope too."""
    from bigkernels.ops import activation as acts
    from bigkernels.ops._library import op
    from bigkernels.backends import sim_loader

    ensure_backend("cuda_sim")
    _, (x, w, b, r), conv_args = make_inputs(GEOMETRIES[geo] + (fmt,), dtype)
    x, w, b, r = (t.detach() for t in (x, w, b, r))
    code, alpha, stride, padding, dilation, groups = acts.code(act), 0.1, *conv_args
    padding = [padding] * 2 if isinstance(padding, int) else list(padding)
    conv = ([stride] * 2 if isinstance(stride, int) else list(stride), padding,
            [dilation] * 2 if isinstance(dilation, int) else list(dilation), groups)
    y, z = op("conv2d_sim")(x, w, b, r, *conv, code, alpha, True)
    saved = y if code in (0, acts.code("relu"), acts.code("relu6")) else z
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(3)).to(dtype).contiguous(memory_format=fmt)
    sim_loader.launched_kernels()
    fused = op("conv2d_backward_sim")(gy, x, w, saved, *conv, code, alpha, [True, True, True, True])
    launched = " ".join(sim_loader.launched_kernels())
    if code != 0:
        assert "conv_dgrad_kernel<__half, true>" in launched or "conv_dgrad_kernel<__nv_bfloat16, true>" in launched
        assert "bias_act" not in launched, "dL/dz must not take a pass of its own"
    # two passes: a bias gradient without the weight's takes the separate activation pass
    gx2, _, _, gz2 = op("conv2d_backward_sim")(gy, x, w, saved, *conv, code, alpha, [True, False, True, True])
    gz2 = gz2 if code != 0 else gy
    _, gw2, gb2, _ = op("conv2d_backward_sim")(gz2, x, w, saved, *conv, 0, alpha, [False, True, True, False])
    for name, got, want in zip(["x", "weight", "bias"], fused[:3], [gx2, gw2, gb2]):
        assert torch.equal(got, want), f"{act}: grad {name} differs from the two-pass path"
    if code != 0:
        assert torch.equal(fused[3], gz2), f"{act}: dL/dz differs"
    assert torch.isfinite(fused[1]).all() and fused[2].abs().sum() > 0


def test_kernel_is_the_one_launched():
    ensure_backend("cuda_sim")
    from bigkernels.backends import sim_loader

    _, args, conv_args = make_inputs(GEOMETRIES["510-pixels"] + (NCHW,), torch.float16)
    sim_loader.launched_kernels()
    y = run("cuda_sim", *args, conv_args, "relu")
    torch.autograd.grad(y.sum(), args[:2])
    launched = " ".join(sim_loader.launched_kernels())
    for name in ("conv_fprop_kernel", "conv_dgrad_kernel", "conv_wgrad_kernel", "conv_wgrad_sum_kernel"):
        assert name in launched
    _, args, conv_args = make_inputs(GEOMETRIES["dw3"] + (NCHW,), torch.float32)
    y = run("cuda_sim", *args, conv_args, "relu")
    torch.autograd.grad(y.sum(), args[:2])
    launched = " ".join(sim_loader.launched_kernels())
    for name in ("depthwise_fwd_kernel", "depthwise_dgrad_kernel", "depthwise_wgrad_kernel"):
        assert name in launched


@pytest.mark.parametrize("dtype,shape,groups,why", [
    (torch.float32, (8, 16, 3, 3), 1, "fp16/bf16"),
    (torch.float64, (4, 1, 3, 3), 4, "fp32/fp16/bf16"),
    (torch.float16, (6, 12, 3, 3), 1, "multiples of 8"),
    (torch.float16, (12, 8, 3, 3), 2, "multiples of 8"),
])
def test_not_served_says_why(dtype, shape, groups, why):
    """Outside the fused kernels' domain, with that path forced, the forced
    backend refuses with the reason (and `auto` goes on to the next backend:
    no stub is registered). Unforced, the cudnn path serves all but float64
    (tests/test_conv_cudnn_path.py)."""
    from bigkernels.ops.conv_path import use_conv_path

    ensure_backend("cuda_sim")
    x = torch.randn(1, shape[1] * groups, 6, 6, dtype=dtype)
    with pytest.raises(BackendError, match=why), bigkernels.use_backend("cuda_sim"), use_conv_path("fused"):
        conv2d(x, torch.randn(shape, dtype=dtype), groups=groups)


@pytest.mark.parametrize("op", ["conv2d", "bn_act", "conv2d_stats", "bn_act_batch"])
def test_trust_selftests_pass_on_the_emulated_kernels(op):
    """The self-tests that trust-on-first-use runs before `auto` first routes
    a call to the cuda backend on a GPU, run here on the same kernels under
    the emulator: every case passes (or is skipped where the kernels do not
    serve it: fp32 implicit GEMM), none fails."""
    ensure_backend("cuda_sim")
    from bigkernels.testing.selftests import run_check, selftests

    spec = selftests()[op]
    results = [run_check(op, "cuda_sim", "cpu", dtype, case) for dtype in spec.dtypes for case in spec.cases]
    assert all(r.passed for r in results), [(r.dtype, r.case, r.summary()) for r in results if not r.passed]
    served = [r for r in results if r.status == "pass"]
    assert len(served) >= len(results) - 2, [(r.dtype, r.case, r.error) for r in results if r.status != "pass"]


def test_selftest_case_matches_routed_calls():
    from bigkernels.testing.selftests import case_for_call

    def case(x_shape, w_shape, groups, bias=True, residual=None):
        x, w = torch.empty(x_shape), torch.empty(w_shape)
        return case_for_call("conv2d", (x, w, torch.empty(w_shape[0]) if bias else None, residual, [1, 1], [0, 0],
                                        [1, 1], groups, 1, 0.01), {})

    assert case((1, 64, 8, 8), (64, 64, 3, 3), 1) == dict(kind="gemm", bias=True, residual=False, path="cudnn")
    x, w = torch.empty(1, 64, 8, 8, dtype=torch.half), torch.empty(64, 64, 3, 3, dtype=torch.half)
    assert case_for_call("conv2d", (x, w, None, None, [1, 1], [0, 0], [1, 1], 1, 1, 0.01), {})["path"] == "fused"
    assert case((1, 64, 8, 8), (10, 64, 3, 3), 1, bias=False)["kind"] == "gemm_fwd"
    assert case((1, 32, 8, 8), (32, 1, 7, 7), 32)["kind"] == "depthwise"
    assert case((1, 6, 8, 8), (8, 3, 3, 3), 2)["kind"] == "other"


@pytest.mark.parametrize("kind,fmt", [("gemm", CL), ("depthwise", NCHW)], ids=["gemm-cl", "depthwise-nchw"])
def test_opcheck(kind, fmt):
    """conv2d_sim / conv2d_backward_sim as custom ops: schema, fake kernels
    (output memory format included), autograd registration, AOT dispatch."""
    from bigkernels.ops._library import op

    ensure_backend("cuda_sim")
    gen = torch.Generator().manual_seed(0)
    dtype, (cin, k, cg, groups) = ((torch.float16, (16, 16, 8, 2)) if kind == "gemm"
                                   else (torch.float32, (6, 12, 1, 6)))
    x = torch.randn(2, cin, 7, 6, generator=gen).to(dtype).contiguous(memory_format=fmt).requires_grad_()
    w = (torch.randn(k, cg, 3, 3, generator=gen) / 3).to(dtype).requires_grad_()
    b = torch.randn(k, generator=gen).to(dtype).requires_grad_()
    conv = ([2, 1], [1, 1], [1, 2], groups)
    y, z = op("conv2d_sim")(x.detach(), w.detach(), b, None, *conv, 4, 0.01, True)
    r = torch.randn(y.shape, generator=gen).to(dtype).contiguous(memory_format=fmt).requires_grad_()
    torch.library.opcheck(op("conv2d_sim"), (x, w, b, r, *conv, 4, 0.01, True))
    for mask in ([True, True, True, True], [False, True, True, False]):
        torch.library.opcheck(op("conv2d_backward_sim"), (torch.randn_like(y), x.detach(), w.detach(), z.detach(), *conv, 4,
                                                          0.01, mask))


def compiled_matches_eager(fn, args):
    """torch.compile(fullgraph=True, aot_eager) of fn on cuda_sim gives eager's
    bits, forward and gradients; returns eager's output."""
    with bigkernels.use_backend("cuda_sim"):
        y = torch.compile(fn, backend="aot_eager", fullgraph=True)(*args)
        grads = torch.autograd.grad(y.sum(), args)
        eager = fn(*args)
        eager_grads = torch.autograd.grad(eager.sum(), args)
    torch.testing.assert_close(y, eager, rtol=0, atol=0)
    for got, want in zip(grads, eager_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    return eager


def test_compiles_without_graph_breaks_and_autocast():
    """torch.compile(fullgraph=True) traces through the router to conv2d_sim,
    forward and backward; under autocast fp32 inputs run our fp16 kernels."""
    ensure_backend("cuda_sim")
    args64, args, conv_args = make_inputs(GEOMETRIES["grouped"] + (CL,), torch.float16)
    fn = lambda x, w, b, r: conv2d(x, w, b, *conv_args, activation="silu", residual=r)  # noqa: E731
    eager = compiled_matches_eager(fn, args)
    x32, w32, b32, r32 = (t.detach().float() for t in args)
    with torch.autocast("cpu", dtype=torch.float16), bigkernels.use_backend("cuda_sim"):
        y16 = conv2d(x32, w32, b32, *conv_args, activation="silu", residual=r32.half())
    assert y16.dtype == torch.float16
    torch.testing.assert_close(y16, eager.detach(), rtol=0, atol=0)


def test_covering_rows_cover_every_pair():
    for factors in (FACTORS, DW_FACTORS):
        rows = covering_rows(factors)
        for i, j in itertools.combinations(range(len(factors)), 2):
            seen = {(row[i], row[j]) for row in rows}
            assert len(seen) == len(factors[i]) * len(factors[j]), (i, j)
        assert len(rows) < len(list(itertools.product(*factors))) // 10
