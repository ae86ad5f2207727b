"""Train a recipe end to end: splits, preprocessing, network, baselines, evaluation, report."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from astroreg.baselines import (
    ModelInputs,
    count_parameters,
    make_estimator,
    resolve_inputs,
    run_baseline,
    select_features,
    time_network,
)
from astroreg.config import Recipe
from astroreg.data import (
    Dataset,
    atomic_path,
    atomic_write_text,
    build_dir,
    check_output_dir,
    check_writable_folder,
    random_splits,
    resume_dir,
)
from astroreg.evaluation import (
    binned_metrics,
    check_paper_tables,
    classification_metrics,
    comparison_table,
    domain_markdown,
    labelled_metrics,
    plot_comparison,
    plot_loss_curves,
    plot_pred_vs_true,
    plot_residual_hist,
    plot_redshift_bins,
    plot_regimes,
    plot_residuals,
    recipe_report_sections,
    redshift_bin_edges,
    redshift_bins_for_frames,
    redshift_bins_markdown,
    regimes_for_frames,
    regimes_markdown,
    residuals_by_snr,
    write_metrics_json,
    write_report,
)
from astroreg.modalities import RecipePreprocessor, baseline_inputs, check_targets_present, raw_targets
from astroreg.modalities._serialise import FILE_NAME as PREPROCESSOR_FILE
from astroreg.pipeline._fit import check_model_inputs, fit_run
from astroreg.pipeline._network import derive_recipe, run_network_baseline
from astroreg.pipeline._predict import predict_frame
from astroreg.pipeline._run import Run, environment, new_run_dir, write_json
from astroreg.training._resume import LAST

log = logging.getLogger(__name__)

_SPEED_BYTES = 512e6  # at most this much preprocessed input is held to time the networks' predictions


def resolve_splits(recipe: Recipe, dataset: Dataset) -> dict[str, NDArray[np.int64]]:
    """Train/val/test rows: the file's stored splits, else the recipe's fractions and seed."""
    if {"train", "val", "test"} <= set(dataset.split_names):
        splits = {k: dataset.split(k) for k in ("train", "val", "test")}
    else:
        s = recipe.dataset.splits
        splits = random_splits(len(dataset), {"train": s.train, "val": s.val, "test": s.test}, seed=s.seed)
    cap = recipe.training.max_train_objects
    if cap is not None and len(splits["train"]) > cap:
        rng = np.random.default_rng(recipe.training.seed)
        splits["train"] = np.sort(rng.choice(splits["train"], size=cap, replace=False))
    return splits


def _speed_rows(pre: RecipePreprocessor, rows: NDArray) -> NDArray:
    """Evaluation rows on which prediction speed is timed: all of them unless their inputs are very large."""
    per_object = 4 * pre.n_features
    return rows[:max(1024, int(_SPEED_BYTES // per_object))]


def _model_info(kind: str, parameters: int | None, speed: float | None, n_timed: int) -> dict:
    return {"kind": kind, "parameters": parameters, "predict_objects_per_s": speed, "timed_objects": int(n_timed)}


def _check_snr_column(recipe: Recipe, dataset: Dataset) -> None:
    """Fail before training when ``evaluation.snr_column`` is not in the dataset."""
    col = recipe.evaluation.snr_column
    if col is not None and col not in dataset.tabular_columns:
        raise ValueError(
            f"evaluation.snr_column {col!r} is not a tabular column of {dataset.path}; its columns are "
            f"{list(dataset.tabular_columns)}: name the S/N column or set evaluation.snr_column: null"
        )


def _check_splits(recipe: Recipe, dataset: Dataset, splits: dict[str, NDArray[np.int64]]) -> None:
    """Fail before training when a split is empty or the evaluation split has no labelled object."""
    fractions = recipe.dataset.splits
    for name in ("train", "val", "test"):
        if getattr(fractions, name) == 0:
            raise ValueError(
                f"dataset.splits.{name} is 0: training needs train, val and test objects (metrics are on the "
                f"{recipe.evaluation.split!r} split); give every split a fraction above 0, "
                "e.g. --set dataset.splits.train=0.6 --set dataset.splits.val=0.15 --set dataset.splits.test=0.25"
            )
    stored = {"train", "val", "test"} <= set(dataset.split_names)
    for name in ("train", "val", "test"):
        if len(splits[name]) == 0:
            if stored:
                raise ValueError(
                    f"the stored {name!r} split of {dataset.path} is empty; training needs train, val and test "
                    "objects: make the dataset again with non-empty splits (astroreg ingest ... "
                    "--splits train=0.6,val=0.15,test=0.25)"
                )
            raise ValueError(
                f"the {name!r} split is empty: dataset.splits.{name} = {getattr(fractions, name):g} of "
                f"{len(dataset)} objects in {dataset.path}; raise that fraction or use a larger dataset"
            )
    split = recipe.evaluation.split
    rows = splits[split]
    for t in recipe.targets:
        values = np.asarray(dataset.target(t.source, rows), dtype=np.float64)
        if not np.isfinite(values).any():
            raise ValueError(
                f"no object of the {split!r} split ({len(rows)} objects of {dataset.path}) has a known "
                f"{t.source!r} (target {t.name!r}); every value is missing: nothing to score. Label some of them "
                "or set evaluation.split to a split with labels"
            )


def _check_baselines(recipe: Recipe, dataset: Dataset) -> None:
    """Fail before training when a baseline's parameters, features or overrides are wrong."""
    default = baseline_inputs(recipe.input_kinds.values())
    for cfg in recipe.evaluation.baselines:
        if cfg.kind == "network":
            check_model_inputs(derive_recipe(recipe, cfg))
            continue
        make_estimator(cfg, len(recipe.targets))
        if resolve_inputs(cfg, default) == "tabular":
            select_features(cfg, dataset)


