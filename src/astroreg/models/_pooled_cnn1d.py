"""The 1-D CNN of paper 004 (galaxy redshift from Gaia BP/RP spectra): convolutions with max-pooling.

Paper 004 (Table 2, after its Bayesian tuning) reads the 186 fluxes of a truncated Gaia
BP/RP sampled spectrum (80 BP + 106 RP samples, 366-996 nm) as a one-channel sequence
and maps it to the redshift:

==================  =========  ======  =========  ==============
layer (Keras)       filters    kernel  output     parameters
==================  =========  ======  =========  ==============
Conv1D, ReLU        256        5       (182, 256)        1,536
MaxPooling1D        -          2       (91, 256)             0
Conv1D, ReLU        256        5       (87, 256)       327,936
MaxPooling1D        -          2       (43, 256)             0
Conv1D, ReLU        128        3       (41, 128)        98,432
MaxPooling1D        -          2       (20, 128)             0
Conv1D, ReLU        64         2       (19, 64)         16,448
MaxPooling1D        -          2       (9, 64)               0
Flatten             -          -       (576,)                0
Dense, ReLU         256        -       (256,)          147,712
Dense, ReLU         256        -       (256,)           65,792
Dense, ReLU         128        -       (128,)           32,896
Dense, ReLU         64         -       (64,)             8,256
Dense, linear       1          -       (1,)                 65
total                                                  699,073
==================  =========  ======  =========  ==============

The paper does not print the padding or the pooling, but its parameter count fixes both:
the first dense layer has 147,712 = 576 x 256 + 256 parameters, so the flattened maps
hold 576 = 64 x 9 values, which is what Keras' defaults give (``padding="valid"``
convolutions, ``MaxPooling1D(2)`` with stride 2, lengths rounded down): 186 -> 182 -> 91
-> 87 -> 43 -> 41 -> 20 -> 19 -> 9. With ``"same"`` padding the maps would end 11 long
(704 values, 180,480 parameters in the first dense layer), without pooling 175 long (11,200 values).
Kernels start Glorot-uniform with zero biases, as Keras layers do (``init="keras"``).

PyTorch's layers hold the same parameters as Keras'; only the order of the flattened
values differs (channels first here, ``(64, 9)``, against Keras' ``(9, 64)``), which
permutes the rows of the first dense layer's kernel and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import Tensor, nn

from astroreg.models._cnn1d import dense_layers, keras_init_
from astroreg.models._conv import Conv1d
from astroreg.models._pool import MaxPool1d
from astroreg.models._registry import register_model

__all__ = ["PAPER_CONV", "PAPER_DENSE", "PooledCNN1d", "pooled_cnn1d"]

Padding = Literal["valid", "same"]
Init = Literal["keras", "torch"]

#: Paper 004, Table 2: (filters, kernel size) of each convolution.
PAPER_CONV: tuple[tuple[int, int], ...] = ((256, 5), (256, 5), (128, 3), (64, 2))
#: Paper 004, Table 2: units of the dense layers between the flatten and the output.
PAPER_DENSE: tuple[int, ...] = (256, 256, 128, 64)

#: Activations by name. ``leaky_relu`` has Keras 3's slope 0.2 (PyTorch's default is 0.01).
ACTIVATIONS: dict[str, type[nn.Module] | tuple[type[nn.Module], dict]] = {
    "relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid,
    "leaky_relu": (nn.LeakyReLU, {"negative_slope": 0.2}),
}

#: Spectra per forward call at CPU prediction (see :attr:`PooledCNN1d.inference_chunk`).
INFERENCE_CHUNK = 32


def _activation(name: str) -> nn.Module:
    spec = ACTIVATIONS[name]
    cls, kw = spec if isinstance(spec, tuple) else (spec, {})
    return cls(**kw)


class PooledCNN1d(nn.Module):
    """Paper 004's CNN: ``Conv1d -> activation -> MaxPool1d`` blocks, flatten, dense layers.

    Parameters
    ----------
    input_shape : tuple of int
        ``(n_samples,)``, a flat spectrum read as one channel (186 for the paper's
        truncated Gaia BP/RP spectra); or ``(channels, n_samples)``.
    n_outputs : int
        Width of the linear output layer; 0 leaves it out and returns the last dense
        layer's activations (``out_features = dense[-1]``, or the flattened maps when
        there are no dense layers).
    conv : sequence of (int, int)
        ``(filters, kernel_size)`` of each convolution (stride 1).
    pool : int
        Size and stride of the max-pooling after each convolution (lengths rounded
        down, as Keras' ``MaxPooling1D``); 0 or 1: no pooling.
    padding : {"valid", "same"}
        Convolution padding. ``"valid"`` (Keras' default, the paper's) shortens a map by
        ``kernel_size - 1``; ``"same"`` keeps its length (an even kernel pads one more on
        the right, as Keras and PyTorch both do).
    dense : sequence of int
        Units of the dense layers after the flatten.
    conv_activation, dense_activation : str
        Activations after each convolution and each dense layer: relu, tanh, elu, gelu,
        sigmoid or leaky_relu (slope 0.2). The output layer is linear.
    dropout : float
        Dropout rate after each dense layer's activation (no module when 0).
    init : {"keras", "torch"}
        ``"keras"``: Glorot-uniform kernels and zero biases, as the paper's Keras layers
        started; ``"torch"``: PyTorch's default initialisation.

    Attributes
    ----------
    out_features : int
        Width of the output.
    lengths : list of int
        Map length after each convolution and after each pooling, in order.
    inference_chunk : int
        Spectra per forward call that prediction on CPU should use (read by
        :func:`astroreg.models.optimize_for_inference`). A batch of a few dozen keeps
        the largest maps (256 x 182 values a spectrum) in the caches: measured on one
        core of the 2-core machines, 79% of the float32 matmul rate at 32 spectra a call
        against 46% at 1024 (``docs/gaia-xp-cnn.md``).

    Raises
    ------
    ValueError
        For malformed layers, or when a map would become empty: the message names the
        layer and says what to change.
    """

    inference_chunk: int = INFERENCE_CHUNK

    def __init__(
        self,
        *,
        input_shape: tuple[int, ...],
        n_outputs: int,
        conv: Sequence[tuple[int, int]],
        pool: int,
        padding: Padding,
        dense: Sequence[int],
        conv_activation: str,
        dense_activation: str,
        dropout: float,
        init: Init,
    ) -> None:
        super().__init__()
        in_channels, length = _input(input_shape)
        _check_choices(padding, conv_activation, dense_activation, dropout, init, pool)
        self.in_channels, self.length = in_channels, length
        self.lengths = _lengths(length, conv, pool, padding)
        features: list[nn.Module] = []
        width = in_channels
        # ReLU and max-pooling commute exactly (values and gradients), so with ReLU the pooling
        # goes first and the activation runs on half the map: 1.5 ms less a step at batch 16.
        pool_first = pool > 1 and conv_activation == "relu"
        for filters, kernel in conv:
            features.append(Conv1d(width, filters, kernel, padding=padding))  # faster one-channel training
            if pool_first:
                features += [MaxPool1d(pool), _activation(conv_activation)]
            else:
                features += [_activation(conv_activation), *([MaxPool1d(pool)] if pool > 1 else [])]
            width = filters
        features.append(nn.Flatten())
        self.features = nn.Sequential(*features)
        width *= self.lengths[-1]
        head, width = dense_layers(width, dense, [_activation(dense_activation) for _ in dense], dropout)
        self.dense = nn.Sequential(*head)
        self.output = nn.Linear(width, n_outputs) if n_outputs else None
        self.out_features = n_outputs or width
        if init == "keras":
            keras_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(batch, n_samples)`` (or ``(batch, channels, n_samples)``) to ``(batch, out_features)``."""
        h = self.dense(self.features(x.reshape(x.shape[0], self.in_channels, self.length)))
        return h if self.output is None else self.output(h)

    def layer_table(self) -> list[tuple[str, tuple[int, ...], int]]:
        """The layers as Keras' ``model.summary()`` lists them, for comparison with the paper's Table 2.

        Activations are folded into their layers (as Keras' ``activation=`` argument)
        and dropout is left out; output shapes are per object, channels last as in
        Keras: ``(length, channels)`` for maps.

        Returns
        -------
        list of (str, tuple of int, int)
            ``(layer type, output shape, trainable parameters)``, e.g.
            ``("Conv1D", (182, 256), 1536)``.

        Examples
        --------
        >>> net = PooledCNN1d(input_shape=(186,), n_outputs=1, conv=PAPER_CONV, pool=2, padding="valid",
        ...                   dense=PAPER_DENSE, conv_activation="relu", dense_activation="relu",
        ...                   dropout=0.0, init="keras")
        >>> net.layer_table()[:2]
        [('Conv1D', (182, 256), 1536), ('MaxPooling1D', (91, 256), 0)]
        """
        rows: list[tuple[str, tuple[int, ...], int]] = []
        lengths = iter(self.lengths)
        channels = self.in_channels
        for m in self.features:
            if isinstance(m, nn.Conv1d):
                channels = m.out_channels
                rows.append(("Conv1D", (next(lengths), channels), _n_params(m)))
            elif isinstance(m, nn.MaxPool1d):
                rows.append(("MaxPooling1D", (next(lengths), channels), 0))
            elif isinstance(m, nn.Flatten):
                rows.append(("Flatten", (channels * self.lengths[-1],), 0))
        linears = [m for m in self.dense if isinstance(m, nn.Linear)]
        linears += [self.output] if self.output is not None else []
        rows += [("Dense", (m.out_features,), _n_params(m)) for m in linears]
        return rows


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _input(input_shape: tuple[int, ...]) -> tuple[int, int]:
    shape = tuple(input_shape)
    if len(shape) not in (1, 2) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f"pooled_cnn1d needs input_shape (n_samples,) or (channels, n_samples), got {shape}; "
                         f"use it on a spectra or tabular input")
    return (1, shape[0]) if len(shape) == 1 else shape


