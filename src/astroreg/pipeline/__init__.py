"""Runs: train a recipe end to end, evaluate it, apply it to new data.

Members are imported on first use (PEP 562), so that ``astroreg predict`` does not
pay for Lightning and the training stack at start-up.
"""

from __future__ import annotations

from astroreg._lazy import lazy_members

_WHERE = {
    "Run": "astroreg.pipeline._run",
    "ablate_recipe": "astroreg.pipeline._ablate",
    "ablation_recipes": "astroreg.pipeline._ablate",
    "count_parameters": "astroreg.baselines",
    "derive_recipe": "astroreg.pipeline._network",
    "environment": "astroreg.pipeline._run",
    "evaluate_run": "astroreg.pipeline._evaluate",
    "fit_run": "astroreg.pipeline._fit",
    "iter_predictions": "astroreg.pipeline._predict",
    "load_model": "astroreg.models._io",
    "predict": "astroreg.pipeline._predict",
    "predict_frame": "astroreg.pipeline._predict",
    "read_ablation": "astroreg.pipeline._ablate",
    "resolve_splits": "astroreg.pipeline._train",
    "resume_ablation": "astroreg.pipeline._ablate",
    "resume_run": "astroreg.pipeline._train",
    "run_network_baseline": "astroreg.pipeline._network",
    "save_model": "astroreg.models._io",
    "train_recipe": "astroreg.pipeline._train",
}

__all__, __getattr__, __dir__ = lazy_members(__name__, _WHERE)
