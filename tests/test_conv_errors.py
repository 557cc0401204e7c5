"""conv2d: bad input raises TypeError/ValueError naming the argument."""
import pytest
import torch

from bigkernels.ops import conv2d

X, W = torch.randn(2, 4, 8, 8), torch.randn(6, 4, 3, 3)


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(x=[1.0]), TypeError, "x must be a torch.Tensor"),
    (dict(x=torch.ones(2, 4, 8, 8, dtype=torch.int64)), TypeError, "x must be float16"),
    (dict(x=torch.randn(4, 8)), ValueError, "x must be 4-D"),
    (dict(weight=torch.randn(6, 4, 3)), ValueError, "weight must be 4-D"),
    (dict(weight=torch.randn(6, 3, 3, 3)), ValueError, "weight expects 3 input channels"),
    (dict(groups=3), ValueError, "groups=3 must divide"),
    (dict(groups=0), ValueError, "groups=0 must divide"),
    (dict(groups=2.0), TypeError, "groups must be an int"),
    (dict(weight=torch.randn(6, 4, 11, 3)), ValueError, "larger than x's padded height"),
    (dict(weight=torch.randn(6, 4, 3, 9), padding=0), ValueError, "larger than x's padded width"),
    (dict(bias=torch.randn(5)), ValueError, r"bias must have shape \[6\]"),
    (dict(residual=torch.randn(2, 6, 8, 8)), ValueError, r"residual must have the output's shape \[2, 6, 6, 6\]"),
    (dict(activation="relu7"), ValueError, "activation must be one of"),
    (dict(activation=None), TypeError, "activation must be a str"),
    (dict(stride=0), ValueError, "stride must be >= 1"),
    (dict(stride=(1, 2, 3)), TypeError, "stride must be an int or a pair"),
    (dict(padding=-1), ValueError, "padding must be >= 0"),
    (dict(padding="full"), ValueError, "padding must be an int, a pair, 'same' or 'valid'"),
    (dict(padding="same", stride=2), ValueError, "padding='same' needs stride 1"),
    (dict(dilation=0), ValueError, "dilation must be >= 1"),
    (dict(weight=W.double()), TypeError, "expected one dtype"),
    (dict(bias=torch.randn(6, device="meta")), ValueError, "bias is on meta"),
    (dict(weight=W.to("meta")), ValueError, "weight is on meta"),
    (dict(negative_slope="0.1"), TypeError, "negative_slope must be a float"),
])
def test_bad_input(kwargs, error, words):
    args = dict(x=X, weight=W, bias=None, stride=1, padding=0, dilation=1, groups=1, activation="relu",
                residual=None)
    args.update(kwargs)
    with pytest.raises(error, match=words):
        conv2d(args.pop("x"), args.pop("weight"), **args)


def test_non_contiguous_input_is_served():
    x = torch.randn(2, 8, 8, 4).permute(0, 3, 1, 2)[:, :, ::2]  # no dense layout
    y = conv2d(x, W, activation="relu")
    torch.testing.assert_close(y, torch.relu(torch.nn.functional.conv2d(x, W)))
