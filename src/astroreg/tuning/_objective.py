"""What a tuning trial is scored by: the validation loss, or a named metric of its validation predictions.

``tuning.objective: val_loss`` (the default) scores a trial by its best validation loss
(scaled targets, as the checkpoint is chosen). ``tuning.objective: {metric: NAME,
target: TARGET, direction: ...}`` predicts the validation split with the trial's best
checkpoint through the engine's own prediction path (:func:`astroreg.pipeline.predict_frame`,
physical units, inverse target transforms applied) and scores it with
:func:`astroreg.evaluation.labelled_metrics`, so a trial value is the number the
evaluation would report for that split. Pruning keeps following the per-epoch validation
loss in both cases: the metric is only known once a trial has finished.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from astroreg.config import Recipe
from astroreg.config._recipe import ObjectiveConfig
from astroreg.data import Dataset
from astroreg.evaluation import labelled_metrics

#: Metrics whose natural direction is up; every other metric is an error or a rate to minimise.
MAXIMISED_METRICS = frozenset({"r2"})
VAL_LOSS = "val_loss"


@dataclass(frozen=True)
class Objective:
    """A resolved tuning objective.

    Attributes
    ----------
    metric : str
        ``val_loss`` or the name of a metric of :func:`astroreg.evaluation.labelled_metrics`.
    target : str or None
        The target scored (``None`` for ``val_loss``).
    direction : {"minimize", "maximize"}
    """

    metric: str
    target: str | None
    direction: Literal["minimize", "maximize"]

    @property
    def is_val_loss(self) -> bool:
        """Whether trials are scored by their best validation loss."""
        return self.metric == VAL_LOSS

    @property
    def label(self) -> str:
        """Short name for tables, plots and headers: ``val_loss`` or ``val_<metric>_<target>``."""
        return VAL_LOSS if self.is_val_loss else f"val_{self.metric}_{self.target}"

    @property
    def description(self) -> str:
        """Words for plot axes and the best recipe's header."""
        if self.is_val_loss:
            return "best validation loss (scaled targets)"
        return f"{self.metric} of {self.target} on the validation split ({self.direction})"

    def as_attr(self) -> dict[str, str | None]:
        """The JSON form stored in the study's user attributes."""
        return {"metric": self.metric, "target": self.target, "direction": self.direction}


def metric_names(recipe: Recipe, target: str) -> list[str]:
    """The scalar metrics the evaluation reports for one target of the recipe.

    Found by scoring a three-object table with :func:`astroreg.evaluation.labelled_metrics`,
    so that the list is always the evaluation's own (a redshift target gets the e_z
    statistics as well).

    Parameters
    ----------
    recipe : Recipe
    target : str
        One of ``recipe.target_names``.

    Returns
    -------
    list of str
        E.g. ``["mae", "mse", "rmse", "r2", "nmad", "bias"]`` for a plain target.
    """
    redshift = [t.name for t in recipe.targets if t.is_redshift and t.name == target]
    probe = pd.DataFrame({f"{target}_true": [0.1, 0.2, 0.4], f"{target}_pred": [0.12, 0.19, 0.43]})
    scored = labelled_metrics(probe, [target], redshift)[target]
    return [k for k, v in scored.items() if isinstance(v, (int, float, np.floating))]


def resolve_objective(recipe: Recipe) -> Objective:
    """The recipe's ``tuning.objective``, checked against the metrics its target gets.

    Parameters
    ----------
    recipe : Recipe
        A recipe with a ``tuning`` section.

    Returns
    -------
    Objective

    Raises
    ------
    ValueError
        If the metric is not one the evaluation reports for the target; the message lists
        the valid names. Called before any trial runs.

    Examples
    --------
    >>> resolve_objective(recipe).label  # doctest: +SKIP
    'val_sigma_nmad_ez_z'
    """
    spec = recipe.tuning.objective if recipe.tuning is not None else VAL_LOSS
    if not isinstance(spec, ObjectiveConfig):
        return Objective(VAL_LOSS, None, "minimize")
    target = spec.target or recipe.target_names[0]
    valid = metric_names(recipe, target)
    if spec.metric not in valid:
        raise ValueError(
            f"recipe {recipe.name!r}: tuning.objective.metric {spec.metric!r} is not a metric of target "
            f"{target!r}; valid names: {valid} (or tuning.objective: val_loss)"
        )
    direction = spec.direction or ("maximize" if spec.metric in MAXIMISED_METRICS else "minimize")
    return Objective(spec.metric, target, direction)


def score_run(objective: Objective, run_dir: str | os.PathLike, dataset: Dataset,
              rows: NDArray[np.int64]) -> float:
    """The objective's metric of a fitted run folder on some rows (a trial's validation split).

    Parameters
    ----------
    objective : Objective
        A metric objective (not ``val_loss``).
    run_dir : path-like
        The folder :func:`astroreg.pipeline.fit_run` wrote (best checkpoint in ``model.pt``).
    dataset : Dataset
        The open dataset the run was fitted on.
    rows : array of int
        Rows to predict and score, e.g. ``splits["val"]``.

    Returns
    -------
    float
        The metric in the target's physical units (NaN if the predictions are not finite).
    """
    from astroreg.pipeline._predict import predict_frame
    from astroreg.pipeline._run import Run

    run = Run.open(run_dir)
    frame = predict_frame(run, dataset, rows, progress=False)
    pred = frame[f"{objective.target}_pred"].to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.all(np.isfinite(pred)):
        return float("nan")
    redshift = [t.name for t in run.recipe.targets if t.is_redshift and t.name == objective.target]
    return float(labelled_metrics(frame, [objective.target], redshift)[objective.target][objective.metric])
