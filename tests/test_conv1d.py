"""conv1d (conv2d over a height of 1) and the Conv1d modules against torch:
the op against the float64 reference over dtypes, strides, padding,
dilation, groups, activations and residuals, forward and backward; the
modules against nn.Conv1d / nn.Sequential(Conv1d, BatchNorm1d, act) in train
and eval, checkpoints both ways; swap() finding Conv1d chains; bad input."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import bigkernels
from bigkernels import ops
from bigkernels.nn import Conv1dBNAct, FusedConv1d, from_modules
from bigkernels.testing.tolerance import assert_close

ACTS = {"none": lambda t: t, "relu": F.relu, "silu": F.silu, "gelu_tanh": lambda t: F.gelu(t, approximate="tanh")}
# (N, C_in, L, C_out, k, stride, padding, dilation, groups, activation, residual, dtype)
CASES = [
    (2, 6, 17, 8, 3, 1, 1, 1, 1, "relu", True, torch.float32),
    (3, 4, 23, 6, 5, 2, 2, 1, 2, "silu", False, torch.bfloat16),
    (1, 8, 30, 8, 7, 1, "same", 2, 8, "gelu_tanh", True, torch.float32),
    (2, 5, 12, 7, 4, 3, 0, 1, 1, "none", False, torch.float16),
    (2, 6, 19, 4, 2, 1, "same", 3, 2, "relu", False, torch.float64),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"L{c[2]}-k{c[4]}-s{c[5]}-p{c[6]}-d{c[7]}-g{c[8]}-{c[9]}-"
                         f"r{int(c[10])}-{str(c[11])[6:]}")
@pytest.mark.parametrize("backend", ["cpu", "torch"])
def test_conv1d_matches_reference(case, backend):
    N, C, L, K, k, s, p, d, g, act, with_residual, dtype = case
    gen = torch.Generator().manual_seed(0)
    x64 = torch.randn(N, C, L, generator=gen, dtype=torch.float64)
    w64 = torch.randn(K, C // g, k, generator=gen, dtype=torch.float64) * 0.3
    b64 = torch.randn(K, generator=gen, dtype=torch.float64)
    out_len = F.conv1d(x64, w64, None, s, p, d, g).shape[-1]
    r64 = torch.randn(N, K, out_len, generator=gen, dtype=torch.float64) if with_residual else None

    def torch_fn(x, w, b, r):
        z = F.conv1d(x, w, b, s, p, d, g)
        return ACTS[act](z if r is None else z + r)

    runs = []
    for fn, dt in ((torch_fn, torch.float64), (None, dtype), (torch_fn, dtype)):
        leaves = [t.to(dt).requires_grad_() for t in (x64, w64, b64)]
        r = None if r64 is None else r64.to(dt).requires_grad_()
        if fn is None:
            with bigkernels.use_backend(backend):
                y = ops.conv1d(*leaves, stride=s, padding=p, dilation=d, groups=g, activation=act, residual=r)
        else:
            y = fn(*leaves, r)
        grad = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(dt)
        runs.append((y, torch.autograd.grad(y, leaves + ([r] if r is not None else []), grad)))
    (r_y, r_g), (o_y, o_g), (t_y, t_g) = runs
    assert o_y.dtype == dtype and o_y.shape == r_y.shape
    assert_close(o_y, r_y, t_y, scale=max(1.0, r_y.abs().max().item()))
    for name, o, r, t in zip(("x", "weight", "bias", "residual"), o_g, r_g, t_g):
        assert_close(o, r, t, name=f"grad {name}", scale=max(1.0, r.abs().max().item()))


def test_unbatched_input():
    torch.manual_seed(0)
    x, w = torch.randn(4, 11), torch.randn(6, 4, 3)
    y = ops.conv1d(x, w, padding=1, activation="relu")
    torch.testing.assert_close(y, F.relu(F.conv1d(x, w, padding=1)))


@pytest.mark.parametrize("padding_mode", ["zeros", "circular"])
def test_fused_conv1d_is_nn_conv1d_plus_activation(padding_mode):
    torch.manual_seed(0)
    conv = nn.Conv1d(6, 8, 3, stride=2, padding=1, groups=2, padding_mode=padding_mode)
    ours = from_modules(conv, act=nn.SiLU())
    assert isinstance(ours, FusedConv1d) and isinstance(ours, nn.Conv1d) and ours.activation == "silu"
    x = torch.randn(2, 6, 15, requires_grad=True)
    r = torch.randn(2, 8, 8)
    y, expected = ours(x, r), F.silu(conv(x) + r)
    torch.testing.assert_close(y, expected, atol=2e-5, rtol=2e-5)
    g = torch.randn_like(y)
    torch.testing.assert_close(torch.autograd.grad(y, (x, ours.weight, ours.bias), g),
                               torch.autograd.grad(expected, (x, conv.weight, conv.bias), g), atol=1e-4, rtol=1e-4)
    conv.load_state_dict(ours.state_dict())
    ours.load_state_dict(conv.state_dict())


def _sequential():
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Conv1d(4, 6, 5, padding=2), nn.BatchNorm1d(6), nn.ReLU())
    with torch.no_grad():
        seq[1].weight.uniform_(0.5, 1.5)
        seq[1].bias.normal_()
    return seq


def test_conv1d_bn_act_trains_and_evaluates_like_the_sequential():
    seq = _sequential()
    ours = from_modules(seq[0], seq[1], seq[2])
    assert isinstance(ours, Conv1dBNAct)
    opt_s, opt_o = torch.optim.SGD(seq.parameters(), lr=0.1), torch.optim.SGD(ours.parameters(), lr=0.1)
    for _ in range(3):
        x, r = torch.randn(3, 4, 13), torch.randn(3, 6, 13)
        ys, yo = seq[2](seq[1](seq[0](x)) + r), ours(x, r)
        torch.testing.assert_close(yo, ys, atol=1e-4, rtol=1e-4)
        for opt, y in ((opt_s, ys), (opt_o, yo)):
            opt.zero_grad()
            y.square().mean().backward()
            opt.step()
    torch.testing.assert_close(ours.bn.running_mean, seq[1].running_mean)
    torch.testing.assert_close(ours.bn.running_var, seq[1].running_var)
    seq.eval(), ours.eval()
    x = torch.randn(2, 4, 9)
    torch.testing.assert_close(ours(x), seq(x), atol=1e-4, rtol=1e-4)  # BN folded into the conv
    seq.load_state_dict({k.replace("conv.", "0.").replace("bn.", "1."): v for k, v in ours.state_dict().items()})
    assert [type(m) for m in ours.to_sequential()] == [nn.Conv1d, nn.BatchNorm1d, nn.ReLU]


class _Net(nn.Module):
    """A hand-written forward with a residual Conv1d block (found by torch.fx)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(3, 8, 3, padding=1), nn.BatchNorm1d(8), nn.ReLU())
        self.conv = nn.Conv1d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(8)
        self.plain = nn.Conv1d(8, 8, 1)

    def forward(self, x):
        x = self.stem(x)
        return self.plain(torch.relu(self.bn(self.conv(x)) + x))


