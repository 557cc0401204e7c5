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
    assert_grads_close((ours, args), (ref, args64), (theirs, theirs_args), grad, ["z", "weight", "bias", "residual"],
                       act)


def assert_grads_close(ours, ref, theirs, grad, names, act):
    """Each (output, inputs) pair differentiated against `grad` (float64,
    cast to the inputs' dtype), then every gradient by the tolerance rule."""
    (y, args), (y64, args64), (yt, args_t) = ours, ref, theirs
    keep = [i for i, t in enumerate(args) if t is not None]
    g_ours = torch.autograd.grad(y, [args[i] for i in keep], grad.to(y.dtype))
    g_ref = torch.autograd.grad(y64, [args64[i] for i in keep], grad)
    g_theirs = torch.autograd.grad(yt, [args_t[i] for i in keep], grad.to(y.dtype))
    for i, go, gr, gt in zip(keep, g_ours, g_ref, g_theirs):
        assert_close(go, gr, gt, name=f"{act} grad {names[i]}", scale=max(1.0, gr.abs().max().item()))


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


# ---------------------------------------------------------------- BN statistics in the conv epilogue
# conv2d_stats (the implicit-GEMM forward writing per-(tile, channel) mean/M2,
# merged in tile order) + batch_norm_act(batch_stats=...): the Conv2dBNAct
# training path. Geometries: K 72/24/10 (not tile multiples), odd H and W,
# stride 2 and (2, 1), asymmetric padding, dilation, groups; 510 pixels = 8
# M tiles, the last one partial.
STATS_GEOMETRIES = ["s2-asym-pad-K72", "dil2-C40", "grouped", "510-pixels", "3x3"]
STATS_FACTORS = [list(ACTIVATIONS), STATS_GEOMETRIES, [torch.float16, torch.bfloat16], [NCHW, CL], [True, False]]


