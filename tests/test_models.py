"""bigkernels.models: shapes, the kernels=True/False pair (same keys, same
outputs), GPT's KV cache and RoPE, bad arguments, and that each family learns
(a fixed batch's loss falls) in a few steps."""
import pytest
import torch
import torch.nn.functional as F

from bigkernels import models as M
from bigkernels.models.gpt import rotate
from bigkernels.testing.tolerance import assert_close


def _builders():
    return {
        "cnn": (lambda k: M.SimpleCNN(10, 1, width=8, kernels=k), lambda: torch.randn(4, 1, 8, 8), 10),
        "resnet18": (lambda k: M.resnet18(10, 1, small_input=True, width=8, kernels=k),
                     lambda: torch.randn(2, 1, 8, 8), 10),
        "resnet50": (lambda k: M.resnet50(7, 3, width=4, kernels=k), lambda: torch.randn(2, 3, 32, 32), 7),
        "lstm": (lambda k: M.LSTMClassifier(8, 16, 10, 2, bidirectional=True, kernels=k),
                 lambda: torch.randn(4, 8, 8), 10),
        "transformer": (lambda k: M.TransformerClassifier(10, input_dim=16, d_model=32, nhead=4, kernels=k),
                        lambda: torch.randn(4, 4, 16), 10),
        "gpt": (lambda k: M.GPT(33, 2, 4, 2, 32, 16, kernels=k), lambda: torch.randint(0, 33, (2, 9)), 33),
    }


@pytest.mark.parametrize("name", list(_builders()))
def test_kernels_variant_has_same_keys_and_outputs(name):
    build, make_input, classes = _builders()[name]
    torch.manual_seed(0)
    plain, ours = build(False), build(True)
    assert plain.swap_report is None and ours.swap_report is not None
    assert list(plain.state_dict()) == list(ours.state_dict()) or set(plain.state_dict()) == set(ours.state_dict())
    ours.load_state_dict(plain.state_dict(), strict=True)
    plain.eval(), ours.eval()
    x = make_input()
    y_ref = plain.double()(x.double() if x.is_floating_point() else x)
    plain.float()
    y_torch, y = plain(x), ours(x)
    y, y_torch, y_ref = (t[0] if isinstance(t, tuple) else t for t in (y, y_torch, y_ref))
    assert y.shape[-1] == classes
    assert_close(y, y_ref, y_torch, name=f"{name} logits")


def test_resnet_names_and_small_input():
    m = M.resnet18(10, 3, kernels=False)
    keys = m.state_dict()
    assert "layer4.1.bn2.running_var" in keys and "layer2.0.downsample.1.weight" in keys and "fc.bias" in keys
    assert sum(p.numel() for p in m.parameters()) == 11_181_642  # torchvision's resnet18(num_classes=10)
    small = M.resnet18(10, 3, small_input=True, width=8, kernels=False)
    assert small.conv1.kernel_size == (3, 3) and isinstance(small.maxpool, torch.nn.Identity)
    assert small(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("kernels", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gpt_greedy_generation_same_with_and_without_cache(kernels, seed, monkeypatch):
    import bigkernels.ops as ops

    calls = []
    if hasattr(ops, "attention_decode"):
        decode = ops.attention_decode
        monkeypatch.setattr(ops, "attention_decode", lambda *a, **k: calls.append(1) or decode(*a, **k))
    torch.manual_seed(seed)
    gpt = M.GPT(40, 2, 4, 2, 32, 48, kernels=kernels).eval()
    prompt = torch.randint(0, 40, (3, 7))
    with_cache = gpt.generate(prompt, 30, temperature=0)
    without = gpt.generate(prompt, 30, temperature=0, use_cache=False)
    assert with_cache.shape == (3, 37)
    assert torch.equal(with_cache, without)
    # 29 decode steps x 2 layers go through attention_decode with kernels=True (when the build has it).
    assert len(calls) == (29 * 2 if kernels and hasattr(ops, "attention_decode") else 0)
    # And the cached logits are the full forward's, position by position.
    cache = gpt.new_cache(3)
    gpt(with_cache[:, :10], cache, 0)
    step = gpt(with_cache[:, 10:12], cache, 10)
    full = gpt(with_cache[:, :12])
    torch.testing.assert_close(step, full[:, 10:12], rtol=1e-4, atol=1e-5)


def test_gpt_sampling_and_rope():
    torch.manual_seed(0)
    gpt = M.GPT(20, 1, 2, 1, 16, 32).eval()
    out = gpt.generate(torch.zeros(2, 1, dtype=torch.long), 10, temperature=0.8, top_k=1)
    assert torch.equal(out, gpt.generate(torch.zeros(2, 1, dtype=torch.long), 10, temperature=0))  # top_k=1 = greedy
    # RoPE: q.k depends on the positions' difference only.
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)  # head dim 16 / 2
    c, s = gpt.rope_cos, gpt.rope_sin
    dot = [(rotate(q, c[i:i + 1], s[i:i + 1]) * rotate(k, c[i + 3:i + 4], s[i + 3:i + 4])).sum() for i in (0, 5, 20)]
    torch.testing.assert_close(dot[0], dot[1]), torch.testing.assert_close(dot[0], dot[2])


def test_tied_embeddings():
    lm = M.LSTMLanguageModel(30, 16, 16, 1, tie_weights=True, kernels=False)
    assert lm.decoder.weight is lm.encoder.weight
    logits, (h, c) = lm(torch.randint(0, 30, (2, 5)))
    assert logits.shape == (2, 5, 30) and h.shape == (1, 2, 16)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_kv_head"):
        M.GPT(10, 1, 4, 3, 32, 8)
    with pytest.raises(ValueError, match="max_seq_len"):
        M.GPT(10, 1, 2, 1, 16, 8).generate(torch.zeros(1, 4, dtype=torch.long), 5)
    with pytest.raises(TypeError, match="num_classes"):
        M.SimpleCNN("10")
    with pytest.raises(ValueError, match="tie_weights"):
        M.LSTMLanguageModel(10, 8, 16, tie_weights=True)
    with pytest.raises(ValueError, match="vocab_size"):
        M.TransformerClassifier(3)
    with pytest.raises(TypeError, match="kernels"):
        M.SimpleCNN(kernels="yes")
    with pytest.raises(ValueError, match="top_k"):
        M.GPT(10, 1, 2, 1, 16, 8).generate(torch.zeros(1, 1, dtype=torch.long), 2, top_k=0)


@pytest.mark.parametrize("name", ["cnn", "resnet18", "lstm", "transformer", "gpt"])
def test_each_family_learns_a_fixed_batch(name):
    build, make_input, classes = _builders()[name]
    torch.manual_seed(0)
    model = build(True)
    x = make_input()
    target = torch.randint(0, classes, x.shape[:2] if name == "gpt" else x.shape[:1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, classes), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
