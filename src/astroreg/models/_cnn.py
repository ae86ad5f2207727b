"""Plain convolutional regressors for image stamps."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from astroreg.models._registry import register_model


class ConvRegressor(nn.Module):
    """Stacked conv blocks followed by a dense head.

    Each block is ``Conv2d -> MaxPool2d -> ReLU``. Max-pooling commutes with the
    monotonic ReLU, so this equals the usual ``Conv -> ReLU -> MaxPool`` while
    applying the activation to a quarter of the values.

    Parameters
    ----------
    input_shape : tuple of int
        ``(bands, H, W)``.
    n_outputs : int
        Number of regression outputs; 0 leaves out the output layer, so the network
        returns the last hidden dense layer (or the flattened feature maps when
        ``dense`` is empty).
    channels : sequence of int
        Filters of each convolution.
    kernel_size, padding, pool : int
        Convolution kernel and padding (stride 1), max-pooling window.
    dense : sequence of int
        Widths of the hidden dense layers (ReLU, then dropout).
    dropout : float
        Dropout rate after each hidden dense layer.

    Attributes
    ----------
    out_features : int
        Width of the output: ``n_outputs``, or the feature width when it is 0.
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, int, int],
        n_outputs: int,
        channels: Sequence[int],
        kernel_size: int = 3,
        padding: int = 1,
        pool: int = 2,
        dense: Sequence[int] = (64,),
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"ConvRegressor needs input_shape (bands, H, W), got {input_shape}")
        c, h, w = input_shape
        blocks: list[nn.Module] = []
        for out in channels:
            blocks += [nn.Conv2d(c, out, kernel_size, stride=1, padding=padding), nn.MaxPool2d(pool), nn.ReLU()]
            c = out
            h = (h + 2 * padding - kernel_size + 1) // pool
            w = (w + 2 * padding - kernel_size + 1) // pool
        if h < 1 or w < 1:
            raise ValueError(f"input {input_shape} is too small for {len(channels)} conv+pool blocks")
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten()]
        width = c * h * w
        for d in dense:
            head += [nn.Linear(width, d), nn.ReLU(), nn.Dropout(dropout)]
            width = d
        if n_outputs:
            head.append(nn.Linear(width, n_outputs))
        self.head = nn.Sequential(*head)
        self.out_features = n_outputs or width

    def forward(self, x):
        return self.head(self.features(x))


@register_model(input_kinds=("images",), description="CNN of the galaxy-flux paper: conv 12, conv 24, dense 64")
def paper_cnn(*, input_shape: tuple[int, ...], n_outputs: int, dropout: float = 0.2) -> nn.Module:
    """The galaxy-flux paper's CNN (Kim & Lee 2024).

    Conv 3x3 with 12 then 24 filters (stride 1, padding 1), each with ReLU and 2x2
    max-pooling; dense 64 with ReLU and dropout; one linear output per target.
    With ``n_outputs=0`` it returns the 64 dense features.
    """
    return ConvRegressor(input_shape=input_shape, n_outputs=n_outputs, channels=(12, 24), dense=(64,), dropout=dropout)


@register_model(input_kinds=("images",), description="configurable conv net: conv blocks + dense head")
def conv_net(
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    channels: Sequence[int] = (16, 32, 64),
    kernel_size: int = 3,
    dense: Sequence[int] = (128,),
    dropout: float = 0.2,
) -> nn.Module:
    """A configurable conv net of ``Conv -> MaxPool -> ReLU`` blocks and a dense head.

    With ``n_outputs=0`` it returns the last ``dense`` layer's features.
    """
    return ConvRegressor(
        input_shape=input_shape, n_outputs=n_outputs, channels=tuple(channels),
        kernel_size=kernel_size, padding=kernel_size // 2, dense=tuple(dense), dropout=dropout,
    )
