"""Hyper-parameter tuning of recipes with Optuna (``astroreg tune``)."""

from astroreg.tuning._objective import Objective, metric_names, resolve_objective
from astroreg.tuning._sampler import make_sampler
from astroreg.tuning._space import sample_space, suggest
from astroreg.tuning._storage import resolve_storage
from astroreg.tuning._tune import (
    PruningCallback,
    TuneResult,
    best_recipe,
    open_study,
    study_objective,
    trials_frame,
    tune_recipe,
    tuning_base,
)

__all__ = [
    "Objective",
    "PruningCallback",
    "TuneResult",
    "best_recipe",
    "make_sampler",
    "metric_names",
    "open_study",
    "resolve_objective",
    "resolve_storage",
    "sample_space",
    "study_objective",
    "suggest",
    "trials_frame",
    "tune_recipe",
    "tuning_base",
]
