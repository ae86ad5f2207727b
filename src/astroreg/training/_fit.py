"""Fit a recipe's network with Lightning: callbacks, checkpoints, seeds, device."""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger
from numpy.typing import NDArray
from torch import nn

from astroreg._allocator import keep_freed_memory
from astroreg.config import Recipe
from astroreg.data import Dataset
from astroreg.models import create_model, prepare_for_training
from astroreg.models import unwrap
from astroreg.modalities import RecipePreprocessor, raw_targets
from astroreg.training._average import WeightAverage
from astroreg.training._data import BatchSource, RecipeDataModule, check_augment
from astroreg.training._head import refit_output_layer
from astroreg.training._device import select_device
from astroreg.evaluation._regimes import quantile_edges
from astroreg.training._module import RegressionModule
from astroreg.training._regimes import RegimeMAELogger
from astroreg.training._resume import (
    LAST,
    AtomicCheckpointIO,
    ResumableCheckpoints,
    finished_epochs,
    read_checkpoint,
    read_logs,
    set_aside_log,
)
from astroreg.training._weights import label_weights, weights_summary

log = logging.getLogger(__name__)


class EpochTimer(L.Callback):
    """Wall time of each training epoch (without validation), in seconds."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t0: float | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        # Lightning 2 runs the epoch's validation before on_train_epoch_end: stop the clock here.
        if not trainer.sanity_checking:
            self._stop()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._t0 is not None:
            self.times.append(time.perf_counter() - self._t0)
            self._t0 = None

    def state_dict(self) -> dict:
        return {"times": list(self.times)}  # a resumed fit reports every epoch's time

    def load_state_dict(self, state_dict: dict) -> None:
        self.times = [float(t) for t in state_dict.get("times", [])]


@dataclass
class FitResult:
    """What :func:`fit_network` returns."""

    backbone: nn.Module
    history: pd.DataFrame
    best_val_loss: float
    device: str
    epochs_run: int
    sample_weights: dict | None = None
    """Summary of the engine's training weights (:func:`weights_summary` and the settings), or None."""
    stopped_by: str = "epoch limit"
    """What ended the fit: ``"epoch limit"``, ``"early stopping"`` or ``"time limit"``."""


def _sample_weights(recipe: Recipe, dataset: Dataset, rows: NDArray) -> NDArray | None:
    col = recipe.training.weight_column
    if col is None:
        return None
    if col not in dataset.tabular_columns:
        raise ValueError(
            f"training.weight_column {col!r} not found in {dataset.path}; tabular columns are "
            f"{list(dataset.tabular_columns)}"
        )
    w = dataset.tabular([col], rows)[col].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"sample weights in column {col!r} must be finite and >= 0")
    return w


def _engine_weights(recipe: Recipe, y_train: NDArray, y_val: NDArray
                    ) -> tuple[NDArray | None, NDArray | None, dict | None]:
    """Weights of ``training.sample_weights`` for the training rows, for the validation rows
    (``weight_validation: true``; else ``None``), and their summary."""
    cfg = recipe.training.sample_weights
    if cfg.kind == "none":
        return None, None, None
    name = cfg.target or recipe.target_names[0]
    j = recipe.target_names.index(name)
    settings = dict(kind=cfg.kind, bins=cfg.bins, kernel=cfg.kernel, kernel_size=cfg.kernel_size, sigma=cfg.sigma,
                    power=cfg.power, clip=cfg.clip)
    w = label_weights(y_train[:, j], **settings)
    applied = cfg.weight_validation or cfg.stage == "head"  # the head refit reports its weighted val loss
    w_val = label_weights(y_train[:, j], apply_to=y_val[:, j], **settings) if applied else None
    summary = {"kind": cfg.kind, "target": name, "bins": cfg.bins, "power": cfg.power, "clip": cfg.clip,
               "stage": cfg.stage, "weight_validation": cfg.weight_validation, **weights_summary(w)}
    if cfg.kind == "lds":
        summary |= {"kernel": cfg.kernel, "kernel_size": cfg.kernel_size, "sigma": cfg.sigma}
    return w, w_val, summary


