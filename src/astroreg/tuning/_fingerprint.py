"""What a study was run on: fingerprints of its recipe and dataset, checked when it resumes.

Trials of one study are only comparable when they trained the same way on the same data.
A study records both fingerprints as user attributes when it is created; resuming it with
another recipe setting or another dataset is refused unless the caller forces it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import numpy as np
import optuna

from astroreg.config import Recipe
from astroreg.data import Dataset

log = logging.getLogger(__name__)

RECIPE_ATTR = "recipe_settings"
DATASET_ATTR = "dataset_fingerprint"
# Recipe parts that change neither what a trial trains nor on what: names, the evaluation
# (trials are scored on the validation loss or on tuning.objective, which is recorded as
# its own key), and how the study is run and stored.
_IGNORED = ("name", "description", "evaluation", "variants", "dataset.path", "tuning.trials", "tuning.storage",
            "tuning.study_name", "tuning.sampler", "tuning.pruner", "tuning.seed", "tuning.startup_trials",
            "training.threads")
_SHOWN = 3  # differing keys listed in a refusal
# Keys added to the recipe after studies were first recorded, with the value that means
# what the older recipes did: left out at that value, so that an older study still matches.
_LATER_DEFAULTS = {"training.optimizer.momentum": 0.0, "training.optimizer.nesterov": False}
_LATER_SUFFIX_DEFAULTS = {".per_layer": None}  # of every tuning.space dimension


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: value}


def recipe_settings(base: Recipe) -> dict[str, Any]:
    """The recipe keys a trial depends on, flattened to dotted keys with JSON values.

    Parameters
    ----------
    base : Recipe
        The trial base (:func:`astroreg.tuning.tuning_base`), so ``tuning.epochs`` is in
        ``training.epochs``.

    Returns
    -------
    dict
        ``{"training.optimizer.lr": 0.003, "tuning.space.model.params.stem.high": 24, ...}``;
        lists stay whole values. Keys added to recipes later (SGD momentum, ``per_layer``)
        are left out while they hold the value that means the older behaviour; a metric
        ``tuning.objective`` is one key, ``"mae of z (minimize)"`` (``val_loss`` is left out).
    """
    from astroreg.tuning._objective import resolve_objective

    flat = _flatten(base.model_dump(mode="json"))
    settings = {k: v for k, v in flat.items() if not any(k == i or k.startswith(i + ".") for i in _IGNORED)
                and not k.startswith("tuning.objective") and not _later_default(k, v)}
    # The objective as resolved (default target and direction filled in), in one readable value.
    objective = resolve_objective(base)
    if not objective.is_val_loss:
        settings["tuning.objective"] = f"{objective.metric} of {objective.target} ({objective.direction})"
    return settings


def _later_default(key: str, value: Any) -> bool:
    if key in _LATER_DEFAULTS:
        return value == _LATER_DEFAULTS[key] and type(value) is type(_LATER_DEFAULTS[key])
    return key.startswith("tuning.space.") and any(
        key.endswith(suffix) and value == default for suffix, default in _LATER_SUFFIX_DEFAULTS.items())


def dataset_fingerprint(ds: Dataset) -> dict[str, Any]:
    """Size, layout and a SHA-256 of the ids, splits and target values of a dataset.

    Cheap even for large files: the pixels and spectra are not read, only their shapes.
    A dataset re-made from the same inputs with the same seeds has the same fingerprint,
    wherever it lies; one with other objects, splits or labels does not.

    Returns
    -------
    dict
        ``{"path", "n_objects", "splits": {name: size}, "sha256"}``.
    """
    h = hashlib.sha256()
    h.update("\0".join(ds.ids).encode())
    shapes = {}
    if ds.image_spec is not None:
        shapes["images"] = list(ds.images.shape[1:])
    if "spectra" in ds.modalities:
        shapes["spectra"] = {k: list(v.shape[1:]) for k, v in ds.spectra.items()}
    h.update(json.dumps({"modalities": ds.modalities, "targets": ds.target_names, "tabular": ds.tabular_columns,
                         "shapes": shapes}, sort_keys=True).encode())
    for name in ds.target_names:
        h.update(name.encode() + np.ascontiguousarray(ds.target(name), dtype="<f8").tobytes())
    splits = {}
    for name in ds.split_names:
        rows = np.ascontiguousarray(ds.split(name), dtype="<i8")
        splits[name] = int(rows.size)
        h.update(name.encode() + rows.tobytes())
    return {"path": str(ds.path), "n_objects": len(ds), "splits": splits, "sha256": h.hexdigest()}


def _recipe_differences(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    keys = sorted(set(stored) | set(now))
    missing = object()
    out = []
    for k in keys:
        a, b = stored.get(k, missing), now.get(k, missing)
        if a != b:
            show = (lambda v: "unset" if v is missing else json.dumps(v))
            out.append(f"{k}: {show(a)} in the study, {show(b)} now")
    return out


def _dataset_difference(stored: dict[str, Any], now: dict[str, Any]) -> str | None:
    if stored.get("sha256") == now["sha256"]:
        return None
    layout = ("path", "n_objects", "splits")
    if all(stored.get(k) == now[k] for k in layout):
        return f"dataset {now['path']} changed since the study began (same size and splits, other ids or labels)"
    return (f"the study ran on {stored.get('path')} ({stored.get('n_objects')} objects, splits "
            f"{stored.get('splits')}), this run on {now['path']} ({now['n_objects']} objects, splits {now['splits']})")


def check_study(study: optuna.Study, settings: dict[str, Any], fingerprint: dict[str, Any], *,
                force: bool = False) -> None:
    """Record the fingerprints on a new study; refuse to join an old one made with others.

    A study without fingerprints and without trials is new: the fingerprints are stored.
    One with trials but no fingerprints (made by an older astroreg) gets them, with a
    warning that they could not be checked.

    Parameters
    ----------
    study : optuna.Study
    settings : dict
        :func:`recipe_settings` of this run.
    fingerprint : dict
        :func:`dataset_fingerprint` of this run's dataset.
    force : bool
        Join a study made with other settings or data anyway (logged as a warning).

    Raises
    ------
    ValueError
        When the study's recipe settings or dataset differ and ``force`` is false; the
        message names the differences and the ways on.
    """
    attrs = study.user_attrs
    if RECIPE_ATTR not in attrs or DATASET_ATTR not in attrs:
        if study.get_trials(deepcopy=False):
            log.warning("study %r has trials but no recorded recipe or dataset (made by an older astroreg); "
                        "recording this run's, unchecked", study.study_name)
        study.set_user_attr(RECIPE_ATTR, settings)
        study.set_user_attr(DATASET_ATTR, fingerprint)
        # Another process may have created the study at the same moment: compare with what was stored.
        attrs = study.user_attrs
    problems = _recipe_differences(attrs[RECIPE_ATTR], settings)
    n_recipe = len(problems)
    if len(problems) > _SHOWN:
        problems = problems[:_SHOWN] + [f"{n_recipe - _SHOWN} more recipe key(s)"]
    data = _dataset_difference(attrs[DATASET_ATTR], fingerprint)
    if data is not None:
        problems.insert(0, data)
    if not problems:
        return
    what = "; ".join(problems)
    if force:
        log.warning("joining study %r although it differs (--force-resume): %s", study.study_name, what)
        return
    kinds = " and ".join(k for k, differs in (("data", data is not None), ("recipe settings", n_recipe)) if differs)
    raise ValueError(
        f"study {study.study_name!r} was made with other {kinds}: "
        f"{what}; its trials are not comparable with this run's. Start a new study (--study-name NEW or another "
        "--storage), or give --force-resume to join it anyway"
    )