def check_before_training(recipe: Recipe, dataset: Dataset) -> dict[str, NDArray[np.int64]]:
    """Every check that can run before the network trains; returns the splits.

    The model against the recipe's named inputs, the paper tables, targets and the S/N
    column in the dataset, non-empty train/val/test splits, a labelled evaluation split,
    and every baseline's model, parameters and feature columns: an error in any of them is
    found in seconds instead of after training.

    Raises
    ------
    ValueError
        Naming what is wrong and what to do.
    """
    check_model_inputs(recipe)
    check_paper_tables(recipe.evaluation.paper_tables)
    check_targets_present(recipe, dataset)
    _check_snr_column(recipe, dataset)
    splits = resolve_splits(recipe, dataset)
    _check_splits(recipe, dataset, splits)
    _check_baselines(recipe, dataset)
    return splits


def _binned(frame: pd.DataFrame, target: str, bins: int) -> pd.DataFrame:
    known = frame[frame[f"{target}_true"].notna()]
    return binned_metrics(known[f"{target}_true"], known[f"{target}_pred"], bins=bins)


def _plot_model(plots_dir: Path, name: str, frame: pd.DataFrame, pre: RecipePreprocessor,
                recipe: Recipe) -> list[Path]:
    out = []
    for t, unit in zip(pre.target_names, pre.target_units):
        cfg = next(c for c in recipe.targets if c.name == t)
        yt, yp = frame[f"{t}_true"].to_numpy(), frame[f"{t}_pred"].to_numpy()
        ok = np.isfinite(yt)
        title = f"{name}: {t}"
        out.append(plot_pred_vs_true(yt[ok], yp[ok], plots_dir / f"{name}_{t}_pred_vs_true.png",
                                     label=t, unit=unit, title=title, redshift=cfg.is_redshift))
        out.append(plot_residuals(yt[ok], yp[ok], plots_dir / f"{name}_{t}_residuals.png", label=t, unit=unit,
                                  title=title, redshift=cfg.is_redshift))
        out.append(plot_residual_hist(yt[ok], yp[ok], plots_dir / f"{name}_{t}_residual_hist.png", label=t,
                                      unit=unit, title=title, redshift=cfg.is_redshift))
    return out


