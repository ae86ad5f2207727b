"""Dense networks for tabular inputs."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from astroreg.models._registry import register_model


@register_model(input_kind="tabular", description="MLP: dense layers with GELU and dropout")
def mlp(
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    hidden: Sequence[int] = (128, 64),
    dropout: float = 0.1,
) -> nn.Module:
    """A plain multilayer perceptron for flat feature vectors of shape ``(n_features,)``."""
    layers: list[nn.Module] = [nn.Flatten()]
    width = 1
    for s in input_shape:
        width *= s
    for h in hidden:
        layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)
