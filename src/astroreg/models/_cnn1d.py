"""The residual 1-D CNN of paper 000 (low Sigma_SFR from photometry) and its plain twin.

Paper 000 ("Residual 1D CNN for low Sigma_SFR regression: a design note", Appendix 1,
Table 1) reads a vector of photometric features as a one-channel sequence,
``(n_features,) -> (1, n_features)``, and maps it to one scalar:

========================  =====================================================
Input                     1-D vector of photometric features
Conv1D                    64 filters, kernel 3, ReLU, L2
Residual block 1          Conv1D(64) x 2, identity skip
Residual block 2          Conv1D(128), skip through Conv1D(1x1, 128)
Residual block 3          Conv1D(256), skip through Conv1D(1x1, 256)
Residual block 4          Conv1D(512), skip through Conv1D(1x1, 512)
Flatten
Dense                     256 units, tanh, L2
Dense                     128 units, ReLU
Output                    1 unit, linear
========================  =====================================================

All convolutions have stride 1 and ``'same'`` padding and there is no pooling, so every
feature map keeps the input length and the flattened vector has ``filters[-1] *
n_features`` entries: the first dense layer grows with the number of features
(``131,072 * n_features`` of its weights; ``docs/sigma-sfr.md`` counts the parameters).

Where the paper is silent this module follows the Keras ResNet convention (the paper's
code is Keras): inside a block ``conv -> ReLU -> ... -> conv``, then the merge with the
skip path, then ReLU; blocks 2-4 have one convolution each, as the table reads literally
(``convs_per_block``); kernels start Glorot-uniform with zero biases, as Keras layers do
(``init="keras"``). The plain twin (``skip=False``, registered as ``plain_cnn1d``) has
the same convolutions and dense layers, only without the skip paths and their 1x1
convolutions; its blocks are ``conv -> ReLU`` throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Literal

import torch
from torch import Tensor, nn

from astroreg.models._registry import register_model

__all__ = ["Residual1DCNN", "ResidualBlock1d", "plain_cnn1d", "residual_cnn1d"]

Merge = Literal["add", "concat"]
Init = Literal["keras", "torch"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU,
                                            "sigmoid": nn.Sigmoid, "linear": nn.Identity}

#: Paper 000, Appendix 1: filters of the four residual blocks (the stem has ``filters[0]``).
PAPER_FILTERS: tuple[int, ...] = (64, 128, 256, 512)
#: Convolutions in each block, the table read literally: "Conv1D(64) x 2", then "Conv1D(128)" etc.
PAPER_CONVS_PER_BLOCK: tuple[int, ...] = (2, 1, 1, 1)
#: Dense layers after the flatten, and their activations.
PAPER_DENSE: tuple[int, ...] = (256, 128)
PAPER_DENSE_ACTIVATIONS: tuple[str, ...] = ("tanh", "relu")


def keras_init_(module: nn.Module) -> nn.Module:
    """Keras's defaults in place: Glorot-uniform kernels and zero biases for every Conv1d and Linear."""
    for m in module.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def dense_layers(width: int, dense: Sequence[int], activations: Sequence[nn.Module],
                 dropout: float) -> tuple[list[nn.Module], int]:
    """The dense layers of a CNN's head: ``Linear -> activation [-> Dropout]`` per width.

    Parameters
    ----------
    width : int
        Features into the first layer (the flattened map).
    dense : sequence of int
        Width of each layer.
    activations : sequence of torch.nn.Module
        One activation module per layer.
    dropout : float
        Dropout rate after each activation (no module when 0).

    Returns
    -------
    layers : list of torch.nn.Module
        The modules in order, to extend a ``torch.nn.Sequential``.
    width : int
        Features out of the last layer (``width`` when ``dense`` is empty).
    """
    layers: list[nn.Module] = []
    for d, act in zip(dense, activations):
        layers += [nn.Linear(width, d), act]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = d
    return layers, width


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv1d:
    # stride 1, 'same': every map keeps the input length, as the paper's Keras layers do
    return nn.Conv1d(in_channels, out_channels, kernel_size, stride=1, padding="same")


