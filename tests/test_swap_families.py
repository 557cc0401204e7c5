"""swap() with the real family modules: outputs and gradients against the
float64 reference within the tolerance rule (torch's own fp32 error x 2 +
floor), in train and eval, checkpoint keys both ways, unswap."""
import copy

import pytest
import torch
from torch import nn

import bigkernels
import bigkernels.nn as bk_nn
from bigkernels import models as M
from bigkernels.testing.tolerance import assert_close


def _need(*names):
    missing = [n for n in names if not hasattr(bk_nn, n)]
    if missing:
        pytest.skip(f"bigkernels.nn lacks {missing} in this build")


def _first(out):
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def compare(original, make_inputs, train, *, expect_swapped):
    """Swap a copy of `original`; run it, the original (torch fp32) and a
    float64 copy on the same inputs; compare outputs and parameter grads."""
    torch.manual_seed(0)
    ref = copy.deepcopy(original).double()
    ours = copy.deepcopy(original)
    report = bigkernels.swap(ours)
    assert len(report.swapped) == expect_swapped and not report.skipped, str(report)
    inputs = make_inputs()
    results = []
    for model, cast in ((ours, False), (original, False), (ref, True)):
        model.train(train)
        args = [x.detach().double() if cast and x.is_floating_point() else x.detach().clone() for x in inputs]
        for a in args:
            if a.is_floating_point():
                a.requires_grad_(True)
        out = _first(model(*args))
        out.square().sum().backward()
        grads = {report.state_dict_map.get(n, n) if model is ours else n: p.grad
                 for n, p in model.named_parameters() if p.grad is not None}
        results.append((out, grads, [a.grad for a in args if a.is_floating_point()]))
    (y, g, gx), (y_t, g_t, gx_t), (y_r, g_r, gx_r) = results
    assert_close(y, y_r, y_t, name="output", scale=max(1.0, y_r.abs().max().item()))
    assert set(g) == set(g_t), set(g) ^ set(g_t)
    for name in g_r:
        assert_close(g[name], g_r[name], g_t[name], name=f"grad {name}", scale=max(1.0, g_r[name].abs().max().item()))
    for a, r, t in zip(gx, gx_r, gx_t):
        assert_close(a, r, t, name="input grad", scale=max(1.0, r.abs().max().item()))
    return ours, report


RNNS = {
    "LSTM": (lambda: nn.LSTM(5, 7, 2, batch_first=True, bidirectional=True), lambda: (torch.randn(3, 6, 5),)),
    "LSTM-proj": (lambda: nn.LSTM(5, 8, 1, proj_size=4), lambda: (torch.randn(6, 3, 5),)),
    "GRU": (lambda: nn.GRU(5, 7, 2), lambda: (torch.randn(6, 3, 5),)),
    "RNN": (lambda: nn.RNN(5, 7, 1, nonlinearity="relu", batch_first=True), lambda: (torch.randn(3, 6, 5),)),
    "LSTMCell": (lambda: nn.LSTMCell(5, 7), lambda: (torch.randn(3, 5),)),
    "GRUCell": (lambda: nn.GRUCell(5, 7), lambda: (torch.randn(3, 5),)),
    "RNNCell": (lambda: nn.RNNCell(5, 7), lambda: (torch.randn(3, 5),)),
}


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("kind", list(RNNS))
def test_recurrent_modules(kind, train):
    _need(kind.split("-")[0])
    build, inputs = RNNS[kind]
    torch.manual_seed(0)
    ours, report = compare(nn.Sequential(build()), inputs, train, expect_swapped=1)
    assert type(ours[0]).__name__ == kind.split("-")[0] and type(ours[0]).__module__.startswith("bigkernels.nn")


def _count_attention_calls(monkeypatch):
    calls = []
    forward = bk_nn.MultiheadAttention.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(bk_nn.MultiheadAttention, "forward", counting)
    return calls


@pytest.mark.parametrize("train", [True, False])
def test_attention_inside_transformer_layers(monkeypatch, train):
    _need("MultiheadAttention")
    calls = _count_attention_calls(monkeypatch)
    torch.manual_seed(0)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True), 2,
                                    enable_nested_tensor=False)
    # and each layer's linear1/linear2 become bigkernels.nn.Linear
    compare(encoder, lambda: (torch.randn(2, 5, 16),), train, expect_swapped=6)
    assert len(calls) == 2  # both layers ran our attention, fast path or not
    transformer = nn.Transformer(16, 2, 1, 1, 32, dropout=0.0, batch_first=True)
    calls.clear()
    compare(transformer, lambda: (torch.randn(2, 5, 16), torch.randn(2, 4, 16)), train, expect_swapped=7)
    assert len(calls) == 3


