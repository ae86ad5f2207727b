"""Validate, checkpoint and keep an exponential moving average of the weights (Polyak averaging)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def _tensors(module: nn.Module) -> list[torch.Tensor]:
    return [*module.parameters(), *module.buffers()]


class WeightAverage(L.Callback):
    """Exponential moving average of the network's weights, used wherever the run is judged.

    After every optimiser step the average moves towards the weights by ``1 - decay``
    (``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``; batch-norm
    statistics are averaged too). For each validation pass the averaged weights are put in
    the network, so that the validation loss, the per-bin logs, the plateau schedule, early
    stopping and the best-epoch checkpoint all see them; the optimiser's own weights come
    back when the next epoch starts (or the fit ends) and training goes on from them. The
    network a run keeps (the best checkpoint) is thus an average over roughly the last
    ``1 / (1 - decay)`` steps, which damps the epoch-to-epoch scatter of a noisy
    optimisation.

    Parameters
    ----------
    decay : float
        Weight of the old average at each step, in (0, 1); ``0.998`` averages over about
        500 steps.
    """

    def __init__(self, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"training.ema_decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.average: AveragedModel | None = None
        self._own: list[torch.Tensor] | None = None
        self._restored: dict | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.average = AveragedModel(pl_module.backbone, multi_avg_fn=get_ema_multi_avg_fn(self.decay),
                                     use_buffers=True)
        if self._restored is not None:
            self._apply(self._restored)

    def state_dict(self) -> dict:
        """The average and, between a validation pass and the next epoch, the optimiser's own weights.

        A checkpoint is written after validation, when the network holds the averaged
        weights: a resumed fit must put the optimiser's back before it trains on.
        """
        if self.average is None:
            return {}
        return {"average": self.average.state_dict(), "own": self._own}

    def load_state_dict(self, state_dict: dict) -> None:
        if not state_dict:
            return
        if self.average is None:
            self._restored = state_dict  # applied when the fit starts and the average exists
        else:
            self._apply(state_dict)

    def _apply(self, state: dict) -> None:
        self.average.load_state_dict(state["average"])
        own = state.get("own")
        self._own = None if own is None else [t.detach().clone() for t in own]
        self._restored = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.average.update_parameters(pl_module.backbone)

    @torch.no_grad()
    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.average is None or self._own is not None or trainer.sanity_checking:
            return
        own = _tensors(pl_module.backbone)
        self._own = [t.detach().clone() for t in own]
        for t, a in zip(own, _tensors(self.average.module)):
            t.copy_(a)

    @torch.no_grad()
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The checkpoint is written at the end of the training epoch, after validation, and
        # must hold the averaged weights: the optimiser's come back only when training resumes.
        self._restore(pl_module)

    @torch.no_grad()
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore(pl_module)

    def _restore(self, pl_module: L.LightningModule) -> None:
        if self._own is None:
            return
        for t, o in zip(_tensors(pl_module.backbone), self._own):
            t.copy_(o)
        self._own = None