class ResidualBlock1d(nn.Module):
    """One block: ``conv -> ReLU -> ... -> conv``, merge with the skip path, ReLU.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the input ``(batch, in_channels, length)`` and of each convolution.
    n_convs : int
        Convolutions on the main path (kernel ``kernel_size``, stride 1, same padding).
    kernel_size : int
        Kernel of the main-path convolutions.
    skip : bool
        With the skip path: identity when ``in_channels == out_channels``, else a 1x1
        convolution to ``out_channels`` (the paper's "skip via Conv1D(1x1, C)"). Without
        it the block is ``conv -> ReLU`` for each convolution.
    merge : {"add", "concat"}
        How the main and skip paths meet: a sum (``out_channels`` out) or a
        concatenation along channels (``2 * out_channels`` out).

    Attributes
    ----------
    convs : torch.nn.ModuleList
        The main-path convolutions.
    shortcut : torch.nn.Conv1d, torch.nn.Identity or None
        The skip path; None without one.
    out_channels : int
        Channels of the output.
    """

    def __init__(self, in_channels: int, out_channels: int, *, n_convs: int, kernel_size: int, skip: bool,
                 merge: Merge) -> None:
        super().__init__()
        widths = [in_channels] + [out_channels] * n_convs
        self.convs = nn.ModuleList(_conv(a, b, kernel_size) for a, b in pairwise(widths))
        self.shortcut: nn.Module | None = None
        if skip:
            self.shortcut = (nn.Identity() if in_channels == out_channels
                             else nn.Conv1d(in_channels, out_channels, 1))
        self.merge = merge
        self.out_channels = 2 * out_channels if skip and merge == "concat" else out_channels

    def extra_repr(self) -> str:
        return f"merge={self.merge!r}" if self.shortcut is not None else "skip=False"

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(batch, in_channels, length)`` to ``(batch, out_channels, length)``."""
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h)
            # the last ReLU waits for the merge (Keras ResNet: conv-ReLU-conv, add, ReLU)
            if i < len(self.convs) - 1 or self.shortcut is None:
                h = torch.relu(h)
        if self.shortcut is None:
            return h
        s = self.shortcut(x)
        return torch.relu(h + s if self.merge == "add" else torch.cat([h, s], dim=1))


class Residual1DCNN(nn.Module):
    """Paper 000's residual 1-D CNN on a feature vector read as a sequence.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_features,)``, read as one channel of length ``n_features``; or
        ``(channels, length)`` for a sequence that already has channels.
    n_outputs : int
        Output width; 0 leaves out the output layer and returns the last dense layer's
        activations (``out_features = dense[-1]``, or the flattened maps without dense
        layers).
    filters : sequence of int
        Channels of each block; the stem convolution has ``filters[0]``.
    convs_per_block : sequence of int
        Main-path convolutions in each block, one entry per block.
    kernel_size : int
        Kernel of the stem and main-path convolutions.
    skip : bool
        Skip paths on (the residual network) or off (the plain CNN).
    merge : {"add", "concat"}
        How a block's main and skip paths meet.
    dense : sequence of int
        Widths of the dense layers after the flatten.
    dense_activations : sequence of str, optional
        One activation per dense layer: relu, tanh, gelu, sigmoid or linear. Default: the
        paper's pattern, tanh on the first dense layer and ReLU on the others.
    dropout : float
        Dropout rate before the first dense layer and after each dense activation (no
        module when 0).
    init : {"keras", "torch"}
        ``"keras"``: Glorot-uniform kernels and zero biases (Keras defaults, as the
        paper's network started); ``"torch"``: PyTorch's default initialisation.

    Attributes
    ----------
    out_features : int
        Width of the output.
    """

    def __init__(
        self,
        *,
        input_shape: tuple[int, ...],
        n_outputs: int,
        filters: Sequence[int],
        convs_per_block: Sequence[int],
        kernel_size: int,
        skip: bool,
        merge: Merge,
        dense: Sequence[int],
        dense_activations: Sequence[str] | None,
        dropout: float,
        init: Init,
    ) -> None:
        super().__init__()
        if dense_activations is None:
            dense_activations = PAPER_DENSE_ACTIVATIONS[:1] * min(len(dense), 1) + ("relu",) * (len(dense) - 1)
        in_channels, length = _check(input_shape, filters, convs_per_block, kernel_size, merge, dense,
                                     dense_activations, dropout, init)
        filters, dense = [int(f) for f in filters], [int(d) for d in dense]
        self.in_channels, self.length = in_channels, length
        self.stem = _conv(in_channels, filters[0], kernel_size)
        blocks, width = [], filters[0]
        for f, n in zip(filters, convs_per_block):
            blocks.append(ResidualBlock1d(width, f, n_convs=int(n), kernel_size=kernel_size, skip=skip, merge=merge))
            width = blocks[-1].out_channels
        self.blocks = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten()]
        width *= length
        if dropout > 0:
            head.append(nn.Dropout(dropout))
        layers, width = dense_layers(width, dense, [_ACTIVATIONS[act]() for act in dense_activations], dropout)
        self.dense = nn.Sequential(*head, *layers)
        self.output = nn.Linear(width, n_outputs) if n_outputs else None
        self.out_features = n_outputs or width
        if init == "keras":
            keras_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(batch, n_features)`` (or ``(batch, channels, length)``) to ``(batch, out_features)``."""
        x = x.reshape(x.shape[0], self.in_channels, self.length)
        h = self.dense(self.blocks(torch.relu(self.stem(x))))
        return h if self.output is None else self.output(h)

    def regularized_parameters(self) -> list[nn.Parameter]:
        """The kernels paper 000 puts L2 on: every convolution's, and the first dense layer's.

        Appendix 1 marks the stem convolution and the dense 256 layer "L2 reg", and the
        text gives every block's convolutions L2; the 1x1 skip convolutions are block
        convolutions too. Biases, the later dense layers and the output are not
        regularised. Training's ``l2`` penalty is applied to these tensors.

        Returns
        -------
        list of torch.nn.Parameter
            Weights of shape ``(out_channels, in_channels, kernel)`` and ``(out, in)``.
        """
        params = [m.weight for m in self.modules() if isinstance(m, nn.Conv1d)]
        linears = [m for m in self.dense if isinstance(m, nn.Linear)]
        return params + [linears[0].weight] if linears else params


def _check(input_shape, filters, convs_per_block, kernel_size, merge, dense, dense_activations, dropout,
           init) -> tuple[int, int]:
    shape = tuple(input_shape)
    if len(shape) not in (1, 2) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"residual 1-D CNN needs input_shape (n_features,) or (channels, length), got {shape}; "
                         f"use it on a tabular or 1-D spectra input")

    def positive_ints(name: str, values: object, paper: tuple[int, ...], allow_empty: bool = False) -> None:
        ok = (isinstance(values, Sequence) and not isinstance(values, str) and (allow_empty or len(values) > 0)
              and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values))
        if not ok:
            raise ValueError(f"{name} must be a list of positive integers, got {values!r}; the paper's is "
                             f"{list(paper)}")

    positive_ints("filters", filters, PAPER_FILTERS)
    positive_ints("convs_per_block", convs_per_block, PAPER_CONVS_PER_BLOCK)
    positive_ints("dense", dense, PAPER_DENSE, allow_empty=True)
    if len(convs_per_block) != len(filters):
        raise ValueError(f"convs_per_block has {len(convs_per_block)} entries but filters has {len(filters)} "
                         f"blocks; give one count per block, e.g. {list(PAPER_CONVS_PER_BLOCK)}")
    if isinstance(dense_activations, str) or len(dense_activations) != len(dense):
        raise ValueError(f"dense_activations must give one activation per dense layer ({len(dense)}), got "
                         f"{dense_activations!r}; e.g. {list(PAPER_DENSE_ACTIVATIONS)}")
    bad = [a for a in dense_activations if a not in _ACTIVATIONS]
    if bad:
        raise ValueError(f"unknown dense activation(s) {bad}; allowed: {sorted(_ACTIVATIONS)}")
    if not isinstance(kernel_size, int) or isinstance(kernel_size, bool) or kernel_size < 1:
        raise ValueError(f"kernel_size must be a positive integer, got {kernel_size!r}; the paper's is 3")
    if merge not in ("add", "concat"):
        raise ValueError(f"merge must be 'add' or 'concat', got {merge!r}")
    if init not in ("keras", "torch"):
        raise ValueError(f"init must be 'keras' or 'torch', got {init!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    return (1, shape[0]) if len(shape) == 1 else shape


def cnn1d_parameter_count(n_features: int, *, filters: Sequence[int] = PAPER_FILTERS,
                          convs_per_block: Sequence[int] = PAPER_CONVS_PER_BLOCK, kernel_size: int = 3,
                          skip: bool = True, dense: Sequence[int] = PAPER_DENSE, n_outputs: int = 1,
                          in_channels: int = 1) -> int:
    """Trainable parameters of the network with ``merge="add"``, counted as Keras counts them.

    A ``Conv1D`` with ``C_in`` inputs, ``C`` filters and kernel ``k`` has ``k * C_in * C +
    C`` parameters, a ``Dense`` layer ``n_in * n + n``; PyTorch's layers have the same.

    Parameters
    ----------
    n_features : int
        Input length (features), e.g. 14 for 5 magnitudes, 4 colours and 5 errors.
    filters, convs_per_block, kernel_size, skip, dense, n_outputs, in_channels
        As for :class:`Residual1DCNN`.

    Returns
    -------
    int
        ``748,161 + 131,072 * n_features`` for the paper's layout: 2,583,169 on 14 features, 1,403,521 on 5.

    Examples
    --------
    >>> cnn1d_parameter_count(14)
    2583169
    """
    def conv(c_in: int, c: int, k: int) -> int:
        return k * c_in * c + c

    total, width = conv(in_channels, filters[0], kernel_size), filters[0]
    for f, n in zip(filters, convs_per_block):
        total += conv(width, f, kernel_size) + (n - 1) * conv(f, f, kernel_size)
        if skip and width != f:
            total += conv(width, f, 1)
        width = f
    width *= n_features
    for d in dense:
        total, width = total + width * d + d, d
    return total + (width * n_outputs + n_outputs if n_outputs else 0)


@register_model(input_kinds=("tabular", "spectra"),
                description="paper 000's residual 1-D CNN: features as a sequence, 4 residual blocks, dense 256-128")
def residual_cnn1d(
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    filters: Sequence[int] = PAPER_FILTERS,
    convs_per_block: Sequence[int] = PAPER_CONVS_PER_BLOCK,
    kernel_size: int = 3,
    skip: bool = True,
    merge: Merge = "add",
    dense: Sequence[int] = PAPER_DENSE,
    dense_activations: Sequence[str] | None = None,
    dropout: float = 0.0,
    init: Init = "keras",
) -> nn.Module:
    """Paper 000's residual 1-D CNN (Appendix 1) on a feature vector ``(n_features,)``.

    See :class:`Residual1DCNN` for the parameters; the defaults are the paper's table.
    With ``n_outputs=0`` it returns the 128 activations of the last dense layer.

    Examples
    --------
    >>> import torch
    >>> net = residual_cnn1d(input_shape=(14,), n_outputs=1)
    >>> net(torch.zeros(3, 14)).shape
    torch.Size([3, 1])
    >>> sum(p.numel() for p in net.parameters()) == cnn1d_parameter_count(14)
    True
    """
    return Residual1DCNN(input_shape=input_shape, n_outputs=n_outputs, filters=tuple(filters),
                         convs_per_block=tuple(convs_per_block), kernel_size=kernel_size, skip=bool(skip),
                         merge=merge, dense=tuple(dense),
                         dense_activations=None if dense_activations is None else tuple(dense_activations),
                         dropout=float(dropout), init=init)


@register_model(input_kinds=("tabular", "spectra"),
                description="paper 000's 1-D CNN without skip paths (the plain CNN it was compared with)")
def plain_cnn1d(
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    filters: Sequence[int] = PAPER_FILTERS,
    convs_per_block: Sequence[int] = PAPER_CONVS_PER_BLOCK,
    kernel_size: int = 3,
    dense: Sequence[int] = PAPER_DENSE,
    dense_activations: Sequence[str] | None = None,
    dropout: float = 0.0,
    init: Init = "keras",
) -> nn.Module:
    """``residual_cnn1d`` with ``skip=False``: the same convolutions and dense layers, no skip paths."""
    return residual_cnn1d(input_shape=input_shape, n_outputs=n_outputs, filters=filters,
                          convs_per_block=convs_per_block, kernel_size=kernel_size, skip=False, dense=dense,
                          dense_activations=dense_activations, dropout=dropout, init=init)

