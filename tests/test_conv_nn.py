"""FusedConv2d and Conv2dBNAct against the torch modules they replace:
outputs, gradients, running statistics, state_dict mapping, eval folding."""
import copy

import pytest
import torch
from torch import nn

from bigkernels.nn import Conv2dBNAct, FusedConv2d, from_modules
from bigkernels.nn.conv import from_sequential_keys, to_sequential_keys

CL = torch.channels_last


def _close(a, b, tol=2e-5):
    torch.testing.assert_close(a, b, atol=tol, rtol=tol)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL], ids=["nchw", "cl"])
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_fused_conv2d_matches_conv_and_act(fmt, padding_mode):
    torch.manual_seed(0)
    conv = nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2, padding_mode=padding_mode)
    ours = from_modules(conv, act=nn.SiLU())
    assert isinstance(ours, FusedConv2d) and ours.activation == "silu"
    x = torch.randn(2, 6, 9, 8).contiguous(memory_format=fmt).requires_grad_()
    r = torch.randn(2, 8, 5, 4)
    y = ours(x, r)
    expected = nn.functional.silu(conv(x) + r)
    _close(y, expected)
    assert y.is_contiguous(memory_format=fmt)
    g = torch.randn_like(y)
    _close(torch.autograd.grad(y, (x, ours.weight, ours.bias), g),
           torch.autograd.grad(expected, (x, conv.weight, conv.bias), g), tol=1e-4)
    # same state_dict as nn.Conv2d, both ways
    conv.load_state_dict(ours.state_dict())
    ours.load_state_dict(conv.state_dict())


def _pair(act=nn.ReLU(), **kw):
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, bias=kw.pop("bias", False)), nn.BatchNorm2d(6, **kw), act)
    with torch.no_grad():
        seq[1].weight.uniform_(0.5, 1.5)
        seq[1].bias.normal_()
    return seq, from_modules(seq[0], seq[1], act)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.GELU(approximate="tanh"), nn.LeakyReLU(0.2)], ids=str)
@pytest.mark.parametrize("fmt", [torch.contiguous_format, CL], ids=["nchw", "cl"])
def test_conv_bn_act_trains_like_sequential(act, fmt):
    seq, ours = _pair(act, bias=True) if isinstance(act, nn.ReLU) else _pair(act)
    opt_s = torch.optim.SGD(seq.parameters(), lr=0.1)
    opt_o = torch.optim.SGD(ours.parameters(), lr=0.1)
    for step in range(3):
        x = torch.randn(3, 4, 7, 6).contiguous(memory_format=fmt)
        r = torch.randn(3, 6, 7, 6)
        ys = seq[2](seq[1](seq[0](x)) + r)
        yo = ours(x, r)
        _close(yo, ys, tol=1e-4)
        for opt, y in ((opt_s, ys), (opt_o, yo)):
            opt.zero_grad()
            (y * torch.linspace(0, 1, y.numel()).view_as(y)).sum().backward()
            opt.step()
        for (name, p), q in zip(ours.named_parameters(), seq.parameters()):
            _close(p, q, tol=1e-4)
    for key, value in to_sequential_keys(ours.state_dict()).items():
        _close(value, seq.state_dict()[key], tol=1e-4)
    assert int(ours.bn.num_batches_tracked) == 3
    seq.eval(), ours.eval()
    x = torch.randn(2, 4, 7, 6).contiguous(memory_format=fmt)
    with torch.no_grad():
        _close(ours(x), seq(x), tol=1e-4)


def test_eval_fold_is_cached_and_refolded_when_parameters_change():
    seq, ours = _pair()
    seq.eval(), ours.eval()
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        _close(ours(x), seq(x))
        w1 = ours.folded()[0]
        assert ours.folded()[0] is w1  # cached
        for m in (seq, ours):
            m[1].running_var.mul_(3.0) if m is seq else m.bn.running_var.mul_(3.0)
            (m[1].weight if m is seq else m.bn.weight).add_(0.5)
        assert ours.folded()[0] is not w1  # refolded
        _close(ours(x), seq(x))
    # eval with gradients: the fold is differentiable (frozen-BN fine-tuning)
    y = ours(x)
    y.sum().backward()
    ys = seq(x)
    ys.sum().backward()
    _close(ours.conv.weight.grad, seq[0].weight.grad, tol=1e-4)
    _close(ours.bn.weight.grad, seq[1].weight.grad, tol=1e-4)


def test_train_eval_train_roundtrip_and_momentum_none():
    seq, ours = _pair(momentum=None)
    for seed in range(2):
        x = torch.randn(2, 4, 5, 5, generator=torch.Generator().manual_seed(seed))
        seq(x), ours(x)
    _close(ours.bn.running_mean, seq[1].running_mean)
    _close(ours.bn.running_var, seq[1].running_var)
    ours.eval()
    ours(torch.randn(1, 4, 5, 5))
    ours.train()
    before = ours.bn.running_mean.clone()
    ours(torch.randn(2, 4, 5, 5))
    assert not torch.equal(before, ours.bn.running_mean)


def test_state_dict_maps_one_to_one_onto_sequential():
    seq, ours = _pair(bias=True)
    converted = to_sequential_keys(ours.state_dict())
    assert set(converted) == set(seq.state_dict())
    assert set(from_sequential_keys(seq.state_dict())) == set(ours.state_dict())
    fresh = Conv2dBNAct(4, 6, 3, padding=1, bias=True)
    fresh.load_state_dict(from_sequential_keys(seq.state_dict()))
    back = fresh.to_sequential()
    assert isinstance(back[2], nn.ReLU)
    for k, v in back.state_dict().items():
        assert torch.equal(v, seq.state_dict()[k])


def test_bfloat16_module_trains():
    seq, ours = _pair()
    seq, ours = seq.bfloat16(), ours.bfloat16()
    x = torch.randn(2, 4, 6, 6).bfloat16().contiguous(memory_format=CL)
    ys, yo = seq(x), ours(x)
    torch.testing.assert_close(yo.float(), ys.float(), atol=0.05, rtol=0.05)
    yo.float().sum().backward()
    assert ours.conv.weight.grad is not None and torch.isfinite(ours.conv.weight.grad.float()).all()


def test_bad_modules():
    with pytest.raises(TypeError, match="conv must be an nn.Conv2d"):
        from_modules(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="bn must be an nn.BatchNorm2d"):
        from_modules(nn.Conv2d(2, 2, 1), nn.LayerNorm(2))
    with pytest.raises(ValueError, match="act must be one of"):
        from_modules(nn.Conv2d(2, 2, 1), act=nn.Softplus())
    with pytest.raises(ValueError, match="activation must be one of"):
        Conv2dBNAct(2, 2, 1, activation="softplus")
