"""LSTM ops: bad input raises TypeError/ValueError naming the argument."""
import pytest
import torch

from bigkernels.ops import lstm_layer

T, B, H = 3, 2, 4
GOOD = dict(x_proj=torch.randn(T, B, 4 * H), h0=torch.randn(B, H), c0=torch.randn(B, H), w_hh=torch.randn(4 * H, H))


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(x_proj=[1.0]), TypeError, "x_proj must be a torch.Tensor"),
    (dict(x_proj=torch.ones(T, B, 4 * H, dtype=torch.int64)), TypeError, "x_proj must be float16"),
    (dict(x_proj=torch.randn(T, B, 4 * H + 1)), ValueError, "x_proj must have shape"),
    (dict(x_proj=torch.randn(B, 4 * H)), ValueError, "x_proj must have shape"),
    (dict(h0=torch.randn(B + 1, H)), ValueError, "h0 must have shape"),
    (dict(c0=torch.randn(B, H + 1)), ValueError, "c0 must have shape"),
    (dict(w_hh=torch.randn(4 * H, H + 1)), ValueError, "w_hh must have shape"),
    (dict(w_hr=torch.randn(2, H + 1)), ValueError, "w_hr must have shape"),
    (dict(w_hr=torch.randn(H, H)), ValueError, "proj_size < hidden_size"),
    (dict(h0=torch.randn(B, H, dtype=torch.float64)), TypeError, "expected one dtype"),
    (dict(c0=torch.randn(B, H, device="meta")), ValueError, "c0 is on meta"),
    (dict(reverse=1), TypeError, "reverse must be a bool"),
])
def test_bad_input(kwargs, error, words):
    args = dict(GOOD, w_hr=None, reverse=False)
    args.update(kwargs)
    with pytest.raises(error, match=words):
        lstm_layer(args.pop("x_proj"), args.pop("h0"), args.pop("c0"), args.pop("w_hh"), **args)
