"""Search spaces: drawing a trial's recipe values from ``tuning.space``, per-layer dimensions included."""

from __future__ import annotations

import json
from typing import Any

import optuna

from astroreg.config._recipe import SearchDimension


def _is_primitive(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _choice_labels(choices: list[Any]) -> list[Any]:
    """Optuna's categorical choices must be primitives: lists and mappings become JSON strings."""
    if all(_is_primitive(c) for c in choices):
        return list(choices)
    return [json.dumps(c) for c in choices]


def suggest(trial: optuna.Trial, key: str, dim: SearchDimension) -> Any:
    """Sample one dimension; return the recipe value (a list for list-valued choices).

    Parameters
    ----------
    trial : optuna.Trial
    key : str
        Dotted recipe key, used as the Optuna parameter name.
    dim : SearchDimension

    Returns
    -------
    Any
        ``int``, ``float`` or one of ``dim.choices`` itself (e.g. ``[64, 32]``).
    """
    if dim.type == "categorical":
        labels = _choice_labels(dim.choices)
        label = trial.suggest_categorical(key, labels)
        return dim.choices[labels.index(label)]
    if dim.type == "int":
        step = 1 if dim.step is None else dim.step
        bounds = (dim.low, dim.high, step)
        if any(float(b) != int(b) for b in bounds):
            raise ValueError(f"tuning.space.{key}: an int dimension needs whole low, high and step, got {bounds}")
        return trial.suggest_int(key, int(dim.low), int(dim.high), step=int(step), log=dim.log)
    return trial.suggest_float(key, float(dim.low), float(dim.high), step=dim.step, log=dim.log)


def _layer_name(key: str, i: int) -> str:
    return f"{key}.{i}"


def _sampling_order(space: dict[str, SearchDimension]) -> list[str]:
    """The layer counts, then the other plain keys, then the per-layer keys; each group in the YAML order.

    A space without ``per_layer`` is drawn in its YAML order, as before per-layer keys existed.
    """
    counts = {d.per_layer for d in space.values() if d.per_layer is not None}
    return ([k for k in space if k in counts] + [k for k, d in space.items() if k not in counts and d.per_layer is None]
            + [k for k, d in space.items() if d.per_layer is not None])


def sample_space(trial: optuna.Trial, space: dict[str, SearchDimension]) -> dict[str, Any]:
    """Draw every dimension of a search space; return the recipe overrides, in the space's order.

    A dimension with ``per_layer: COUNT`` is drawn after ``COUNT``, once per layer
    ``i < count`` as the Optuna parameter ``<key>.<i>`` (define-by-run: the layers a
    trial does not have are not drawn), and its recipe value is the list of the draws.

    Parameters
    ----------
    trial : optuna.Trial
    space : dict of str to SearchDimension
        ``tuning.space`` (per-layer references checked by the recipe schema).

    Returns
    -------
    dict
        ``{dotted key: recipe value}``, e.g. ``{"model.params.n_conv": 2,
        "model.params.conv_filters": [64, 256]}``.

    Examples
    --------
    >>> space = {"model.params.n_dense": SearchDimension(type="int", low=1, high=3),
    ...          "model.params.dense_units": SearchDimension(type="categorical", choices=[64, 128],
    ...                                                      per_layer="model.params.n_dense")}
    >>> trial = optuna.trial.FixedTrial({"model.params.n_dense": 2, "model.params.dense_units.0": 64,
    ...                                  "model.params.dense_units.1": 128})
    >>> sample_space(trial, space)["model.params.dense_units"]
    [64, 128]
    """
    drawn: dict[str, Any] = {}
    for key in _sampling_order(space):
        dim = space[key]
        if dim.per_layer is None:
            drawn[key] = suggest(trial, key, dim)
        else:
            drawn[key] = [suggest(trial, _layer_name(key, i), dim) for i in range(int(drawn[dim.per_layer]))]
    return {key: drawn[key] for key in space}


def _probe_value(dim: SearchDimension, space: dict[str, SearchDimension]) -> Any:
    if dim.per_layer is not None:
        return [_probe_value(dim.model_copy(update={"per_layer": None}), space)] * int(space[dim.per_layer].low)
    if dim.type == "categorical":
        return dim.choices[0]
    return int(dim.low) if dim.type == "int" else float(dim.low)


def _values_from_params(space: dict[str, SearchDimension], params: dict[str, Any]) -> dict[str, Any]:
    """Recipe values of a trial's Optuna parameters (a trial written without the overrides attribute)."""
    def value(name: str, dim: SearchDimension) -> Any:
        v = params[name]
        return dim.choices[_choice_labels(dim.choices).index(v)] if dim.type == "categorical" else v

    out: dict[str, Any] = {}
    for key in _sampling_order(space):
        dim = space[key]
        if dim.per_layer is None:
            out[key] = value(key, dim)
        else:
            out[key] = [value(_layer_name(key, i), dim) for i in range(int(out[dim.per_layer]))]
    return {key: out[key] for key in space}
