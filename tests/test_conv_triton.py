"""The Triton implicit-GEMM conv2d, interpreted on the CPU at tiny shapes:
fp32/fp16/bf16 against the float64 reference with the tolerance rule,
forward and backward, and opcheck. Shapes are not block multiples."""
import pytest
import torch

from bigkernels.ops._library import op
from tests.backends import ensure_backend
from tests.test_conv import check

pytestmark = pytest.mark.triton

TINY = {
    "3x3": ((1, 5, 6, 5), (6, 5, 3, 3), 1, 1, 1, 1, torch.channels_last),
    "grouped-s2-nchw": ((1, 6, 7, 6), (4, 3, 3, 3), 2, (1, 0), 1, 2, torch.contiguous_format),
    "depthwise-dil": ((1, 4, 7, 7), (4, 1, 3, 3), 1, 2, 2, 4, torch.channels_last),
    # depthwise kernel: channel multiplier 2, NCHW, stride 2; and a 7x7 and a 13x13 "same"
    "dw-mult2-s2": ((1, 3, 8, 7), (6, 1, 3, 3), 2, 1, 1, 3, torch.contiguous_format),
    "dw7-same": ((1, 5, 9, 8), (5, 1, 7, 7), 1, "same", 1, 5, torch.channels_last),
    "dw13-same": ((1, 3, 14, 13), (3, 1, 13, 13), 1, "same", 1, 3, torch.channels_last),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case,act", [("3x3", "silu"), ("grouped-s2-nchw", "relu"), ("depthwise-dil", "gelu"),
                                      ("dw-mult2-s2", "relu6"), ("dw7-same", "hardswish"), ("dw13-same", "silu")])
def test_triton_conv(case, act, dtype):
    check("triton", act, dtype, TINY[case])


def test_triton_optional_inputs():
    check("triton", "none", torch.float32, TINY["3x3"], bias=False, residual=False)


@pytest.mark.parametrize("save", [False, True])
def test_triton_opcheck(save):
    ensure_backend("triton")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 5, 4, generator=gen).contiguous(memory_format=torch.channels_last).requires_grad_()
    w = torch.randn(6, 2, 3, 3, generator=gen).contiguous(memory_format=torch.channels_last).requires_grad_()
    b = torch.randn(6, generator=gen, requires_grad=True)
    args = ([1, 1], [1, 1], [1, 1], 2)
    act = 4 if save else 1
    torch.library.opcheck(op("conv2d_triton"), (x, w, b, None, *args, act, 0.01, save),
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))
    y, z = op("conv2d_triton")(x.detach(), w.detach(), b.detach(), None, *args, act, 0.01, save)
    torch.library.opcheck(op("conv2d_backward_triton"),
                          (torch.randn_like(y), x.detach(), w.detach(), (z if save else y), *args, act, 0.01,
                           [True, True, True, True]), test_utils=("test_schema", "test_faketensor"))


def test_fp32_follows_torchs_tf32_switch_for_convolutions(monkeypatch):
    from torch._subclasses.fake_tensor import FakeTensorMode

    from bigkernels.triton import conv as triton_conv

    with FakeTensorMode():
        cuda32, cuda16 = torch.empty(2, device="cuda:0"), torch.empty(2, device="cuda:0", dtype=torch.float16)
    for allowed, expected in ((True, "tf32"), (False, "ieee")):
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", allowed)
        assert triton_conv._precision(cuda32) == expected
        assert triton_conv._precision(cuda16) == "tf32"  # ignored by 16-bit dots: Triton's default
    assert triton_conv._precision(torch.empty(2)) == "ieee"
