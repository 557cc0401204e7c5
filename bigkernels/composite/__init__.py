"""The `torch` backend: the fastest plain-PyTorch composition of each op
(SDPA, oneDNN/cuDNN convolution, torch's pointwise ops, nn.LSTM's kernels).
It is always available, and `auto` weighs it against our kernels."""
