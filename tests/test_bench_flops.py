"""The benchmark's FLOP counter (bigkernels/bench/flops.py) against the
products written out by hand, and the model it counts left as it was."""
import torch
from torch import nn

from bigkernels.bench.flops import forward_flops
from bigkernels.models.gpt import GPT


def test_grouped_strided_conv_and_linear():
    model = nn.Sequential(nn.Conv2d(6, 12, 3, stride=2, padding=1, groups=3), nn.BatchNorm2d(12), nn.Flatten(),
                          nn.Linear(12 * 5 * 5, 7))
    conv = 2 * (2 * 12 * 5 * 5) * (3 * 3 * 6 // 3)
    linear = 2 * (2 * 7) * (12 * 5 * 5)
    assert forward_flops(model, torch.randn(2, 6, 9, 9)) == conv + linear


def test_bidirectional_projected_lstm_and_gru():
    lstm = nn.LSTM(5, 8, num_layers=2, bidirectional=True, proj_size=3, batch_first=True)
    T, B = 7, 4
    layer0 = 4 * 8 * (5 + 3) + 3 * 8
    layer1 = 4 * 8 * (2 * 3 + 3) + 3 * 8
    assert forward_flops(lstm, torch.randn(B, T, 5)) == 2 * 2 * T * B * (layer0 + layer1)
    gru = nn.GRU(5, 8)
    assert forward_flops(gru, torch.randn(T, B, 5)) == 2 * T * B * 3 * 8 * (5 + 8)


def test_multihead_attention_inside_an_encoder_layer_in_eval():
    # eval + no_grad would take torch's fused encoder path, which bypasses the hooks
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True).eval()
    B, L, E = 3, 10, 16
    attention = 2 * B * L * E * 3 * E + 4 * B * L * L * E + 2 * B * L * E * E
    ffn = 2 * B * L * E * 32 * 2
    with torch.no_grad():
        assert forward_flops(layer, torch.randn(B, L, E)) == attention + ffn


def test_gpt_counts_causal_attention_as_half_the_square():
    model = GPT(32, n_layer=1, n_head=4, n_kv_head=2, d_model=16, max_seq_len=16, kernels=False)
    B, S, E, kv = 2, 12, 16, 8
    projections = 2 * B * S * E * (E + kv + kv + E)
    core = 2 * B * S * S * E
    mlp = 2 * B * S * E * 4 * E * 2
    head = 2 * B * S * E * 32
    assert forward_flops(model, torch.randint(0, 32, (B, S))) == projections + core + mlp + head


def test_counting_leaves_the_model_untouched():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    forward_flops(model, torch.randn(2, 3, 8, 8) + 5)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
