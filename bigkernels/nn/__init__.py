"""Drop-in modules: torch's constructors, parameter names and forwards, so
torch checkpoints load both ways. Modules know nothing of backends: they call
bigkernels.ops, and the router picks the backend."""
from .attention import MultiheadAttention, TransformerDecoderLayer, TransformerEncoderLayer
from .conv import Conv2dBNAct, FusedConv2d, from_modules
from .conv1d import Conv1dBNAct, FusedConv1d
from .layernorm_lstm import LayerNormLSTM
from .linear import Linear
from .pool import MaxPool2d
from .rnn import GRU, LSTM, RNN
from .rnn_cells import GRUCell, LSTMCell, RNNCell

__all__ = ["Conv1dBNAct", "Conv2dBNAct", "FusedConv1d", "FusedConv2d", "GRU", "GRUCell", "LSTM", "LSTMCell",
           "LayerNormLSTM", "Linear", "MaxPool2d", "MultiheadAttention", "RNN", "RNNCell",
           "TransformerDecoderLayer", "TransformerEncoderLayer", "from_modules"]
