"""Networks for 1-D spectra: the residual multitask MLP of paper 001 and its baselines.

Paper 001 (residual multitask networks for SDSS DR12 stellar parameters) compares
its compact residual multitask MLP with a StarNet-style CNN (Fabbro et al. 2018) and
a per-target deep network after Li et al. (2017). All three take a flux vector of
shape ``(n_pixels,)`` and return one column per target; built with ``n_outputs=0`` they
return their features instead (see each builder). The two dense ones take any flat
vector, so they are registered for tabular inputs too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from astroreg.models._pool import MaxPool1d
from astroreg.models._registry import register_model

Activation = Literal["relu", "gelu", "sigmoid", "tanh"]
_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}

# Paper 001's selected heads in the order of the SSPP targets that ``ingest
# sdss-spectra`` writes (TEFF_ADOP, FEH_ADOP, LOGG_ADOP): Teff 48-32, [Fe/H] 16, log g 48.
PAPER_HEADS: tuple[tuple[int, ...], ...] = ((48, 32), (16,), (48,))
_DEFAULT_HEAD: tuple[int, ...] = (48, 32)


def _n_pixels(input_shape: tuple[int, ...], model: str) -> int:
    if len(input_shape) != 1 or input_shape[0] < 1:
        raise ValueError(f"{model} needs input_shape (n_pixels,) for 1-D spectra, got {tuple(input_shape)}")
    return int(input_shape[0])


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; allowed: {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


def dense_stack(
    in_features: int,
    widths: Sequence[int],
    *,
    activation: Activation = "gelu",
    dropout: float = 0.0,
    out_features: int | None = None,
) -> nn.Sequential:
    """``Linear -> activation -> Dropout`` for each width, then an optional ``Linear`` output.

    Parameters
    ----------
    in_features : int
        Width of the input, shape ``(batch, in_features)``.
    widths : sequence of int
        Hidden widths, in order; may be empty.
    activation : {"relu", "gelu", "sigmoid", "tanh"}
        Activation after each hidden ``Linear``.
    dropout : float
        Dropout rate after each hidden activation (no module when 0).
    out_features : int, optional
        Width of a final ``Linear`` without activation; none when omitted.

    Returns
    -------
    torch.nn.Sequential
        Maps ``(batch, in_features)`` to ``(batch, out_features or widths[-1])``.
    """
    layers: list[nn.Module] = []
    width = in_features
    for w in widths:
        layers += [nn.Linear(width, int(w)), _activation(activation)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(w)
    if out_features is not None:
        layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def _norm(width: int, layer_norm: bool) -> nn.Module:
    return nn.LayerNorm(width) if layer_norm else nn.Identity()


class ResidualBlock(nn.Module):
    """Pre-norm residual block ``y = P(x) + F(x)`` of the residual multitask MLP.

    ``F(x) = Linear(LN(Dropout(GELU(Linear(LN(x))))))``, i.e. the inner path is
    ``LayerNorm -> Linear(d_in, d_out) -> GELU -> Dropout -> LayerNorm -> Linear(d_out, d_out)``.
    The shortcut ``P`` is the identity when ``d_in == d_out`` and otherwise
    ``LayerNorm(d_in) -> Linear(d_in, d_out)``, as the paper's Figure 4 shows.

    Parameters
    ----------
    d_in, d_out : int
        Input and output widths; maps ``(batch, d_in)`` to ``(batch, d_out)``.
    dropout : float
        Trunk dropout rate after the GELU.
    skip : bool
        When False there is no shortcut at all and ``forward(x) == inner(x)``.
    layer_norm : bool
        When False every ``LayerNorm`` of the block (shortcut included) is left out.
    """

    def __init__(self, d_in: int, d_out: int, *, dropout: float = 0.0, skip: bool = True, layer_norm: bool = True):
        super().__init__()
        self.skip = skip
        self.inner = nn.Sequential(
            _norm(d_in, layer_norm), nn.Linear(d_in, d_out), nn.GELU(), nn.Dropout(dropout),
            _norm(d_out, layer_norm), nn.Linear(d_out, d_out),
        )
        self.shortcut: nn.Module | None
        if not skip:
            self.shortcut = None
        elif d_in == d_out:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(_norm(d_in, layer_norm), nn.Linear(d_in, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.inner(x)
        return y if self.shortcut is None else y + self.shortcut(x)


class ResidualMultitaskMLP(nn.Module):
    """Residual multitask MLP of paper 001: shared residual trunk, one MLP head per target.

    Layer order:

    - stem: ``Linear(n_pixels, stem) -> LayerNorm -> GELU -> Dropout(stem_dropout)``;
    - residual blocks (:class:`ResidualBlock`): ``LayerNorm -> Linear -> GELU ->
      Dropout(trunk_dropout) -> LayerNorm -> Linear``, plus the shortcut (identity, or
      ``LayerNorm -> Linear`` projection when the width changes);
    - a final ``LayerNorm`` on the shared representation;
    - per target: ``(Linear -> GELU -> Dropout(head_dropout))`` for each head width,
      then ``Linear(., 1)``; the head outputs are concatenated in target order.

    With the paper's selected configuration (stem 128, one residual block of 64,
    heads Teff 48-32, log g 48, [Fe/H] 16) on a 4000-pixel input this order gives
    exactly **542,771** trainable parameters, the paper's count: stem 512,384,
    block 12,800 (inner 8,256 + 128 + 4,160 + 256) plus projection 8,512, final
    LayerNorm 128, heads 4,721 + 3,169 + 1,057. A one-Linear block would give
    538,483 instead.

    Parameters
    ----------
    n_pixels : int
        Length of the flux vector; input of shape ``(batch, n_pixels)``.
    heads : sequence of sequence of int
        Hidden widths of each target's head, one entry per target (each may be empty).
        No heads at all: the network returns the trunk's output, ``(batch, blocks[-1])``.
    stem : int
        Width of the stem layer.
    blocks : sequence of int
        Output width of each residual block.
    stem_dropout, trunk_dropout, head_dropout : float
        Dropout rates of the stem, the residual blocks and the heads.
    skip : bool
        Ablation: False removes every shortcut (blocks become plain feed-forward).
    layer_norm : bool
        Ablation: False removes every LayerNorm (stem, blocks, shortcuts, final).

    Attributes
    ----------
    out_features : int
        Width of the output: the number of heads, or the trunk width without heads.

    Examples
    --------
    >>> net = ResidualMultitaskMLP(4000, heads=((48, 32), (16,), (48,)), stem=128, blocks=(64,))
    >>> net(torch.zeros(2, 4000)).shape
    torch.Size([2, 3])
    """

    def __init__(
        self,
        n_pixels: int,
        *,
        heads: Sequence[Sequence[int]],
        stem: int = 128,
        blocks: Sequence[int] = (64,),
        stem_dropout: float = 0.0,
        trunk_dropout: float = 0.4,
        head_dropout: float = 0.0,
        skip: bool = True,
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(n_pixels, stem), _norm(stem, layer_norm), nn.GELU(), nn.Dropout(stem_dropout))
        trunk: list[nn.Module] = []
        width = stem
        for w in blocks:
            trunk.append(ResidualBlock(width, int(w), dropout=trunk_dropout, skip=skip, layer_norm=layer_norm))
            width = int(w)
        trunk.append(_norm(width, layer_norm))
        self.trunk = nn.Sequential(*trunk)
        self.heads = nn.ModuleList(
            dense_stack(width, h, activation="gelu", dropout=head_dropout, out_features=1) for h in heads
        )
        self.out_features = len(self.heads) or width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, n_pixels)`` to ``(batch, n_targets)``, or to the trunk's ``(batch, width)`` without heads."""
        z = self.trunk(self.stem(x))
        if not len(self.heads):
            return z
        return torch.cat([head(z) for head in self.heads], dim=1)


