"""Ensembles: the mean prediction of several networks of one registered kind.

A recipe asks for one with ``training.ensemble: N``. The engine then trains N copies of
the recipe's network, each from its own seed (``training.seed + k``: another
initialisation and batch order), each with its own early stopping and best-validation
checkpoint, and writes them into the run's ``model.pt`` as one network,
``{"model": "ensemble", "params": {"model": <name>, "params": {...}, "members": N}}``.
Prediction, evaluation and ``astroreg predict`` see one network whose output is the
members' mean; nothing downstream knows it is an ensemble. Averaging independently
trained networks (a "deep ensemble", Lakshminarayanan et al. 2017) lowers the variance
that one network's random start and batch order leave in its predictions.

The registered builder ``ensemble`` builds the untrained structure that such a file is
loaded into. Training it directly as one network (``model.name: ensemble``) is possible,
but then the loss is taken on the mean and the members learn together rather than
independently; ``training.ensemble`` is the recommended way.

Single-input members are averaged inside one :class:`~astroreg.models.SingleInput`
adapter, so that prediction still runs a tensor network (traced or chunked, see
:mod:`astroreg.models._fast`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from astroreg.models._registry import (
    ANY_KIND,
    SingleInput,
    check_model_inputs,
    create_model,
    get_model_entry,
    register_model,
)

#: Most members an ensemble may have (a doctored model file must not make astroreg build millions).
MAX_MEMBERS = 100

__all__ = ["MAX_MEMBERS", "MeanEnsemble", "ensemble", "ensemble_of", "ensemble_params", "split_members"]


class MeanEnsemble(nn.Module):
    """The mean of its members' outputs (their concatenation when they have no head).

    Parameters
    ----------
    members : sequence of torch.nn.Module
        Networks with the same input and the same ``out_features``; each maps the input
        (a tensor, or the dict of named inputs) to ``(n, out_features)``.
    concatenate : bool
        Return the members' outputs side by side, ``(n, members x out_features)``,
        instead of their mean: the feature vector of an ensemble of headless backbones.

    Attributes
    ----------
    members : torch.nn.ModuleList
    out_features : int
    inference_chunk : int or None
        The members' own chunk size for CPU prediction, when they declare one.
    """

    def __init__(self, members: Sequence[nn.Module], *, concatenate: bool = False) -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member network")
        widths = {getattr(m, "out_features", None) for m in members}
        if len(widths) != 1 or not isinstance(next(iter(widths)), int):
            raise ValueError(f"ensemble members must share one integer out_features; got {sorted(map(str, widths))}")
        self.members = nn.ModuleList(members)
        self.concatenate = bool(concatenate)
        width = next(iter(widths))
        self.out_features = width * len(members) if concatenate else width
        chunks = [c for c in (getattr(m, "inference_chunk", None) for m in members) if c]
        if chunks:
            self.inference_chunk = min(chunks)

    def extra_repr(self) -> str:
        return f"members={len(self.members)}, {'concatenate' if self.concatenate else 'mean'}"

    def forward(self, x):
        """The members' mean (or concatenated) output for the input ``x``."""
        outs = [m(x) for m in self.members]
        if self.concatenate:
            return torch.cat(outs, dim=1)
        return torch.stack(outs).mean(dim=0)


def ensemble_of(networks: Sequence[nn.Module], *, concatenate: bool = False) -> nn.Module:
    """One dict-taking network averaging ``networks`` (built by :func:`create_model`).

    Single-input networks reading the same input are averaged inside one
    :class:`~astroreg.models.SingleInput` (``inner.members.<k>.<...>`` weights); others
    (fusion models) are averaged on the dict (``members.<k>.<...>``). The registered
    builder and the engine's assembly of trained members both go through here, so that
    a saved ensemble loads into the built one.

    Parameters
    ----------
    networks : sequence of torch.nn.Module
        Dict-taking networks with the same inputs and ``out_features``.
    concatenate : bool
        See :class:`MeanEnsemble`.

    Returns
    -------
    torch.nn.Module
    """
    names = {n.name for n in networks if isinstance(n, SingleInput)}
    if len(names) == 1 and all(isinstance(n, SingleInput) for n in networks):
        inner = MeanEnsemble([n.inner for n in networks], concatenate=concatenate)
        return SingleInput(names.pop(), inner, out_features=inner.out_features)
    return MeanEnsemble(networks, concatenate=concatenate)


def ensemble_params(model: str, params: Mapping[str, object], members: int) -> dict[str, object]:
    """The ``params`` of a saved ensemble of ``members`` networks ``model`` with ``params``."""
    return {"model": str(model), "params": dict(params), "members": int(members)}


def _member_spec(model: object, params: object, members: object) -> tuple[str, dict, int]:
    if not isinstance(model, str) or get_model_entry(model).name == "ensemble":
        raise ValueError(f"ensemble: model must name a registered network other than 'ensemble'; got {model!r}")
    if params is not None and not isinstance(params, Mapping):
        raise ValueError(f"ensemble: params must be the member network's parameters (a mapping); got {params!r}")
    if not isinstance(members, int) or isinstance(members, bool) or not 1 <= members <= MAX_MEMBERS:
        raise ValueError(f"ensemble: members must be an integer from 1 to {MAX_MEMBERS}; got {members!r}")
    return model, dict(params or {}), members


def _check(input_kinds: Mapping[str, str], params: Mapping[str, object]) -> None:
    model, member_params, _ = _member_spec(params.get("model", "mlp"), params.get("params"),
                                           params.get("members", 2))
    check_model_inputs(model, input_kinds, member_params)


@register_model(input_kinds=ANY_KIND, multi_input=True, check_inputs=_check,
                description="mean of several networks of one kind (made by training.ensemble)")
def ensemble(
    *,
    input_shapes: Mapping[str, tuple[int, ...]],
    input_kinds: Mapping[str, str],
    n_outputs: int,
    model: str = "mlp",
    params: Mapping[str, object] | None = None,
    members: int = 2,
) -> nn.Module:
    """``members`` networks ``model`` (with ``params``), averaged.

    Parameters
    ----------
    input_shapes, input_kinds : mapping
        The recipe's inputs.
    n_outputs : int
        Outputs of each member; 0 builds headless members whose feature vectors are
        concatenated.
    model : str
        The members' registered network.
    params : mapping, optional
        The members' hyper-parameters.
    members : int
        How many.

    Returns
    -------
    torch.nn.Module
    """
    model, member_params, members = _member_spec(model, params, members)
    nets = [create_model(model, input_shapes=input_shapes, input_kinds=input_kinds, n_outputs=n_outputs,
                         **member_params) for _ in range(members)]
    return ensemble_of(nets, concatenate=n_outputs == 0)


def split_members(net: nn.Module) -> int:
    """Make an ensemble put out its members' predictions side by side; how many members.

    ``astroreg predict`` calls it on a freshly loaded network to report each object's
    spread between the members beside their mean. The network is changed in place: its
    output becomes ``(n, members x out_features)``, member k in columns
    ``k * out_features`` to ``(k + 1) * out_features``.

    Parameters
    ----------
    net : torch.nn.Module
        A loaded network.

    Returns
    -------
    int
        The number of members, or 0 (and ``net`` unchanged) when ``net`` is not an
        ensemble built here or has one member (whose spread would be undefined).
    """
    inner = net.inner if isinstance(net, SingleInput) else net
    if not isinstance(inner, MeanEnsemble) or inner.concatenate or len(inner.members) < 2:
        return 0
    inner.concatenate = True
    return len(inner.members)
