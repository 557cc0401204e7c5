"""lstm_layer: the whole-layer recurrence on every backend, against the
float64 reference with the tolerance rule, forward and backward."""
import pytest
import torch

import bigkernels
from bigkernels.ops import lstm_layer
from bigkernels.ops._library import op
from bigkernels.testing.tolerance import assert_close
from tests.backends import ensure_backend

DTYPES = [torch.float32, torch.float16, torch.bfloat16, torch.float64]
# (T, B, H, proj_size or 0, reverse): sizes that are no vector-width
# multiples, batch 1 (the GEMV regime), a projection, both directions.
SHAPES = [(7, 3, 13, 0, False), (5, 1, 17, 0, True), (6, 4, 11, 5, False), (4, 2, 9, 4, True)]


def _inputs(T, B, H, P, dtype, *, seed=0, scale=0.5):
    gen = torch.Generator().manual_seed(seed)
    P_ = P or H

    def r(*shape, s=1.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * s

    ref = [r(T, B, 4 * H), r(B, P_, s=scale), r(B, H, s=scale), r(4 * H, P_, s=1 / H ** 0.5),
           r(P_, H, s=1 / H ** 0.5) if P else None]
    leaves64 = [None if t is None else t.clone().requires_grad_() for t in ref]
    ours = [None if t is None else t.to(dtype).requires_grad_() for t in ref]
    theirs = [None if t is None else t.to(dtype).requires_grad_() for t in ref]
    return leaves64, ours, theirs


def _run(backend, args, reverse):
    x, h, c, w, wr = args
    with bigkernels.use_backend(backend):
        return lstm_layer(x, h, c, w, w_hr=wr, reverse=reverse)


def _check(backend, dtype, shape):
    T, B, H, P, reverse = shape
    compare(backend, dtype, _inputs(T, B, H, P, dtype), lambda b, args: _run(b, args, reverse))


def compare(backend, dtype, inputs, run, names=("x_proj", "h0", "c0", "w_hh", "w_hr"), outputs=("y", "h_T", "c_T")):
    """run(backend, args) -> outputs on `backend` against the float64
    reference, torch's own error in `dtype` as the baseline (the tolerance
    rule), forward and backward. inputs: _inputs' (float64, ours, torch's);
    names/outputs: of the op's arguments and outputs (the GRU's differ)."""
    ensure_backend(backend)
    a64, a, at = inputs
    ref, ours, theirs = run("reference", a64), run(backend, a), run("torch", at)
    for name, o, r, t in zip(outputs, ours, ref, theirs):
        assert o.dtype == dtype
        assert_close(o, r, t, name=f"{name} forward")
    gen = torch.Generator().manual_seed(1)
    grads64 = [torch.randn(t.shape, generator=gen, dtype=torch.float64) for t in ref]

    def grads(outs, leaves, dt):
        live = [t for t in leaves if t is not None]
        return torch.autograd.grad(outs, live, [g.to(dt) for g in grads64])

    g_ref, g_ours, g_theirs = grads(ref, a64, torch.float64), grads(ours, a, dtype), grads(theirs, at, dtype)
    for name, go, gr, gt in zip([n for n, t in zip(names, a) if t is not None], g_ours, g_ref, g_theirs):
        # weight gradients are sums over T*B terms: scale the floor with them
        assert_close(go, gr, gt, name=f"grad {name}", scale=max(1.0, gr.abs().max().item()))


TRITON = pytest.param("triton", marks=pytest.mark.triton)


@pytest.mark.parametrize("backend", ["cpu", "torch", TRITON])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_lstm_layer_matches_reference(backend, dtype, shape):
    if backend == "triton" and dtype == torch.float64:
        pytest.skip("the triton kernel computes in fp32; float64 is served by cpu/torch")
    _check(backend, dtype, shape)


# The CPU team kernel (csrc/cpu/lstm/lstm_team.cpp, float32 without a
# projection) splits units over threads once a step has >= 64K multiply-adds:
# several batch tiles (B = 13 > 6 rows), a partial unit block (H = 100 is not
# a multiple of 16 or 8) and more than 4 blocks per thread in the backward.
TEAM_SHAPES = [(6, 13, 100, 0, False), (5, 13, 100, 0, True), (4, 1, 150, 0, False), (5, 1, 300, 0, True)]


@pytest.mark.parametrize("shape", TEAM_SHAPES, ids=str)
def test_cpu_team_kernel_matches_reference(shape):
    _check("cpu", torch.float32, shape)


def test_cpu_team_kernel_same_bits_on_any_thread_count():
    """Each unit's arithmetic is the same whichever thread owns it: the team
    kernel's results on 1 and 2 threads agree bit for bit (a missing barrier
    would not). dW_hh is MKL's GEMM after the loop, whose blocking may depend
    on the thread count: compared to rounding."""
    T, B, H = 9, 13, 100
    _, a, _ = _inputs(T, B, H, 0, torch.float32)
    gen = torch.Generator().manual_seed(3)
    gy = torch.randn(T, B, H, generator=gen)
    saved = torch.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            outs = _run("cpu", a, False)
            grads = torch.autograd.grad(outs[0], [t for t in a if t is not None], gy)
            runs.append([o.detach() for o in outs] + list(grads))
    finally:
        torch.set_num_threads(saved)
    names = ["y", "h_T", "c_T", "grad x_proj", "grad h0", "grad c0", "grad w_hh"]
    for name, one, two in zip(names, *runs, strict=True):
        if name == "grad w_hh":
            torch.testing.assert_close(one, two, rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(one, two), name


@pytest.mark.triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_triton_multi_tile(dtype):
    """B and H spanning several 16 x 32 tiles, P > BLOCK_K (the dot's k loop)."""
    _check("triton", dtype, (3, 18, 37, 0, False))


@pytest.mark.parametrize("backend", ["cpu", "torch"])
@pytest.mark.parametrize("proj,reverse", [(0, False), (3, True)])
def test_gradcheck_float64(backend, proj, reverse):
    ensure_backend(backend)
    _, a, _ = _inputs(4, 2, 5, proj, torch.float64)
    live = [t for t in a if t is not None]

    def f(*t):
        x, h, c, w = t[:4]
        with bigkernels.use_backend(backend):
            return lstm_layer(x, h, c, w, w_hr=t[4] if proj else None, reverse=reverse)

    torch.autograd.gradcheck(f, live)


def test_saturated_gates_stay_exact():
    """Pre-activations far outside the fast exp's range (+-87) and inf."""
    ensure_backend("cpu")
    x = torch.tensor([[[200.0, -200.0, 1e30, float("inf"), -1e30, 300.0, float("-inf"), -100.0]]])
    h, c, w = torch.zeros(1, 2), torch.tensor([[0.5, -0.5]]), torch.zeros(8, 2)
    with bigkernels.use_backend("cpu"):
        y, hT, cT = lstm_layer(x, h, c, w)
    with bigkernels.use_backend("reference"):
        ry, rh, rc = lstm_layer(x, h, c, w)
    torch.testing.assert_close((y, hT, cT), (ry, rh, rc))


@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_empty_sequence_and_batch(backend):
    ensure_backend(backend)
    for T, B in ((0, 2), (3, 0)):
        x = torch.randn(T, B, 8, requires_grad=True)
        h, c = torch.randn(B, 2, requires_grad=True), torch.randn(B, 2, requires_grad=True)
        w = torch.randn(8, 2, requires_grad=True)
        with bigkernels.use_backend(backend):
            y, hT, cT = lstm_layer(x, h, c, w)
        assert y.shape == (T, B, 2)
        if T == 0:
            torch.testing.assert_close((hT, cT), (h, c))
        (y.sum() + hT.sum() + cT.sum()).backward()
        if T == 0:  # nothing ran: no weight gradient, the state gradients pass through
            assert w.grad is None or not w.grad.any()
            torch.testing.assert_close((h.grad, c.grad), (torch.ones_like(h), torch.ones_like(c)))


def test_inference_saves_no_workspace():
    ensure_backend("cpu")
    _, a, _ = _inputs(5, 2, 6, 0, torch.float32)
    with torch.no_grad():
        *_, gates, cs = op("lstm_layer")(*[t.detach() for t in a[:4]], None, False, False)
    assert gates.shape[0] == 0 and cs.shape[0] == 0


@pytest.mark.parametrize("variant", ["", pytest.param("_triton", marks=pytest.mark.triton)])
@pytest.mark.parametrize("proj", [0, 2])
def test_opcheck(variant, proj):
    ensure_backend("triton" if variant else "cpu")
    _, a, _ = _inputs(3, 2, 4, proj, torch.float32)
    x, h, c, w, wr = a
    for train in (True, False):
        torch.library.opcheck(op("lstm_layer" + variant), (x, h, c, w, wr, True, train))
    y, hT, cT, gates, cs = op("lstm_layer" + variant)(*(t.detach() if t is not None else None for t in a), False, True)
    gy, gh, gc = torch.randn_like(y), torch.randn_like(hT), torch.randn_like(cT)
    dt = [t.detach() if t is not None else None for t in (h, c, w, wr)]
    torch.library.opcheck(op("lstm_layer_backward" + variant), (gy, gh, gc, *dt, y, gates, cs, False))


def test_double_backward_raises_clearly():
    ensure_backend("cpu")
    _, a, _ = _inputs(3, 2, 4, 0, torch.float32)
    with bigkernels.use_backend("cpu"):
        y, _, _ = lstm_layer(*a[:4])
    (gx,) = torch.autograd.grad(y.sum(), a[0], create_graph=True)
    with pytest.raises(RuntimeError, match="double backward is not supported"):
        gx.sum().backward()


@pytest.mark.parametrize("backend", ["cpu", "torch", TRITON])
def test_compiles_without_graph_breaks(backend):
    ensure_backend(backend)
    _, a, at = _inputs(4, 2, 5, 3, torch.float32)

    def f(x, h, c, w, wr):
        y, hT, cT = lstm_layer(x, h, c, w, w_hr=wr, reverse=True)
        return y.sum() + hT.sum() + cT.sum()

    with bigkernels.use_backend(backend):
        out = torch.compile(f, backend="aot_eager", fullgraph=True)(*a)
        out.backward()
    expected = f(*at) if backend == "torch" else _run("torch", at, True)
    if backend != "torch":
        expected = sum(t.sum() for t in expected)
    expected.backward()
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(a[3].grad, at[3].grad)
