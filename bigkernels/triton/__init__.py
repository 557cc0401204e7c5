"""Triton kernels per family, with their launchers (triton_op + wrap_triton,
so they stay visible to torch.compile). Imported only where triton is."""
