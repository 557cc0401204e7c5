"""attention as a custom op: opcheck on every variant, torch.compile without
graph breaks, routing (dropout and mask gradients fall back to torch), and
memory O(S) at S = 16384."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import bigkernels
from bigkernels.ops import attention
from bigkernels.ops._library import op
from tests.backends import ensure_backend


def _qkv(dtype=torch.float32, hq=4, hkv=2, sq=20, skv=27, d=16, grad=True):
    gen = torch.Generator().manual_seed(0)
    return tuple(torch.randn(2, h, s, d, generator=gen, dtype=dtype, requires_grad=grad)
                 for h, s in ((hq, sq), (hkv, skv), (hkv, skv)))


@pytest.mark.parametrize("variant,mask,causal", [
    ("", None, False), ("", "bool", True), ("", "additive", False), ("", "additive", True),
    pytest.param("_triton", "bool", True, marks=pytest.mark.triton),
])
def test_opcheck(variant, mask, causal):
    ensure_backend("triton" if variant else "cpu")
    q, k, v = _qkv(hq=2, hkv=1, sq=18, skv=20) if variant else _qkv()
    sq, skv = q.shape[2], k.shape[2]
    m = {None: None, "bool": torch.rand(sq, skv) > 0.3, "additive": torch.randn(2, 1, sq, skv)}[mask]
    torch.library.opcheck(op("attention" + variant), (q, k, v, m, causal, 0.25, 0.0, 0, 0))
    out, lse = op("attention" + variant)(q, k, v, m, causal, 0.25, 0.0, 0, 0)
    detached = [t.detach() for t in (q, k, v, out, lse)]
    g = torch.randn_like(out)
    bwd = op("attention_backward" + variant)
    torch.library.opcheck(bwd, (g, torch.randn_like(lse), *detached, m, causal, 0.25, 0.0, 0, 0))
    torch.library.opcheck(bwd, (g, None, *detached, m, causal, 0.25, 0.0, 0, 0))


@pytest.mark.parametrize("backend", ["cpu", "torch", pytest.param("triton", marks=pytest.mark.triton)])
def test_compiles_without_graph_breaks(backend):
    ensure_backend(backend)
    q, k, v = _qkv()
    mask = torch.rand(20, 27) > 0.2

    def f(q, k, v):
        return attention(q, k, v, causal=True, attn_mask=mask)

    with bigkernels.use_backend(backend):
        y = torch.compile(f, backend="aot_eager", fullgraph=True)(q, k, v)
        y.sum().backward()
        expected = f(*(t.detach() for t in (q, k, v)))
    torch.testing.assert_close(y, expected)
    assert q.grad is not None and k.grad is not None


def test_double_backward_raises_clearly():
    ensure_backend("cpu")
    q, k, v = _qkv()
    with bigkernels.use_backend("cpu"):
        y = attention(q, k, v)
    (gq,) = torch.autograd.grad(y.sum(), q, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward is not supported"):
        gq.sum().backward()


@pytest.mark.parametrize("causal", [False, True])
def test_dropout_is_the_same_on_every_backend_and_follows_torch_seed(causal):
    """One Philox mask (seed from torch's generator, element-indexed): the cpu
    kernel, the torch backend and the reference agree, forward and backward."""
    ensure_backend("cpu")
    q, k, v = _qkv(dtype=torch.float64)
    g = torch.randn_like(q)
    results = {}
    for backend in ("cpu", "torch", "reference"):
        torch.manual_seed(5)
        with bigkernels.use_backend(backend):
            out = attention(q, k, v, dropout_p=0.3, causal=causal)
        results[backend] = (out, *torch.autograd.grad(out, (q, k, v), g))
    for backend in ("cpu", "torch"):
        for a, b in zip(results[backend], results["reference"]):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)
    torch.manual_seed(5)
    again = attention(q, k, v, dropout_p=0.3, causal=causal)
    torch.manual_seed(6)
    other = attention(q, k, v, dropout_p=0.3, causal=causal)
    torch.testing.assert_close(again, results["reference"][0], atol=1e-12, rtol=1e-12)
    assert not torch.allclose(other, again)


def test_dropout_is_unbiased():
    """E[dropout(P) / (1 - p)] = P: the mean over draws approaches the
    dropout-free output (300 draws; std of the mean ~0.01 here)."""
    q, k, v = _qkv(grad=False)
    with bigkernels.use_backend("cpu"):
        mean = torch.stack([attention(q, k, v, dropout_p=0.3) for _ in range(300)]).mean(0)
        exact = attention(q, k, v)
    assert (mean - exact).abs().mean() < 0.03


@pytest.mark.triton
def test_triton_dropout_uses_the_same_mask():
    """The interpreted Triton kernels drop the same elements as the reference
    (fp32 vs float64: equal up to rounding, far below one dropped weight)."""
    ensure_backend("triton")
    q, k, v = _qkv(hq=2, hkv=1, sq=21, skv=19)
    g = torch.randn_like(q)
    results = {}
    for backend, dtype in (("triton", torch.float32), ("reference", torch.float64)):
        leaves = [t.detach().to(dtype).requires_grad_() for t in (q, k, v)]
        torch.manual_seed(7)
        with bigkernels.use_backend(backend):
            out = attention(*leaves, dropout_p=0.4, causal=True)
        results[backend] = (out, *torch.autograd.grad(out, leaves, g.to(dtype)))
    for a, b in zip(results["triton"], results["reference"]):
        torch.testing.assert_close(a.double(), b, atol=2e-5, rtol=1e-5)


def test_mask_gradient_routes_to_torch():
    q, k, v = _qkv()
    mask = torch.randn(20, 27, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="attn_mask"):  # causal: auto tries cpu first
        y = attention(q, k, v, attn_mask=mask, causal=True)
    y.sum().backward()
    assert mask.grad is not None and mask.grad.shape == mask.shape


@pytest.mark.parametrize("causal", [False, True])
def test_autocast_casts_like_sdpa(causal):
    """Under autocast, attention runs in the autocast dtype, as torch's SDPA."""
    q, k, v = _qkv(grad=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attention(q, k.bfloat16(), v, causal=causal)
        expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True, is_causal=causal)
    assert y.dtype == expected.dtype == torch.bfloat16


_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys, torch
    torch.set_num_threads(1)
    import bigkernels
    from bigkernels.ops import attention
    S, D = 16384, 32
    q, k, v = (torch.randn(1, 1, S, D) for _ in range(3))
    q.requires_grad_(); k.requires_grad_(); v.requires_grad_()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with bigkernels.use_backend("cpu"):
        out = attention(q, k, v, causal=True)
        out.sum().backward()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    print(grown)
""")


def test_memory_is_linear_in_sequence_length():
    """One (S, S) fp32 score matrix at S = 16384 is 1 GiB; the kernels keep
    per-thread tiles only. Peak RSS growth of a fresh process must stay far
    below it (inputs, outputs and grads are ~12 MiB)."""
    ensure_backend("cpu")
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    res = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    grown = int(res.stdout.strip().splitlines()[-1])
    assert grown < 128 * 2**20, f"peak RSS grew by {grown / 2**20:.0f} MiB"


def test_philox_known_answer():
    """Random123's Philox4x32-10 test vector (counter 0, key 0): word 0 = 0x6627e8d5."""
    from bigkernels.ops import philox

    assert philox.randint(0, torch.zeros(1, dtype=torch.int64)).item() == 0x6627E8D5
