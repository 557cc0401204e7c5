"""TransformerClassifier: a BERT-style encoder (a learned [CLS] token,
learned positions, post-norm nn.TransformerEncoder layers, a head on [CLS]),
over token ids or over real-valued patches (e.g. image patches)."""
import torch
from torch import nn

from ._common import finish, positive_int


class TransformerClassifier(nn.Module):
    def __init__(self, num_classes, *, vocab_size=None, input_dim=None, d_model=64, nhead=4, num_layers=2,
                 dim_feedforward=None, max_len=512, dropout=0.1, kernels=True):
        super().__init__()
        if (vocab_size is None) == (input_dim is None):
            raise ValueError("give exactly one of vocab_size (token ids) and input_dim (real-valued features)")
        for name, value in (("num_classes", num_classes), ("d_model", d_model), ("nhead", nhead),
                            ("num_layers", num_layers), ("max_len", max_len)):
            positive_int(name, value)
        if d_model % nhead:
            raise ValueError(f"d_model ({d_model}) must be a multiple of nhead ({nhead})")
        self.embed = nn.Embedding(vocab_size, d_model) if vocab_size is not None else nn.Linear(input_dim, d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model))
        self.pos = nn.Parameter(torch.randn(1, max_len + 1, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward or 4 * d_model, dropout,
                                           activation="gelu", batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)
        self.max_len = max_len
        finish(self, kernels)

    def forward(self, x, padding_mask=None):
        """x: (B, S) ids or (B, S, input_dim); padding_mask: (B, S), True = padding."""
        if x.shape[1] > self.max_len:
            raise ValueError(f"x has {x.shape[1]} positions, more than max_len={self.max_len}")
        h = self.embed(x)
        h = torch.cat([self.cls.expand(h.shape[0], -1, -1), h], dim=1) + self.pos[:, :h.shape[1] + 1]
        if padding_mask is not None:
            padding_mask = torch.cat([padding_mask.new_zeros(h.shape[0], 1), padding_mask], dim=1)
        h = self.encoder(h, src_key_padding_mask=padding_mask)
        return self.head(self.norm(h[:, 0]))
