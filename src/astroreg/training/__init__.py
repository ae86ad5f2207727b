"""Training: the Lightning module, losses, schedules, data loading and the fit loop."""

from astroreg.training._data import BatchSource, RecipeDataModule, batch_loader, preprocess_rows
from astroreg.training._fit import FitResult, build_backbone, fit_network, select_device
from astroreg.training._losses import RegressionLoss
from astroreg.training._module import RegressionModule
from astroreg.training._schedules import warmup_cosine

__all__ = [
    "BatchSource",
    "FitResult",
    "RecipeDataModule",
    "RegressionLoss",
    "RegressionModule",
    "batch_loader",
    "build_backbone",
    "fit_network",
    "preprocess_rows",
    "select_device",
    "warmup_cosine",
]