@pytest.mark.parametrize("train", [True, False])
def test_swap_fuses_conv1d_chains(train):
    torch.manual_seed(0)
    model = _Net()
    original = copy.deepcopy(model)
    report = bigkernels.swap(model)
    froms = {row[0]: (row[1], row[2]) for row in report.swapped}
    assert froms["stem.0"] == ("nn.Conv1d+nn.BatchNorm1d+nn.ReLU", "bigkernels.nn.Conv1dBNAct")
    assert froms["conv"] == ("nn.Conv1d+nn.BatchNorm1d+add+nn.ReLU", "bigkernels.nn.Conv1dBNAct")
    assert ("plain", "nn.Conv1d", "no BatchNorm1d or activation follows it") in report.skipped
    model.train(train), original.train(train)
    x = torch.randn(4, 3, 21)
    torch.testing.assert_close(model(x), original(x), atol=1e-4, rtol=1e-4)
    original.load_state_dict(model.state_dict(), strict=True)


def test_bad_input_names_the_argument():
    x, w = torch.randn(2, 4, 9), torch.randn(6, 4, 3)
    with pytest.raises(ValueError, match="x must be 3-D"):
        ops.conv1d(x.unsqueeze(0), w)
    with pytest.raises(ValueError, match="weight must be 3-D"):
        ops.conv1d(x, w.unsqueeze(0))
    with pytest.raises(TypeError, match="stride must be an int"):
        ops.conv1d(x, w, stride=(1, 2))
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        ops.conv1d(x, w, dilation=0)
    with pytest.raises(ValueError, match="residual must have the output's shape"):
        ops.conv1d(x, w, residual=torch.randn(2, 6, 8))
    with pytest.raises(TypeError, match="bn must be an nn.BatchNorm1d"):
        from_modules(nn.Conv1d(4, 6, 3), nn.BatchNorm2d(6))


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(3)
    x, w, b, r = (torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
                  for shape in ((2, 4, 9), (6, 2, 3), (6,), (2, 6, 5)))
    assert torch.autograd.gradcheck(
        lambda x, w, b, r: ops.conv1d(x, w, b, stride=2, padding=1, groups=2, activation="silu", residual=r),
        (x, w, b, r))