def _regimes(recipe: Recipe, frame: pd.DataFrame, baseline_frames: list[pd.DataFrame], pre: RecipePreprocessor,
             out: Path, plots: dict[str, list[Path]], metrics: dict) -> str | None:
    """``evaluation.regimes``: ``metrics_regimes.csv``, ``metrics["low_end"]``, plots; the report section."""
    cfg = recipe.evaluation.regimes
    if cfg is None:
        return None
    target = cfg.target or recipe.target_names[0]
    frames = {recipe.model.name: frame, **{str(b["model"].iloc[0]): b for b in baseline_frames if len(b)}}
    table, low_end = regimes_for_frames(frames, target, bins=cfg.bins, low_quantile=cfg.low_quantile)
    with atomic_path(out / "metrics_regimes.csv") as tmp:
        table.to_csv(tmp, index=False)
    metrics["low_end"] = low_end
    unit = pre.target_units[pre.target_names.index(target)]
    first = table[table["model"] == recipe.model.name]
    edges = np.r_[first["bin_lo"].to_numpy(), first["bin_hi"].iloc[-1]]
    section = []
    for name, f in frames.items():
        known = f[f"{target}_true"].notna()
        section.append(plot_regimes(f.loc[known, f"{target}_true"], f.loc[known, f"{target}_pred"],
                                    out / "plots" / f"{name}_{target}_regimes.png", edges=edges,
                                    low_threshold=low_end[name][target]["threshold"], label=target, unit=unit,
                                    title=f"{name}: {target} by regime"))
    plots[f"Residuals by regime of {target}"] = section
    return regimes_markdown(table, low_end, unit=unit)


def _redshift_bins(recipe: Recipe, frame: pd.DataFrame, baseline_frames: list[pd.DataFrame], out: Path,
                   beside: list[Path], metrics: dict) -> str | None:
    """Redshift targets in bins of true z: ``metrics_redshift_bins.csv``, ``metrics["redshift_bins"]``, the plot.

    The figure (``plots/redshift_bins.png``, one per target when there are several:
    ``redshift_bins_<target>.png``) goes into ``beside`` after the network's
    predicted-vs-true plot; returns the report section, or None without redshift targets
    or with ``evaluation.redshift_bins: []``.
    """
    targets = [t.name for t in recipe.targets if t.is_redshift]
    edges = redshift_bin_edges(recipe.evaluation.redshift_bins)
    if not targets or not edges:
        return None
    frames = {recipe.model.name: frame, **{str(b["model"].iloc[0]): b for b in baseline_frames if len(b)}}
    table, entry, outside = redshift_bins_for_frames(frames, targets, edges)
    with atomic_path(out / "metrics_redshift_bins.csv") as tmp:
        table.to_csv(tmp, index=False)
    metrics["redshift_bins"] = entry
    for k, t in enumerate(targets):
        name = "redshift_bins.png" if len(targets) == 1 else f"redshift_bins_{t}.png"
        beside.insert(1 + k, plot_redshift_bins(table, out / "plots" / name, target=t,
                                                title=f"{t} in bins of true redshift ({recipe.evaluation.split})"))
    return redshift_bins_markdown(table, outside)