class PerTargetMLP(nn.Module):
    """One independent fully connected network per target, outputs concatenated.

    Parameters
    ----------
    n_pixels : int
        Length of the flux vector; input of shape ``(batch, n_pixels)``.
    n_outputs : int
        Number of targets (independent networks); output ``(batch, n_outputs)``. 0 builds
        one network without its output layer, returning ``(batch, hidden[-1])``.
    hidden : sequence of int
        Hidden widths of every network.
    activation : {"relu", "gelu", "sigmoid", "tanh"}
        Hidden activation.
    dropout : float
        Dropout after each hidden activation.

    Attributes
    ----------
    out_features : int
        Width of the output: ``n_outputs``, or ``hidden[-1]`` when it is 0.
    """

    def __init__(
        self, n_pixels: int, n_outputs: int, *, hidden: Sequence[int], activation: Activation = "relu", dropout: float = 0.0
    ) -> None:
        super().__init__()
        if n_outputs == 0 and not hidden:
            raise ValueError("PerTargetMLP without outputs needs at least one hidden width to return as features")
        self.nets = nn.ModuleList(
            dense_stack(n_pixels, hidden, activation=activation, dropout=dropout, out_features=1 if n_outputs else None)
            for _ in range(max(n_outputs, 1))
        )
        self.out_features = n_outputs or int(hidden[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, n_pixels)`` to ``(batch, out_features)``."""
        return torch.cat([net(x) for net in self.nets], dim=1)


class Conv1dRegressor(nn.Module):
    """1-D CNN: ``Conv1d -> ReLU`` layers (no padding, stride 1), one max-pool, dense head.

    Parameters
    ----------
    n_pixels : int
        Length of the flux vector; input of shape ``(batch, n_pixels)``, seen as one channel.
    n_outputs : int
        Output width, ``(batch, n_outputs)``; 0 leaves out the output layer, returning the
        last ``dense`` layer (or the flattened feature maps when ``dense`` is empty).
    filters : sequence of int
        Filters of each convolution.
    kernel_size, pool : int
        Convolution length and max-pooling window (after the last convolution).
    dense : sequence of int
        Hidden dense widths (ReLU).

    Attributes
    ----------
    out_features : int
        Width of the output: ``n_outputs``, or the feature width when it is 0.
    """

    def __init__(
        self, n_pixels: int, n_outputs: int, *, filters: Sequence[int], kernel_size: int, pool: int, dense: Sequence[int]
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Unflatten(1, (1, n_pixels))]
        c, length = 1, n_pixels
        for f in filters:
            layers += [nn.Conv1d(c, int(f), kernel_size), nn.ReLU()]
            c, length = int(f), length - kernel_size + 1
        length //= pool
        if length < 1:
            raise ValueError(
                f"{n_pixels} pixels are too few for {len(filters)} convolutions of length {kernel_size} "
                f"and pooling {pool}; need at least {len(filters) * (kernel_size - 1) + pool}"
            )
        layers += [MaxPool1d(pool), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = dense_stack(c * length, dense, activation="relu", out_features=n_outputs or None)
        self.out_features = n_outputs or (int(dense[-1]) if dense else c * length)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map ``(batch, n_pixels)`` to ``(batch, n_outputs)``."""
        return self.head(self.features(x))


def _resolve_heads(
    heads: Sequence[Sequence[int]] | Sequence[int] | None, n_outputs: int
) -> tuple[tuple[int, ...], ...]:
    if heads is None:
        return PAPER_HEADS if n_outputs == len(PAPER_HEADS) else (_DEFAULT_HEAD,) * n_outputs
    heads = tuple(heads)
    if all(isinstance(h, int) for h in heads):
        return (tuple(heads),) * n_outputs
    if all(isinstance(h, Sequence) and all(isinstance(w, int) for w in h) for h in heads):
        if len(heads) != n_outputs:
            raise ValueError(
                f"heads has {len(heads)} entries {heads} but the model has {n_outputs} outputs; give one list "
                f"of widths per output, or a single list of widths (e.g. (48, 32)) to use for every head"
            )
        return tuple(tuple(h) for h in heads)
    raise ValueError(
        f"heads must be a list of widths per output (e.g. ((48, 32), (16,), (48,))) or one list of widths "
        f"for every head (e.g. (48, 32)), got {heads!r}"
    )


@register_model(input_kinds=("spectra", "tabular"), description="residual multitask MLP of paper 001: stem, residual trunk, one head per target")
def residual_mlp(
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    stem: int = 128,
    blocks: Sequence[int] = (64,),
    heads: Sequence[Sequence[int]] | Sequence[int] | None = None,
    stem_dropout: float = 0.0,
    trunk_dropout: float = 0.4,
    head_dropout: float = 0.0,
    skip: bool = True,
    layer_norm: bool = True,
) -> nn.Module:
    """Paper 001's residual multitask MLP; the defaults are its selected configuration.

    ``heads`` is one list of hidden widths per output, in target order, or a single
    list used for every head. ``None`` means the paper's heads ``((48, 32), (16,),
    (48,))`` (Teff, [Fe/H], log g) when ``n_outputs == 3``, else ``(48, 32)`` for
    every head. Single-task models are ``n_outputs=1``, one network per target.
    ``n_outputs=0`` has no heads (a single list of widths in ``heads`` is allowed and
    unused): the network returns the trunk's output, ``(batch, blocks[-1])``
    (``(batch, stem)`` without blocks).
    Ablations: ``skip=False`` ("no skip"), ``skip=False, layer_norm=False`` ("no
    skip and no LN"). See :class:`ResidualMultitaskMLP`.
    """
    n_pixels = _n_pixels(input_shape, "residual_mlp")
    return ResidualMultitaskMLP(
        n_pixels, heads=_resolve_heads(heads, n_outputs), stem=stem, blocks=tuple(blocks),
        stem_dropout=stem_dropout, trunk_dropout=trunk_dropout, head_dropout=head_dropout,
        skip=skip, layer_norm=layer_norm,
    )


@register_model(input_kinds=("spectra",), description="StarNet-style CNN (Fabbro et al. 2018): conv 4, conv 16, pool 4, dense 256, 128")
def starnet_cnn(*, input_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
    """StarNet-style CNN after Fabbro et al. (2018), paper 001's CNN baseline.

    The spectrum ``(n_pixels,)`` is read as one channel; two ``Conv1d`` with 4 and 16
    filters of length 8 (ReLU), max-pooling of 4, flatten, dense 256 and 128 (ReLU),
    then a linear output per target. With ``n_outputs=0`` it returns the 128 dense features.
    """
    n_pixels = _n_pixels(input_shape, "starnet_cnn")
    return Conv1dRegressor(n_pixels, n_outputs, filters=(4, 16), kernel_size=8, pool=4, dense=(256, 128))


@register_model(input_kinds=("spectra", "tabular"), description="DNN after Li et al. (2017): one 1000-500-100 network per target")
def dnn_li2017(
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    hidden: Sequence[int] = (1000, 500, 100),
    activation: Activation = "relu",
    dropout: float = 0.0,
) -> nn.Module:
    """Deep fully connected baseline after Li et al. (2017): an independent network per target.

    Paper 001 gives only its size (13.66M parameters for 3 targets) and that each
    target has its own network. Hidden widths 1000-500-100 reproduce that: on a
    4000-pixel input each network has 4,551,701 parameters, 13,655,103 for three
    targets (25x the residual MLP's 542,771). With ``n_outputs=0`` it is one such network
    without its output layer, returning ``hidden[-1]`` (100) features.
    """
    n_pixels = _n_pixels(input_shape, "dnn_li2017")
    return PerTargetMLP(n_pixels, n_outputs, hidden=tuple(hidden), activation=activation, dropout=dropout)
