"""conv2d: act(conv(x) + bias + residual) on every backend, against the
float64 reference with the tolerance rule, forward and backward."""
import pytest
import torch

import bigkernels
from bigkernels.ops import conv2d
from bigkernels.ops.activation import ACTIVATIONS
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend

CL, NCHW = torch.channels_last, torch.contiguous_format
DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
# (x shape, weight shape, stride, padding, dilation, groups, memory format):
# a covering set, not a product; sizes are not multiples of anything.
CASES = {
    "3x3": ((2, 6, 9, 7), (8, 6, 3, 3), 1, 1, 1, 1, NCHW),
    "grouped-s2-cl": ((2, 6, 11, 10), (10, 3, 3, 3), 2, (1, 0), 1, 2, CL),
    "depthwise5-same-cl": ((1, 8, 10, 9), (8, 1, 5, 5), 1, "same", 1, 8, CL),
    "even-same-dil": ((2, 4, 8, 9), (6, 4, 2, 4), 1, "same", (2, 1), 1, NCHW),
    "1x1-s2-valid-cl": ((3, 5, 7, 7), (7, 5, 1, 1), 2, "valid", 1, 1, CL),
    "dw-mult2-dil": ((2, 3, 12, 11), (6, 1, 3, 3), (1, 2), 2, 2, 3, NCHW),
}
BACKENDS = ["cpu", "torch"]


def make_inputs(case, dtype, *, bias=True, residual=True, seed=0):
    xs, ws, stride, padding, dilation, groups, fmt = case
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(xs, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt)
    w = torch.randn(ws, generator=gen, dtype=torch.float64) / (ws[1] * ws[2] * ws[3]) ** 0.5
    b = torch.randn(ws[0], generator=gen, dtype=torch.float64) if bias else None
    out = torch.nn.functional.conv2d(x, w, None, stride, padding, dilation, groups)
    r = torch.randn(out.shape, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt) if residual else None
    if r is not None:
        # Keep the pre-activation off the kinks (relu, relu6, hardswish: -3, 0,
        # 3, 6), where a bf16 rounding of z flips the derivative by up to 1.5.
        z = out + (b.view(1, -1, 1, 1) if bias else 0) + r
        for kink in (-3.0, 0.0, 3.0, 6.0):
            r = torch.where((z - kink).abs() < 0.15, r + 0.4, r)
            z = out + (b.view(1, -1, 1, 1) if bias else 0) + r
    args64 = (x, w, b, r)
    cast = tuple(None if t is None else t.to(dtype).requires_grad_() for t in args64)
    return [None if t is None else t.requires_grad_() for t in args64], list(cast), (stride, padding, dilation, groups)


def run(backend, x, w, b, r, conv_args, act, **kw):
    stride, padding, dilation, groups = conv_args
    with bigkernels.use_backend(backend):
        return conv2d(x, w, b, stride, padding, dilation, groups, activation=act, residual=r, **kw)


def check(backend, act, dtype, case, *, bias=True, residual=True):
    ensure_backend(backend)
    args64, args, conv_args = make_inputs(case, dtype, bias=bias, residual=residual)
    kw = dict(negative_slope=0.1)
    ours = run(backend, *args, conv_args, act, **kw)
    ref = run("reference", *args64, conv_args, act, **kw)
    theirs_args = [None if t is None else t.detach().clone().requires_grad_() for t in args]
    theirs = run("torch", *theirs_args, conv_args, act, **kw)
    assert ours.dtype == dtype and ours.shape == ref.shape
    if case[-1] is CL:
        assert ours.is_contiguous(memory_format=CL), "output must keep x's channels_last format"
    assert_close(ours, ref, theirs, name=f"{act} forward", scale=max(1.0, ref.abs().max().item()))

    grad64 = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    names = [n for n, t in zip(["x", "weight", "bias", "residual"], args) if t is not None]
    g_ours = torch.autograd.grad(ours, [t for t in args if t is not None], grad64.to(dtype))
    g_ref = torch.autograd.grad(ref, [t for t in args64 if t is not None], grad64)
    g_theirs = torch.autograd.grad(theirs, [t for t in theirs_args if t is not None], grad64.to(dtype))
    for name, go, gr, gt in zip(names, g_ours, g_ref, g_theirs):
        # gradients are sums over many products: scale the floor with them.
        assert_close(go, gr, gt, name=f"{act} grad {name}", scale=max(1.0, gr.abs().max().item()))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_every_activation_and_dtype(backend, act, dtype):
    check(backend, act, dtype, CASES["3x3"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES), ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_geometries(backend, case, dtype):
    act = {"3x3": "relu", "grouped-s2-cl": "silu", "depthwise5-same-cl": "relu6"}.get(case, "gelu")
    check(backend, act, dtype, CASES[case])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ["relu", "hardswish", "none"])
@pytest.mark.parametrize("bias,residual", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_optional_inputs(backend, act, bias, residual, dtype):
    check(backend, act, dtype, CASES["grouped-s2-cl"], bias=bias, residual=residual)


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES), ids=str)
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_exhaustive(backend, case, act, dtype, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("exhaustive matrix: run with -m slow")
    check(backend, act, dtype, CASES[case])


def test_unbatched_input():
    x = torch.randn(3, 8, 8)
    w = torch.randn(4, 3, 3, 3)
    y = conv2d(x, w, padding=1, activation="relu")
    torch.testing.assert_close(y, torch.relu(torch.nn.functional.conv2d(x, w, padding=1)))


def test_inference_mode_and_no_grad_keep_no_preactivation():
    args64, args, conv_args = make_inputs(CASES["3x3"], torch.float32)
    with torch.no_grad():
        y = run("cpu", *args, conv_args, "silu")
    with torch.inference_mode():
        y2 = run("cpu", *args, conv_args, "silu")
    ref = run("reference", *args64, conv_args, "silu")
    torch.testing.assert_close(y.double(), ref.detach(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(y, y2)


def test_empty_batch():
    x = torch.randn(0, 3, 5, 5, requires_grad=True)
    y = conv2d(x, torch.randn(4, 3, 3, 3), activation="relu")
    assert y.shape == (0, 4, 3, 3)
    y.sum().backward()
    assert x.grad.shape == x.shape
