"""swap()/unswap() machinery: matching, checkpoint keys, FX rewrite, report,
undo. The fused conv module is replaced here by `RefChain`, a plain-torch
module with the fused module's contract (fused(x, residual=None)), so these
tests hold whatever the conv family's state is; test_swap_families.py runs
the real modules."""
import copy
import logging

import pytest
import torch
from torch import nn

import bigkernels
from bigkernels import swap_rules


class RefChain(nn.Module):
    def __init__(self, conv, bn, act):
        super().__init__()
        self.conv, self.bn = conv, bn if bn is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, x, residual=None):
        y = self.bn(self.conv(x))
        return self.act(y if residual is None else y + residual)


@pytest.fixture
def ref_fuser(monkeypatch):
    made = []

    def fuse(conv, bn, act):
        made.append((conv, bn, act))
        return RefChain(conv, bn, act)

    monkeypatch.setattr(swap_rules, "fuse_conv", fuse)
    return made


class Block(nn.Module):
    """torchvision's BasicBlock: one ReLU module used twice, an in-place add."""

    def __init__(self, c, downsample=False):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.downsample = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c)) if downsample else None

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.SiLU()),
                         Block(8, downsample=True), Block(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


def test_sequential_and_fx_chains_are_found(ref_fuser):
    model = net()
    report = bigkernels.swap(model)
    names = [row[0] for row in report.swapped]
    assert names == ["0.0", "1.downsample.0", "1.conv1", "1.conv2", "2.conv1", "2.conv2", "5"]
    froms = dict((row[0], row[1]) for row in report.swapped)
    assert froms["1.conv2"] == "nn.Conv2d+nn.BatchNorm2d+add+nn.ReLU"
    assert froms["1.conv1"] == "nn.Conv2d+nn.BatchNorm2d+nn.ReLU"
    assert froms["1.downsample.0"] == "nn.Conv2d+nn.BatchNorm2d"
    assert isinstance(model[1].conv2, RefChain) and isinstance(model[0][1], nn.Identity)
    assert "forward" in model[1].__dict__  # the FX rewrite is an instance forward
    assert "0.0" in str(report) and "RefChain" in str(report)


@pytest.mark.parametrize("train", [True, False])
def test_outputs_gradients_and_running_stats_match(ref_fuser, train):
    model = net()
    original = copy.deepcopy(model)
    bigkernels.swap(model, linear=False)  # oneDNN's GEMM would round differently from nn.Linear's
    model.train(train), original.train(train)
    x = torch.randn(4, 3, 9, 9)
    y, y0 = model(x), original(x)
    torch.testing.assert_close(y, y0, rtol=0, atol=0)  # same modules, same order: bit-equal
    y.square().sum().backward()
    y0.square().sum().backward()
    grads = dict(model.named_parameters())
    for name, p in original.named_parameters():
        assert p.grad is not None
    sd, sd0 = model.state_dict(), original.state_dict()
    assert list(sd) == list(sd0) or set(sd) == set(sd0)
    for k in sd0:
        torch.testing.assert_close(sd[k], sd0[k], rtol=0, atol=0)
    assert grads  # the parameters are reachable under the swapped names too


def test_state_dict_loads_both_ways_strictly(ref_fuser):
    model, original = net(), net()
    for p in original.parameters():
        p.data.normal_()
    report = bigkernels.swap(model)
    assert report.state_dict_map["1.conv1.bn.weight"] == "1.bn1.weight"
    model.load_state_dict(original.state_dict(), strict=True)
    torch.testing.assert_close(model[1].conv1.bn.weight, original[1].bn1.weight)
    back = net()
    back.load_state_dict(model.state_dict(), strict=True)
    for k, v in original.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v)
    # A sub-module's own state_dict is mapped too (the hooks live on the parents).
    assert set(model[1].state_dict()) == set(original[1].state_dict())


def test_unswap_restores_modules_with_trained_values(ref_fuser):
    model = net()
    bigkernels.swap(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3, 9, 9)).sum().backward()
    opt.step()
    trained = {k: v.clone() for k, v in model.state_dict().items()}
    bigkernels.unswap(model)
    assert type(model[1].conv1) is nn.Conv2d and type(model[0][1]) is nn.BatchNorm2d
    assert "forward" not in model[1].__dict__
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, trained[k], rtol=0, atol=0)
    assert bigkernels.unswap(model) is model  # a second unswap is a no-op


