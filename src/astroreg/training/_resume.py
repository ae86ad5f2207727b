"""Resumable training: a checkpoint of the whole training state after every epoch, and going on from it.

A fit started with ``resumable=True`` writes ``checkpoints/last.ckpt`` at the end of each
epoch (network, optimiser, learning-rate schedule, early stopping, time used, the moving
average of the weights, epoch times, torch's random state), each time through a temporary
file and a rename, so that a process killed while writing leaves the previous checkpoint
whole. The Lightning CSV log is flushed before each checkpoint, and the epoch's logged values
are kept in the checkpoint too (its training means reach the log just after it).

A fit started with ``resume=True`` goes on from that checkpoint with Lightning's own
restore (``Trainer.fit(ckpt_path=...)``, read with ``weights_only=True``); the shuffling is
advanced by the epochs done (:class:`astroreg.training._data.RecipeDataModule`). The log
written before the interruption is set aside and joined to the new one when the history is
read. With data in memory the resumed fit ends exactly as the uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from astroreg.data import atomic_path

LAST = "last.ckpt"
"""Name of the resumable checkpoint in a run's ``checkpoints`` folder."""

_EARLIER_LOG = "metrics-before-resume-{k}.csv"
EPOCH_METRICS = "astroreg_epoch_metrics"
"""Checkpoint key of the checkpointed epoch's logged values."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``torch.save`` checkpoint writer, through a temporary file renamed into place.

    Checkpoints are read onto the CPU (Lightning then moves the network and the optimiser
    to the training device), so that a fit checkpointed on a GPU can go on without one.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        with atomic_path(path) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict:
        return super().load_checkpoint(path, map_location="cpu", weights_only=weights_only)


class ResumableCheckpoints(L.Callback):
    """Write the logger's pending rows before every checkpoint and when each epoch starts; tell of the first.

    The checkpoint is saved at the end of the training epoch; the epoch's training loss is
    logged just after it, and is flushed when the next epoch starts.

    Parameters
    ----------
    on_first : callable, optional
        Called once, when the first checkpoint is being saved: from then on the fit can be
        resumed (the run folder is marked so, :func:`astroreg.data.mark_resumable`).
    """

    def __init__(self, on_first: Callable[[], None] | None = None) -> None:
        self.on_first = on_first
        self._rng: dict | None = None

    def state_dict(self) -> dict:
        """Torch's random state (dropout draws from it): Lightning does not keep it."""
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self._rng = state_dict  # put back when the next epoch starts, as it was when the checkpoint was saved

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        self._flush(trainer)
        # The epoch's training means reach the log only after the checkpoint: keep them in it.
        checkpoint[EPOCH_METRICS] = {k: float(v) for k, v in trainer.callback_metrics.items()
                                     if v.numel() == 1 and not k.startswith("lr-")}
        if self.on_first is not None:
            self.on_first()
            self.on_first = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer)
        if self._rng is not None:
            torch.set_rng_state(self._rng["torch"])
            if "cuda" in self._rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(self._rng["cuda"])
            self._rng = None
            # The first epoch of a fit makes its loader's iterator before this hook, later epochs
            # after it; the iterator draws its base seed from the global generator
            # (torch.utils.data's _share_dist_seed). Draw it here as the uninterrupted fit did.
            torch.empty((), dtype=torch.int64).random_()

    @staticmethod
    def _flush(trainer: L.Trainer) -> None:
        for logger in trainer.loggers:
            logger.save()


def read_checkpoint(path: Path) -> dict:
    """A Lightning checkpoint read as data (``torch.load(weights_only=True)``), naming the file when it cannot be."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises many kinds for a damaged file)
        raise ValueError(
            f"cannot read the training checkpoint {path} ({type(err).__name__}: {err}); the run cannot be "
            "resumed from it: remove the run's .partial folder and train again"
        ) from err


def finished_epochs(checkpoint: dict, max_minutes: float | None) -> int | None:
    """The epoch count at which a checkpointed fit had already ended, or None if it is to go on.

    Early stopping that fired, or a ``training.max_minutes`` limit that was reached, ended
    it: resuming then trains no further epoch. The epoch limit is Lightning's own check.
    """
    epochs_done = int(checkpoint["epoch"]) + 1
    for key, state in checkpoint.get("callbacks", {}).items():
        if key.startswith("EarlyStopping") and int(state.get("stopped_epoch", 0)) > 0:
            return epochs_done
        if key.startswith("Timer") and max_minutes is not None:
            elapsed = state.get("time_elapsed", {}).get("train", 0.0)
            if elapsed >= max_minutes * 60:
                return epochs_done
    return None


def set_aside_log(log_dir: Path, checkpoint: dict) -> None:
    """Move ``metrics.csv`` of an interrupted fit aside, so that the resumed fit's logger does not delete it.

    The checkpointed epoch's values that the log lacks (a process killed between the
    checkpoint and the next flush) are added from the checkpoint.
    """
    current = log_dir / "metrics.csv"
    if not current.exists():
        return
    rows = pd.read_csv(current)
    epoch = int(checkpoint["epoch"])
    have = rows[rows["epoch"] == epoch] if "epoch" in rows else rows.iloc[:0]
    missing = {k: v for k, v in checkpoint.get(EPOCH_METRICS, {}).items() if k not in have or have[k].isna().all()}
    if missing:
        row = {"epoch": epoch, "step": int(checkpoint["global_step"]) - 1, **missing}
        rows = pd.concat([rows, pd.DataFrame([row])], ignore_index=True)
    k = 0
    while (log_dir / _EARLIER_LOG.format(k=k)).exists():
        k += 1
    with atomic_path(log_dir / _EARLIER_LOG.format(k=k)) as tmp:
        rows.to_csv(tmp, index=False)
    current.unlink()


def read_logs(log_dir: Path) -> pd.DataFrame | None:
    """The Lightning CSV log of a fit, joined over its resumptions; None if there is none.

    An earlier log keeps only the epochs before the one its successor starts from
    (the rows of an epoch cut short by the interruption are dropped).
    """
    earlier = sorted(log_dir.glob(_EARLIER_LOG.format(k="*")), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    parts = [pd.read_csv(p) for p in [*earlier, log_dir / "metrics.csv"] if p.exists()]
    if not parts:
        return None
    kept = []
    for part, successor in zip(parts, [*parts[1:], None]):
        if successor is not None and "step" in successor and "step" in part and len(successor):
            part = part[part["step"] < successor["step"].min()]
        kept.append(part)
    return pd.concat(kept, ignore_index=True)
