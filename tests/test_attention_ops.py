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


@pytest.mark.parametrize("mask", [None, "bool", "additive"])
@pytest.mark.parametrize("causal", [False, True])
def test_opcheck(mask, causal):
    ensure_backend("cpu")
    q, k, v = _qkv()
    m = {None: None, "bool": torch.rand(20, 27) > 0.3, "additive": torch.randn(2, 1, 20, 27)}[mask]
    torch.library.opcheck(op("attention"), (q, k, v, m, causal, 0.25, 0.0, 0, 0))
    out, lse = op("attention")(q, k, v, m, causal, 0.25, 0.0, 0, 0)
    detached = [t.detach() for t in (q, k, v, out, lse)]
    g = torch.randn_like(out)
    torch.library.opcheck(op("attention_backward"), (g, torch.randn_like(lse), *detached, m, causal, 0.25, 0.0, 0, 0))
    torch.library.opcheck(op("attention_backward"), (g, None, *detached, m, causal, 0.25, 0.0, 0, 0))


@pytest.mark.parametrize("backend", ["cpu", "torch"])
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


def test_dropout_routes_to_torch_and_follows_torch_seed():
    q, k, v = _qkv(grad=False)
    with pytest.warns(RuntimeWarning, match="dropout"):
        torch.manual_seed(5)
        a = attention(q, k, v, dropout_p=0.3)
    torch.manual_seed(5)
    b = attention(q, k, v, dropout_p=0.3)
    torch.manual_seed(6)
    c = attention(q, k, v, dropout_p=0.3)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)
    # The same keep mask on the torch and reference backends (shared Philox).
    with bigkernels.use_backend("reference"):
        torch.manual_seed(5)
        r = attention(q.double(), k.double(), v.double(), dropout_p=0.3)
    torch.testing.assert_close(a.double(), r, atol=1e-5, rtol=1e-5)
    # The expectation over masks is the dropout-free result (1 / (1 - p) scaling).
    with bigkernels.use_backend("torch"):
        mean = torch.stack([attention(q, k, v, dropout_p=0.3) for _ in range(150)]).mean(0)
    assert (mean - attention(q, k, v)).abs().mean() < 0.05


def test_forced_cpu_with_dropout_raises():
    q, k, v = _qkv(grad=False)
    with bigkernels.use_backend("cpu"), pytest.raises(bigkernels.BackendError, match="dropout"):
        attention(q, k, v, dropout_p=0.1)


def test_mask_gradient_routes_to_torch():
    q, k, v = _qkv()
    mask = torch.randn(20, 27, requires_grad=True)
    with pytest.warns(RuntimeWarning, match="attn_mask"):
        y = attention(q, k, v, attn_mask=mask)
    y.sum().backward()
    assert mask.grad is not None and mask.grad.shape == mask.shape


def test_autocast_runs_in_low_precision_inputs_dtype():
    q, k, v = _qkv(grad=False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attention(q.bfloat16(), k, v.bfloat16())
    assert y.dtype == torch.float32  # promoted to the widest, as torch's pointwise rule


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
