"""batch_norm_act's CUDA kernels under the emulator (`cuda_sim`): part 1's
check (float64 reference, tolerance rule, forward and every gradient,
running statistics) over a covering array of dtype x layout x train/eval x
activation x affine x residual (the full product under -m slow); shapes large
enough for several reduction splits and channel blocks; every schedule gives
the same bits (no atomics: two-level fixed-order reductions)."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import bigkernels
from bigkernels.ops import batch_norm_act
from bigkernels.ops.activation import ACTIVATIONS
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend
from tests.sim.schedules import assert_schedule_invariant
from tests.test_conv_bn import _inputs, _run
from tests.test_conv_cuda_sim import covering_rows

pytestmark = pytest.mark.sim

CL, NCHW = torch.channels_last, torch.contiguous_format
# NCHW 2640 rows per channel: 3 splits; CL 40 channels: 2 channel blocks x 2 splits.
LAYOUTS = {"nchw": ((3, 5, 7, 6), NCHW), "cl": ((2, 6, 5, 9), CL), "nchw-3splits": ((2, 3, 40, 33), NCHW),
           "cl-40ch-2splits": ((3, 40, 21, 17), CL)}
FACTORS = [list(ACTIVATIONS), [torch.float32, torch.float16, torch.bfloat16, torch.float64], list(LAYOUTS),
           [True, False], [True, False], [True, False]]


def check(act, dtype, layout, training, affine, residual):
    ensure_backend("cuda_sim")
    shape, fmt = LAYOUTS[layout]
    args64, args, stats = _inputs(shape, fmt, dtype, affine=affine, residual=residual)
    stats_d = tuple(s.to(dtype) for s in stats)
    ours, rm, rv = _run("cuda_sim", *args, stats_d, training, act)
    ref, rm64, rv64 = _run("reference", *args64, stats, training, act)
    theirs_args = [None if t is None else t.detach().clone().requires_grad_() for t in args]
    theirs, rm_t, rv_t = _run("torch", *theirs_args, stats_d, training, act)
    assert ours.dtype == dtype and (fmt is NCHW or ours.is_contiguous(memory_format=CL))
    assert_close(ours, ref, theirs, name=f"{act} forward", scale=max(1.0, ref.abs().max().item()))
    for name, got, want, base in (("running_mean", rm, rm64, rm_t), ("running_var", rv, rv64, rv_t)):
        assert_close(got, want, base, name=name, scale=max(1.0, want.abs().max().item()))
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # No gradient flows where the pre-activation sits on a kink (relu family:
    # 0, 6; hardswish: -3, 3): there a low-precision rounding of it flips the
    # derivative (for every backend alike: the cpu kernels fail the same way).
    with torch.no_grad():
        pre, *_ = _run("reference", *[None if t is None else t.detach() for t in args64], stats, training, "none")
    grad = grad.masked_fill(sum((pre - k).abs() < 0.15 for k in (-3.0, 0.0, 3.0, 6.0)).bool(), 0.0)
    keep = [i for i, t in enumerate(args) if t is not None]
    g_ours = torch.autograd.grad(ours, [args[i] for i in keep], grad.to(dtype))
    g_ref = torch.autograd.grad(ref, [args64[i] for i in keep], grad)
    g_theirs = torch.autograd.grad(theirs, [theirs_args[i] for i in keep], grad.to(dtype))
    for i, go, gr, gt in zip(keep, g_ours, g_ref, g_theirs):
        name = ["z", "weight", "bias", "residual"][i]
        assert_close(go, gr, gt, name=f"{act} grad {name}", scale=max(1.0, gr.abs().max().item()))


def _id(row):
    act, dtype, layout, training, affine, residual = row
    return f"{act}-{str(dtype)[6:]}-{layout}-{'train' if training else 'eval'}-a{int(affine)}-r{int(residual)}"


@pytest.mark.parametrize("row", covering_rows(FACTORS), ids=_id)
def test_pairwise(row):
    check(*row)


@pytest.mark.slow
@pytest.mark.parametrize("row", list(itertools.product(*FACTORS)), ids=_id)
def test_exhaustive(row):
    check(*row)


@pytest.mark.parametrize("layout", ["nchw", "cl-40ch-2splits"])
def test_running_stats_match_torch(layout):
    ensure_backend("cuda_sim")
    shape, fmt = LAYOUTS[layout]
    bn = torch.nn.BatchNorm2d(shape[1], momentum=0.3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    for step in range(3):
        z = (torch.randn(shape) * 2 + step).contiguous(memory_format=fmt)
        with bigkernels.use_backend("cuda_sim"):
            y = batch_norm_act(z, rm, rv, bn.weight, bn.bias, True, 0.3, bn.eps, activation="relu")
        torch.testing.assert_close(y, F.relu(bn(z)), atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(rm, bn.running_mean)
    torch.testing.assert_close(rv, bn.running_var)


@pytest.mark.parametrize("layout,dtype", [("nchw-3splits", torch.float32), ("cl-40ch-2splits", torch.bfloat16)])
def test_schedules_agree_bit_for_bit(layout, dtype):
    ensure_backend("cuda_sim")
    shape, fmt = LAYOUTS[layout]
    _, args, stats = _inputs(shape, fmt, dtype)

    def fn():
        y, rm, rv = _run("cuda_sim", *args, tuple(s.to(dtype) for s in stats), True, "gelu")
        grads = torch.autograd.grad(y.sum(), [a for a in args if a is not None])
        return [t.contiguous() for t in (y, rm, rv) + grads]

    assert_schedule_invariant(fn)


def test_opcheck():
    from bigkernels.ops._library import op

    ensure_backend("cuda_sim")
    _, args, _ = _inputs((2, 4, 3, 5), CL, torch.float32)
    z, w, b, r = args
    torch.library.opcheck(op("bn_act_sim"), (z, w, b, r, None, None, 1e-5, 4, 0.01),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
