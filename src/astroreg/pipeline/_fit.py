"""One way to fit a recipe into a run folder: ``train``, network baselines and every tuning trial call it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from astroreg.config import Recipe, recipe_to_yaml
from astroreg.data import Dataset, atomic_path, atomic_write_text, mark_resumable
from astroreg.modalities import RecipePreprocessor, raw_targets
from astroreg.preprocess._domain import DOMAIN_FILE, TrainingDomain
from astroreg.training import fit_network


@dataclass
class RunFit:
    """What :func:`fit_run` leaves besides the files: the fitted preprocessing and the training result.

    Attributes
    ----------
    preprocessor : RecipePreprocessor
    fit : astroreg.training.FitResult
        The trained network (CPU, eval mode), its history, best validation loss, device
        and epochs run.
    """

    preprocessor: RecipePreprocessor
    fit: object


def check_model_inputs(recipe: Recipe) -> None:
    """Raise a ValueError naming the recipe input whose kind the recipe's model does not take."""
    from astroreg.models._registry import check_model_inputs as check

    check(recipe.model.name, recipe.input_kinds)


def fit_run(
    recipe: Recipe,
    dataset: Dataset,
    splits: dict[str, NDArray[np.int64]],
    out_dir: str | os.PathLike,
    *,
    preprocessor: RecipePreprocessor | None = None,
    domain: bool = True,
    progress: bool = True,
    callbacks: list | None = None,
    resumable: bool = False,
    resume: bool = False,
) -> RunFit:
    """Fit ``recipe`` on ``dataset`` and write a run folder that ``astroreg predict`` accepts.

    Writes ``config.yaml``, ``splits.npz``, ``preprocessors.json``, (with ``domain``)
    ``domain.json``, ``model.pt`` and ``history.csv`` into ``out_dir``, which the caller
    has claimed (a ``.partial`` folder of ``train``, a baseline's folder inside it, or a
    tuning trial's scratch folder). Evaluation and the report are the caller's.

    Parameters
    ----------
    recipe : Recipe
    dataset : Dataset
        Open dataset.
    splits : dict
        ``train``, ``val`` and ``test`` rows.
    out_dir : path-like
        The run folder being written.
    preprocessor : RecipePreprocessor, optional
        Already fitted on ``splits["train"]`` for this recipe's inputs and targets (a
        network baseline sharing the main run's, a tuning study's cache); fitted here
        otherwise.
    domain : bool
        Record the training domain (``domain.json``) that ``predict`` flags objects with.
    progress : bool
    callbacks : list of lightning.Callback, optional
        Extra callbacks for the trainer (a tuning pruner).
    resumable : bool
        ``out_dir`` is a claimed ``.partial``: checkpoint the whole training state every
        epoch, and mark the folder resumable (``astroreg resume``) once the first is written.
    resume : bool
        Go on from the checkpoint of an interrupted fit into ``out_dir`` (see
        :func:`astroreg.training.fit_network`).

    Returns
    -------
    RunFit

    Raises
    ------
    ValueError
        If the model does not take the recipe's inputs (naming the input), or any check
        of the preprocessing or training fails.
    """
    from astroreg._threads import set_threads
    from astroreg.models._io import save_model

    check_model_inputs(recipe)
    set_threads(recipe.training.threads)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "splits.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **splits)
    atomic_write_text(out / "config.yaml", recipe_to_yaml(recipe))
    pre = preprocessor if preprocessor is not None else RecipePreprocessor.fit(recipe, dataset, splits["train"])
    pre.save(out / "preprocessors.json")
    if domain:
        # What the network will have seen: predict flags the objects outside it (in_domain, domain_reason).
        TrainingDomain.fit(pre, dataset, splits["train"], splits["val"], raw_targets(recipe, dataset, splits["train"]),
                           seed=recipe.training.seed).save(out / DOMAIN_FILE)
    # The folder is marked resumable once the first epoch's checkpoint is written.
    mark = (lambda: mark_resumable(out, f"astroreg resume {out}")) if resumable else False
    fit, model_name, params = _fit_networks(recipe, dataset, splits, pre, out, progress=progress, callbacks=callbacks,
                                            resumable=mark, resume=resume)
    save_model(out / "model.pt", fit.backbone, model_name, params, pre.input_shapes, pre.input_kinds,
               len(recipe.targets))
    with atomic_path(out / "history.csv") as tmp:
        fit.history.to_csv(tmp, index=False)
    return RunFit(pre, fit)


def _fit_networks(recipe: Recipe, dataset: Dataset, splits: dict[str, NDArray[np.int64]], pre: RecipePreprocessor,
                  out: Path, *, progress: bool, callbacks: list | None, resumable=False, resume: bool = False):
    """Train the recipe's network, or its ``training.ensemble`` members; what to save as ``model.pt``.

    Member k is trained from seed ``training.seed + k`` into ``out/members/<k>`` (its
    Lightning logs and checkpoint), with its own early stopping; extra callbacks (a
    tuning pruner) go to the first member only. The ensemble's history stacks the
    members' with a ``member`` column, its best validation loss is the members' mean and
    its epochs are their sum. Resumed, each member goes on from its own checkpoint (one
    that had finished trains no further).

    Returns
    -------
    tuple
        The :class:`~astroreg.training.FitResult`, and the model name and parameters
        that :func:`~astroreg.models.save_model` records.
    """
    n = recipe.training.ensemble
    if n == 1:
        fit = fit_network(recipe, dataset, splits, pre, out, progress=progress, callbacks=callbacks,
                          resumable=resumable, resume=resume)
        return fit, recipe.model.name, dict(recipe.model.params)
    from astroreg.models._ensemble import ensemble_of, ensemble_params
    from astroreg.training import FitResult

    fits = []
    for k in range(n):
        seed = recipe.training.seed + k
        member = recipe.model_copy(update={"training": recipe.training.model_copy(update={"seed": seed})})
        if progress:
            print(f"ensemble member {k + 1}/{n} (training.seed {seed})", file=sys.stderr, flush=True)
        fits.append(fit_network(member, dataset, splits, pre, out / "members" / str(k), progress=progress,
                                callbacks=callbacks if k == 0 else None, resumable=resumable, resume=resume))
    history = pd.concat([f.history.assign(member=k) for k, f in enumerate(fits)], ignore_index=True)
    fit = FitResult(ensemble_of([f.backbone for f in fits]).eval(), history,
                    float(np.mean([f.best_val_loss for f in fits])), fits[0].device,
                    sum(f.epochs_run for f in fits), fits[0].sample_weights, fits[0].stopped_by)
    return fit, "ensemble", ensemble_params(recipe.model.name, recipe.model.params, n)
