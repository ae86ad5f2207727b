"""Hyper-parameter search of a recipe with Optuna: space, objective, pruning, storage, outputs.

A trial is the recipe with sampled values applied through :meth:`Recipe.with_overrides`,
fitted by :func:`astroreg.pipeline.fit_run` (as `train` fits a run) for ``tuning.epochs`` epochs in a
temporary folder; its value is the best validation loss (scaled targets), or with
``tuning.objective: {metric: ...}`` that metric of its validation predictions
(:mod:`astroreg.tuning._objective`). Dimensions with ``per_layer`` are drawn once per
layer of a count drawn first (:func:`sample_space`). The study
lives in an Optuna RDB storage (SQLite by default), so an interrupted study resumes
and several processes, on one machine or many, can work on the same study.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import optuna
import pandas as pd
import sqlalchemy
from matplotlib.figure import Figure
from optuna.trial import TrialState
from tqdm.auto import tqdm

from astroreg.config import Recipe, recipe_to_yaml
from astroreg.config._recipe import require_tuning_space
from astroreg.data import Dataset, atomic_path, atomic_write_text
from astroreg.modalities import RecipePreprocessor, check_targets_present
from astroreg.evaluation._plots import save_figure
from astroreg.models import get_model_entry
from astroreg.tuning._fingerprint import check_study, dataset_fingerprint, recipe_settings
from astroreg.tuning._objective import Objective, resolve_objective, score_run
from astroreg.tuning._sampler import make_sampler
from astroreg.tuning._space import _probe_value, _values_from_params, sample_space
from astroreg.tuning._storage import is_file_fault, resolve_storage, storage_error, storage_errors, storage_name

log = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# A process writes a heartbeat every HEARTBEAT_S while a trial runs; a RUNNING trial
# whose heartbeat is older than GRACE_S belongs to a dead process and is marked FAIL.
HEARTBEAT_S = 10
GRACE_S = 30
# Pruning starts after this many epochs: the first epochs of a warm-up schedule are noisy.
PRUNE_WARMUP_EPOCHS = 2
OVERRIDES_ATTR = "overrides"
OBJECTIVE_ATTR = "objective"
# Sections that the preprocessor and the splits depend on; a trial that changes none of
# them reuses the study's fitted preprocessor.
_DATA_KEYS = ("dataset", "inputs", "targets", "preprocess")


@dataclass
class TuneResult:
    """What :func:`tune_recipe` returns."""

    study: optuna.Study
    best_value: float
    best_overrides: dict[str, Any]
    best_recipe: Path
    trials_csv: Path
    history_plot: Path
    importance_plot: Path | None
    n_finished: int
    trial_seconds: float
    objective: Objective  # what ``best_value`` is: ``objective.description`` says it in words


class PruningCallback(L.Callback):
    """Report each epoch's validation loss to an Optuna trial; stop the fit when it is pruned.

    Raising :class:`optuna.TrialPruned` inside ``on_validation_end`` propagates out of
    ``trainer.fit`` (Lightning runs its teardown and re-raises), and the study marks the
    trial PRUNED.

    Parameters
    ----------
    trial : optuna.Trial
        The running trial.
    monitor : str
        The logged metric to report (default ``val_loss``).
    negate : bool
        Report ``-monitor``: in a study that maximises its objective (a metric such as
        ``r2``), the pruner, which follows the study's direction, must still stop the trials
        whose loss is high.
    """

    def __init__(self, trial: optuna.Trial, monitor: str = "val_loss", *, negate: bool = False) -> None:
        self.trial = trial
        self.monitor = monitor
        self.negate = negate

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is None:
            return
        epoch = trainer.current_epoch
        self.trial.report(-float(score) if self.negate else float(score), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"trial {self.trial.number} pruned at epoch {epoch}: "
                                     f"{self.monitor} {float(score):.4g}")


def tuning_base(recipe: Recipe) -> Recipe:
    """The recipe a trial starts from: ``tuning.epochs`` and ``tuning.max_train_objects`` applied.

    Raises
    ------
    ValueError
        If the recipe has no ``tuning`` section or an empty ``tuning.space``, or a space key
        does not fit the recipe; the message names the key to add or fix.
    """
    tc = require_tuning_space(recipe)
    fixed: dict[str, Any] = {}
    if tc.epochs is not None:
        fixed["training.epochs"] = tc.epochs
    if tc.max_train_objects is not None:
        fixed["training.max_train_objects"] = tc.max_train_objects
    base = recipe.with_overrides(fixed) if fixed else recipe
    for key, dim in tc.space.items():
        try:
            base.with_overrides({key: _probe_value(dim, tc.space)})
        except ValueError as err:
            raise ValueError(f"tuning.space key {key!r} does not fit recipe {recipe.name!r}: {err}; "
                             "fix or remove that key under tuning.space") from None
        parts = key.split(".")
        if parts[:2] == ["model", "params"] and len(parts) > 2:
            allowed = sorted(get_model_entry(base.model.name).parameters())
            if parts[2] not in allowed:
                raise ValueError(f"tuning.space key {key!r}: model {base.model.name!r} has no parameter "
                                 f"{parts[2]!r}; allowed: {allowed}; fix or remove that key under tuning.space")
    return base


def open_study(url: str, study_name: str, *, sampler: optuna.samplers.BaseSampler | None = None,
               pruner: optuna.pruners.BasePruner | None = None,
               direction: Literal["minimize", "maximize"] = "minimize") -> optuna.Study:
    """Create or load a study in an RDB storage with heartbeats, and fail the stale trials of dead processes.

    ``direction`` is that of a new study; an existing study keeps the one it was made with
    (:func:`tune_recipe` refuses to join it with another).

    Raises
    ------
    ValueError
        When the database cannot be opened or written (read-only, full, damaged, unreachable);
        the message names the storage and the database's cause.
    """
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                                     heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
                study = optuna.create_study(storage=storage, study_name=study_name, direction=direction,
                                            sampler=sampler, pruner=pruner, load_if_exists=True)
                optuna.storages.fail_stale_trials(study)
            return study
        except ImportError as err:  # a URL whose database driver is not installed
            missing = err.__cause__ or err.__context__ or err
            raise ValueError(f"tuning storage {storage_name(url)}: its database driver is not installed ({missing}); "
                             "install that module or use a SQLite file") from None
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as err:
            # Processes started together race to create the tables of a new storage; the loser retries
            # (optuna reports some SQLAlchemy errors as StorageInternalError). A refusing file system does
            # not get better by waiting.
            if attempt == 2 or is_file_fault(err):
                converted = storage_error(err, url)
                if converted is None:
                    raise
                raise converted from err
            time.sleep(1.0 + attempt)
    raise AssertionError("unreachable")


def _data_signature(recipe: Recipe) -> str:
    d = recipe.model_dump(mode="json")
    part = {k: d[k] for k in _DATA_KEYS}
    part["train"] = [d["training"]["max_train_objects"], d["training"]["seed"]]
    return json.dumps(part, sort_keys=True)


def n_finished(study: optuna.Study) -> int:
    """Number of COMPLETE or PRUNED trials of the study."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def make_objective(base: Recipe, dataset: Dataset, *, progress: bool = False,
                   objective: Objective | None = None) -> Callable[[optuna.Trial], float]:
    """The study's objective: train one sampled recipe, return its score.

    The score is the best validation loss, or with a metric ``objective`` that metric of
    the validation predictions of the trial's best checkpoint (in the target's units,
    through :func:`astroreg.tuning._objective.score_run`); the per-epoch validation loss
    is what the pruner sees either way. A trial whose score is not finite is pruned.
    The preprocessor and the splits are fitted once and reused while the sampled values
    leave ``dataset``, ``inputs``, ``targets``, ``preprocess``, ``training.seed`` and
    ``training.max_train_objects`` alone; otherwise they are refitted for the trial.

    Parameters
    ----------
    base : Recipe
        The trial base (:func:`tuning_base`).
    dataset : Dataset
        The open dataset.
    progress : bool
    objective : Objective, optional
        Default: :func:`resolve_objective` of ``base``.
    """
    from astroreg.pipeline._fit import fit_run
    from astroreg.pipeline._train import resolve_splits

    space = base.tuning.space
    objective = resolve_objective(base) if objective is None else objective
    cache: dict[str, tuple] = {}

    def fitted(recipe: Recipe) -> tuple:
        sig = _data_signature(recipe)
        if sig not in cache:
            cache.clear()  # keep one preprocessor in memory
            splits = resolve_splits(recipe, dataset)
            cache[sig] = (splits, RecipePreprocessor.fit(recipe, dataset, splits["train"]))
        return cache[sig]

    def run_trial(trial: optuna.Trial) -> float:
        overrides = sample_space(trial, space)
        trial.set_user_attr(OVERRIDES_ATTR, overrides)
        recipe = base.with_overrides(overrides)
        splits, pre = fitted(recipe)
        # The pruner sees the per-epoch validation loss whatever the objective: a metric is only
        # known once the trial has finished.
        negate = trial.study.direction == optuna.study.StudyDirection.MAXIMIZE
        callbacks = ([PruningCallback(trial, negate=negate)]
                     if not isinstance(trial.study.pruner, optuna.pruners.NopPruner) else [])
        with tempfile.TemporaryDirectory(prefix=f"astroreg-trial{trial.number}-") as tmp:
            fit = fit_run(recipe, dataset, splits, tmp, preprocessor=pre, domain=False, progress=progress,
                          callbacks=callbacks).fit
            trial.set_user_attr("epochs_run", fit.epochs_run)
            if not math.isfinite(fit.best_val_loss):
                raise optuna.TrialPruned(f"trial {trial.number}: validation loss is not finite (diverged)")
            if objective.is_val_loss:
                return fit.best_val_loss
            trial.set_user_attr("best_val_loss", fit.best_val_loss)
            value = score_run(objective, tmp, dataset, splits["val"])
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"trial {trial.number}: {objective.label} is not finite ({value})")
        return value

    return run_trial


