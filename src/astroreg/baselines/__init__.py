"""Classical baselines (scikit-learn, LightGBM) and the shared measures of every model.

Network baselines are runs of their own: :func:`astroreg.pipeline.run_network_baseline`.
"""

from astroreg.baselines._classical import (
    BaselineResult,
    baseline_frame,
    bucket_edges,
    fit_early_stopped,
    make_estimator,
    resolve_inputs,
    run_baseline,
    select_features,
)
from astroreg.baselines._inputs import ModelInputs, count_parameters, time_network

__all__ = [
    "BaselineResult",
    "ModelInputs",
    "baseline_frame",
    "bucket_edges",
    "count_parameters",
    "fit_early_stopped",
    "make_estimator",
    "resolve_inputs",
    "run_baseline",
    "select_features",
    "time_network",
]
