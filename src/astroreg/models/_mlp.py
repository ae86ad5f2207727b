"""Dense networks for flat inputs (tables, or any vector such as a spectrum)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import nn

from astroreg.models._registry import register_model


class MLP(nn.Sequential):
    """``Flatten``, then ``Linear -> GELU -> Dropout`` per hidden width, then a ``Linear`` output.

    Parameters
    ----------
    input_shape : tuple of int
        Per-object input shape; flattened, so ``(n_features,)`` or any shape.
    n_outputs : int
        Output width; 0 leaves out the output layer (the last hidden layer is returned).
    hidden : sequence of int
        Hidden widths.
    dropout : float
        Dropout rate after each hidden activation.

    Attributes
    ----------
    out_features : int
        Width of the output: ``n_outputs``, or the last hidden width (the flattened
        input width without hidden layers) when it is 0.
    """

    def __init__(self, *, input_shape: tuple[int, ...], n_outputs: int, hidden: Sequence[int], dropout: float) -> None:
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for h in hidden:
            layers += [nn.Linear(width, int(h)), nn.GELU(), nn.Dropout(dropout)]
            width = int(h)
        if n_outputs:
            layers.append(nn.Linear(width, n_outputs))
        super().__init__(*layers)
        self.out_features = n_outputs or width


@register_model(input_kinds=("tabular", "spectra"), description="MLP: dense layers with GELU and dropout")
def mlp(
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    hidden: Sequence[int] = (128, 64),
    dropout: float = 0.1,
) -> nn.Module:
    """A plain multilayer perceptron for flat feature vectors of shape ``(n_features,)``.

    With ``n_outputs=0`` it returns the last hidden layer (64 features by default).
    """
    return MLP(input_shape=input_shape, n_outputs=n_outputs, hidden=tuple(hidden), dropout=dropout)
