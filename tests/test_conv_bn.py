"""batch_norm_act: act(batch_norm(z) + residual) fused, training and eval,
against the float64 reference with the tolerance rule; running statistics
against torch's own BatchNorm2d."""
import pytest
import torch
import torch.nn.functional as F

import bigkernels
from bigkernels.ops import batch_norm_act
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend

CL, NCHW = torch.channels_last, torch.contiguous_format
# nchw_planes: more H*W planes per channel than the CPU kernel sums in float
# before it flushes to float64 (4096 elements), and a plane size of 16k + 1
LAYOUTS = {"nchw": ((3, 5, 7, 6), NCHW), "cl": ((2, 6, 5, 9), CL), "nchw_planes": ((9, 4, 23, 23), NCHW)}


def _inputs(shape, fmt, dtype, *, affine=True, residual=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # an offset mean (3) checks that the variance does not cancel
    z = (torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 3).contiguous(memory_format=fmt)
    c = shape[1]
    w = torch.rand(c, generator=gen, dtype=torch.float64) + 0.5 if affine else None
    b = torch.randn(c, generator=gen, dtype=torch.float64) if affine else None
    r = torch.randn(shape, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt) if residual else None
    rm = torch.randn(c, generator=gen, dtype=torch.float64)
    rv = torch.rand(c, generator=gen, dtype=torch.float64) + 0.5
    args64 = [None if t is None else t.requires_grad_() for t in (z, w, b, r)]
    args = [None if t is None else t.detach().to(dtype).requires_grad_() for t in (z, w, b, r)]
    return args64, args, (rm, rv)


def _run(backend, z, w, b, r, stats, training, act):
    rm, rv = (s.clone() for s in stats)
    with bigkernels.use_backend(backend):
        y = batch_norm_act(z, rm, rv, w, b, training, 0.1, 1e-5, activation=act, residual=r, negative_slope=0.1)
    return y, rm, rv


def _check(backend, dtype, layout, training, act, *, affine=True, residual=True):
    ensure_backend(backend)
    shape, fmt = LAYOUTS[layout]
    args64, args, stats = _inputs(shape, fmt, dtype, affine=affine, residual=residual)
    ours, rm, rv = _run(backend, *args, tuple(s.to(dtype) if dtype != torch.float64 else s for s in stats),
                        training, act)
    ref, *_ = _run("reference", *args64, stats, training, act)
    theirs_args = [None if t is None else t.detach().clone().requires_grad_() for t in args]
    theirs, *_ = _run("torch", *theirs_args, tuple(s.to(dtype) for s in stats), training, act)
    assert ours.dtype == dtype and (fmt is NCHW or ours.is_contiguous(memory_format=CL))
    assert_close(ours, ref, theirs, name=f"{act} forward", scale=max(1.0, ref.abs().max().item()))
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    keep = [i for i, t in enumerate(args) if t is not None]
    g_ours = torch.autograd.grad(ours, [args[i] for i in keep], grad.to(dtype))
    g_ref = torch.autograd.grad(ref, [args64[i] for i in keep], grad)
    g_theirs = torch.autograd.grad(theirs, [theirs_args[i] for i in keep], grad.to(dtype))
    for i, go, gr, gt in zip(keep, g_ours, g_ref, g_theirs):
        name = ["z", "weight", "bias", "residual"][i]
        assert_close(go, gr, gt, name=f"{act} grad {name}", scale=max(1.0, gr.abs().max().item()))
    return rm, rv


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_dtypes_layouts_modes(backend, dtype, layout, training):
    _check(backend, dtype, layout, training, "silu")


@pytest.mark.parametrize("act", ["relu", "none", "gelu", "hardswish", "leaky_relu", "sigmoid"])
@pytest.mark.parametrize("affine,residual", [(True, True), (False, False), (True, False)])
def test_activations_and_optional_inputs(act, affine, residual):
    """(the cpu kernels; the triton ones in test_triton_bn)"""
    _check("cpu", torch.float32, "cl" if residual else "nchw", True, act, affine=affine, residual=residual)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_running_stats_match_torch(layout):
    shape, fmt = LAYOUTS[layout]
    bn = torch.nn.BatchNorm2d(shape[1], momentum=0.3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.normal_()
    rm, rv = bn.running_mean.clone(), bn.running_var.clone()
    for step in range(3):
        z = (torch.randn(shape) * 2 + step).contiguous(memory_format=fmt)
        y = batch_norm_act(z, rm, rv, bn.weight, bn.bias, True, 0.3, bn.eps, activation="relu")
        torch.testing.assert_close(y, F.relu(bn(z)), atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(rm, bn.running_mean)
    torch.testing.assert_close(rv, bn.running_var)


def test_gradcheck_float64_training():
    args64, _, stats = _inputs((2, 3, 4, 3), NCHW, torch.float64)

    def f(z, w, b, r):
        return batch_norm_act(z, None, None, w, b, True, activation="silu", residual=r)

    torch.autograd.gradcheck(f, tuple(args64), fast_mode=True)


@pytest.mark.parametrize("training", [True, False])
def test_opcheck(training):
    from bigkernels.ops._library import op

    _, args, stats = _inputs((2, 4, 3, 5), CL, torch.float32)
    z, w, b, r = args
    mean, var = (None, None) if training else tuple(s.float() for s in stats)
    torch.library.opcheck(op("bn_act"), (z, w, b, r, mean, var, 1e-5, 4, 0.01))
    _, bm, bv = op("bn_act")(z, w, b, r, mean, var, 1e-5, 4, 0.01)
    g = torch.randn_like(z)
    torch.library.opcheck(op("bn_act_backward"), (g, z.detach(), w.detach(), b.detach(), r.detach(), bm, bv, 1e-5,
                                                  4, 0.01, training, [True, True, True, True]))


def test_compiles_without_graph_breaks():
    _, args, stats = _inputs((2, 4, 3, 5), CL, torch.float32)
    rm, rv = (s.float() for s in stats)
    f = torch.compile(lambda z, w, b, r: batch_norm_act(z, None, None, w, b, True, activation="relu", residual=r),
                      backend="aot_eager", fullgraph=True)
    y = f(*args)
    y.sum().backward()
    z, w, b, r = (t.detach().requires_grad_() for t in args)
    expected = F.relu(F.batch_norm(z, None, None, w, b, True) + r)
    torch.testing.assert_close(y, expected)
    for got, t in zip([a.grad for a in args], torch.autograd.grad(expected.sum(), (z, w, b, r))):
        torch.testing.assert_close(got, t, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(z=torch.randn(4)), ValueError, "z must be"),
    (dict(weight=torch.randn(5)), ValueError, r"weight must have shape \[3\]"),
    (dict(running_mean=torch.randn(2)), ValueError, r"running_mean must have shape \[3\]"),
    (dict(residual=torch.randn(2, 3, 4, 5)), ValueError, "residual must have z's shape"),
    (dict(activation="nope"), ValueError, "activation must be one of"),
    (dict(training=False, running_mean=None), ValueError, "running_mean and running_var are needed"),
    (dict(z=torch.randn(1, 3, 1, 1)), ValueError, "more than 1 value per channel"),
])
def test_bad_input(kwargs, error, words):
    args = dict(z=torch.randn(2, 3, 4, 4), running_mean=torch.zeros(3), running_var=torch.ones(3), weight=None,
                bias=None, training=True, activation="relu", residual=None)
    args.update(kwargs)
    with pytest.raises(error, match=words):
        batch_norm_act(args.pop("z"), args.pop("running_mean"), args.pop("running_var"), **args)


@pytest.mark.triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("layout,training,act", [("nchw", True, "silu"), ("cl", True, "relu"), ("cl", False, "gelu")])
def test_triton_bn(dtype, layout, training, act):
    _check("triton", dtype, layout, training, act)


@pytest.mark.triton
def test_triton_bn_optional_inputs():
    _check("triton", torch.float32, "nchw", True, "hardswish", affine=False, residual=False)


@pytest.mark.triton
def test_triton_bn_opcheck():
    from bigkernels.ops._library import op

    ensure_backend("triton")
    _, args, _ = _inputs((2, 4, 3, 5), CL, torch.float32)
    z, w, b, r = args
    torch.library.opcheck(op("bn_act_triton"), (z, w, b, r, None, None, 1e-5, 4, 0.01),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


# ---------------------------------------------------------------- precomputed batch statistics
# ops.conv2d_stats + batch_norm_act(batch_stats=...): the Conv2dBNAct training
# path (the CUDA kernels fuse the statistics into the conv epilogue: tests in
# test_conv_bn_cuda_sim.py); here every other backend, the gradient of the
# whole chain, the op's registration and the argument errors.
def _conv_stats_chain(x, w, cb, g, b, r, act="silu"):
    from bigkernels.ops import conv2d_stats

    z, mean, var = conv2d_stats(x, w, cb, 1, 1)
    return batch_norm_act(z, None, None, g, b, True, activation=act, residual=r, batch_stats=(mean, var))


def _chain_inputs(dtype, fmt=CL):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt)
    w = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64) / 5
    cb, g, b = (torch.randn(4, generator=gen, dtype=torch.float64) for _ in range(3))
    r = torch.randn(2, 4, 5, 4, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt)
    return [t.to(dtype).requires_grad_() for t in (x, w, cb, g, b, r)]