def _combine(a: NDArray | None, b: NDArray | None) -> NDArray | None:
    if a is None or b is None:
        return a if b is None else b
    return a * b


def _regime_logger(recipe: Recipe, preprocessor: RecipePreprocessor, y_val: NDArray) -> RegimeMAELogger | None:
    """The per-epoch validation MAE per bin of ``evaluation.regimes``, on quantile bins of the validation labels."""
    cfg = recipe.evaluation.regimes
    if cfg is None or not cfg.log_every_epoch:
        return None
    name = cfg.target or recipe.target_names[0]
    j = recipe.target_names.index(name)
    true = np.asarray(preprocessor.unscale_targets(np.nan_to_num(y_val)))[:, j]
    true = true[np.isfinite(y_val[:, j])]
    if true.size == 0:
        return None
    return RegimeMAELogger(quantile_edges(true, cfg.bins), target_index=j, to_units=preprocessor.unscale_targets,
                           low_threshold=float(np.quantile(true, cfg.low_quantile)))


def _fits_in_memory(recipe: Recipe, preprocessor: RecipePreprocessor, n_rows: int) -> bool:
    mode = recipe.training.in_memory
    if mode != "auto":
        return mode == "always"
    nbytes = 4 * n_rows * preprocessor.n_features
    return nbytes <= recipe.training.memory_limit_gb * 1e9


def build_backbone(recipe: Recipe, preprocessor: RecipePreprocessor) -> nn.Module:
    """The recipe's network for the preprocessor's named input shapes."""
    return create_model(recipe.model.name, input_shapes=preprocessor.input_shapes,
                        input_kinds=preprocessor.input_kinds, n_outputs=len(recipe.targets), **recipe.model.params)


