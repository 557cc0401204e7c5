"""attention: bad input raises TypeError/ValueError naming the argument."""
import pytest
import torch

from bigkernels.ops import attention

Q = torch.randn(2, 4, 5, 8)
K = torch.randn(2, 2, 7, 8)


@pytest.mark.parametrize("kwargs,error,words", [
    (dict(q=[1.0]), TypeError, "q must be a torch.Tensor"),
    (dict(k=torch.ones(2, 2, 7, 8, dtype=torch.int64)), TypeError, "k must be float16"),
    (dict(q=torch.randn(4, 5, 8)), ValueError, "q must be 4-D"),
    (dict(k=torch.randn(3, 2, 7, 8), v=torch.randn(3, 2, 7, 8)), ValueError, "k has batch 3 but q has batch 2"),
    (dict(k=torch.randn(2, 3, 7, 8), v=torch.randn(2, 3, 7, 8)), ValueError, r"q's heads \(4\) must be a multiple"),
    (dict(k=torch.randn(2, 2, 7, 16), v=torch.randn(2, 2, 7, 16)), ValueError, "k has head dim 16"),
    (dict(v=torch.randn(2, 2, 6, 8)), ValueError, "k and v must have the same shape"),
    (dict(v=K.double()), TypeError, "expected one dtype"),
    (dict(v=torch.randn(2, 2, 7, 8, device="meta")), ValueError, "v is on meta"),
    (dict(k=torch.randn(2, 2, 0, 8), v=torch.randn(2, 2, 0, 8)), ValueError, "k's sequence"),
    (dict(q=torch.randn(2, 4, 0, 8)), ValueError, "q's sequence"),
    (dict(attn_mask=torch.ones(5, 6, dtype=torch.bool)), ValueError, "attn_mask of shape"),
    (dict(attn_mask=torch.ones(2, 4, 5, 7, 1)), ValueError, "attn_mask of shape"),
    (dict(attn_mask=torch.ones(5, 7, dtype=torch.int32)), TypeError, "attn_mask must be bool"),
    (dict(attn_mask=[[True]]), TypeError, "attn_mask must be a torch.Tensor"),
    (dict(causal=1), TypeError, "causal must be a bool"),
    (dict(scale="0.1"), TypeError, "scale must be a float"),
    (dict(dropout_p=1.0), ValueError, "dropout_p must be in"),
    (dict(dropout_p=None), TypeError, "dropout_p must be a float"),
    (dict(return_lse="yes"), TypeError, "return_lse must be a bool"),
])
def test_bad_input(kwargs, error, words):
    args = dict(q=Q, k=K, v=K.clone())
    args.update(kwargs)
    with pytest.raises(error, match=words):
        attention(args.pop("q"), args.pop("k"), args.pop("v"), **args)


def test_non_contiguous_head_dim_is_served():
    q = torch.randn(2, 4, 8, 5).transpose(2, 3)  # head dim stride != 1
    out = attention(q, K, K)
    ref = torch.nn.functional.scaled_dot_product_attention(q, K, K, enable_gqa=True)
    torch.testing.assert_close(out, ref)
