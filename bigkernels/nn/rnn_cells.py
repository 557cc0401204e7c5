"""Drop-in LSTMCell, GRUCell and RNNCell: subclasses of torch's cells (same
constructor, parameters, init and checkpoints) whose forward runs
bigkernels.ops.lstm_cell / gru_cell / rnn_cell."""
import torch
from torch import nn

from .. import ops


def _input(cell, x, hx):
    if x.dim() not in (1, 2):
        raise ValueError(f"{type(cell).__name__}: Expected input to be 1D or 2D, got {x.dim()}D instead")
    if hx is not None:
        for h in (hx if isinstance(hx, tuple) else (hx,)):
            if h.dim() != x.dim():
                raise ValueError(f"{type(cell).__name__}: Expected hidden to be {x.dim()}D, got {h.dim()}D instead")
    return x.dim() == 2


def _zeros(cell, x):
    shape = (x.size(0), cell.hidden_size) if x.dim() == 2 else (cell.hidden_size,)
    return torch.zeros(shape, dtype=x.dtype, device=x.device)


class LSTMCell(nn.LSTMCell):
    def forward(self, input, hx=None):
        _input(self, input, hx)
        h, c = (_zeros(self, input), _zeros(self, input)) if hx is None else hx
        return ops.lstm_cell(input, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(nn.GRUCell):
    def forward(self, input, hx=None):
        _input(self, input, hx)
        h = _zeros(self, input) if hx is None else hx
        return ops.gru_cell(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class RNNCell(nn.RNNCell):
    def forward(self, input, hx=None):
        _input(self, input, hx)
        h = _zeros(self, input) if hx is None else hx
        return ops.rnn_cell(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                            nonlinearity=self.nonlinearity)