def _check_choices(padding, conv_activation, dense_activation, dropout, init, pool) -> None:
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' (Keras' default, the paper's) or 'same', got {padding!r}")
    for key, name in (("conv_activation", conv_activation), ("dense_activation", dense_activation)):
        if name not in ACTIVATIONS:
            raise ValueError(f"{key} (or activation) {name!r} is not known; allowed: {sorted(ACTIVATIONS)}")
    if not isinstance(pool, int) or isinstance(pool, bool) or pool < 0:
        raise ValueError(f"pool must be a non-negative integer (2: the paper's max-pooling; 0 or 1: none), "
                         f"got {pool!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if init not in ("keras", "torch"):
        raise ValueError(f"init must be 'keras' or 'torch', got {init!r}")


def _lengths(length: int, conv: Sequence[tuple[int, int]], pool: int, padding: str) -> list[int]:
    """Map lengths after each convolution and pooling; a ValueError names the layer whose map is empty."""
    out = []
    for i, (_, kernel) in enumerate(conv):
        before = length
        length = length if padding == "same" else length - kernel + 1
        if length < 1:
            raise ValueError(
                f"pooled_cnn1d: convolution {i} (kernel {kernel}, padding 'valid') gets maps of length {before}, "
                f"shorter than its kernel; use fewer convolutions (n_conv), smaller kernels (conv_kernels), "
                f"padding: same, a smaller pool, or a longer input"
            )
        out.append(length)
        if pool > 1:
            length //= pool
            if length < 1:
                raise ValueError(
                    f"pooled_cnn1d: the max-pooling after convolution {i} (size {pool}) gets maps of length "
                    f"{out[-1]} and leaves none; use fewer convolutions (n_conv), smaller kernels (conv_kernels), "
                    f"padding: same, a smaller pool, or a longer input"
                )
            out.append(length)
    return out


def _int_list(key: str, values: object, *, allow_empty: bool = False) -> list[int]:
    if isinstance(values, int) and not isinstance(values, bool):
        values = [values]
    ok = (isinstance(values, Sequence) and not isinstance(values, str) and (allow_empty or len(values) > 0)
          and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values))
    if not ok:
        raise ValueError(f"{key} must be a list of positive integers, got {values!r}")
    return [int(v) for v in values]


