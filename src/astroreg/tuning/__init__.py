"""Hyper-parameter tuning of recipes with Optuna (``astroreg tune``)."""

from astroreg.tuning._sampler import make_sampler
from astroreg.tuning._storage import resolve_storage
from astroreg.tuning._tune import (
    PruningCallback,
    TuneResult,
    best_recipe,
    open_study,
    suggest,
    trials_frame,
    tune_recipe,
    tuning_base,
)

__all__ = [
    "PruningCallback",
    "TuneResult",
    "best_recipe",
    "make_sampler",
    "open_study",
    "resolve_storage",
    "suggest",
    "trials_frame",
    "tune_recipe",
    "tuning_base",
]
