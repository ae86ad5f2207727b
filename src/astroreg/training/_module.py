"""The Lightning module for regression: it owns the loss, the optimiser and the schedule."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch import nn

from astroreg.config._recipe import OPTIMIZER_NAMES, SCHEDULER_NAMES
from astroreg.training._losses import RegressionLoss
from astroreg.training._schedules import warmup_cosine


def regularized_parameters(backbone: nn.Module) -> list[nn.Parameter]:
    """The kernels an L2 penalty acts on.

    The network's own list when it has a ``regularized_parameters()`` method (the residual
    1D CNN of paper 000 names the layers the paper regularises), else the ``weight`` of every
    ``Conv1d/2d/3d`` and ``Linear`` layer (biases and normalisation scales excluded).
    """
    # Wrappers (named-input adapters, chunked forwards) hold the network: every sub-network
    # with its own list gives that list, the layers outside them their weights.
    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
    owners = [m for m in backbone.modules() if callable(getattr(m, "regularized_parameters", None))]
    covered = {id(sub) for m in owners for sub in m.modules()}
    params = [p for m in owners if id(m) not in {id(s) for o in owners if o is not m for s in o.modules()}
              for p in m.regularized_parameters()]
    params += [m.weight for m in backbone.modules() if isinstance(m, kinds) and id(m) not in covered]
    unique: dict[int, nn.Parameter] = {id(p): p for p in params}
    return list(unique.values())


_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "adamax": torch.optim.Adamax,
               "sgd": torch.optim.SGD}
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
        ``mse``, ``mae``, ``huber``, or one of them with target weights (``weighted_mse``,
        ``weighted_mae``, ``weighted_huber``).
    target_weights : sequence of float, optional
        Per-target loss weights for the weighted losses.
    huber_delta : float
        Huber transition, in scaled-target units.
    optimizer : {"adam", "adamw", "adamax", "sgd"}
    lr, weight_decay : float
        Peak learning rate and decoupled (AdamW) or L2 weight decay.
    momentum : float
        SGD momentum (Keras ``SGD(momentum=...)``); ignored by the other optimisers.
    nesterov : bool
        SGD with Nesterov momentum (needs ``momentum > 0``); ignored by the others.
    scheduler : {"none", "plateau", "warmup_cosine"}
    total_steps : int
        Optimiser steps in the whole training (for the cosine schedule).
    warmup_fraction, min_lr_ratio, plateau_patience, plateau_factor : float
        Schedule settings.
    l2 : float
        Keras-style L2 (``kernel_regularizer=l2(l2)``): ``l2 * sum(w ** 2)`` over the
        kernels of :func:`regularized_parameters` is added to the training loss (not to the
        validation loss; logged apart as ``train_l2``, so that ``train_loss`` stays
        comparable with ``val_loss``). Unlike ``weight_decay`` it acts on the kernels only
        (no biases, no normalisation scales), its gradient ``2 l2 w`` goes through Adam's
        adaptive scaling like the data gradient, and it is part of the objective; AdamW's
        decoupled ``weight_decay`` instead shrinks every parameter by ``lr * weight_decay``
        per step outside the adaptive scaling, and Adam's ``weight_decay`` adds
        ``weight_decay * w`` (half this gradient per unit) to every parameter's gradient.
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
        momentum: float = 0.0,
        nesterov: bool = False,
        scheduler: str = "none",
        total_steps: int = 1,
        warmup_fraction: float = 0.05,
        min_lr_ratio: float = 0.01,
        plateau_patience: int = 3,
        plateau_factor: float = 0.5,
        l2: float = 0.0,
    ) -> None:
        super().__init__()
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; allowed: {sorted(_OPTIMIZERS)}")
        if optimizer == "sgd" and nesterov and momentum <= 0:
            raise ValueError(f"sgd with nesterov=True needs momentum > 0, got momentum={momentum}; "
                             "set training.optimizer.momentum (e.g. 0.9) or nesterov: false")
        self.save_hyperparameters(ignore=["backbone"])
        self._sums: dict[str, tuple[torch.Tensor | float, int]] = {}
        self.backbone = backbone
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self._kernels = regularized_parameters(backbone) if l2 > 0 else []
        self.loss_fn = RegressionLoss(loss, n_targets=n_targets, target_weights=target_weights,
                                      huber_delta=huber_delta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y, w = batch
        loss = self.loss_fn(self(x), y, w)
        self._add(f"{stage}_loss", loss, len(y))
        return loss

    # Epoch means are summed here and logged once an epoch: Lightning's ``self.log`` costs
    # about 2 ms a call on the 2-core machines, 4% of a batch-16 step of paper 004's CNN.
    # The means are those ``self.log(on_epoch=True, batch_size=n)`` gives: weighted by batch size.

    def _add(self, name: str, value: torch.Tensor, n: int) -> None:
        total, count = self._sums.get(name, (0.0, 0))
        self._sums[name] = (total + value.detach() * n, count + n)

    def _log_means(self, prefix: str) -> None:
        for name in [k for k in self._sums if k.startswith(prefix)]:
            total, count = self._sums.pop(name)
            if count:
                self.log(name, total / count, prog_bar=name.endswith("_loss"))

    def on_train_epoch_start(self) -> None:
        self._sums = {}

    def on_train_epoch_end(self) -> None:
        self._log_means("train_")

    def on_validation_epoch_start(self) -> None:
        self._sums = {k: v for k, v in self._sums.items() if not k.startswith("val_")}

    def on_validation_epoch_end(self) -> None:
        self._log_means("val_")

    @property
    def l2_kernels(self) -> list[nn.Parameter]:
        """The kernels the ``l2`` penalty acts on (empty when ``l2`` is 0)."""
        return list(self._kernels)

    def l2_penalty(self) -> torch.Tensor:
        """``l2 * sum(w ** 2)`` over the regularised kernels (0 when ``l2`` is 0)."""
        if not self._kernels:
            return torch.zeros((), device=self.device)
        return self.hparams.l2 * torch.stack([k.pow(2).sum() for k in self._kernels]).sum()

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch, "train")
        if self._kernels:
            penalty = self.l2_penalty()
            self._add("train_l2", penalty, len(batch[1]))
            loss = loss + penalty
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0])

    def configure_optimizers(self):
        hp = self.hparams
        kwargs = {"lr": hp.lr, "weight_decay": hp.weight_decay}
        if hp.optimizer == "sgd":
            # Checkpoints written before SGD existed carry no momentum in their hyper-parameters.
            kwargs.update(momentum=hp.get("momentum", 0.0), nesterov=hp.get("nesterov", False))
        if not torch.cuda.is_available():
            # PyTorch turns the multi-tensor (foreach) updates on by default on CUDA only; on
            # CPU they save part of the per-parameter Python loop (Adamax over paper 004's
            # 18 tensors on the 2-core machines: 1.3 -> 0.9 ms a step).
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
