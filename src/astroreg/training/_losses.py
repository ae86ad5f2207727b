"""Regression losses with per-sample and per-target weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from astroreg.config._recipe import LOSS_NAMES

# Per-element loss of each kind; ``weighted_<kind>`` uses the same one with target weights.
_ELEMENTWISE = {
    "mse": lambda pred, true, delta: F.mse_loss(pred, true, reduction="none"),
    "mae": lambda pred, true, delta: F.l1_loss(pred, true, reduction="none"),
    "huber": lambda pred, true, delta: F.huber_loss(pred, true, reduction="none", delta=delta),
}
LOSSES = tuple(_ELEMENTWISE) + tuple(f"weighted_{k}" for k in _ELEMENTWISE)
if set(LOSSES) != set(LOSS_NAMES):  # the recipe schema's list is the one list
    raise ImportError(f"training losses {sorted(LOSSES)} differ from the recipe's {LOSS_NAMES}")


class RegressionLoss(nn.Module):
    """Weighted sum over targets of a per-element loss, averaged over samples.

    ``loss = sum_j w_j * sum_i(s_i * l_ij) / sum_i(s_i)`` with target weights
    ``w_j`` normalised to sum to 1 and per-sample weights ``s_i`` (default 1).
    Missing targets (NaN) contribute nothing.

    Parameters
    ----------
    kind : {"mse", "mae", "huber", "weighted_mse", "weighted_mae", "weighted_huber"}
        Per element: squared error, absolute error (L1, Keras ``mae``) or Huber.
        ``weighted_*`` use ``target_weights``; plain kinds weigh targets equally.
    n_targets : int
        Number of targets.
    target_weights : sequence of float, optional
        One weight per target for the weighted kinds, e.g. 1 / variance of each
        scaled target on the training split.
    huber_delta : float
        Transition point of the Huber loss, in scaled-target units.
    """

    def __init__(self, kind: str = "mse", *, n_targets: int = 1, target_weights: Sequence[float] | None = None,
                 huber_delta: float = 1.0) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}; allowed: {list(LOSSES)}")
        if kind.startswith("weighted") and target_weights is not None:
            w = torch.as_tensor(list(target_weights), dtype=torch.float32)
            if w.numel() != n_targets or not torch.all(w > 0):
                raise ValueError(f"target_weights must be {n_targets} positive numbers, got {list(target_weights)}")
        else:
            w = torch.ones(n_targets)
        self.kind = kind
        self.huber_delta = float(huber_delta)
        self.register_buffer("target_weights", w / w.sum())

    def forward(self, pred: torch.Tensor, true: torch.Tensor, sample_weight: torch.Tensor | None = None) -> torch.Tensor:
        """Loss of predictions ``pred`` against ``true``, both (batch, n_targets)."""
        valid = torch.isfinite(true)
        true = torch.where(valid, true, pred.detach())
        per = _ELEMENTWISE[self.kind.removeprefix("weighted_")](pred, true, self.huber_delta)
        s = valid.to(pred.dtype)
        if sample_weight is not None:
            s = s * sample_weight.view(-1, 1)
        per_target = (per * s).sum(dim=0) / s.sum(dim=0).clamp_min(1e-12)
        return (self.target_weights * per_target).sum()
