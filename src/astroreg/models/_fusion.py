"""Fusion networks for several named inputs, composed from registered networks by configuration.

``fusion_early`` runs each input through a registered backbone built without its head
(``n_outputs=0``), concatenates the feature vectors and puts a dense head on top.
``fusion_late`` builds one complete registered network per input and averages their
predictions (equal weights, given weights, or learned ones). A recipe names the
backbones per input::

    model:
      name: fusion_early
      params:
        backbones:
          image: {name: paper_cnn, params: {dropout: 0.1}}
          photometry: {name: mlp, params: {hidden: [32]}}   # may be left out: tabular default
        head: [128]

Defaults: an input of kind ``tabular`` without a backbone gets :data:`DEFAULT_BACKBONES`
``["tabular"]``, the registered ``mlp`` with its defaults (hidden 128, 64; 64 features). Every
other input needs its backbone named, since no one network suits every image or spectrum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from astroreg.models._registry import (
    ANY_KIND,
    check_model_inputs,
    create_model,
    get_model_entry,
    list_models,
    register_model,
)
from astroreg.models._spectra import dense_stack

__all__ = ["DEFAULT_BACKBONES", "EarlyFusion", "LateFusion", "fusion_early", "fusion_late"]

#: Backbone used for an input of this kind when the recipe names none.
DEFAULT_BACKBONES: dict[str, dict[str, object]] = {"tabular": {"name": "mlp", "params": {}}}

BackboneSpec = Mapping[str, object]


def _backbone_specs(model: str, input_kinds: Mapping[str, str],
                    backbones: Mapping[str, BackboneSpec] | None) -> dict[str, tuple[str, dict]]:
    """``{input: (network name, params)}`` for every input, checked against the inputs and their kinds."""
    backbones = {} if backbones is None else backbones
    if not isinstance(backbones, Mapping):
        raise TypeError(f"{model}: backbones must map each input name to {{name: ..., params: {{...}}}}; "
                         f"got {backbones!r}")
    extra = sorted(set(backbones) - set(input_kinds))
    if extra:
        raise ValueError(f"{model}: backbones are given for {extra}, which are not inputs of the recipe; "
                         f"its inputs are {list(input_kinds)}")
    specs = {}
    for name, kind in input_kinds.items():
        if not name or "." in name or hasattr(nn.ModuleDict(), name):
            raise ValueError(f"{model}: input name {name!r} cannot name a sub-network (empty, has a '.', or is "
                             f"an attribute of torch modules); rename the input")
        spec = backbones.get(name, DEFAULT_BACKBONES.get(kind))
        if spec is None:
            raise ValueError(
                f"{model}: no backbone for input {name!r} (kind {kind!r}); add backbones.{name}: "
                f"{{name: ..., params: {{...}}}} with one of {list_models(kind)}"
            )
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) or set(spec) - {"name", "params"} \
                or not isinstance(spec.get("params", {}), Mapping):
            raise ValueError(f"{model}: backbone for input {name!r} must be {{name: <model>, params: {{...}}}} "
                             f"(params optional); got {spec!r}")
        bname = spec["name"]
        entry = get_model_entry(bname)
        if entry.multi_input:
            raise ValueError(f"{model}: backbone {bname!r} for input {name!r} takes several inputs; "
                             f"give a single-input model: {list_models(kind)}")
        if not entry.accepts(kind):
            raise ValueError(
                f"{model}: backbone {bname!r} for input {name!r} takes {' or '.join(entry.input_kinds or ())}, "
                f"but the input is of kind {kind!r}; models for {kind}: {list_models(kind)}"
            )
        params = dict(spec.get("params", {}))
        try:
            check_model_inputs(bname, {name: kind}, params)
        except ValueError as err:
            raise ValueError(f"{model}: backbone {bname!r} for input {name!r}: {err}") from None
        specs[name] = (bname, params)
    return specs


def _build(model: str, specs: dict[str, tuple[str, dict]], input_shapes: Mapping[str, tuple[int, ...]],
           input_kinds: Mapping[str, str], n_outputs: int) -> dict[str, nn.Module]:
    nets = {}
    for name, (bname, params) in specs.items():
        try:
            nets[name] = create_model(bname, input_shapes={name: input_shapes[name]},
                                      input_kinds={name: input_kinds[name]}, n_outputs=n_outputs, **params)
        except ValueError as err:
            raise ValueError(f"{model}: backbone {bname!r} for input {name!r}: {err}") from None
    return nets


def _check_weights(weights: Sequence[float] | None, inputs: Sequence[str]) -> None:
    if weights is None:
        return
    w = list(weights) if isinstance(weights, Sequence) and not isinstance(weights, str) else None
    ok = w is not None and len(w) == len(inputs) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in w)
    if not ok or sum(w) <= 0:
        raise ValueError(
            f"fusion_late: weights must be {len(inputs)} non-negative numbers, not all zero, one per input "
            f"in the order {list(inputs)}; got {weights!r}"
        )


def _check_early(input_kinds: Mapping[str, str], params: Mapping[str, object]) -> None:
    _backbone_specs("fusion_early", input_kinds, params.get("backbones"))


def _check_late(input_kinds: Mapping[str, str], params: Mapping[str, object]) -> None:
    specs = _backbone_specs("fusion_late", input_kinds, params.get("backbones"))
    _check_weights(params.get("weights"), list(specs))


class EarlyFusion(nn.Module):
    """Backbone features of every input, concatenated, through a dense head.

    Parameters
    ----------
    backbones : mapping of str to torch.nn.Module
        One network per input, each taking the dict of inputs and returning
        ``(n, out_features)`` (a :class:`~astroreg.models.SingleInput` built without head).
    head : torch.nn.Module
        Maps ``(n, sum of the backbones' out_features)`` to ``(n, out_features)``.
    out_features : int
        Width of the head's output.
    """

    def __init__(self, backbones: Mapping[str, nn.Module], head: nn.Module, *, out_features: int) -> None:
        super().__init__()
        self.backbones = nn.ModuleDict(backbones)
        self.head = head
        self.out_features = int(out_features)

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        """Map ``{name: (n, *shape)}`` to ``(n, out_features)``."""
        return self.head(torch.cat([net(x) for net in self.backbones.values()], dim=1))


class LateFusion(nn.Module):
    """A weighted mean of complete per-input networks' predictions.

    Parameters
    ----------
    nets : mapping of str to torch.nn.Module
        One network per input, each taking the dict of inputs and returning ``(n, k)``.
    weights : sequence of float, optional
        Non-negative weight of each network, in the order of ``nets``; normalised to sum
        1. Default: equal weights.
    learn_weights : bool
        Learn the weights as the softmax of one parameter per network (started at the log
        of the given or equal weights).
    average : bool
        False returns the networks' outputs concatenated instead of their mean (networks
        built without head, whose feature widths differ).

    Attributes
    ----------
    out_features : int
        ``k``, or the sum of the networks' widths when ``average`` is False.
    """

    def __init__(self, nets: Mapping[str, nn.Module], *, weights: Sequence[float] | None = None,
                 learn_weights: bool = False, average: bool = True) -> None:
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        self.average = average
        widths = [int(net.out_features) for net in self.nets.values()]
        self.out_features = widths[0] if average else sum(widths)
        w = torch.full((len(widths),), 1.0 / len(widths)) if weights is None else torch.tensor(
            [float(v) for v in weights])
        w = w / w.sum()
        self.logits: nn.Parameter | None = None
        if average and learn_weights:
            self.logits = nn.Parameter(w.clamp_min(1e-6).log())
        self.register_buffer("fixed_weights", w, persistent=False)

    def fusion_weights(self) -> Tensor:
        """The current weight of each network, shape ``(n_inputs,)``, summing to 1."""
        return self.fixed_weights if self.logits is None else torch.softmax(self.logits, dim=0)

    def forward(self, x: dict[str, Tensor]) -> Tensor:
        """Map ``{name: (n, *shape)}`` to ``(n, out_features)``."""
        outs = [net(x) for net in self.nets.values()]
        if not self.average:
            return torch.cat(outs, dim=1)
        return torch.einsum("k,knj->nj", self.fusion_weights(), torch.stack(outs))


@register_model(input_kinds=ANY_KIND, multi_input=True, check_inputs=_check_early,
                description="early fusion: registered backbones per input, features concatenated, dense head")
def fusion_early(
    *,
    input_shapes: Mapping[str, tuple[int, ...]],
    input_kinds: Mapping[str, str],
    n_outputs: int,
    backbones: Mapping[str, BackboneSpec] | None = None,
    head: Sequence[int] = (128,),
    dropout: float = 0.0,
) -> nn.Module:
    """Early fusion: each input through its backbone's features, concatenated, then a dense head.

    Parameters
    ----------
    input_shapes, input_kinds : mapping of str
        Per-object shape and kind of each input.
    n_outputs : int
        Number of outputs; 0 returns the head's last hidden layer (or the concatenated
        features without hidden layers).
    backbones : mapping of str to mapping
        ``{input: {"name": registered network, "params": {...}}}``; each is built with
        ``n_outputs=0``. May leave out ``tabular`` inputs (default: ``mlp``, see
        :data:`DEFAULT_BACKBONES`).
    head : sequence of int
        Hidden widths of the dense head (ReLU).
    dropout : float
        Dropout after each hidden layer of the head.

    Raises
    ------
    ValueError
        Naming the input whose backbone is missing, is not of its kind, or is given
        for an input the recipe does not have.

    Examples
    --------
    >>> import torch
    >>> net = fusion_early(input_shapes={"image": (1, 16, 16), "photometry": (3,)},
    ...                    input_kinds={"image": "images", "photometry": "tabular"}, n_outputs=1,
    ...                    backbones={"image": {"name": "paper_cnn"}})
    >>> net({"image": torch.zeros(2, 1, 16, 16), "photometry": torch.zeros(2, 3)}).shape
    torch.Size([2, 1])
    """
    specs = _backbone_specs("fusion_early", input_kinds, backbones)
    nets = _build("fusion_early", specs, input_shapes, input_kinds, 0)
    width = sum(net.out_features for net in nets.values())
    head = tuple(int(h) for h in head)
    layers = dense_stack(width, head, activation="relu", dropout=dropout, out_features=n_outputs or None)
    return EarlyFusion(nets, layers, out_features=n_outputs or (head[-1] if head else width))


@register_model(input_kinds=ANY_KIND, multi_input=True, check_inputs=_check_late,
                description="late fusion: one registered network per input, predictions averaged or weighted")
def fusion_late(
    *,
    input_shapes: Mapping[str, tuple[int, ...]],
    input_kinds: Mapping[str, str],
    n_outputs: int,
    backbones: Mapping[str, BackboneSpec] | None = None,
    weights: Sequence[float] | None = None,
    learn_weights: bool = False,
) -> nn.Module:
    """Late fusion: one complete network per input, predictions averaged.

    Parameters
    ----------
    input_shapes, input_kinds : mapping of str
        Per-object shape and kind of each input.
    n_outputs : int
        Number of outputs of every network and of the mean. 0 builds each network
        without head and returns their features concatenated (there is nothing to
        average), ``weights`` unused.
    backbones : mapping of str to mapping
        ``{input: {"name": registered network, "params": {...}}}``; each is built with
        ``n_outputs``. May leave out ``tabular`` inputs (default: ``mlp``, see
        :data:`DEFAULT_BACKBONES`).
    weights : sequence of float, optional
        One non-negative weight per input, in the order of the recipe's inputs;
        normalised to sum 1. Default: equal weights.
    learn_weights : bool
        Learn the weights (softmax of one parameter per input, started from ``weights``
        or equal weights).

    Raises
    ------
    ValueError
        As :func:`fusion_early`, and for ``weights`` of the wrong length, negative,
        non-finite or all zero.
    """
    specs = _backbone_specs("fusion_late", input_kinds, backbones)
    _check_weights(weights, list(specs))
    nets = _build("fusion_late", specs, input_shapes, input_kinds, n_outputs)
    return LateFusion(nets, weights=weights, learn_weights=learn_weights, average=n_outputs > 0)
