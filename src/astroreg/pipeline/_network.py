"""Network baselines (``kind: network``): another registered network trained through the same recipe."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from astroreg.baselines import BaselineResult, ModelInputs, count_parameters, time_network
from astroreg.config import BaselineConfig, Recipe
from astroreg.data import Dataset
from astroreg.modalities import RecipePreprocessor
from astroreg.pipeline._fit import fit_run
from astroreg.pipeline._predict import predict_frame
from astroreg.pipeline._run import Run


def derive_recipe(recipe: Recipe, cfg: BaselineConfig) -> Recipe:
    """The recipe of a network baseline: the main one with its ``model`` and ``training`` overrides.

    The derived recipe has no baselines, variants or tuning of its own, so that its run
    folder is a plain run that ``astroreg predict`` can apply.

    Examples
    --------
    >>> derive_recipe(recipe, recipe.evaluation.baselines[2]).model.name  # doctest: +SKIP
    'starnet_cnn'
    """
    if cfg.kind != "network" or cfg.model is None:
        raise ValueError(f"baseline {cfg.name!r} ({cfg.kind}) is not a network baseline")
    overrides = {
        "name": f"{recipe.name}-{cfg.name}",
        "model.name": cfg.model.name,
        "model.params": dict(cfg.model.params),
        "evaluation.baselines": [],
        "evaluation.reference": None,
        "evaluation.compare_to": [],
        "variants": [],
        "tuning": None,
    }
    overrides.update({f"training.{k}": v for k, v in cfg.training.items()})
    try:
        return recipe.with_overrides(overrides)
    except ValueError as err:
        raise ValueError(
            f"baseline {cfg.name!r}: its model or training overrides do not make a valid recipe "
            f"(fix evaluation.baselines[{cfg.name}].training / .model):\n{err}"
        ) from None


def run_network_baseline(
    cfg: BaselineConfig,
    recipe: Recipe,
    dataset: Dataset,
    splits: dict[str, NDArray],
    preprocessor: RecipePreprocessor,
    out_dir: str | os.PathLike,
    eval_rows: NDArray,
    *,
    speed_rows: NDArray | None = None,
    model_inputs: ModelInputs | None = None,
    progress: bool = True,
) -> BaselineResult:
    """Train a ``kind: network`` baseline, write its run folder and predict ``eval_rows``.

    The network is fitted by :func:`astroreg.pipeline._fit.fit_run` (as ``train`` and
    every tuning trial are) on :func:`derive_recipe`, with the main run's splits (unless
    the overrides change ``max_train_objects``) and preprocessor (refitted only when the
    derived recipe would fit a different one). ``out_dir`` becomes a complete run folder
    (``config.yaml``, ``model.pt``, ``preprocessors.json``, ``splits.npz``,
    ``history.csv``) that ``astroreg predict`` accepts.

    Parameters
    ----------
    cfg : BaselineConfig
        A ``kind: network`` baseline.
    recipe : Recipe
        The main recipe.
    dataset : Dataset
        Open dataset.
    splits : dict
        The main run's ``train``/``val``/``test`` rows.
    preprocessor : RecipePreprocessor
        The main run's fitted preprocessing.
    out_dir : path-like
        The baseline's run folder, usually ``<run>/baselines/<name>``.
    eval_rows : array of int
        Rows to predict.
    speed_rows : array of int, optional
        Rows on which the prediction speed is timed (default ``eval_rows``).
    model_inputs : ModelInputs, optional
        Cached inputs of the main preprocessor (reused when this baseline shares it).
    progress : bool

    Returns
    -------
    BaselineResult
        Predictions in target units, trainable parameters and prediction speed.
    """
    from astroreg.pipeline._train import resolve_splits

    derived = derive_recipe(recipe, cfg)
    sub_splits = resolve_splits(derived, dataset)
    same = (derived.preprocess == recipe.preprocess and derived.inputs == recipe.inputs
            and derived.training.seed == recipe.training.seed
            and np.array_equal(sub_splits["train"], splits["train"]))
    out = Path(out_dir)
    res = fit_run(derived, dataset, sub_splits, out, preprocessor=preprocessor if same else None, domain=False,
                  progress=progress)
    pre, fit = res.preprocessor, res.fit
    frame = predict_frame(Run(out), dataset, eval_rows, progress=progress)
    pred = frame[[f"{t}_pred" for t in pre.target_names]].to_numpy(dtype=np.float64)
    inputs = model_inputs if same and model_inputs is not None else ModelInputs(pre, dataset)
    compile_network = any(m.compile_network for m in pre.inputs.values())
    _, speed = time_network(fit.backbone, inputs.get(eval_rows if speed_rows is None else speed_rows),
                            compile_network=compile_network)
    return BaselineResult(cfg.name, cfg.kind, [f"model_input[{inputs.n_features}]"], pred,
                          parameters=count_parameters(fit.backbone), predict_objects_per_s=speed)
