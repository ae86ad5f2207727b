"""Classical baselines (scikit-learn, LightGBM) run through the same recipe and evaluation."""

from astroreg.baselines._classical import (
    BaselineResult,
    baseline_frame,
    bucket_edges,
    make_estimator,
    run_baseline,
    select_features,
)

__all__ = ["BaselineResult", "baseline_frame", "bucket_edges", "make_estimator", "run_baseline", "select_features"]