def _count(key: str, n: object, lists: dict[str, list[int]], minimum: int) -> int:
    if n is None:
        sizes = {len(v) for v in lists.values()}
        if len(sizes) != 1:
            raise ValueError(f"{' and '.join(lists)} have different lengths {[len(v) for v in lists.values()]}; "
                             f"give {key} to say how many layers to use")
        return sizes.pop()
    if not isinstance(n, int) or isinstance(n, bool) or n < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}, got {n!r}")
    for list_key, values in lists.items():
        if len(values) < n:
            raise ValueError(f"{key} is {n} but {list_key} has only {len(values)} entries {values}; give at least "
                             f"{n} (the first {key} are used)")
    return n


def resolve_layers(
    conv: Sequence[Sequence[int]] = PAPER_CONV,
    dense: Sequence[int] = PAPER_DENSE,
    *,
    n_conv: int | None = None,
    conv_filters: Sequence[int] | int | None = None,
    conv_kernels: Sequence[int] | int | None = None,
    n_dense: int | None = None,
    dense_units: Sequence[int] | int | None = None,
) -> tuple[list[tuple[int, int]], list[int]]:
    """The convolutions and dense layers from the list form and the flat (tuning) form of the parameters.

    The flat form overrides the list form column by column: ``conv_filters`` and
    ``conv_kernels`` replace the filters and kernels of ``conv`` (a missing one is taken
    from ``conv``), and ``n_conv`` keeps the first ``n_conv`` entries (default: all, the
    lists then of equal length). Likewise ``dense_units`` and ``n_dense`` for ``dense``.
    A tuning study samples ``n_conv`` and one filter count and kernel per layer, while the
    recipe may keep the paper's ``conv``.

    Returns
    -------
    conv : list of (int, int)
        ``(filters, kernel_size)`` per convolution.
    dense : list of int
        Units per dense layer.

    Raises
    ------
    ValueError
        For malformed lists, or ``n_conv``/``n_dense`` larger than a list.

    Examples
    --------
    >>> resolve_layers(n_conv=2, conv_filters=[32, 64, 128], conv_kernels=[3, 3, 3], n_dense=1)
    ([(32, 3), (64, 3)], [256])
    """
    ok = (isinstance(conv, Sequence) and not isinstance(conv, str) and len(conv) > 0
          and all(isinstance(c, Sequence) and not isinstance(c, str) and len(c) == 2 for c in conv))
    if not ok:
        raise ValueError(f"conv must be a list of [filters, kernel_size] pairs, e.g. "
                         f"{[list(c) for c in PAPER_CONV]} (the paper's); got {conv!r}")
    filters = _int_list("conv filters", [c[0] for c in conv])
    kernels = _int_list("conv kernel sizes", [c[1] for c in conv])
    if n_conv is not None or conv_filters is not None or conv_kernels is not None:
        lists = {"conv_filters": filters if conv_filters is None else _int_list("conv_filters", conv_filters),
                 "conv_kernels": kernels if conv_kernels is None else _int_list("conv_kernels", conv_kernels)}
        if n_conv is None:  # a single value stands for every layer of the other list
            longest = max(len(v) for v in lists.values())
            lists = {k: v * longest if len(v) == 1 else v for k, v in lists.items()}
        n = _count("n_conv", n_conv, lists, 1)
        filters, kernels = lists["conv_filters"][:n], lists["conv_kernels"][:n]
    units = _int_list("dense", dense, allow_empty=True)
    if n_dense is not None or dense_units is not None:
        units = units if dense_units is None else _int_list("dense_units", dense_units, allow_empty=True)
        units = units[:_count("n_dense", n_dense, {"dense_units": units}, 0)]
    return list(zip(filters, kernels)), units


