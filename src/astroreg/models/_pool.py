"""Max-pooling over a 1-D map with a training-time gradient faster than PyTorch's on CPU.

With gradients enabled, ``torch.nn.functional.max_pool1d`` goes through
``max_pool1d_with_indices``, whose CPU kernels are slow for the short, wide maps of
paper 004's CNN: on a (16, 256, 182) map on the 2-core machines the forward pass takes
3.6 ms with gradients against 0.22 ms without, and the backward pass 5.2 ms, together
about a fifth of a whole training step of the network at batch 16. :class:`MaxPool1d`
computes the same values and the same gradient (the whole gradient of a window goes to
its first maximum, as PyTorch's kernel does) with ``torch.maximum`` and element-wise
comparisons on strided views of the map, one per sample of the window after the first.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class _WindowMax(torch.autograd.Function):
    """Non-overlapping max over windows of ``k`` along the last axis (stride ``k``, no padding).

    Only plain element-wise arithmetic on strided views of the map is used: ``masked_fill``,
    ``where`` and anything with the window axis as the innermost loop are several times
    slower in PyTorch's CPU kernels (measured in ``docs/gaia-xp-cnn.md``).
    """

    @staticmethod
    def forward(ctx, x: Tensor, k: int) -> Tensor:
        n_out = x.shape[-1] // k
        best = x[..., 0:n_out * k:k]
        takes = []  # takes[j - 1]: sample j is greater than every earlier sample of its window
        for j in range(1, k):
            s = x[..., j:n_out * k:k]
            takes.append(s > best)
            best = torch.maximum(best, s)  # NaN propagates, as in max_pool1d
        ctx.save_for_backward(*takes)
        ctx.k, ctx.length = k, x.shape[-1]
        return best.contiguous()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        takes = ctx.saved_tensors
        k = ctx.k
        n_out = grad.shape[-1]
        shape = (*grad.shape[:-1], ctx.length)
        g = grad.new_zeros(shape) if ctx.length > n_out * k else grad.new_empty(shape)
        # The window's gradient goes to the last sample that took the lead. Products are
        # written straight into their strided places of g (``out=``): a product then a copy
        # into the view cost 0.45 ms against 0.32 on a (16, 256, 182) map (2 cores).
        rest = grad
        for j in range(k - 1, 0, -1):
            mine = torch.mul(rest, takes[j - 1], out=g[..., j:n_out * k:k])
            if j > 1:
                rest = rest - mine
            else:
                torch.sub(rest, mine, out=g[..., 0:n_out * k:k])
        return g, None


class MaxPool1d(nn.MaxPool1d):
    """``torch.nn.MaxPool1d`` whose gradient is computed faster on CPU.

    Same values and the same gradient as the parent class (the gradient of a window goes
    to its first maximum); only in a window holding NaN may the gradient go to another
    sample than PyTorch's (a network with NaN activations has failed already). The fast
    path is taken for non-overlapping windows (``stride`` equal to ``kernel_size``, no
    padding or dilation, ``ceil_mode=False``, no indices returned) when gradients are
    needed; every other case, and inference, is the parent's.

    Parameters
    ----------
    kernel_size : int
        Window length (and stride).
    **kwargs
        As :class:`torch.nn.MaxPool1d`.

    Examples
    --------
    >>> pool = MaxPool1d(2)
    >>> x = torch.tensor([[[1.0, 3.0, 2.0, 2.0, 5.0]]], requires_grad=True)
    >>> pool(x).sum().backward()
    >>> x.grad
    tensor([[[0., 1., 1., 0., 0.]]])
    """

    def _window(self) -> int | None:
        """The window length when the fast path applies (non-overlapping windows), else ``None``."""
        def one(v) -> int | None:
            return v if isinstance(v, int) else (v[0] if len(v) == 1 else None)

        k = one(self.kernel_size)
        stride = one(self.stride) if self.stride is not None else k
        fast = (k is not None and k > 1 and stride == k and one(self.padding) == 0 and one(self.dilation) == 1
                and not self.ceil_mode and not self.return_indices)
        return k if fast else None

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x`` of shape ``(batch, channels, length)`` (or ``(channels, length)``)."""
        if torch.is_grad_enabled() and x.requires_grad and not torch.jit.is_tracing():
            k = self._window()
            if k is not None:
                return _WindowMax.apply(x, k)
        return super().forward(x)
