"""Learning-rate schedules."""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.05,
                  min_lr_ratio: float = 0.01) -> LambdaLR:
    """Linear warm-up over the first ``warmup_fraction`` of steps, then cosine decay to a floor.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
    total_steps : int
        Optimiser steps in the whole training.
    warmup_fraction : float
        Fraction of the steps spent ramping the rate from ~0 to its peak.
    min_lr_ratio : float
        Floor of the decay as a fraction of the peak rate.
    """
    total = max(int(total_steps), 1)
    warm = max(int(round(warmup_fraction * total)), 1) if warmup_fraction > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min((step - warm) / max(total - warm, 1), 1.0)
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