def _stats_inputs(geo, dtype, fmt, residual):
    from tests.test_conv import make_inputs
    from tests.test_conv_cuda_sim import GEOMETRIES

    # No conv bias: under training BN its gradient is exactly 0, and what every
    # backend returns is rounding noise (main's conv2d + bn_act on cuda_sim
    # failed the rule on it as this chain does: 3x3, bf16); its forward and
    # gradient plumbing are checked bit for bit against conv2d below.
    args64, args, conv_args = make_inputs(GEOMETRIES[geo] + (fmt,), dtype, bias=False, residual=False)
    x64, w64, cb64, _ = args64
    gen = torch.Generator().manual_seed(5)
    k = w64.shape[0]
    with torch.no_grad():
        shape = F.conv2d(x64, w64, None, *conv_args[:3], conv_args[3]).shape
    g64 = (torch.rand(k, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    b64 = torch.randn(k, generator=gen, dtype=torch.float64).requires_grad_()
    r64 = (torch.randn(shape, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
           if residual else None)
    rm64, rv64 = torch.randn(k, generator=gen, dtype=torch.float64), torch.rand(k, generator=gen, dtype=torch.float64) + 1
    full64 = [x64, w64, cb64, g64, b64, r64]
    cast = [None if t is None else t.detach().to(dtype).requires_grad_() for t in full64]
    return full64, cast, (rm64, rv64), conv_args


def _chain(backend, x, w, cb, g, b, r, conv_args, act, running, fused=True):
    from bigkernels.ops import conv2d, conv2d_stats

    rm, rv = (t.clone() for t in running)
    with bigkernels.use_backend(backend):
        if fused:
            z, mean, var = conv2d_stats(x, w, cb, *conv_args)
            y = batch_norm_act(z, rm, rv, g, b, True, 0.3, 1e-5, activation=act, residual=r, negative_slope=0.1,
                               batch_stats=(mean, var))
        else:
            z = conv2d(x, w, cb, *conv_args)
            y = batch_norm_act(z, rm, rv, g, b, True, 0.3, 1e-5, activation=act, residual=r, negative_slope=0.1)
    return y, rm, rv


def check_stats(act, geo, dtype, fmt, residual):
    ensure_backend("cuda_sim")
    full64, args, running, conv_args = _stats_inputs(geo, dtype, fmt, residual)
    ours, rm, rv = _chain("cuda_sim", *args, conv_args, act, [t.to(dtype) for t in running])
    ref, rm64, rv64 = _chain("reference", *full64, conv_args, act, running)
    theirs_args = [None if t is None else t.detach().clone().requires_grad_() for t in args]
    theirs, rm_t, rv_t = _chain("torch", *theirs_args, conv_args, act, [t.to(dtype) for t in running], fused=False)
    assert ours.dtype == dtype and (fmt is NCHW or ours.is_contiguous(memory_format=CL))
    assert_close(ours, ref, theirs, name=f"{act} forward", scale=max(1.0, ref.abs().max().item()))
    for name, got, want, base in (("running_mean", rm, rm64, rm_t), ("running_var", rv, rv64, rv_t)):
        assert_close(got, want, base, name=name, scale=max(1.0, want.abs().max().item()))
    with torch.no_grad():
        pre, _, _ = _chain("reference", *[None if t is None else t.detach() for t in full64], conv_args, "none",
                           running)
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grad = grad.masked_fill(sum((pre - k).abs() < 0.15 for k in (-3.0, 0.0, 3.0, 6.0)).bool(), 0.0)
    assert_grads_close((ours, args), (ref, full64), (theirs, theirs_args), grad,
                       ["x", "conv weight", "conv bias", "gamma", "beta", "residual"], act)


def _stats_id(row):
    act, geo, dtype, fmt, residual = row
    return f"{act}-{geo}-{str(dtype)[6:]}-{'cl' if fmt is CL else 'nchw'}-r{int(residual)}"


@pytest.mark.parametrize("row", covering_rows(STATS_FACTORS), ids=_stats_id)
def test_conv_stats_pairwise(row):
    check_stats(*row)


@pytest.mark.slow
@pytest.mark.parametrize("row", list(itertools.product(*STATS_FACTORS)), ids=_stats_id)
def test_conv_stats_exhaustive(row):
    check_stats(*row)


@pytest.mark.parametrize("geo", ["510-pixels", "grouped"])
def test_conv_stats_are_the_batch_statistics_of_the_stored_output(geo):
    """z is conv2d's output bit for bit (the same kernel; only the epilogue's
    statistics are added), and mean/var are z's batch statistics to fp32
    rounding (computed in float64 from the stored z: every tile counted once,
    the partial last tile included)."""
    from bigkernels.backends import sim_loader
    from bigkernels.ops import conv2d, conv2d_stats

    ensure_backend("cuda_sim")
    from tests.test_conv import make_inputs
    from tests.test_conv_cuda_sim import GEOMETRIES

    _, (x, w, cb, _), conv_args = make_inputs(GEOMETRIES[geo] + (CL,), torch.float16, residual=False)
    sim_loader.launched_kernels()
    with bigkernels.use_backend("cuda_sim"):
        z, mean, var = conv2d_stats(x, w, cb, *conv_args)
        plain = conv2d(x, w, cb, *conv_args)
    assert "conv_stats_finish_kernel" in " ".join(sim_loader.launched_kernels())
    assert torch.equal(z, plain)
    gz = torch.randn(z.shape, generator=torch.Generator().manual_seed(2)).half()
    for got, want in zip(torch.autograd.grad(z, (x, w, cb), gz), torch.autograd.grad(plain, (x, w, cb), gz)):
        assert torch.equal(got, want)  # conv2d_stats's backward is conv2d's
    var64, mean64 = torch.var_mean(z.detach().double(), dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(mean.double(), mean64, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(var.double(), var64, rtol=1e-6, atol=1e-6)


def test_conv2d_bn_act_module_uses_the_epilogue_statistics():
    """Conv2dBNAct in training (module unaware of the backend) on cuda_sim:
    the statistics come from the conv epilogue (no bn statistics kernel
    runs), and output, running statistics and gradients follow torch's
    nn.Sequential(conv, bn, act) (float64 reference, tolerance rule)."""
    from bigkernels.backends import sim_loader
    from bigkernels.nn import Conv2dBNAct

    ensure_backend("cuda_sim")
    torch.manual_seed(0)
    m64 = Conv2dBNAct(16, 24, 3, stride=2, padding=1, bias=True, activation="silu", momentum=0.3).double()
    seq64 = m64.to_sequential()
    m = copy_module(m64, torch.float16)
    seq = copy_module(seq64, torch.float16)
    x64 = torch.randn(3, 16, 11, 9, dtype=torch.float64).contiguous(memory_format=CL).requires_grad_()
    x = x64.detach().half().requires_grad_()
    sim_loader.launched_kernels()
    with bigkernels.use_backend("cuda_sim"):
        y = m(x)
        (gx,) = torch.autograd.grad(y, x, torch.ones_like(y))
    launched = " ".join(sim_loader.launched_kernels())
    assert "conv_stats_finish_kernel" in launched and "bn_partial_kernel<__half, false" not in launched
    y64 = seq64(x64)
    (gx64,) = torch.autograd.grad(y64, x64, torch.ones_like(y64))
    xt = x.detach().clone().requires_grad_()
    yt = seq(xt)
    (gxt,) = torch.autograd.grad(yt, xt, torch.ones_like(yt))
    assert_close(y, y64, yt, name="forward", scale=max(1.0, y64.abs().max().item()))
    assert_close(gx, gx64, gxt, name="grad x", scale=max(1.0, gx64.abs().max().item()))
    for name in ("running_mean", "running_var"):
        got, want, base = getattr(m.bn, name), getattr(seq64[1], name), getattr(seq[1], name)
        assert_close(got, want, base, name=name, scale=max(1.0, want.abs().max().item()))
    assert int(m.bn.num_batches_tracked) == 1


def copy_module(module, dtype):
    import copy

    return copy.deepcopy(module).to(dtype)


@pytest.mark.parametrize("geo,dtype", [("510-pixels", torch.float16), ("s2-asym-pad-K72", torch.bfloat16)])
def test_conv_stats_schedules_agree_bit_for_bit(geo, dtype):
    ensure_backend("cuda_sim")
    _, args, running, conv_args = _stats_inputs(geo, dtype, CL, True)

    def fn():
        y, rm, rv = _chain("cuda_sim", *args, conv_args, "relu", [t.to(dtype) for t in running])
        grads = torch.autograd.grad(y.sum(), [a for a in args if a is not None])
        return [t.contiguous() for t in (y, rm, rv) + grads]

    assert_schedule_invariant(fn)


def test_conv_stats_opcheck():
    from bigkernels.ops._library import op

    ensure_backend("cuda_sim")
    _, args, _, _ = _stats_inputs("grouped", torch.float16, CL, True)
    x, w, _, g, b, r = args
    cb = torch.randn(w.shape[0]).half().requires_grad_()
    conv = ([2, 1], [1, 1], [1, 2], 2)
    torch.library.opcheck(op("conv2d_stats_sim"), (x, w, cb, *conv))
    z, mean, var = op("conv2d_stats_sim")(x.detach(), w.detach(), cb.detach(), *conv)
    rr = torch.randn(z.shape).half().contiguous(memory_format=CL)
    torch.library.opcheck(op("bn_act_batch_sim"), (z.detach().requires_grad_(), g, b, rr, mean, var, 1e-5, 4, 0.01),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


def test_conv2d_batch_norm_act_falls_back_where_the_epilogue_does_not_serve():
    """A forced cuda_sim on a depthwise conv (no statistics epilogue): the
    plain conv2d kernel, then bn_act's own statistics, as before."""
    from bigkernels.backends import sim_loader
    from bigkernels.ops import conv2d_batch_norm_act

    ensure_backend("cuda_sim")
    x = torch.randn(2, 8, 9, 7)
    w, g, b = torch.randn(8, 1, 3, 3), torch.rand(8) + 0.5, torch.randn(8)
    sim_loader.launched_kernels()
    with bigkernels.use_backend("cuda_sim"):
        y = conv2d_batch_norm_act(x, w, None, 1, 1, 1, 8, None, None, g, b, 0.1, 1e-5, activation="relu")
    launched = " ".join(sim_loader.launched_kernels())
    assert "depthwise_fwd_kernel" in launched and "conv_stats_finish_kernel" not in launched
    expected = F.relu(F.batch_norm(F.conv2d(x, w, None, 1, 1, 1, 8), None, None, g, b, True))
    torch.testing.assert_close(y, expected, atol=1e-4, rtol=1e-4)
