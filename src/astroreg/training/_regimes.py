"""A Lightning callback that logs the validation MAE in bins of the true target every epoch."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from astroreg.evaluation._regimes import assign_bins


class RegimeMAELogger(L.Callback):
    """Log ``val_mae_bin0 ... val_mae_bin{k-1}`` (and ``val_mae_low``) after each validation epoch.

    The network's validation predictions are gathered batch by batch (one extra forward
    pass of each validation batch, without gradients), brought back to the target's units
    and scored per bin of the true value; Lightning's CSV logger puts the columns beside
    ``val_loss`` (``history.csv`` of the run).

    Parameters
    ----------
    edges : array-like of shape (n_bins + 1,)
        Bin edges of the true target, in the target's units (e.g. validation quantiles).
    target_index : int
        Column of the target among the network's outputs.
    to_units : callable
        Maps scaled values of shape (n, n_targets) to the targets' units (the
        preprocessor's ``unscale_targets``).
    low_threshold : float, optional
        Also log ``val_mae_low``, the MAE of the objects with a true value at or below it.
    """

    def __init__(self, edges: ArrayLike, *, target_index: int, to_units: Callable[[NDArray], NDArray],
                 low_threshold: float | None = None) -> None:
        self.edges = np.asarray(edges, dtype=np.float64)
        if self.edges.ndim != 1 or self.edges.size < 2:
            raise ValueError(f"edges must be 1-D with at least 2 values, got shape {self.edges.shape}")
        self.target_index = int(target_index)
        self.to_units = to_units
        self.low_threshold = low_threshold
        self._pred: list[NDArray] = []
        self._true: list[NDArray] = []

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._pred, self._true = [], []

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        x, y, _ = batch
        with torch.no_grad():
            pred = pl_module(x)
        self._pred.append(pred.detach().float().cpu().numpy())
        self._true.append(y.detach().float().cpu().numpy())

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not self._pred or trainer.sanity_checking:
            return
        j = self.target_index
        pred = np.asarray(self.to_units(np.concatenate(self._pred)))[:, j]
        true = np.asarray(self.to_units(np.nan_to_num(np.concatenate(self._true))))[:, j]
        known = np.isfinite(np.concatenate(self._true)[:, j])
        pred, true = pred[known], true[known]
        err = np.abs(pred - true)
        index = assign_bins(true, self.edges)
        for k in range(self.edges.size - 1):
            sel = index == k
            value = float(err[sel].mean()) if sel.any() else float("nan")
            pl_module.log(f"val_mae_bin{k}", value, on_step=False, on_epoch=True)
        if self.low_threshold is not None:
            low = true <= self.low_threshold
            pl_module.log("val_mae_low", float(err[low].mean()) if low.any() else float("nan"),
                          on_step=False, on_epoch=True)
        self._pred, self._true = [], []