def train_recipe(
    recipe: Recipe,
    *,
    data: str | os.PathLike | None = None,
    runs_root: str | os.PathLike = "runs",
    run_dir: str | os.PathLike | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Train the recipe's network and every baseline, evaluate them, write the run folder.

    Everything that can be checked before training is checked first (recipe against the
    dataset, splits, baselines, the output folder); only then is ``<run>.partial``
    claimed. A failed or interrupted run removes its own ``.partial`` and nothing else.

    Parameters
    ----------
    recipe : Recipe
        A validated recipe (see :func:`astroreg.config.load_recipe`).
    data : path-like, optional
        Dataset to use instead of ``recipe.dataset.path``.
    runs_root : path-like
        Parent of the new run folder (default ``./runs``).
    run_dir : path-like, optional
        Exact run folder to write (replaces ``runs_root``). It must not exist, be an
        empty folder, or (with ``overwrite``) be a previous run folder.
    progress : bool
        Show progress bars.
    overwrite : bool
        Replace an existing ``run_dir`` if it is a run folder (recognised by its files);
        anything else is never replaced. The old run is replaced only when the new one is
        complete.

    Returns
    -------
    pathlib.Path
        The finished run folder.

    Raises
    ------
    ValueError
        Before any training, for a recipe that does not fit the dataset, an empty split,
        a bad baseline, or an output folder that exists, is busy or cannot be written.

    Examples
    --------
    >>> run = train_recipe(load_recipe("recipes/galaxy-flux.yaml"))  # doctest: +SKIP
    """
    data_path = Path(data or recipe.dataset.path)
    if data is not None:
        recipe = recipe.with_overrides({"dataset.path": str(data_path)})
    if run_dir is not None:
        check_output_dir(run_dir, kind="run", inputs=[data_path], overwrite=overwrite)
    else:
        check_writable_folder(runs_root)
    with Dataset(data_path) as ds:
        splits = check_before_training(recipe, ds)
        final, _ = build_dir(run_dir if run_dir is not None else new_run_dir(recipe.name, runs_root),
                             lambda partial: _train_in(partial, recipe, ds, data_path, splits, progress),
                             kind="run", overwrite=overwrite, unique=run_dir is None)
    return final


def resume_run(
    partial: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    threads: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Finish a run that was interrupted or killed while training: go on from its last epoch.

    ``astroreg train`` checkpoints the whole training state after every epoch into its
    ``<run>.partial`` folder; a run stopped by Ctrl-C, a batch system's ``SIGTERM`` or a
    killed process keeps that folder. This takes it over (refused while its process
    lives), trains on from the last checkpoint with the recipe and splits stored there, and
    then evaluates and reports as ``train`` does. Network baselines train again.

    Parameters
    ----------
    partial : path-like
        The ``<run>.partial`` folder (or ``<run>``, when only its ``.partial`` exists).
    data : path-like, optional
        The dataset, if it has moved since (it must give the same splits).
    threads : int, optional
        Torch threads (``training.threads``), if other than the run's.
    progress : bool
    overwrite : bool
        Let the finished run replace a previous run folder at its final name.

    Returns
    -------
    pathlib.Path
        The finished run folder.

    Raises
    ------
    ValueError
        If ``partial`` is not a resumable run folder, or the dataset gives other splits
        than the ones the run was trained on.
    """
    from astroreg.config import load_recipe
    from astroreg.data import PARTIAL, partial_name, resume_command

    p = Path(partial)
    if not p.name.endswith(PARTIAL) and partial_name(p).is_dir():
        p = partial_name(p)  # the run's final name was given
    if resume_command(p) is None or not (p / "config.yaml").is_file() or not (p / "splits.npz").is_file():
        raise ValueError(
            f"{p} is not an interrupted training run that can be resumed (a <run>.partial folder with its "
            "config.yaml, splits.npz and .astroreg-resume, left by `astroreg train`); train again instead"
        )
    overrides = {"dataset.path": str(data)} if data is not None else {}
    if threads is not None:
        overrides["training.threads"] = threads
    recipe = load_recipe(p / "config.yaml", overrides)
    data_path = Path(recipe.dataset.path)
    with Dataset(data_path) as ds:
        splits = check_before_training(recipe, ds)
        with np.load(p / "splits.npz") as stored:
            same = set(stored.files) >= set(splits) and all(np.array_equal(stored[k], v) for k, v in splits.items())
        if not same:
            raise ValueError(
                f"{data_path} gives other train/val/test rows than the interrupted run was trained on "
                f"({p / 'splits.npz'}): resume with the same dataset (--data)"
            )
        final, _ = resume_dir(p, lambda q: _train_in(q, recipe, ds, data_path, splits, progress, resume=True),
                              kind="run", overwrite=overwrite)
    return final


_ENDED_BY = {"epoch limit": "the epoch limit (training.epochs)", "early stopping": "early stopping",
             "time limit": "the time limit (training.max_minutes)"}


def _training_note(recipe: Recipe, fit) -> str:
    """One sentence on how long the network (or each ensemble member) trained and its best validation loss."""
    if "member" in fit.history.columns:
        epochs = fit.history.groupby("member").size().tolist()
        n = len(epochs)
        return (f"Ensemble of {n} networks (training.ensemble; seeds {recipe.training.seed} to "
                f"{recipe.training.seed + n - 1}) trained for {', '.join(map(str, epochs))} epochs on {fit.device} "
                f"(the first ended by {_ENDED_BY[fit.stopped_by]}); "
                f"mean of their best validation losses {fit.best_val_loss:.4g} (scaled targets); predictions are "
                f"their mean.")
    return (f"Network trained for {fit.epochs_run} epoch(s) on {fit.device}, ended by {_ENDED_BY[fit.stopped_by]}; "
            f"best validation loss {fit.best_val_loss:.4g} (scaled targets).")


def _train_in(partial: Path, recipe: Recipe, ds: Dataset, data_path: Path,
              splits: dict[str, NDArray[np.int64]], progress: bool, resume: bool = False) -> None:
    """Train (or, with ``resume``, go on training), evaluate and report into the claimed folder ``partial``."""
    plots_dir = partial / "plots"
    pre = None
    if resume:
        if (partial / PREPROCESSOR_FILE).is_file():
            pre = RecipePreprocessor.load(partial / PREPROCESSOR_FILE)
        shutil.rmtree(partial / "baselines", ignore_errors=True)  # the earlier attempt's: they train again
    res = fit_run(recipe, ds, splits, partial, preprocessor=pre, progress=progress, resumable=True, resume=resume)
    pre, fit = res.preprocessor, res.fit
    env = environment() | {"training_device": fit.device}
    write_json(partial / "environment.json", env)

    split = recipe.evaluation.split
    rows = splits[split]
    run = Run(partial)
    frame = predict_frame(run, ds, rows, progress=progress)
    with atomic_path(partial / "predictions.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    redshift = [t.name for t in recipe.targets if t.is_redshift]
    model_name = recipe.model.name
    models = {model_name: labelled_metrics(frame, recipe.target_names, redshift)}
    binned = [_binned(frame, t, recipe.evaluation.bins).assign(model=model_name, target=t)
              for t in recipe.target_names]
    plots = {"Loss per epoch": [plot_loss_curves(fit.history, plots_dir / "loss_curves.png",
                                                 title=f"{model_name} training")]}
    plots[f"{model_name} on the {split} split"] = _plot_model(plots_dir, model_name, frame, pre, recipe)

    # Size and prediction speed of every model (the paper's Table 4), timed on prepared inputs.
    model_inputs = ModelInputs(pre, ds, progress=progress)
    speed_rows = _speed_rows(pre, rows)
    compile_network = any(m.compile_network for m in pre.inputs.values())
    _, speed = time_network(fit.backbone, model_inputs.get(speed_rows), compile_network=compile_network)
    model_info = {model_name: _model_info("network", count_parameters(fit.backbone), speed, len(speed_rows))}

    classifiers: dict[str, dict] = {}
    baseline_frames: list[pd.DataFrame] = []
    y_all = raw_targets(recipe, ds)
    default = baseline_inputs(recipe.input_kinds.values())
    reads_model = [i for i, c in enumerate(recipe.evaluation.baselines)
                   if c.kind != "network" and resolve_inputs(c, default) == "model"]
    for i, cfg in enumerate(recipe.evaluation.baselines):
        if reads_model and i == reads_model[-1] + 1:
            model_inputs.forget(splits["train"])  # no later baseline fits on the training inputs
        if cfg.kind == "network":
            res = run_network_baseline(cfg, recipe, ds, splits, pre, partial / "baselines" / cfg.name, rows,
                                       speed_rows=speed_rows, model_inputs=model_inputs, progress=progress)
            n_timed = len(speed_rows)
        else:
            res = run_baseline(cfg, ds, y_all, splits["train"], rows, model_inputs=model_inputs,
                               default_inputs=default, val_rows=splits["val"])
            n_timed = len(rows)
        model_info[cfg.name] = {**_model_info(cfg.kind, res.parameters, res.predict_objects_per_s, n_timed),
                                **res.fit_info}
        if cfg.is_classifier:
            cm = classification_metrics(res.truth_labels, res.predictions, labels=res.labels)
            classifiers[cfg.name] = {**cm, "labels": res.labels, "features": res.features}
            models[cfg.name] = {recipe.target_names[0]: {"accuracy": cm["accuracy"]}}
            continue
        bframe = pd.DataFrame({"id": frame["id"]})
        for j, t in enumerate(recipe.target_names):
            bframe[f"{t}_true"] = frame[f"{t}_true"]
            bframe[f"{t}_pred"] = res.predictions[:, j]
            binned.append(_binned(bframe, t, recipe.evaluation.bins).assign(model=cfg.name, target=t))
        models[cfg.name] = labelled_metrics(bframe, recipe.target_names, redshift)
        baseline_frames.append(bframe.assign(model=cfg.name))
    metrics = {"split": split, "models": models}
    regime_section = _regimes(recipe, frame, baseline_frames, pre, partial, plots, metrics)
    z_bins_section = _redshift_bins(recipe, frame, baseline_frames, partial,
                                    plots[f"{model_name} on the {split} split"], metrics)
    write_metrics_json(partial / "metrics.json", metrics)
    write_json(partial / "model_info.json", model_info)
    if baseline_frames:
        with atomic_path(partial / "baseline_predictions.parquet") as tmp:
            pd.concat(baseline_frames, ignore_index=True).to_parquet(tmp, index=False)
    model_inputs.clear()
    snr_table = None
    if recipe.evaluation.snr_column:
        snr = ds.tabular([recipe.evaluation.snr_column], rows)[recipe.evaluation.snr_column].to_numpy(float)
        snr_table = residuals_by_snr(frame, recipe.target_names, snr, recipe.evaluation.snr_edges)
        with atomic_path(partial / "residuals_snr.csv") as tmp:
            snr_table.to_csv(tmp, index=False)
    with atomic_path(partial / "metrics_binned.csv") as tmp:
        pd.concat(binned, ignore_index=True).to_csv(tmp, index=False)

    regression = {"split": split, "models": {k: v for k, v in models.items() if k not in classifiers}}
    if len(regression["models"]) > 1:
        plots = {"Model comparison": [plot_comparison(comparison_table(regression), plots_dir / "comparison_mse.png",
                                                      metric="mse", title=f"MSE on the {split} split")],
                 **plots}
    notes = [
        f"Dataset `{data_path}`: {len(splits['train'])} train, {len(splits['val'])} val, "
        f"{len(splits['test'])} test objects; metrics on the {split} split.",
        _training_note(recipe, fit) + " Metrics per bin of the true value: `metrics_binned.csv`.",
        "Trainable parameters (networks) or fitted coefficients (linear models) and prediction speed "
        "(objects/s from preprocessed inputs, after a warm-up) of every model: `model_info.json`.",
    ]
    sections, files = recipe_report_sections(recipe, regression=regression, model=model_name,
                                             model_info=model_info, frame=frame, snr=snr_table)
    for name, text in files.items():
        atomic_write_text(partial / name, text)
    if z_bins_section:
        sections.append(z_bins_section)
    if regime_section:
        sections.append(regime_section)
    if fit.sample_weights:
        w = fit.sample_weights
        losses = ("training and validation losses; the validation loss is weighted the same way"
                  if w.get("weight_validation") else "training loss only")
        if w.get("stage") == "head":
            r = w["head_refit"]
            losses = (f"the network trained unweighted, then its output layer `{r['layer']}` refitted with them "
                      f"(full-batch Adam, step {r['best_step']} of {r['steps']} kept on the weighted validation "
                      f"loss; validation loss {r['val_loss_before']:.4g} -> {r['val_loss_after']:.4g}, "
                      f"weighted {r['weighted_val_loss_before']:.4g} -> {r['weighted_val_loss_after']:.4g})")
        notes.append(f"Training sample weights ({w['kind']} in {w['bins']} bins of {w['target']}, {losses}): "
                     f"min {w['min']:.3g}, median {w['median']:.3g}, max {w['max']:.3g}, effective "
                     f"sample fraction {w['effective_fraction']:.3g}; all settings in `sample_weights.json`.")
        write_json(partial / "sample_weights.json", w)
    sections.append(domain_markdown(frame, split))
    write_report(partial, title=f"astroreg run: {recipe.name}", metrics=regression, classifier_metrics=classifiers,
                 config=recipe.model_dump(mode="json"), environment=env, plots=plots, notes=notes,
                 reference=recipe.evaluation.reference if recipe.evaluation.reference in regression["models"] else None,
                 sections=sections)
    for last in partial.glob(f"**/checkpoints/{LAST}"):
        last.unlink()  # the run is complete: the whole training state is not needed any more (best.ckpt stays)
