"""Drop-in modules: torch's constructors, parameter names and forwards, so
torch checkpoints load both ways. Modules know nothing of backends: they call
bigkernels.ops, and the router picks the backend."""
from .attention import MultiheadAttention, TransformerDecoderLayer, TransformerEncoderLayer  # noqa: F401
from .rnn import GRU, LSTM, RNN  # noqa: E402
from .rnn_cells import GRUCell, LSTMCell, RNNCell  # noqa: E402
from .conv import Conv2dBNAct, FusedConv2d, from_modules  # noqa: E402,F401
from .layernorm_lstm import LayerNormLSTM  # noqa: E402