class Untraceable(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.seq = nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU())

    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: torch.fx cannot trace it
            x = -x
        return self.seq(self.bn(self.conv(x)))


class ModeDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return y * 2 if self.training else y


def test_fx_failure_falls_back_to_sequential(ref_fuser):
    model = Untraceable()
    report = bigkernels.swap(model)
    assert [r[0] for r in report.swapped] == ["seq.0"]
    assert ("conv", "nn.Conv2d", "parent's forward is not traceable by torch.fx") in report.skipped
    assert any("could not trace" in n and "only nn.Sequential" in n for n in report.notes)
    model2 = ModeDependent()
    report2 = bigkernels.swap(model2)
    assert not report2.swapped and any("train and eval" in n for n in report2.notes)


def test_missing_family_module_is_a_skip_row(monkeypatch, caplog):
    import bigkernels.nn as bk_nn

    monkeypatch.delattr(bk_nn, "LSTM", raising=False)
    monkeypatch.delattr(bk_nn, "MultiheadAttention", raising=False)
    model = nn.Sequential(nn.LSTM(4, 6), nn.MultiheadAttention(8, 2))
    with caplog.at_level(logging.INFO, logger="bigkernels.swap"):
        report = bigkernels.swap(model)
    assert not report.swapped and type(model[0]) is nn.LSTM
    assert ("0", "nn.LSTM", "bigkernels.nn.LSTM does not exist in this build") in report.skipped
    assert any("bigkernels.nn.MultiheadAttention does not exist" in r[2] for r in report.skipped)
    assert "does not exist" in caplog.text


def test_family_flags_and_subclasses(ref_fuser):
    class MyConv(nn.Conv2d):
        pass

    model = nn.Sequential(MyConv(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.Conv2d(4, 4, 1), nn.ReLU()))
    assert not bigkernels.swap(model, conv=False).swapped
    report = bigkernels.swap(model)
    assert [r[0] for r in report.swapped] == ["2.0"]  # a Conv2d subclass may have its own forward: left alone


def test_bad_arguments():
    with pytest.raises(TypeError, match="model"):
        bigkernels.swap("resnet")
    with pytest.raises(TypeError, match="conv"):
        bigkernels.swap(nn.Linear(2, 2), conv="yes")
    with pytest.raises(ValueError, match="backend"):
        bigkernels.swap(nn.Linear(2, 2), backend="fastest")
    with pytest.raises(TypeError, match="model"):
        bigkernels.unswap(None)
    from bigkernels.swap import register_converter

    with pytest.raises(ValueError, match="family"):
        register_converter(nn.Linear, lambda m: m, family="mlp")
    with pytest.raises(TypeError, match="torch_type"):
        register_converter("Linear", lambda m: m, family="conv")


def test_forced_backend_is_reported_and_applied(ref_fuser):
    report = bigkernels.swap(net(), backend="torch")
    assert report.backend == "torch" and all(r[3] == "torch" for r in report.swapped)
    assert bigkernels.backends.forced_backend() == "torch"


def test_second_swap_and_copies_are_safe(ref_fuser):
    model = net()
    bigkernels.swap(model)
    x = torch.randn(2, 3, 9, 9)
    model.eval()
    y = model(x)
    again = bigkernels.swap(model)
    assert not again.swapped and not again.skipped
    torch.testing.assert_close(model(x), y, rtol=0, atol=0)
    twin = copy.deepcopy(model)
    torch.testing.assert_close(twin(x), y, rtol=0, atol=0)
    bigkernels.unswap(twin)  # must not touch the original's hooks
    assert set(model.state_dict()) == set(net().state_dict())
    assert type(twin[1].conv1) is nn.Conv2d and isinstance(model[1].conv1, RefChain)


def test_instance_forward_is_not_retraced(ref_fuser):
    block = Block(4)
    block.forward = lambda x: x  # a user's instance patch: tracing the class forward would drop it
    report = bigkernels.swap(block)
    assert not report.swapped and any("instance-level forward" in n for n in report.notes)
