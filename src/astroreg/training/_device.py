"""The device a recipe trains or predicts on (no Lightning import: prediction does not need it)."""

from __future__ import annotations

import torch


def select_device(requested: str = "auto") -> str:
    """``cuda`` when asked for or available (``auto``), else ``cpu``."""
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("training.device is 'cuda' but no CUDA device is visible; use device: auto or cpu")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested
