"""bigkernels.nn.LSTM / GRU on cuda_sim: rnn_stack's layer loop reaches the
CUDA layer kernels (2 layers, bidirectional, projection, batch_first), and
the outputs and gradients match torch.nn's modules loaded with the same
state_dict."""
import pytest
import torch

import bigkernels
import bigkernels.nn as bnn
from bigkernels.backends import sim_loader
from tests.backends import ensure_backend

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("kind,kwargs", [("LSTM", dict(proj_size=3)), ("LSTM", {}), ("GRU", {})])
def test_module_matches_torch(kind, kwargs):
    ensure_backend("cuda_sim")
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(5, 7, num_layers=2, bidirectional=True, batch_first=True, **kwargs)
    ours = getattr(bnn, kind)(5, 7, num_layers=2, bidirectional=True, batch_first=True, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(3, 4, 5)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    sim_loader.launched_kernels()
    with bigkernels.use_backend("cuda_sim"):
        y, _ = ours(x1)
        y.sum().backward()
    launched = " ".join(sim_loader.launched_kernels())
    assert ("lstm_fwd" if kind == "LSTM" else "gru_persistent") in launched, launched
    ry, _ = theirs(x2)
    ry.sum().backward()
    torch.testing.assert_close(y, ry, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_rnn_tanh_is_refused_by_cuda_sim():
    ensure_backend("cuda_sim")
    rnn = bnn.RNN(3, 4)
    with pytest.raises(bigkernels.BackendError, match="no CUDA kernel for RNN_TANH"), \
            bigkernels.use_backend("cuda_sim"):
        rnn(torch.randn(2, 1, 3))
