"""LayerNormLSTM: nn.LSTM's constructor and forward contract (batched or
unbatched, batch_first, optional (h0, c0), dropout between layers,
bidirectional; no proj_size, no PackedSequence yet), with layer
normalisation of the input and recurrent pre-activations and of the cell
(Ba et al. 2016, as in haste's LayerNormLSTM). Parameters: nn.LSTM's names
plus ln_ih_{weight,bias}_l{k}, ln_hh_*, ln_c_* (gains 1, biases 0 at init)."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .. import ops


class LayerNormLSTM(nn.Module):
    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, eps=1e-5, device=None, dtype=None):
        super().__init__()
        # torch's own validation (the same messages as nn.LSTM), on a meta module
        nn.LSTM(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, device="meta")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.eps = bidirectional, eps
        kw = dict(device=device, dtype=dtype)
        D, H = 2 if bidirectional else 1, hidden_size
        for layer in range(num_layers):
            for sfx in ("", "_reverse")[:D]:
                in_size = input_size if layer == 0 else D * H
                names = [(f"weight_ih_l{layer}{sfx}", (4 * H, in_size)), (f"weight_hh_l{layer}{sfx}", (4 * H, H))]
                if bias:
                    names += [(f"bias_ih_l{layer}{sfx}", (4 * H,)), (f"bias_hh_l{layer}{sfx}", (4 * H,))]
                for name, shape in names:
                    self.register_parameter(name, nn.Parameter(torch.empty(shape, **kw)))
                for part, size in (("ih", 4 * H), ("hh", 4 * H), ("c", H)):
                    self.register_parameter(f"ln_{part}_weight_l{layer}{sfx}", nn.Parameter(torch.ones(size, **kw)))
                    self.register_parameter(f"ln_{part}_bias_l{layer}{sfx}", nn.Parameter(torch.zeros(size, **kw)))
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for name, p in self.named_parameters():
            if name.startswith("ln_"):
                nn.init.ones_(p) if "_weight_" in name else nn.init.zeros_(p)
            else:
                nn.init.uniform_(p, -stdv, stdv)

    def _p(self, stem, layer, sfx):
        return getattr(self, f"{stem}_l{layer}{sfx}")

    def forward(self, input, hx=None):
        if input.dim() not in (2, 3):
            raise ValueError(f"LayerNormLSTM: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(0 if self.batch_first else 1)
        x = x.transpose(0, 1) if self.batch_first else x
        if x.size(-1) != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                               f"got {x.size(-1)}")
        D, H, B = 2 if self.bidirectional else 1, self.hidden_size, x.size(1)
        if hx is None:
            zeros = torch.zeros(self.num_layers * D, B, H, dtype=x.dtype, device=x.device)
            hx = (zeros, zeros)
        elif not batched:
            hx = (hx[0].unsqueeze(1), hx[1].unsqueeze(1))
        for h, name in zip(hx, ("hidden[0]", "hidden[1]")):
            if tuple(h.shape) != (self.num_layers * D, B, H):
                raise RuntimeError(f"Expected {name} size {(self.num_layers * D, B, H)}, got {list(h.shape)}")
        inp, hs, cs = x, [], []
        for layer in range(self.num_layers):
            ys = []
            for d, sfx in enumerate(("", "_reverse")[:D]):
                p = lambda stem: self._p(stem, layer, sfx)  # noqa: E731
                bias = p("bias_ih") + p("bias_hh") if self.bias else None
                x_proj = F.layer_norm(F.linear(inp, p("weight_ih")), (4 * H,), p("ln_ih_weight"), p("ln_ih_bias"),
                                      self.eps)
                x_proj = x_proj + bias if bias is not None else x_proj
                k = layer * D + d
                y, h, c = ops.layernorm_lstm_layer(x_proj, hx[0][k], hx[1][k], p("weight_hh"),
                                                   (p("ln_hh_weight"), p("ln_hh_bias")),
                                                   (p("ln_c_weight"), p("ln_c_bias")), eps=self.eps,
                                                   reverse=d == 1)
                ys.append(y)
                hs.append(h)
                cs.append(c)
            inp = ys[0] if D == 1 else torch.cat(ys, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                inp = F.dropout(inp, self.dropout, True)
        y, h, c = inp, torch.stack(hs), torch.stack(cs)
        y = y.transpose(0, 1) if self.batch_first else y
        if not batched:
            y, h, c = y.squeeze(0 if self.batch_first else 1), h.squeeze(1), c.squeeze(1)
        return y, (h, c)