def pooled_cnn1d_flops(input_shape: tuple[int, ...], conv: Sequence[tuple[int, int]] = PAPER_CONV,
                       dense: Sequence[int] = PAPER_DENSE, *, pool: int = 2, padding: Padding = "valid",
                       n_outputs: int = 1) -> int:
    """Multiply-add operations x 2 of one forward pass (convolutions and dense layers only).

    A convolution costs ``2 * L_out * C_out * C_in * k``, a dense layer ``2 * n_in * n``,
    as :func:`torch.utils.flop_counter.FlopCounterMode` counts them; bias, activations
    and pooling are left out.

    Examples
    --------
    >>> pooled_cnn1d_flops((186,))
    66673792
    """
    c_in, length = _input(input_shape)
    lengths = _lengths(length, conv, pool, padding)
    step = 2 if pool > 1 else 1
    total = 0
    for i, (filters, kernel) in enumerate(conv):
        total += 2 * lengths[step * i] * filters * c_in * kernel
        c_in = filters
    width = c_in * lengths[-1]
    for units in [*dense, *([n_outputs] if n_outputs else [])]:
        total += 2 * width * units
        width = units
    return total


@register_model(input_kinds=("spectra", "tabular"),
                description="paper 004's 1-D CNN (Gaia XP redshift): 4 conv + max-pool, dense 256-256-128-64")
