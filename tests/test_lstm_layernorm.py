"""LayerNormLSTM against an independent float64 loop written from the
equations, gradcheck, torch's constructor validation, dtypes."""
import pytest
import torch

from bigkernels import nn as bnn
from bigkernels.ops import layernorm_lstm_layer


def _ln(v, w, b, eps=1e-5):
    mu = v.mean(-1, keepdim=True)
    var = ((v - mu) ** 2).mean(-1, keepdim=True)
    return (v - mu) / torch.sqrt(var + eps) * w + b


def _explicit(m, x, h0, c0):
    """Unidirectional, 1 layer, time-major: the equations, one scalar gate at a time."""
    H = m.hidden_size
    h, c, ys = h0[0], c0[0], []
    for t in range(x.shape[0]):
        zx = _ln(x[t] @ m.weight_ih_l0.t(), m.ln_ih_weight_l0, m.ln_ih_bias_l0)
        zh = _ln(h @ m.weight_hh_l0.t(), m.ln_hh_weight_l0, m.ln_hh_bias_l0)
        z = zx + zh + m.bias_ih_l0 + m.bias_hh_l0
        i, f, g, o = (z[:, k * H:(k + 1) * H] for k in range(4))
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(_ln(c, m.ln_c_weight_l0, m.ln_c_bias_l0))
        ys.append(h)
    return torch.stack(ys), h, c


def _module(**kw):
    torch.manual_seed(0)
    m = bnn.LayerNormLSTM(5, 6, **kw).double()
    with torch.no_grad():  # non-trivial LN affine parameters
        for name, p in m.named_parameters():
            if name.startswith("ln_"):
                p.add_(torch.randn_like(p) * 0.3)
    return m


def test_matches_explicit_equations():
    m = _module()
    x = torch.randn(7, 3, 5, dtype=torch.float64)
    h0, c0 = torch.randn(1, 3, 6, dtype=torch.float64), torch.randn(1, 3, 6, dtype=torch.float64)
    y, (h, c) = m(x, (h0, c0))
    ey, eh, ec = _explicit(m, x, h0, c0)
    torch.testing.assert_close((y, h[0], c[0]), (ey, eh, ec))


def test_gradcheck_op():
    gen = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, generator=gen, dtype=torch.float64, requires_grad=True)

    args = [r(3, 2, 12), r(2, 3), r(2, 3), r(12, 3)]
    ln = [r(12), r(12), r(3), r(3)]
    torch.autograd.gradcheck(
        lambda x, h, c, w, a, b, cw, cb: layernorm_lstm_layer(x, h, c, w, (a, b), (cw, cb), reverse=True),
        args + ln)


@pytest.mark.parametrize("dtype,bound", [(torch.float32, 1e-5), (torch.bfloat16, 0.1)], ids=str)
def test_dtypes_bidirectional_batch_first(dtype, bound):
    m = _module(num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(3, 4, 5, dtype=torch.float64)
    ref = m(x)[0]
    y = m.to(dtype)(x.to(dtype))[0]
    assert y.dtype == dtype and y.shape == (3, 4, 12)
    assert (y.double() - ref).abs().max().item() < bound
    y.float().sum().backward()
    assert m.weight_hh_l1_reverse.grad is not None


def test_unbatched_and_validation():
    m = _module()
    assert m(torch.randn(4, 5, dtype=torch.float64))[0].shape == (4, 6)
    with pytest.raises(ValueError, match="dropout"):
        bnn.LayerNormLSTM(5, 6, dropout=2.0)
    with pytest.raises(RuntimeError, match="input_size"):
        m(torch.randn(4, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="ln_c"):
        layernorm_lstm_layer(torch.randn(2, 1, 8), torch.randn(1, 2), torch.randn(1, 2), torch.randn(8, 2),
                             (torch.ones(8), torch.zeros(8)), (torch.ones(3), torch.zeros(2)))
