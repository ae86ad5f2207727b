"""Registry of network builders, and the model interface every network follows.

The model interface
-------------------
**What the engine sees.** :func:`create_model` returns a plain :class:`torch.nn.Module`
whose ``forward`` takes the batch's inputs by name, a ``dict[str, Tensor]`` (one entry per
recipe input, e.g. ``{"image": (n, 1, 143, 143)}`` or ``{"flux": (n, 4000), "photometry":
(n, 5)}``), and returns a tensor of shape ``(n, n_outputs)``. Every such module has an
integer attribute ``out_features``, the width of its output.

**Builders.** A builder is a function registered with :func:`register_model`; it takes
keyword-only arguments and returns an ``nn.Module``. There are two kinds:

- *single-input* builders (the default) take ``input_shape`` (the per-object shape of the
  one input, e.g. ``(bands, H, W)`` or ``(n_pixels,)``), ``n_outputs`` and their own
  hyper-parameters, and return a network on a plain tensor ``(n, *input_shape)``. They
  know nothing of input names: :func:`create_model` wraps each in the one adapter
  :class:`SingleInput`, whose ``forward(x)`` is ``self.inner(x[self.name])``. Prediction
  can take the network back out with :func:`unwrap_single` and run it on a tensor (the
  TorchScript trace and the dense fast path of :mod:`astroreg.models._fast` work on it);
- *multi-input* builders (``multi_input=True``, e.g. ``fusion_early``) take
  ``input_shapes`` (``{name: shape}``), ``input_kinds`` (``{name: kind}``), ``n_outputs``
  and their hyper-parameters, and return a module that takes the dict itself.

**Declared kinds.** Each builder declares the input kinds it accepts (``input_kinds=
("images",)``, ``("spectra", "tabular")`` for a dense network on any flat vector, or
``"any"`` for a multi-input builder that checks each input itself).
:func:`check_model_inputs` compares a recipe's inputs with them and names the input
that does not fit.

**No head.** Every builder accepts ``n_outputs=0``: the network is built without its
output layer(s) and returns its feature vector ``(n, d)``, with ``out_features == d``
(like timm's ``num_classes=0``). This is how fusion models use registered networks as
backbones.

Examples
--------
>>> import torch
>>> net = create_model("mlp", input_shapes={"photometry": (5,)}, n_outputs=2)
>>> net({"photometry": torch.zeros(3, 5)}).shape
torch.Size([3, 2])
>>> body = create_model("mlp", input_shapes={"photometry": (5,)}, n_outputs=0)
>>> body({"photometry": torch.zeros(3, 5)}).shape == (3, body.out_features)
True
>>> unwrap_single(net)[0]
'photometry'
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

__all__ = [
    "ANY_KIND", "ModelEntry", "SingleInput", "check_model_inputs", "create_model", "get_model_entry",
    "list_models", "register_model", "unwrap_single",
]

#: ``input_kinds`` value of a builder that takes inputs of any kind (it checks them itself).
ANY_KIND = "any"

_BUILDERS: dict[str, ModelEntry] = {}
_SHAPE_ARGS = ("input_shape", "input_shapes", "input_kinds", "n_outputs")


@dataclass(frozen=True)
class ModelEntry:
    """A registered network builder.

    Attributes
    ----------
    name : str
        Registry name.
    builder : callable
        The builder function.
    input_kinds : tuple of str, or None
        The input kinds the network accepts; None for any kind.
    description : str
        One line for ``astroreg models``.
    multi_input : bool
        Whether the builder takes ``input_shapes``/``input_kinds`` dicts (several inputs)
        instead of one ``input_shape``.
    check_inputs : callable or None
        ``check_inputs(input_kinds, params)`` raises ValueError for inputs or
        hyper-parameters the builder would refuse, without building anything (a fusion
        model's backbones); None when the declared kinds say it all.
    """

    name: str
    builder: Callable[..., nn.Module]
    input_kinds: tuple[str, ...] | None
    description: str
    multi_input: bool = False
    check_inputs: Callable[[Mapping[str, str], Mapping[str, object]], None] | None = None

    @property
    def input_kind(self) -> str:
        """The accepted kinds as one label for listings, e.g. ``images`` or ``spectra/tabular``."""
        label = ANY_KIND if self.input_kinds is None else "/".join(self.input_kinds)
        return f"{label}, several inputs" if self.multi_input else label

    def accepts(self, kind: str) -> bool:
        """Whether an input of ``kind`` may go into this network."""
        return self.input_kinds is None or kind in self.input_kinds

    def parameters(self) -> dict[str, object]:
        """The builder's own keyword parameters and their defaults (shapes and outputs left out)."""
        sig = inspect.signature(self.builder)
        return {
            k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in sig.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and k not in _SHAPE_ARGS
        }


class SingleInput(nn.Module):
    """The adapter that gives a single-input network the dict interface.

    ``forward(x)`` is ``self.inner(x[self.name])``; the network's ``state_dict`` keys get
    the prefix ``inner.``.

    Parameters
    ----------
    name : str
        The recipe input the network reads.
    inner : torch.nn.Module
        Maps a tensor of shape ``(n, *input_shape)`` to ``(n, out_features)``.
    out_features : int
        Width of the output.

    Attributes
    ----------
    name, inner, out_features
        As given.
    """

    def __init__(self, name: str, inner: nn.Module, *, out_features: int) -> None:
        super().__init__()
        self.name = name
        self.inner = inner
        self.out_features = int(out_features)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, out_features={self.out_features}"

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        """Map ``{name: (n, *input_shape), ...}`` to ``(n, out_features)``."""
        return self.inner(x[self.name])


def unwrap_single(net: nn.Module) -> tuple[str, nn.Module] | None:
    """The input name and the tensor network inside a :class:`SingleInput`, or None.

    Prediction calls it to run a single-input network on a plain tensor (traced, folded,
    chunked) instead of through the dict; a multi-input network gives None.
    """
    return (net.name, net.inner) if isinstance(net, SingleInput) else None


def _kinds(input_kinds: str | Sequence[str] | None, input_kind: str | None, key: str) -> tuple[str, ...] | None:
    if input_kind is not None:
        if input_kinds is not None:
            raise ValueError(f"model {key!r}: give input_kinds or its one-kind shorthand input_kind, not both")
        input_kinds = (input_kind,)
    if input_kinds is None:
        raise ValueError(f"model {key!r} declares no input kinds; pass input_kinds=(\"images\",) or similar, "
                         f"or input_kinds={ANY_KIND!r}")
    if input_kinds == ANY_KIND:
        return None
    kinds = (input_kinds,) if isinstance(input_kinds, str) else tuple(input_kinds)
    if not kinds or not all(isinstance(k, str) and k and k != ANY_KIND for k in kinds):
        raise ValueError(f"model {key!r}: input_kinds must be kind names such as ('images',) or {ANY_KIND!r}, "
                         f"got {input_kinds!r}")
    return kinds


def register_model(
    name: str | None = None,
    *,
    input_kinds: str | Sequence[str] | None = None,
    input_kind: str | None = None,
    description: str = "",
    multi_input: bool = False,
    check_inputs: Callable[[Mapping[str, str], Mapping[str, object]], None] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a network builder under ``name`` (default: the function's name).

    See the module docstring for the builder interface.

    Parameters
    ----------
    name : str, optional
        Registry name; defaults to the decorated function's name.
    input_kinds : str or sequence of str
        The input kinds the network accepts, e.g. ``("images",)`` or ``("spectra",
        "tabular")``; ``"any"`` for a multi-input builder that checks its inputs itself.
    input_kind : str, optional
        Shorthand for one kind: ``input_kind="images"`` is ``input_kinds=("images",)``.
    description : str
        One line shown by ``astroreg models``; defaults to the docstring's first line.
    multi_input : bool
        The builder takes ``input_shapes`` and ``input_kinds`` dicts and returns a module
        on the dict of inputs; otherwise it takes one ``input_shape`` and is wrapped in
        :class:`SingleInput`.
    check_inputs : callable, optional
        ``check_inputs(input_kinds, params)``: raises ValueError, naming the input, for a
        recipe the builder would refuse; run by :func:`check_model_inputs` when it is given
        the parameters (e.g. a fusion model's backbone for each input).

    Raises
    ------
    ValueError
        For a name registered twice or missing or malformed kinds.

    Examples
    --------
    >>> @register_model(input_kinds=("tabular",), description="tiny MLP")  # doctest: +SKIP
    ... def tiny(*, input_shape, n_outputs, width=8):
    ...     body = nn.Sequential(nn.Linear(input_shape[0], width), nn.ReLU())
    ...     if n_outputs == 0:
    ...         body.out_features = width
    ...         return body
    ...     return nn.Sequential(body, nn.Linear(width, n_outputs))
    """

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _BUILDERS:
            raise ValueError(f"model {key!r} is already registered")
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        _BUILDERS[key] = ModelEntry(key, fn, _kinds(input_kinds, input_kind, key), doc, bool(multi_input),
                                    check_inputs)
        return fn

    return deco


def list_models(input_kind: str | None = None) -> list[str]:
    """Sorted names of the registered networks, optionally only those that accept ``input_kind``."""
    return sorted(k for k, e in _BUILDERS.items() if input_kind is None or e.accepts(input_kind))


def get_model_entry(name: str) -> ModelEntry:
    """The :class:`ModelEntry` registered under ``name``."""
    try:
        return _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {list_models()}") from None


def check_model_inputs(name: str, input_kinds: Mapping[str, str], params: Mapping[str, object] | None = None) -> None:
    """Check that network ``name`` can take a recipe's inputs, without building it.

    Parameters
    ----------
    name : str
        A registered network.
    input_kinds : mapping of str to str
        The recipe's inputs, ``{input name: kind}``, e.g. ``{"image": "images"}``.
    params : mapping, optional
        The network's hyper-parameters (the recipe's ``model.params``); when given, unknown
        names are refused and the builder's own check runs (a fusion model's backbones:
        one for each input, of the input's kind).

    Raises
    ------
    ValueError
        Naming the input whose kind the network does not take (and the kinds it takes),
        or saying that a single-input network was given several inputs; naming unknown
        parameters, or the input whose fusion backbone is missing or of the wrong kind.

    Examples
    --------
    >>> check_model_inputs("paper_cnn", {"flux": "spectra"})
    Traceback (most recent call last):
    ...
    ValueError: recipe input 'flux' is of kind 'spectra', but model 'paper_cnn' takes images; ...
    """
    entry = get_model_entry(name)
    if not input_kinds:
        raise ValueError(f"model {name!r} was given no inputs; the recipe's inputs must name at least one")
    if not entry.multi_input and len(input_kinds) > 1:
        raise ValueError(
            f"model {name!r} takes one input, but the recipe has {len(input_kinds)}: {sorted(input_kinds)}; "
            f"keep one input, or use a model for several inputs: {_multi_input_models()}"
        )
    for input_name, kind in input_kinds.items():
        if not entry.accepts(kind):
            raise ValueError(
                f"recipe input {input_name!r} is of kind {kind!r}, but model {name!r} takes "
                f"{' or '.join(entry.input_kinds or ())}; models for {kind}: {list_models(kind) or 'none'}"
            )
    if params is not None:
        _check_param_names(entry, params)
        if entry.check_inputs is not None:
            entry.check_inputs(dict(input_kinds), dict(params))


def _check_param_names(entry: ModelEntry, params: Mapping[str, object]) -> None:
    allowed = entry.parameters()
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"model {entry.name!r} has no parameter(s) {unknown}; allowed: {sorted(allowed)}")


def _multi_input_models() -> list[str]:
    return sorted(k for k, e in _BUILDERS.items() if e.multi_input)


def _check_shapes(model: str, input_shapes: Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    if not isinstance(input_shapes, Mapping) or not input_shapes:
        raise ValueError(
            f"model {model!r} needs input_shapes, a non-empty mapping of input name to per-object shape "
            f"such as {{'image': (1, 143, 143)}}; got {input_shapes!r}"
        )
    shapes = {}
    for key, shape in input_shapes.items():
        ok = isinstance(shape, Sequence) and len(shape) > 0 and all(
            isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
        if not isinstance(key, str) or not key or not ok:
            raise ValueError(
                f"model {model!r}: input {key!r} has shape {shape!r}; give each input a non-empty str name "
                f"and a tuple of positive integers"
            )
        shapes[key] = tuple(int(s) for s in shape)
    return shapes


def create_model(
    name: str,
    *,
    input_shapes: Mapping[str, Sequence[int]],
    n_outputs: int,
    input_kinds: Mapping[str, str] | None = None,
    **params,
) -> nn.Module:
    """Build the registered network ``name`` for the named inputs.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    input_shapes : mapping of str to tuple of int
        Per-object shape of each input, e.g. ``{"image": (1, 143, 143)}`` for one-band
        143x143 stamps or ``{"flux": (4000,)}``.
    n_outputs : int
        Number of regression outputs; 0 builds the network without its head, returning
        its feature vector.
    input_kinds : mapping of str to str, optional
        Kind of each input (same names as ``input_shapes``); checked with
        :func:`check_model_inputs` when given. Multi-input networks need it.
    **params
        The builder's hyper-parameters; unknown ones raise with the allowed names.

    Returns
    -------
    torch.nn.Module
        ``forward`` takes ``dict[str, Tensor]`` (``{name: (n, *shape)}``) and returns
        ``(n, out_features)``; ``out_features`` is ``n_outputs``, or the feature width
        when ``n_outputs == 0``.

    Raises
    ------
    ValueError
        For an unknown network or parameter, malformed shapes, a negative ``n_outputs``,
        inputs the network does not take, or a builder that breaks the interface.

    Examples
    --------
    >>> import torch
    >>> net = create_model("paper_cnn", input_shapes={"image": (1, 32, 32)}, n_outputs=1)
    >>> net({"image": torch.zeros(4, 1, 32, 32)}).shape
    torch.Size([4, 1])
    """
    entry = get_model_entry(name)
    _check_param_names(entry, params)
    shapes = _check_shapes(name, input_shapes)
    if not isinstance(n_outputs, int) or isinstance(n_outputs, bool) or n_outputs < 0:
        raise ValueError(f"n_outputs must be a non-negative integer (0: no head, features out); got {n_outputs!r}")
    kinds = None
    if input_kinds is not None:
        kinds = dict(input_kinds)
        if set(kinds) != set(shapes):
            raise ValueError(f"model {name!r}: input_kinds names {sorted(kinds)} but input_shapes names "
                             f"{sorted(shapes)}; give both for the same inputs")
        check_model_inputs(name, kinds)
    if entry.multi_input:
        if kinds is None:
            raise ValueError(f"model {name!r} takes several inputs and needs input_kinds, e.g. "
                             f"{{'image': 'images', 'photometry': 'tabular'}}")
        net = entry.builder(input_shapes=shapes, input_kinds=kinds, n_outputs=n_outputs, **params)
    else:
        if len(shapes) != 1:
            raise ValueError(
                f"model {name!r} takes one input, but got {len(shapes)}: {sorted(shapes)}; keep one input, "
                f"or use a model for several inputs: {_multi_input_models()}"
            )
        (input_name, shape), = shapes.items()
        inner = entry.builder(input_shape=shape, n_outputs=n_outputs, **params)
        width = n_outputs or getattr(inner, "out_features", None)
        net = SingleInput(input_name, inner, out_features=width) if isinstance(width, int) else None
    width = getattr(net, "out_features", None)
    if not isinstance(width, int) or width < 1 or (n_outputs and width != n_outputs):
        raise ValueError(
            f"builder of model {name!r} broke the model interface: with n_outputs={n_outputs} its network must "
            f"have an integer attribute out_features ({'the feature width' if n_outputs == 0 else n_outputs}), "
            f"found {width!r}; fix the builder (see astroreg.models._registry)"
        )
    return net
