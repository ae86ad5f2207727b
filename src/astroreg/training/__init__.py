"""Training: the Lightning module, losses, schedules, data loading and the fit loop.

Members are imported on first use (PEP 562), so that ``astroreg predict`` does not
pay for Lightning and the training stack at start-up.
"""

from __future__ import annotations

from astroreg._lazy import lazy_members

_WHERE = {
    "BatchSource": "astroreg.training._data",
    "FitResult": "astroreg.training._fit",
    "RecipeDataModule": "astroreg.training._data",
    "RegressionLoss": "astroreg.training._losses",
    "RegressionModule": "astroreg.training._module",
    "RegimeMAELogger": "astroreg.training._regimes",
    "label_weights": "astroreg.training._weights",
    "lds_kernel": "astroreg.training._weights",
    "regularized_parameters": "astroreg.training._module",
    "weights_summary": "astroreg.training._weights",
    "batch_loader": "astroreg.training._data",
    "build_backbone": "astroreg.training._fit",
    "fit_network": "astroreg.training._fit",
    "preprocess_rows": "astroreg.training._data",
    "select_device": "astroreg.training._device",
    "warmup_cosine": "astroreg.training._schedules",
}

__all__, __getattr__, __dir__ = lazy_members(__name__, _WHERE)
