"""Recurrent models: a sequence classifier and a (word- or character-level)
language model, built on nn.LSTM for swap()."""
import torch
from torch import nn

from ._common import finish, positive_int


class LSTMClassifier(nn.Module):
    """LSTM over (B, T, input_size) -> linear on the last timestep's output
    (both directions' final states when bidirectional)."""

    def __init__(self, input_size, hidden_size, num_classes, num_layers=1, *, bidirectional=False, dropout=0.0,
                 kernels=True):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_classes", num_classes), ("num_layers", num_layers)):
            positive_int(name, value)
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout,
                            bidirectional=bidirectional)
        self.fc = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)
        finish(self, kernels)

    def forward(self, x):
        if x.dim() != 3:
            raise ValueError(f"x must be (batch, time, features), got shape {tuple(x.shape)}")
        _, (h, _) = self.lstm(x)
        last = torch.cat([h[-2], h[-1]], dim=1) if self.lstm.bidirectional else h[-1]
        return self.fc(last)


class LSTMLanguageModel(nn.Module):
    """embedding -> LSTM -> linear decoder. tie_weights shares the decoder's
    weight with the embedding (Press & Wolf 2017), which needs
    embed_dim == hidden_size; the tied weight is saved once, as `encoder.weight`
    and `decoder.weight` both, as torch does for shared parameters."""

    def __init__(self, vocab_size, embed_dim=128, hidden_size=256, num_layers=2, *, dropout=0.0,
                 tie_weights=False, kernels=True):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("embed_dim", embed_dim), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            positive_int(name, value)
        if tie_weights and embed_dim != hidden_size:
            raise ValueError(f"tie_weights needs embed_dim == hidden_size, got {embed_dim} and {hidden_size}")
        self.encoder = nn.Embedding(vocab_size, embed_dim)
        self.drop = nn.Dropout(dropout)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.decoder = nn.Linear(hidden_size, vocab_size)
        if tie_weights:
            self.decoder.weight = self.encoder.weight
        finish(self, kernels)

    def forward(self, idx, state=None):
        """idx: (B, T) token ids -> logits (B, T, vocab), (h, c)."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, time), got shape {tuple(idx.shape)}")
        y, state = self.lstm(self.drop(self.encoder(idx)), state)
        return self.decoder(self.drop(y)), state
