"""MaxPool2d: a drop-in for nn.MaxPool2d (a subclass: its constructor,
attributes and repr), its forward through bigkernels.ops.max_pool2d. With
return_indices=True it is torch's own forward (the int64 indices are torch's
format, for MaxUnpool2d)."""
import torch.nn.functional as F
from torch import nn

from .. import ops


class MaxPool2d(nn.MaxPool2d):
    def forward(self, input):
        if self.return_indices:
            return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                                ceil_mode=self.ceil_mode, return_indices=True)
        return ops.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)