def pooled_cnn1d(
    *,
    input_shape: tuple[int, ...],
    n_outputs: int,
    conv: Sequence[Sequence[int]] = PAPER_CONV,
    n_conv: int | None = None,
    conv_filters: Sequence[int] | int | None = None,
    conv_kernels: Sequence[int] | int | None = None,
    pool: int = 2,
    padding: Padding = "valid",
    dense: Sequence[int] = PAPER_DENSE,
    n_dense: int | None = None,
    dense_units: Sequence[int] | int | None = None,
    activation: str = "relu",
    conv_activation: str | None = None,
    dense_activation: str | None = None,
    dropout: float = 0.0,
    init: Init = "keras",
) -> nn.Module:
    """Paper 004's CNN (Table 2) on a spectrum ``(n_samples,)``; the defaults are the paper's.

    The layers come in two forms (:func:`resolve_layers`): lists, ``conv: [[256, 5],
    [256, 5], [128, 3], [64, 2]]`` and ``dense: [256, 256, 128, 64]``, or, for a tuning
    study that samples each layer, ``n_conv``, ``conv_filters``, ``conv_kernels``,
    ``n_dense`` and ``dense_units`` (the first ``n_conv``/``n_dense`` entries are used;
    they override the lists). ``activation`` applies to convolutions and dense layers
    alike unless ``conv_activation``/``dense_activation`` say otherwise. See
    :class:`PooledCNN1d` for the rest.

    Examples
    --------
    >>> import torch
    >>> net = pooled_cnn1d(input_shape=(186,), n_outputs=1)
    >>> sum(p.numel() for p in net.parameters())
    699073
    >>> net(torch.zeros(3, 186)).shape
    torch.Size([3, 1])
    """
    layers, units = resolve_layers(conv, dense, n_conv=n_conv, conv_filters=conv_filters,
                                   conv_kernels=conv_kernels, n_dense=n_dense, dense_units=dense_units)
    return PooledCNN1d(input_shape=input_shape, n_outputs=n_outputs, conv=layers, pool=pool, padding=padding,
                       dense=units, conv_activation=conv_activation or activation,
                       dense_activation=dense_activation or activation, dropout=float(dropout), init=init)
