"""Drop-in LSTM, GRU and RNN: torch's constructors, validation, parameter
names, initialisation and forward contract (batched/unbatched, batch_first,
optional states, PackedSequence in and out, dropout between layers,
bidirectional, proj_size), running on bigkernels' whole-layer ops.

They derive from torch.nn.RNNBase (which owns the parameters, init,
state_dict and flatten_parameters), not from nn.LSTM/GRU/RNN: Dynamo
graph-breaks on instances of those three on purpose, and our forward is
custom ops that trace cleanly under torch.compile(fullgraph=True)."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .. import ops


class _Recurrent(nn.RNNBase):
    _states = 1  # LSTM: 2 (h, c)

    def _state_sizes(self):
        out = self.proj_size if self.proj_size > 0 else self.hidden_size
        return (out, self.hidden_size)[: self._states]

    def _run(self, x, states):
        """x [T, B, I]; states: tuple of [L*D, B, *]. Returns y, new states."""
        weights = [getattr(self, name) for name in self._flat_weights_names]
        return ops.rnn_stack(self.mode, x, states, weights, has_biases=self.bias, num_layers=self.num_layers,
                             dropout=self.dropout, train=self.training, bidirectional=self.bidirectional,
                             proj=self.proj_size > 0)

    def _check_states(self, hx, batch, batched):
        D = 2 if self.bidirectional else 1
        names = ("hidden[0]", "hidden[1]") if self._states == 2 else ("hidden",)
        hx = (hx,) if self._states == 1 else tuple(hx)
        out = []
        for h, size, name in zip(hx, self._state_sizes(), names):
            if batched and h.dim() != 3:
                raise RuntimeError(f"For batched 3-D input, {name} should also be 3-D but got {h.dim()}-D tensor")
            if not batched and h.dim() != 2:
                raise RuntimeError(f"For unbatched 2-D input, {name} should also be 2-D but got {h.dim()}-D tensor")
            h = h if batched else h.unsqueeze(1)
            expected = (self.num_layers * D, batch, size)
            self.check_hidden_size(h, expected, f"Expected {name} size {{}}, got {{}}")
            out.append(h)
        return tuple(out)

    def _zeros(self, batch, like):
        D = 2 if self.bidirectional else 1
        return tuple(torch.zeros(self.num_layers * D, batch, s, dtype=like.dtype, device=like.device)
                     for s in self._state_sizes())

    def _result(self, states):
        return states if self._states == 2 else states[0]

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if input.dim() not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1 if not self.batch_first else 0)
        if self.batch_first:
            x = x.transpose(0, 1)
        self.check_input(x, None)
        states = self._zeros(x.size(1), x) if hx is None else self._check_states(hx, x.size(1), batched)
        y, states = self._run(x, states)
        if self.batch_first:
            y = y.transpose(0, 1)
        if not batched:
            y = y.squeeze(0 if self.batch_first else 1)
            states = tuple(s.squeeze(1) for s in states)
        return y, self._result(states)

    def _forward_packed(self, packed, hx):
        """Sequences of equal length run together, one group per distinct
        length (all in one group when lengths are equal); the states come
        back in the user's batch order, as torch's do."""
        self.check_input(packed.data, packed.batch_sizes)
        x, lengths = pad_packed_sequence(packed)
        B = x.size(1)
        states = self._zeros(B, x) if hx is None else self._check_states(hx, B, True)
        D = 2 if self.bidirectional else 1
        out = self.proj_size if self.proj_size > 0 else self.hidden_size
        y = x.new_zeros(x.size(0), B, D * out)
        finals = [torch.empty_like(s) for s in states]
        for length in torch.unique(lengths).tolist():
            idx = (lengths == length).nonzero().flatten().to(x.device)
            yg, sg = self._run(x[:length, idx], tuple(s[:, idx] for s in states))
            y = y.index_copy(1, idx, F.pad(yg, (0, 0, 0, 0, 0, x.size(0) - length)))
            finals = [f.index_copy(1, idx, s) for f, s in zip(finals, sg)]
        order = packed.sorted_indices
        if order is not None:
            y, lengths = y[:, order], lengths[order.cpu()]
        data = pack_padded_sequence(y, lengths, enforce_sorted=True).data
        result = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        return result, self._result(tuple(finals))


class LSTM(_Recurrent):
    """torch.nn.LSTM's contract on bigkernels.ops.rnn_stack (lstm_layer per layer)."""

    _states = 2

    def __init__(self, *args, **kwargs):
        super().__init__("LSTM", *args, **kwargs)


class GRU(_Recurrent):
    """torch.nn.GRU's contract on bigkernels.ops.rnn_stack (gru_layer per layer)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class RNN(_Recurrent):
    """torch.nn.RNN's contract (tanh or relu) on bigkernels.ops.rnn_stack (rnn_layer per layer)."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            self.nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            self.nonlinearity = kwargs.pop("nonlinearity", "tanh")
        modes = {"tanh": "RNN_TANH", "relu": "RNN_RELU"}
        if self.nonlinearity not in modes:
            raise ValueError(f"Unknown nonlinearity '{self.nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(modes[self.nonlinearity], *args, **kwargs)