def test_encoder_fast_path_cannot_bypass_ours(monkeypatch):
    """Eval + no_grad + batch_first is where torch runs its fused C++ layer."""
    _need("MultiheadAttention")
    calls = _count_attention_calls(monkeypatch)
    layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True).eval()
    ours = copy.deepcopy(layer)
    bigkernels.swap(ours)
    x = torch.randn(2, 5, 16)
    with torch.no_grad():
        y, y_torch = ours(x), layer(x)
    assert calls and torch.allclose(y, y_torch, atol=1e-5)
    bigkernels.unswap(ours)
    assert ours.activation_relu_or_gelu and type(ours.self_attn) is nn.MultiheadAttention


def test_encoder_nested_tensor_path_is_off(monkeypatch):
    """A padded batch in eval under no_grad is where TransformerEncoder builds a NestedTensor."""
    _need("MultiheadAttention")
    calls = _count_attention_calls(monkeypatch)
    encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32, batch_first=True), 2).eval()
    assert encoder.use_nested_tensor
    ours = copy.deepcopy(encoder)
    bigkernels.swap(ours)
    x = torch.randn(3, 6, 16)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[0, 4:] = pad[2, 1:] = True
    with torch.no_grad():
        y, y_torch = ours(x, src_key_padding_mask=pad), encoder(x, src_key_padding_mask=pad)
    assert len(calls) == 2 and not y.is_nested
    torch.testing.assert_close(y[~pad], y_torch[~pad], rtol=1e-4, atol=1e-5)  # torch zeroes padded rows
    bigkernels.unswap(ours)
    assert ours.use_nested_tensor


@pytest.mark.parametrize("train", [True, False])
def test_resnet_conv_chains(train):
    _need("Conv2dBNAct", "FusedConv2d")
    torch.manual_seed(0)
    original = M.resnet18(10, 2, small_input=True, width=4, kernels=False)
    # 16x16 x batch 4: layer4's train-mode BN sees 16 values per channel. At
    # 8x8 x batch 2 (2 values) the gradients are ill-conditioned: torch's own
    # fp32 error reached 0.018 and the cpu backend's 0.053 (2.9x).
    ours, report = compare(original, lambda: (torch.randn(4, 2, 16, 16),), train, expect_swapped=21)
    assert type(ours.layer1[0].conv2).__name__ == "Conv2dBNAct"
    # BN running statistics moved identically (train) or not at all (eval).
    sd, sd0 = ours.state_dict(), original.state_dict()
    assert set(sd) == set(sd0)
    for k in sd0:
        torch.testing.assert_close(sd[k], sd0[k], rtol=1e-5, atol=1e-6)


def test_checkpoints_optimizer_and_unswap_with_real_modules():
    _need("Conv2dBNAct", "LSTM")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Unflatten(1, (4, 16)),
                          nn.LSTM(16, 8, batch_first=True))
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.1)  # built before the swap: must keep training the model
    fresh = copy.deepcopy(model)
    bigkernels.swap(model)
    before = [p.detach().clone() for p in params]
    out = model(torch.randn(3, 2, 4, 4))[0]
    out.sum().backward()
    opt.step()
    assert all(not torch.equal(a, p) for a, p in zip(before, params))  # the swapped model used these tensors
    fresh.load_state_dict(model.state_dict(), strict=True)
    model.load_state_dict(fresh.state_dict(), strict=True)
    bigkernels.unswap(model)
    assert type(model[0]) is nn.Conv2d and type(model[5]) is nn.LSTM
    for k, v in fresh.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0)


class _CrossAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 4, kdim=8, vdim=12, add_bias_kv=True, batch_first=True)

    def forward(self, q, k, v):
        return self.attn(q, k, v, need_weights=False)[0]


@pytest.mark.parametrize("train", [True, False])
def test_multihead_attention_with_separate_kv_dims(train):
    """q/k/v_proj_weight (kdim, vdim != embed_dim) and bias_k/bias_v keep their names."""
    _need("MultiheadAttention")
    ours, report = compare(_CrossAttention(), lambda: (torch.randn(2, 5, 16), torch.randn(2, 7, 8),
                                                       torch.randn(2, 7, 12)), train, expect_swapped=1)
    assert {"attn.q_proj_weight", "attn.bias_k"} <= set(ours.state_dict())


class _FunctionalBlock(nn.Module):
    """Functional activations, a conv without BN into a residual add."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = torch.nn.functional.silu(self.bn1(self.conv1(x)))
        return torch.relu(x + self.conv2(y))


@pytest.mark.parametrize("train", [True, False])
def test_functional_activations_and_fused_conv_with_residual(train):
    _need("Conv2dBNAct", "FusedConv2d")
    ours, report = compare(_FunctionalBlock(), lambda: (torch.randn(2, 4, 6, 6),), train, expect_swapped=2)
    rows = {r[0]: r for r in report.swapped}
    assert rows["conv1"][1:3] == ("nn.Conv2d+nn.BatchNorm2d+nn.SiLU", "bigkernels.nn.Conv2dBNAct")
    assert rows["conv2"][1:3] == ("nn.Conv2d+add+nn.ReLU", "bigkernels.nn.FusedConv2d")
