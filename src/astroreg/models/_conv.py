"""A 1-D convolution over one input channel, trained faster on CPU as a batched matrix product.

The first convolution of paper 004's CNN reads the spectrum as one channel (kernel 5,
256 filters). On CPU, oneDNN's kernel spends most of its time on the 256 x 182 output
map, not on the arithmetic (1,536 weights): forward and backward of that layer took
5.4-6.4 ms of a 30-35 ms training step at batch 16 on the 2-core machines, against
2.1-2.5 ms as ``torch.baddbmm`` over the input's sliding windows (``docs/gaia-xp-cnn.md``).
:class:`Conv1d` takes that path when it applies; its parameters, values and gradients
are those of :class:`torch.nn.Conv1d`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Conv1d(nn.Conv1d):
    """``torch.nn.Conv1d`` that trains a one-channel convolution faster on CPU.

    The fast path applies while training on CPU (gradients enabled, weights requiring
    them, not tracing) to a layer with one input channel, stride 1, no dilation, one
    group and no padding (``padding="valid"`` or 0, Keras' default and paper 004's). It
    computes ``bias + weight @ windows`` with ``torch.baddbmm`` on the input's sliding
    windows (a view, no copy). Every other case, inference included, is the parent's
    oneDNN kernel, so predictions and traced predictors are unchanged.

    Parameters
    ----------
    *args, **kwargs
        As :class:`torch.nn.Conv1d`.

    Examples
    --------
    >>> conv = Conv1d(1, 4, 3)
    >>> x = torch.randn(2, 1, 10)
    >>> torch.allclose(conv(x), nn.functional.conv1d(x, conv.weight, conv.bias), atol=1e-6)
    True
    """

    def _fast(self) -> bool:
        return (self.in_channels == 1 and self.groups == 1 and self.stride == (1,) and self.dilation == (1,)
                and self.padding in ("valid", (0,)) and self.padding_mode == "zeros")

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` of shape ``(batch, 1, length)``."""
        if (x.dim() == 3 and x.device.type == "cpu" and torch.is_grad_enabled() and self.weight.requires_grad
                and not torch.jit.is_tracing() and self._fast()):
            n, k, o = x.shape[0], self.kernel_size[0], self.out_channels
            windows = x.unfold(-1, k, 1).reshape(n, -1, k).transpose(1, 2)  # (batch, kernel, length out)
            w = self.weight.view(1, o, k).expand(n, o, k)
            if self.bias is None:
                return torch.bmm(w, windows)
            return torch.baddbmm(self.bias.view(1, o, 1).expand(n, o, 1), w, windows)
        return super().forward(x)
