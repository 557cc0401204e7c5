"""FLOPs of one forward of a model, counted with forward hooks, so that whole
models and networks can report % of the practical peak beside their ratios.
2 x multiply-adds of the products only (convolutions, linear layers,
recurrent layers, attention); normalisations, activations and pooling are
not counted. A training step counts 3x (forward + the backward's data and
weight products)."""
import copy

import torch
from torch import nn

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _conv(m, inputs, out):
    k = 1
    for size in m.kernel_size:
        k *= size
    return 2 * out.numel() * k * m.in_channels // m.groups


def _linear(m, inputs, out):
    return 2 * out.numel() * m.in_features


def _recurrent(m, inputs, out):
    """Per layer and direction: the input and recurrent products of every
    gate for every step, plus the projection."""
    x = inputs[0]
    if x.dim() == 2:  # unbatched [T, I]
        steps, batch = x.shape[0], 1
    else:
        steps, batch = (x.shape[1], x.shape[0]) if m.batch_first else (x.shape[0], x.shape[1])
    D = 2 if m.bidirectional else 1
    H = m.hidden_size
    P = m.proj_size or H
    G = _GATES[m.mode] * H
    total = 0
    for layer in range(m.num_layers):
        in_size = m.input_size if layer == 0 else D * P
        per_step = G * (in_size + P) + (P * H if m.proj_size else 0)
        total += D * 2 * steps * batch * per_step
    return total


def _multihead(m, inputs, out):
    """In-projection, scores and weighted values of every head, out-projection
    (nn.MultiheadAttention reads out_proj's weight directly: its hook never fires)."""
    q, k = inputs[0], inputs[1]
    if m.batch_first:
        B, L, S = q.shape[0], q.shape[1], k.shape[1]
    else:
        L, S, B = q.shape[0], k.shape[0], (q.shape[1] if q.dim() == 3 else 1)
    E = m.embed_dim
    return 2 * B * (L * E * E + S * E * (m.kdim + m.vdim)) + 4 * B * L * S * E + 2 * B * L * E * E


def _causal_core(m, inputs, out):
    """A causal self-attention block whose projections are Linear modules
    (counted by their own hooks): scores and weighted values, half the square."""
    x = inputs[0]
    B, S, E = x.shape
    return 2 * B * S * S * E


def _counter(m):
    from ..models.gpt import Attention as GPTAttention

    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return _conv
    if isinstance(m, nn.Linear) and not isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear):
        return _linear
    if isinstance(m, nn.RNNBase):
        return _recurrent
    if isinstance(m, nn.MultiheadAttention):
        return _multihead
    if isinstance(m, GPTAttention):
        return _causal_core
    return None


def forward_flops(model, *inputs):
    """FLOPs of model(*inputs), counted on a copy in training mode with
    gradients on: torch's fused inference paths (TransformerEncoderLayer's
    fast path) would bypass the hooks, and the model's own buffers
    (BatchNorm's running statistics) stay untouched."""
    probe = copy.deepcopy(model).train()
    total = [0]
    handles = []
    for m in probe.modules():
        count = _counter(m)
        if count is not None:
            handles.append(m.register_forward_hook(
                lambda mod, i, o, count=count: total.__setitem__(0, total[0] + count(mod, i, o))))
    try:
        with torch.enable_grad():
            probe(*inputs)
    finally:
        for h in handles:
            h.remove()
    return float(total[0])


def lstm_flops(T, B, in_size, H, layers, proj=0, gates=4):
    """Forward FLOPs of a unidirectional stack: the input projection and the
    recurrent product of every gate, plus the projection (proj > 0)."""
    P = proj or H
    total = 0
    for layer in range(layers):
        total += 2 * T * B * gates * H * ((in_size if layer == 0 else P) + P) + (2 * T * B * P * H if proj else 0)
    return total