@pytest.mark.parametrize("backend", ["cpu", "torch", "reference"])
def test_conv_stats_chain_gradcheck_float64(backend):
    """The chain's gradient is conv + training batch norm's (the statistics'
    terms included), on every CPU backend."""
    ensure_backend(backend)
    with bigkernels.use_backend(backend):
        torch.autograd.gradcheck(_conv_stats_chain, tuple(_chain_inputs(torch.float64)), fast_mode=True)


@pytest.mark.parametrize("backend", ["cpu", "torch", pytest.param("triton", marks=pytest.mark.triton)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_conv_stats_chain_equals_conv_then_bn(backend, dtype):
    """Same forward and gradients as conv2d then batch_norm_act computing its
    own statistics (the path it replaces), within the tolerance rule's floor."""
    from bigkernels.ops import conv2d

    ensure_backend(backend)
    args = _chain_inputs(dtype)
    other = [t.detach().clone().requires_grad_() for t in args]
    with bigkernels.use_backend(backend):
        y = _conv_stats_chain(*args)
        x, w, cb, g, b, r = other
        y2 = batch_norm_act(conv2d(x, w, cb, 1, 1), None, None, g, b, True, activation="silu", residual=r)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(y, y2, **tol)
    for a, o in zip(torch.autograd.grad(y.sum(), args), torch.autograd.grad(y2.sum(), other)):
        torch.testing.assert_close(a, o, **tol)


def test_conv_stats_opcheck_and_compile():
    from bigkernels.ops._library import op

    z = torch.randn(2, 4, 3, 5).contiguous(memory_format=CL).requires_grad_()
    g, b = torch.rand(4) + 0.5, torch.randn(4)
    var, mean = torch.var_mean(z.detach(), dim=(0, 2, 3), correction=0)
    torch.library.opcheck(op("bn_act_batch"), (z, g.requires_grad_(), b.requires_grad_(), None, mean, var, 1e-5, 4,
                                               0.01))
    args = _chain_inputs(torch.float32)
    y = torch.compile(_conv_stats_chain, backend="aot_eager", fullgraph=True)(*args)
    torch.testing.assert_close(y, _conv_stats_chain(*args))


@pytest.mark.parametrize("batch_stats,words", [
    ((torch.zeros(2), torch.ones(3)), r"batch_stats must be a \(mean, var\) pair of \[3\] tensors"),
    (torch.zeros(3), "batch_stats must be"),
])
def test_bad_batch_stats(batch_stats, words):
    with pytest.raises(ValueError, match=words):
        batch_norm_act(torch.randn(2, 3, 4, 4), None, None, training=True, batch_stats=batch_stats)
    with pytest.raises(ValueError, match="batch_stats are for training=True"):
        batch_norm_act(torch.randn(2, 3, 4, 4), torch.zeros(3), torch.ones(3), training=False,
                       batch_stats=(torch.zeros(3), torch.ones(3)))


@pytest.mark.parametrize("backend", ["auto", "cpu", "torch"])
def test_conv2d_batch_norm_act_on_cpu_is_conv_then_bn(backend):
    """Conv2dBNAct's training forward: on the CPU backends (no statistics
    epilogue) exactly conv2d then batch_norm_act with its own statistics pass
    (same bits, running statistics included): the CPU path is not slowed by a
    separate statistics pass (docs/conv.md)."""
    from bigkernels.ops import conv2d, conv2d_batch_norm_act

    x, w, cb, g, b, r = (t.detach() for t in _chain_inputs(torch.float32))
    rm, rv, rm2, rv2 = torch.zeros(4), torch.ones(4), torch.zeros(4), torch.ones(4)
    ctx = bigkernels.use_backend(backend) if backend != "auto" else torch.no_grad()
    with ctx:
        y = conv2d_batch_norm_act(x, w, cb, 1, 1, 1, 1, rm, rv, g, b, 0.1, 1e-5, activation="relu", residual=r)
        y2 = batch_norm_act(conv2d(x, w, cb, 1, 1), rm2, rv2, g, b, True, 0.1, 1e-5, activation="relu", residual=r)
    assert torch.equal(y, y2) and torch.equal(rm, rm2) and torch.equal(rv, rv2)