def _print_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """One line per finished trial, written above the progress bar."""
    values = ", ".join(f"{k.removeprefix('model.params.').removeprefix('training.')}="
                       + (f"{v:.3g}" if isinstance(v, float) else json.dumps(v))
                       for k, v in trial.user_attrs.get(OVERRIDES_ATTR, {}).items())
    if trial.state == TrialState.COMPLETE:
        what = (f"{study_objective(study).label.replace('_', ' ')} {trial.value:.4g}"
                + (" (best)" if study.best_trial.number == trial.number else ""))
    elif trial.state == TrialState.PRUNED:
        what = f"pruned after epoch {max(trial.intermediate_values, default=0) + 1}"
    else:
        what = trial.state.name.lower()
    tqdm.write(f"trial {trial.number}: {what} | {values}")


def study_objective(study: optuna.Study) -> Objective:
    """The objective recorded on a study (``val_loss`` for a study made before objectives were recorded)."""
    attr = study.user_attrs.get(OBJECTIVE_ATTR)
    if not isinstance(attr, dict) or "metric" not in attr:
        return Objective("val_loss", None, "minimize")
    return Objective(attr["metric"], attr.get("target"), attr.get("direction", "minimize"))


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, objective, duration and the recipe value of every searched key.

    ``value`` is the trial's score; the ``objective`` column names what it is
    (``val_loss``, or ``val_<metric>_<target>`` such as ``val_sigma_nmad_ez_z``). A
    per-layer key holds the JSON list of its layers' values (``[64, 128]``).
    """
    label = study_objective(study).label
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else float("nan")
        row = {"number": t.number, "state": t.state.name, "value": t.value, "objective": label,
               "duration_s": duration, "epochs": len(t.intermediate_values) or t.user_attrs.get("epochs_run")}
        for k, v in t.user_attrs.get(OVERRIDES_ATTR, t.params).items():
            row[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
        rows.append(row)
    return pd.DataFrame(rows)


def plot_history(study: optuna.Study, path: str | os.PathLike) -> Path:
    """Objective per trial with the running best; pruned trials at their last reported loss.

    With a metric objective the pruned trials are left out: they reported validation
    losses, not the metric.
    """
    objective = study_objective(study)
    path = Path(path)
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = [t for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)) if t.intermediate_values]
    if not objective.is_val_loss:
        pruned = []
    if done:
        n = np.array([t.number for t in done])
        v = np.array([t.value for t in done])
        ax.scatter(n, v, s=22, color="C0", label="complete", zorder=3)
        running = np.maximum.accumulate(v) if objective.direction == "maximize" else np.minimum.accumulate(v)
        ax.step(n, running, where="post", color="C3", label="best so far", zorder=2)
    if pruned:
        last = [t.intermediate_values[max(t.intermediate_values)] for t in pruned]
        ax.scatter([t.number for t in pruned], last, marker="x", s=28, color="0.5",
                   label="pruned (last reported loss)", zorder=3)
    values = [t.value for t in done] + ([t.intermediate_values[max(t.intermediate_values)] for t in pruned])
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective.description)
    ax.set_title(f"optimisation history: {study.study_name}")
    if done or pruned:
        ax.legend(frameon=False)
    return save_figure(fig, path, dpi=110)


def plot_importances(study: optuna.Study, path: str | os.PathLike) -> Path | None:
    """Bar chart of Optuna's parameter importances; ``None`` with too few complete trials.

    A per-layer key appears once per layer (``model.params.dense_units.0``, ...): those
    parameters exist only in the trials with that many layers.
    """
    if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) < 3:
        return None
    try:
        with warnings.catch_warnings():
            # Per-layer parameters exist only in the trials with that many layers: few trials per regime.
            warnings.filterwarnings("ignore", message=".*have less than 2 trials.*")
            imp = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ImportError) as err:  # e.g. a single distinct value per parameter
        log.info("no parameter importances: %s", err)
        return None
    if not imp:
        return None
    path = Path(path)
    names = list(imp)[::-1]
    fig = Figure(figsize=(7, 0.4 * len(names) + 1.5))
    ax = fig.add_subplot()
    ax.barh(names, [imp[k] for k in names], color="C0")
    ax.set_xlabel("importance (Optuna's default evaluator, sums to 1)")
    ax.set_title(f"parameter importances: {study.study_name}")
    return save_figure(fig, path, dpi=110)


def best_recipe(recipe: Recipe, study: optuna.Study) -> tuple[Recipe, dict[str, Any]]:
    """The recipe with the best trial's values applied (full-length training, as the recipe says)."""
    best = study.best_trial
    overrides = best.user_attrs.get(OVERRIDES_ATTR)
    if overrides is None:  # a trial written by other code: map the params back through the space
        overrides = _values_from_params(recipe.tuning.space, best.params)
    desc = (f"{recipe.description} [tuned: study {study.study_name!r}, trial {best.number}, "
            f"{study_objective(study).label.replace('_', ' ')} {best.value:.4g}]").strip()
    return recipe.with_overrides({**overrides, "description": desc}), overrides


