"""Evaluate a finished run on its own test split or on another dataset."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from astroreg.data import Dataset, atomic_path, check_output_file
from astroreg.evaluation import (
    labelled_metrics,
    redshift_bin_edges,
    redshift_bins_for_frames,
    regimes_for_frames,
    write_metrics_json,
)
from astroreg.pipeline._predict import predict_frame
from astroreg.pipeline._run import Run
from astroreg.modalities import check_targets_present


def evaluate_run(
    run_dir: str | os.PathLike,
    data: str | os.PathLike | None = None,
    *,
    split: str | None = None,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> tuple[dict, Path]:
    """Metrics of a run's network on a dataset.

    Parameters
    ----------
    run_dir : path-like
        A finished run folder.
    data : path-like, optional
        Dataset to evaluate on (default: the run's own dataset).
    split : str, optional
        Rows to use: a stored split of ``data``. Default: the recipe's evaluation
        split for the run's own dataset (with the run's rows), every row for another file.
    out : path-like, optional
        Where to write the metrics JSON (default ``<run>/evaluation/<data stem>[-<split>].json``);
        the predictions go beside it, with the suffix ``.parquet``. An existing ``out`` (or
        its ``.parquet``) is refused unless ``overwrite``; the default files in the run's
        ``evaluation/`` folder are replaced by a new evaluation.
    progress : bool
    overwrite : bool
        Replace an existing ``out`` and its ``.parquet`` if they are a previous metrics
        file and predictions file; other files are never replaced.

    Returns
    -------
    (dict, pathlib.Path)
        Metrics in the ``metrics.json`` shape (with ``redshift_bins`` for redshift
        targets, on ``evaluation.redshift_bins``, and ``low_end`` with
        ``evaluation.regimes``), and the file written.
    """
    run = Run.open(run_dir)
    recipe = run.recipe
    own = data is None or Path(data).resolve() == Path(recipe.dataset.path).resolve()
    path = Path(recipe.dataset.path if data is None else data)
    shown = split if split is not None or not own else recipe.evaluation.split  # as named in the file
    name = path.stem + (f"-{shown}" if shown else "")
    target = Path(out) if out else run.path / "evaluation" / f"{name}.json"
    # Checked before any work. The default files live in the run's own evaluation/ folder,
    # where a new evaluation replaces the previous one (of the same kind only).
    replace = overwrite or out is None
    # The run's own files are inputs; its evaluation/ folder is where the outputs go.
    inputs = [path, *(run.path / f for f in ("config.yaml", "model.pt", "preprocessors.json", "splits.npz"))]
    check_output_file(target, kind="metrics", inputs=inputs, overwrite=replace)
    check_output_file(target.with_suffix(".parquet"), kind="predictions", inputs=inputs, overwrite=replace)
    with Dataset(path) as ds:
        check_targets_present(recipe, ds)
        if split is None and own:
            split = recipe.evaluation.split
            rows = np.load(run.path / "splits.npz")[split]
        else:
            rows = ds.split(split) if split else None
        frame = predict_frame(run, ds, rows, progress=progress)
    redshift = [t.name for t in recipe.targets if t.is_redshift]
    metrics = {"split": split or "all",
               "models": {recipe.model.name: labelled_metrics(frame, recipe.target_names, redshift)}}
    edges = redshift_bin_edges(recipe.evaluation.redshift_bins)
    if redshift and edges:  # the statistics in bins of true redshift, as train writes them
        metrics["redshift_bins"] = redshift_bins_for_frames({recipe.model.name: frame}, redshift, edges)[1]
    regimes = recipe.evaluation.regimes
    if regimes is not None:  # the low end of the truth, as train writes it
        target_name = regimes.target or recipe.target_names[0]
        metrics["low_end"] = regimes_for_frames({recipe.model.name: frame}, target_name, bins=regimes.bins,
                                                low_quantile=regimes.low_quantile)[1]
    write_metrics_json(target, metrics)
    with atomic_path(target.with_suffix(".parquet")) as tmp:
        frame.to_parquet(tmp, index=False)
    return metrics, target
