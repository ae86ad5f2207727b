"""The Lightning module for regression: it owns the loss, the optimiser and the schedule."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch import nn

from astroreg.training._losses import RegressionLoss
from astroreg.config._recipe import OPTIMIZER_NAMES, SCHEDULER_NAMES
from astroreg.training._schedules import warmup_cosine

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax}
if set(_OPTIMIZERS) != set(OPTIMIZER_NAMES):  # the recipe schema's list is the one list
    raise ImportError(f"training optimisers {sorted(_OPTIMIZERS)} differ from the recipe's {OPTIMIZER_NAMES}")


class RegressionModule(L.LightningModule):
    """Train a plain ``nn.Module`` backbone on scaled regression targets.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps a batch of inputs to (batch, n_targets).
    n_targets : int
        Number of outputs.
    loss : str
        ``mse``, ``huber``, ``weighted_mse`` or ``weighted_huber``.
    target_weights : sequence of float, optional
        Per-target loss weights for the weighted losses.
    huber_delta : float
        Huber transition, in scaled-target units.
    optimizer : {"adam", "adamw", "adamax"}
    lr, weight_decay : float
        Peak learning rate and decoupled (AdamW) or L2 weight decay.
    scheduler : {"none", "plateau", "warmup_cosine"}
    total_steps : int
        Optimiser steps in the whole training (for the cosine schedule).
    warmup_fraction, min_lr_ratio, plateau_patience, plateau_factor : float
        Schedule settings.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        n_targets: int,
        loss: str = "mse",
        target_weights: Sequence[float] | None = None,
        huber_delta: float = 1.0,
        optimizer: str = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: str = "none",
        total_steps: int = 1,
        warmup_fraction: float = 0.05,
        min_lr_ratio: float = 0.01,
        plateau_patience: int = 3,
        plateau_factor: float = 0.5,
    ) -> None:
        super().__init__()
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {sorted(_OPTIMIZERS)}")
        self.save_hyperparameters(ignore=["backbone"])
        self.backbone = backbone
        self.loss_fn = RegressionLoss(loss, n_targets=n_targets, target_weights=target_weights,
                                      huber_delta=huber_delta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y, w = batch
        loss = self.loss_fn(self(x), y, w)
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0])

    def configure_optimizers(self):
        hp = self.hparams
        kwargs = {"lr": hp.lr, "weight_decay": hp.weight_decay}
        if hp.optimizer in ("adam", "adamw") and not torch.cuda.is_available():
            kwargs["foreach"] = True
        opt = _OPTIMIZERS[hp.optimizer](self.parameters(), **kwargs)
        if hp.scheduler == "warmup_cosine":
            sched = warmup_cosine(opt, hp.total_steps, hp.warmup_fraction, hp.min_lr_ratio)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=hp.plateau_factor, patience=hp.plateau_patience
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}
        if hp.scheduler != "none":
            raise ValueError(f"unknown scheduler {hp.scheduler!r}; allowed: {', '.join(SCHEDULER_NAMES)}")
        return opt