def write_outputs(recipe: Recipe, study: optuna.Study, out_dir: str | os.PathLike) -> dict[str, Path | None]:
    """Write ``best-recipe.yaml``, ``trials.csv``, ``optimization_history.png`` and ``param_importances.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path | None] = {}
    with atomic_path(out / "trials.csv") as tmp:
        trials_frame(study).to_csv(tmp, index=False)
    paths["trials"] = out / "trials.csv"
    paths["history"] = plot_history(study, out / "optimization_history.png")
    paths["importances"] = plot_importances(study, out / "param_importances.png")
    paths["best_recipe"] = None
    if study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        tuned, _ = best_recipe(recipe, study)
        header = (f"# best trial {study.best_trial.number} of study {study.study_name!r}: "
                  f"{study_objective(study).description} {study.best_value:.6g}\n"
                  f"# train it with: astroreg train {out / 'best-recipe.yaml'}\n")
        paths["best_recipe"] = atomic_write_text(out / "best-recipe.yaml", header + recipe_to_yaml(tuned))
    return paths


def _check_objective(study: optuna.Study, objective: Objective, url: str) -> None:
    """Record the objective on a new study; refuse a study scored another way or in the other direction.

    A different metric or target is also a recipe-settings difference (refused by
    :func:`check_study` unless forced); a different direction cannot be forced, since a
    study's direction is fixed when it is made.
    """
    wanted = optuna.study.StudyDirection.MAXIMIZE if objective.direction == "maximize" \
        else optuna.study.StudyDirection.MINIMIZE
    if study.direction != wanted:
        raise ValueError(
            f"study {study.study_name!r} in {storage_name(url)} is made to "
            f"{study.direction.name.lower()}, but tuning.objective {objective.label} asks to {objective.direction}; "
            "start a new study (--study-name NEW or another --storage) or set tuning.objective.direction"
        )
    if OBJECTIVE_ATTR not in study.user_attrs:
        study.set_user_attr(OBJECTIVE_ATTR, objective.as_attr())


def tune_recipe(
    recipe: Recipe,
    *,
    trials: int | None = None,
    data: str | os.PathLike | None = None,
    storage: str | os.PathLike | None = None,
    study_name: str | None = None,
    sampler: Literal["tpe", "gp"] | None = None,
    out_dir: str | os.PathLike | None = None,
    runs_root: str | os.PathLike = "runs",
    timeout: float | None = None,
    progress: bool = True,
    force_resume: bool = False,
) -> TuneResult:
    """Search the recipe's ``tuning.space`` with Optuna until the study has ``trials`` finished trials.

    Finished means COMPLETE or PRUNED; a restarted call runs only the missing trials, and
    several processes may run it on one study at once (the RDB storage serialises them).
    Trials left RUNNING by a dead process are marked FAIL once their heartbeat is
    ``GRACE_S`` seconds old; until then they are neither counted nor used by the sampler.

    Trial ``n`` draws its parameters with a seed made from ``(tuning.seed, n)``, so every
    trial of a study draws anew, whichever process runs it and however often the study
    is resumed, and a study run again from scratch repeats its random (startup) trials.
    A new study records the recipe settings its trials depend on and a fingerprint of
    the dataset (ids, splits, labels); joining it with different ones is refused unless
    ``force_resume`` is true. It also records its objective (``tuning.objective``, user
    attribute ``objective``); a metric objective that the recipe's target does not have
    is refused before the study is opened, and a study cannot be joined with an
    objective of the other direction even when forced.

    Parameters
    ----------
    recipe : Recipe
        A recipe with a ``tuning`` section.
    trials : int, optional
        Target number of finished trials (default ``tuning.trials``).
    data : path-like, optional
        Dataset instead of ``recipe.dataset.path``.
    storage : str or path-like, optional
        SQLite file or Optuna storage URL (default ``tuning.storage``, else
        ``<runs_root>/<recipe name>-tuning.db``).
    study_name : str, optional
        Default ``tuning.study_name``, else the recipe name.
    sampler : {"tpe", "gp"}, optional
        Default ``tuning.sampler``.
    out_dir : path-like, optional
        Where the outputs go (default ``<runs_root>/<recipe name>-tuning/``).
    runs_root : path-like
        Parent of the default storage and output folder.
    timeout : float, optional
        Stop starting new trials after this many seconds.
    progress : bool
        Show a progress bar over the trials and Optuna's per-trial log lines.
    force_resume : bool
        Join an existing study even if it was made with other recipe settings or data
        (a warning names the differences).

    Returns
    -------
    TuneResult

    Raises
    ------
    ValueError
        For a recipe without a tuning space, a storage that is not a SQLite database or
        cannot be written, a study made with other settings or data (unless
        ``force_resume``), or a study without a complete trial.

    Examples
    --------
    >>> res = tune_recipe(load_recipe("recipes/stellar-params.yaml"), trials=50)  # doctest: +SKIP
    >>> res.best_recipe  # doctest: +SKIP
    PosixPath('runs/stellar-params-tuning/best-recipe.yaml')
    """
    if data is not None:
        recipe = recipe.with_overrides({"dataset.path": str(data)})
    base = tuning_base(recipe)
    objective = resolve_objective(base)  # an unknown metric is refused before any trial
    tc = recipe.tuning
    trials = tc.trials if trials is None else trials
    if trials < 1:
        raise ValueError(f"--trials must be >= 1, got {trials}")
    data_path = Path(base.dataset.path)
    if not data_path.exists():
        raise FileNotFoundError(f"dataset {data_path} not found; give --data or set dataset.path in the recipe")
    url = resolve_storage(storage or tc.storage, recipe.name, runs_root)
    name = study_name or tc.study_name or recipe.name
    out = Path(out_dir) if out_dir is not None else Path(runs_root) / f"{recipe.name}-tuning"
    sampler = sampler or tc.sampler
    smp = make_sampler(sampler, seed=tc.seed, startup_trials=tc.startup_trials)
    prune = tc.pruner == "median"
    if prune and sampler == "gp":
        # GPSampler learns from complete trials only: it would propose a pruned point again and again.
        log.warning("pruning is off with the GP sampler (it learns only from complete trials); "
                    "use the TPE sampler to prune hopeless trials")
        prune = False
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=tc.startup_trials, n_warmup_steps=PRUNE_WARMUP_EPOCHS)
              if prune else optuna.pruners.NopPruner())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with Dataset(data_path) as ds, storage_errors(url):
        check_targets_present(base, ds)
        study = open_study(url, name, sampler=smp, pruner=pruner, direction=objective.direction)
        check_study(study, recipe_settings(base), dataset_fingerprint(ds), force=force_resume)
        _check_objective(study, objective, url)
        missing = trials - n_finished(study)
        try:
            if missing > 0:
                run_trial = make_objective(base, ds, objective=objective)
                stop = optuna.study.MaxTrialsCallback(trials, states=FINISHED)
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*greenlet.*")
                    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
                    study.optimize(run_trial, n_trials=missing, timeout=timeout,
                                   callbacks=[stop, _print_trial] if progress else [stop],
                                   show_progress_bar=progress, gc_after_trial=True)
            else:
                log.info("study %r already has %d finished trials (asked for %d)", name, trials - missing, trials)
        finally:
            # Also on Ctrl-C: whatever finished is summarised; the study itself is already stored.
            paths = write_outputs(recipe, study, out) if study.get_trials(deepcopy=False, states=FINISHED) else None
        if paths is None or paths["best_recipe"] is None:
            raise ValueError(f"study {name!r} in {url} has no complete trial yet (all pruned or failed); "
                             "run more trials or loosen tuning.pruner")
    done = study.get_trials(deepcopy=False, states=FINISHED)
    secs = [(t.datetime_complete - t.datetime_start).total_seconds() for t in done]
    _, best = best_recipe(recipe, study)
    return TuneResult(study=study, best_value=float(study.best_value), best_overrides=best,
                      best_recipe=paths["best_recipe"], trials_csv=paths["trials"], history_plot=paths["history"],
                      importance_plot=paths["importances"], n_finished=len(done),
                      trial_seconds=float(np.median(secs)) if secs else float("nan"),
                      objective=study_objective(study))
