"""bias_act: bad input raises TypeError/ValueError naming the argument."""
import pytest
import torch

from bigkernels.ops import bias_act

X = torch.randn(2, 3, 4, 4)


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(x=[1.0]), TypeError, "x must be a torch.Tensor"),
    (dict(x=torch.ones(2, 3, dtype=torch.int64)), TypeError, "x must be float16"),
    (dict(bias=torch.randn(4)), ValueError, "bias must have shape [3]"),
    (dict(bias=torch.randn(3, 1)), ValueError, "bias must have shape"),
    (dict(residual=torch.randn(2, 3, 4)), ValueError, "residual must have x's shape"),
    (dict(activation="relu7"), ValueError, "activation must be one of"),
    (dict(activation=1), TypeError, "activation must be a str"),
    (dict(channel_dim=4), ValueError, "channel_dim=4 is out of range"),
    (dict(bias=torch.randn(3, dtype=torch.float64)), TypeError, "expected one dtype"),
    (dict(bias=torch.randn(3, device="meta")), ValueError, "bias is on meta"),
    (dict(negative_slope="0.1"), TypeError, "negative_slope must be a float"),
])
def test_bad_input(kwargs, error, words):
    args = dict(x=X, bias=None, residual=None, activation="relu")
    args.update(kwargs)
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        bias_act(args.pop("x"), **args)


def test_non_contiguous_input_is_served():
    x = torch.randn(4, 3, 5).transpose(0, 2)  # (5, 3, 4), no dense layout
    b = torch.randn(3)
    y = bias_act(x, b, activation="relu")
    torch.testing.assert_close(y, torch.relu(x + b.view(1, 3, 1)))
