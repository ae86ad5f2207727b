"""Baselines run through the same recipe and evaluation: classical (scikit-learn, LightGBM) and networks."""

from astroreg.baselines._classical import (
    BaselineResult,
    baseline_frame,
    bucket_edges,
    make_estimator,
    resolve_inputs,
    run_baseline,
    select_features,
)
from astroreg.baselines._inputs import ModelInputs, count_parameters, time_network
from astroreg.baselines._network import derive_recipe, run_network_baseline

__all__ = [
    "BaselineResult",
    "ModelInputs",
    "baseline_frame",
    "bucket_edges",
    "count_parameters",
    "derive_recipe",
    "make_estimator",
    "resolve_inputs",
    "run_baseline",
    "run_network_baseline",
    "select_features",
    "time_network",
]