def fit_network(
    recipe: Recipe,
    dataset: Dataset,
    splits: dict[str, NDArray],
    preprocessor: RecipePreprocessor,
    run_dir: str | os.PathLike,
    *,
    progress: bool = True,
    callbacks: list[L.Callback] | None = None,
    resumable: bool | Callable[[], None] = False,
    resume: bool = False,
) -> FitResult:
    """Train the recipe's network; keep the weights of the best validation epoch.

    Parameters
    ----------
    recipe : Recipe
    dataset : Dataset
        Open dataset.
    splits : dict
        ``train`` and ``val`` row indices.
    preprocessor : RecipePreprocessor
        Fitted on the training rows.
    run_dir : path-like
        Lightning logs and checkpoints go under it.
    progress : bool
        Show Lightning's progress bar.
    callbacks : list of lightning.Callback, optional
        Extra callbacks (e.g. a tuning pruner), appended to the built-in ones.
    resumable : bool or callable
        Write the whole training state to ``run_dir/checkpoints/last.ckpt`` after every
        epoch (atomically), so that a killed fit can go on (:mod:`astroreg.training._resume`);
        a callable is called once, when the first of them is saved.
    resume : bool
        Go on from ``run_dir/checkpoints/last.ckpt`` when it exists (else start afresh);
        a fit that had already ended (early stopping, the time limit) trains no further.

    Returns
    -------
    FitResult
    """
    tr = recipe.training
    # Lightning announces devices and tips at INFO level; astroreg prints its own progress.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    L.seed_everything(tr.seed, workers=True, verbose=False)
    run_dir = Path(run_dir)
    train_rows, val_rows = splits["train"], splits["val"]
    if len(train_rows) == 0 or len(val_rows) == 0:
        raise ValueError(
            f"training needs non-empty train and val splits; got {len(train_rows)} train, {len(val_rows)} val "
            "rows: adjust dataset.splits in the recipe"
        )
    aug = tr.augment
    check_augment(aug.copies, preprocessor)
    y_train = preprocessor.scale_targets(raw_targets(recipe, dataset, train_rows))
    y_val = preprocessor.scale_targets(raw_targets(recipe, dataset, val_rows))
    # The noisy copies of the training spectra are held in memory too.
    in_mem = _fits_in_memory(recipe, preprocessor, len(train_rows) * (1 + aug.copies) + len(val_rows))
    # Engine weights act on the training loss; the validation loss (checkpoint, early stopping,
    # plateau schedule) keeps the objects as they come, with weight_column alone, unless
    # sample_weights.weight_validation weights it the same way.
    # With sample_weights.stage: head the network trains without them and only its output
    # layer is refitted with them at the end (training._head).
    engine_w, engine_val_w, weight_info = _engine_weights(recipe, y_train, y_val)
    head_stage = engine_w is not None and tr.sample_weights.stage == "head"
    train_w = _combine(_sample_weights(recipe, dataset, train_rows), None if head_stage else engine_w)
    val_w = _combine(_sample_weights(recipe, dataset, val_rows), None if head_stage else engine_val_w)
    train = BatchSource(dataset.path, train_rows, preprocessor, y_train, train_w,
                        in_memory=in_mem, desc="loading train" if progress else None,
                        copies=aug.copies, noise_fraction=aug.noise_fraction, seed=tr.seed)
    val = BatchSource(dataset.path, val_rows, preprocessor, y_val, val_w,
                      in_memory=in_mem, desc="loading val" if progress else None)
    data = RecipeDataModule(train, val, batch_size=tr.batch_size, seed=tr.seed, num_workers=tr.num_workers)

    weights = None
    if tr.loss.startswith("weighted"):
        var = np.nanvar(y_train, axis=0)
        weights = (1.0 / np.where(var > 0, var, 1.0)).tolist()
    steps = tr.epochs * math.ceil(len(train) / tr.batch_size)  # augmented copies included
    device = select_device(tr.device)
    backbone = build_backbone(recipe, preprocessor)
    if device == "cpu":
        backbone = prepare_for_training(backbone)
    keep_freed_memory()  # no page faults for each step's batches and activations (astroreg._allocator)
    module = RegressionModule(
        backbone, n_targets=len(recipe.targets), loss=tr.loss, target_weights=weights,
        huber_delta=tr.huber_delta, optimizer=tr.optimizer.name, lr=tr.optimizer.lr,
        weight_decay=tr.optimizer.weight_decay, scheduler=tr.scheduler.name, total_steps=steps,
        warmup_fraction=tr.scheduler.warmup_fraction, min_lr_ratio=tr.scheduler.min_lr_ratio,
        plateau_patience=tr.scheduler.patience, plateau_factor=tr.scheduler.factor, l2=tr.l2,
        momentum=tr.optimizer.momentum, nesterov=tr.optimizer.nesterov,
    )
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="best", monitor="val_loss", mode="min",
                           save_top_k=1, save_last=bool(resumable) or resume)
    timer = EpochTimer()
    regimes = _regime_logger(recipe, preprocessor, y_val)
    extra = [*([regimes] if regimes else []), *(callbacks or [])]
    if resumable or resume:
        extra.insert(0, ResumableCheckpoints(resumable if callable(resumable) else None))
    callbacks = [ckpt, timer, *extra]
    if tr.early_stopping.patience:
        callbacks.append(EarlyStopping(monitor="val_loss", patience=tr.early_stopping.patience,
                                       min_delta=tr.early_stopping.min_delta))
    if tr.scheduler.name != "none":
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    if tr.ema_decay is not None:
        callbacks.append(WeightAverage(tr.ema_decay))
    max_time = None if tr.max_minutes is None else timedelta(minutes=tr.max_minutes)
    last = run_dir / "checkpoints" / LAST
    resume_from = last if resume and last.exists() else None
    max_epochs = tr.epochs
    if resume_from is not None:
        state = read_checkpoint(resume_from)
        ended_at = finished_epochs(state, tr.max_minutes)
        max_epochs = tr.epochs if ended_at is None else min(tr.epochs, ended_at)
        data.start_epoch = int(state["epoch"]) + 1  # the checkpoint is written when its epoch has ended
        set_aside_log(run_dir / "logs", state)
    logger = CSVLogger(run_dir, name="logs", version="")
    trainer = L.Trainer(
        max_epochs=max_epochs, max_time=max_time, accelerator=device, devices=1, callbacks=callbacks,
        logger=logger, plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress, enable_model_summary=False, num_sanity_val_steps=0,
        deterministic=False, log_every_n_steps=max(1, min(50, len(train) // tr.batch_size)),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # A resumed fit writes into its own logs and checkpoints folders again (the log was set aside).
        warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
        _fit_interruptible(trainer, module, data, run_dir, resume_from)
    best = ckpt.best_model_path
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    history = _history(Path(logger.log_dir))
    if len(history) == len(timer.times):
        history["epoch_time_s"] = timer.times
        history["train_objects_per_s"] = len(train) / np.asarray(timer.times)  # noisy copies count
    best_val = float(ckpt.best_model_score) if ckpt.best_model_score is not None else float("nan")
    backbone = unwrap(module.backbone)
    if head_stage:
        refit = refit_output_layer(backbone, train, val, np.tile(engine_w, aug.copies + 1), engine_val_w,
                                   module.loss_fn, n_outputs=len(recipe.targets), l2=tr.l2,
                                   l2_kernels=module.l2_kernels, device=device)
        weight_info = weight_info | {"head_refit": refit}
        best_val = refit["val_loss_after"]  # the loss of the network that is kept
    backbone = backbone.to("cpu").eval()
    return FitResult(backbone, history, best_val, device, len(history), weight_info, _stopped_by(trainer))


def _stopped_by(trainer: L.Trainer) -> str:
    """Which of the epoch limit, early stopping or ``training.max_minutes`` ended ``trainer``'s fit."""
    if any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks):
        return "early stopping"
    for c in trainer.callbacks:
        remaining = c.time_remaining() if isinstance(c, Timer) else None  # None: a Timer without a duration
        if remaining is not None and remaining <= 0:
            return "time limit"
    return "epoch limit"


def _fit_interruptible(trainer: L.Trainer, module: L.LightningModule, data: L.LightningDataModule,
                       run_dir: Path, ckpt_path: Path | None = None) -> None:
    """``trainer.fit`` that lets Ctrl-C reach the caller as ``KeyboardInterrupt``.

    Lightning catches the ``KeyboardInterrupt`` itself, sets SIGINT to be ignored, and
    then either calls ``sys.exit(1)`` or returns with ``trainer.interrupted`` set; the
    command would exit 1 without a word, or go on as if training had finished. The
    interrupt is raised again here, and the SIGINT handler put back, so that the command
    stops with its one-line message and exit status 130. A failed checkpoint write (a full
    disk) names the run folder: fsspec's ``OSError`` names no file.
    """
    in_main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if in_main else None
    try:
        trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    except SystemExit as err:
        if trainer.interrupted:
            raise KeyboardInterrupt from err
        raise
    except OSError as err:
        if err.errno is not None and err.filename is None:
            raise OSError(err.errno, err.strerror or os.strerror(err.errno), str(run_dir)) from err
        raise
    finally:
        if in_main and handler is not None:
            signal.signal(signal.SIGINT, handler)
    if trainer.interrupted:
        raise KeyboardInterrupt


def _history(log_dir: Path) -> pd.DataFrame:
    """Per-epoch train and validation loss from Lightning's CSV log (joined over resumptions)."""
    m = read_logs(log_dir)
    if m is None:
        return pd.DataFrame(columns=["epoch", "train_loss", "val_loss"])
    if "step" in m:
        # The learning-rate monitor logs at the start of an epoch without an epoch number.
        m = m.sort_values("step", kind="stable")
        m["epoch"] = m["epoch"].bfill().ffill()
    cols = [c for c in m if c in ("train_loss", "val_loss", "train_l2") or c.startswith(("lr-", "val_mae_"))]
    return m.groupby("epoch")[cols].mean().reset_index().astype({"epoch": int})
