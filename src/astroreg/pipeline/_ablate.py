"""Ablations: train the full model and each ``variants`` entry of a recipe.

Layout of the output folder (built as ``<out>.partial``, renamed when complete)::

    <out>/full/                   a run folder (``astroreg train`` layout) of the full model
    <out>/<variant>/              one run folder per variant, or for ``single_task: true``:
    <out>/<variant>/<target>/     one single-target run per target, plus
    <out>/<variant>/predictions.parquet, metrics.json   the combined predictions and metrics
    <out>/ablation.csv            the table of :func:`astroreg.evaluation.ablation_table`
    <out>/ablation.md             the same as Markdown; the published ratios beside ours when the
                                  recipe's ``evaluation.paper_tables`` set has them (stellar-params: Table 5)
    <out>/ablation.json           per variant: metrics, parameters, prediction speed, run folders
    <out>/ablation_mae.png        MAE relative to the full model, per target and variant (published
                                  ratios as markers, as for ablation.md)
    <out>/ablation-recipe.yaml    the recipe ablated, and ``ablation-options.json`` (data, epochs, only, seeds)

With several training seeds (``seeds``, ``astroreg ablate --seeds``) every network is trained
once per seed, each run in ``<out>/<variant>/seed-<S>/`` (single-task runs in
``<out>/<variant>/seed-<S>/<target>/``); the table gives the mean MAE over the seeds and its
standard deviation, and the paired differences pair each seed of a variant with the same seed
of the full model (:func:`astroreg.evaluation._paired.pooled_paired_mae_difference`).

An interrupted or failed ablation keeps ``<out>.partial``; ``astroreg resume <out>.partial``
(:func:`resume_ablation`) keeps the runs that had finished, resumes the one that was
interrupted (:func:`astroreg.pipeline.resume_run`) and trains the rest.

Baselines are not retrained: every recipe has ``evaluation.baselines``, ``reference`` and
``compare_to`` emptied.

``jobs`` (``astroreg ablate --jobs N``) trains N networks at a time, each in a worker process
(:func:`astroreg.data._parallel.process_pool`: the workers die with the command and stop at
Ctrl-C with their runs resumable). On a GPU the N runs share it, which keeps a large GPU busy
with small networks; on the CPU the torch threads are split between them. Every run is the
same as in a sequential ablation (its seed fixes it), so the table is too.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from astroreg._threads import default_threads
from astroreg.config import Recipe, recipe_to_yaml
from astroreg.data import (
    Dataset,
    atomic_path,
    atomic_write_text,
    build_dir,
    check_output_dir,
    check_writable_folder,
    is_run_folder,
    mark_resumable,
    partial_name,
    resume_command,
    resume_dir,
    unmark_resumable,
)
from astroreg.evaluation import (
    ablation_markdown,
    ablation_table,
    labelled_metrics,
    recipe_paper_tables,
    redshift_targets,
    write_metrics_json,
)
from astroreg.evaluation._paired import paired_mae_difference, pooled_paired_mae_difference
from astroreg.evaluation._tables import _md
from astroreg.pipeline._run import Run, write_json
from astroreg.pipeline._train import check_before_training, resume_run, train_recipe

log = logging.getLogger(__name__)

__all__ = ["FULL", "ablation_recipes", "ablate_recipe", "plot_ablation", "read_ablation", "resume_ablation"]

#: Name of the unchanged recipe's row.
FULL = "full"
ABLATION_RECIPE = "ablation-recipe.yaml"
ABLATION_OPTIONS = "ablation-options.json"


def _without_baselines(recipe: Recipe) -> Recipe:
    return recipe.with_overrides({"evaluation.baselines": [], "evaluation.reference": None,
                                  "evaluation.compare_to": [], "variants": []})


def _single_target(recipe: Recipe, index: int) -> Recipe:
    """The recipe for target ``index`` alone; a per-target ``heads`` list keeps only that head.

    Without a per-target ``heads`` list each single-target network gets the model's own
    default for one output; spell the heads out in the recipe to keep them per target.
    """
    target = recipe.targets[index]
    overrides: dict[str, Any] = {"targets": [target.model_dump(mode="python")]}
    heads = recipe.model.params.get("heads")
    n = len(recipe.targets)
    if isinstance(heads, (list, tuple)) and heads and all(isinstance(h, (list, tuple)) for h in heads):
        if len(heads) != n:
            raise ValueError(
                f"recipe {recipe.name!r}: model.params.heads has {len(heads)} entries for {n} targets; "
                "give one head per target to split it into single-task networks"
            )
        overrides["model.params.heads"] = [list(heads[index])]
    out = recipe.with_overrides(overrides)
    return out.model_copy(update={"name": f"{recipe.name}-{target.name}"})


def ablation_recipes(recipe: Recipe, *, epochs: int | None = None, only: Sequence[str] | None = None,
                     seeds: Sequence[int] | None = None) -> dict[str, list[Recipe]]:
    """The recipes an ablation trains: ``{"full": [recipe], variant: [recipe] or one per target}``.

    Parameters
    ----------
    recipe : Recipe
        A recipe with ``variants``.
    epochs : int, optional
        Override ``training.epochs`` for every network.
    only : sequence of str, optional
        Variants to keep (the full model is always trained).
    seeds : sequence of int, optional
        Training seeds (``training.seed``): every recipe once per seed, seed by seed.
        Default: the recipe's own seed, once.

    Returns
    -------
    dict of str to list of Recipe
        Baselines emptied; a ``single_task`` variant has one recipe per target (per seed).

    Raises
    ------
    ValueError
        If the recipe has no variants, ``only`` names an unknown variant, an override
        key is invalid (the message names the variant), or ``seeds`` is empty, repeats a
        seed or has a negative one.
    """
    if seeds is not None:
        seeds = list(seeds)
        if not seeds or len(set(seeds)) != len(seeds) or any(int(x) != x or x < 0 for x in seeds):
            raise ValueError(f"--seeds {seeds}: give distinct training seeds, whole numbers >= 0 (e.g. --seeds 0 1 2)")
    if not recipe.variants:
        raise ValueError(
            f"recipe {recipe.name!r} has no 'variants'; add a list such as "
            "variants: [{name: no_skip, overrides: {model.params.skip: false}}, {name: single_task, single_task: true}]"
        )
    names = [v.name for v in recipe.variants]
    if FULL in names:
        raise ValueError(f"recipe {recipe.name!r}: variant name {FULL!r} is reserved for the unchanged recipe")
    unknown = [o for o in (only or []) if o not in names]
    if unknown:
        raise ValueError(f"--only {unknown}: no such variant in recipe {recipe.name!r}; variants are {names}")
    base = _without_baselines(recipe)
    if epochs is not None:
        base = base.with_overrides({"training.epochs": int(epochs)})
    out: dict[str, list[Recipe]] = {FULL: [base]}
    for v in recipe.variants:
        if only and v.name not in only:
            continue
        try:
            r = base.with_overrides(dict(v.overrides))
        except ValueError as err:
            raise ValueError(f"variant {v.name!r}: {err}") from err
        r = r.model_copy(update={"name": f"{recipe.name}-{v.name}"})
        out[v.name] = [_single_target(r, i) for i in range(len(r.targets))] if v.single_task else [r]
    if seeds is None:
        return out
    return {name: [r.with_overrides({"training.seed": int(s)}) for s in seeds for r in rs] for name, rs in out.items()}


def _seed_folder(folder: Path, recipe: Recipe, seeded: bool) -> Path:
    """Where one seed's run (or single-task runs) of a variant go: ``folder`` or ``folder/seed-<S>``."""
    return folder / f"seed-{recipe.training.seed}" if seeded else folder


def _prediction_columns(frame: pd.DataFrame, targets: Sequence[str]) -> pd.DataFrame:
    cols = ["id", *(c for t in targets for c in (f"{t}_true", f"{t}_pred"))]
    return frame[cols]


def _paired_differences(predictions: Mapping[str, Path | Sequence[Path]], recipe: Recipe) -> dict[str, dict[str, Any]]:
    """Each variant's MAE minus the full model's, per target, on the same objects, with 95% intervals.

    ``predictions`` gives each variant's predictions file, or one file per training seed
    (the same seeds, in the same order, for every variant): seed is paired with seed and
    the differences pooled (:func:`~astroreg.evaluation._paired.pooled_paired_mae_difference`).
    With ``evaluation.regimes`` the low end of its target (true values at or below the
    ``low_quantile`` of the evaluated objects) gets its own difference. Objects missing
    from any file, or with a non-finite value in any, are left out of that target's pair.
    """
    if FULL not in predictions:
        return {}
    files = {k: [v] if isinstance(v, (str, os.PathLike)) else list(v) for k, v in predictions.items()}
    full = [pd.read_parquet(f) for f in files[FULL]]
    regimes = recipe.evaluation.regimes
    low_q = regimes.low_quantile if regimes else None
    low_target = (regimes.target or recipe.target_names[0]) if regimes else None
    out: dict[str, dict[str, Any]] = {}
    for name, paths in files.items():
        if name == FULL:
            continue
        if len(paths) != len(full):
            raise ValueError(f"variant {name!r} has {len(paths)} seed(s) of predictions, the full model {len(full)}")
        out[name] = {}
        frames = [pd.read_parquet(p) for p in paths]
        for t in recipe.target_names:
            # columns: true, then each seed's reference prediction, then each seed's variant prediction
            both, usable = None, True
            for k, (ref, mine) in enumerate(zip(full, frames)):
                if not all(c in f.columns for f in (ref, mine) for c in (f"{t}_true", f"{t}_pred")):
                    usable = False
                    break
                pair = ref[["id", f"{t}_true", f"{t}_pred"]].merge(
                    mine[["id", f"{t}_pred"]], on="id", suffixes=(f"_ref{k}", f"_{k}"), validate="one_to_one")
                both = pair if both is None else both.merge(pair.drop(columns=f"{t}_true"), on="id",
                                                            validate="one_to_one")
            if not usable or both is None:
                continue
            n = len(paths)
            cols = [f"{t}_true", *(f"{t}_pred_ref{k}" for k in range(n)), *(f"{t}_pred_{k}" for k in range(n))]
            v = both[cols].to_numpy(dtype=np.float64)
            v = v[np.isfinite(v).all(axis=1)]
            if len(v) == 0:
                continue
            truth, ref_p, var_p = v[:, 0], v[:, 1:1 + n].T, v[:, 1 + n:].T

            def pair(mask=None):
                if n == 1:  # one seed: the objects alone are resampled
                    return paired_mae_difference(truth, var_p[0], ref_p[0], mask=mask)
                return pooled_paired_mae_difference(truth, var_p, ref_p, mask=mask)

            entry = {"all": pair()}
            if low_q is not None and t == low_target:
                entry["low_end"] = pair(truth <= np.quantile(truth, low_q)) | {"quantile": low_q}
            out[name][t] = entry
    return out


def _mean_metrics(per_seed: Sequence[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``{target: {metric: value}}`` averaged over the seeds' metrics (non-numeric entries: the first seed's)."""
    out: dict[str, dict[str, Any]] = {}
    for t, first in per_seed[0].items():
        out[t] = {}
        for key, value in first.items():
            values = [m.get(t, {}).get(key) for m in per_seed]
            numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in values)
            out[t][key] = float(np.mean(values)) if numeric else value
    return out


def _per_seed_markdown(results: Mapping[str, Mapping[str, Any]], seeds: Sequence[int]) -> str:
    """A table of each variant's paired MAE difference to the full model, seed by seed."""
    rows = []
    for name, entry in results.items():
        for t, parts in (entry.get("paired") or {}).items():
            for part, label in (("all", "all"), ("low_end", "low end")):
                p = parts.get(part)
                if isinstance(p, Mapping) and p.get("per_seed"):
                    rows.append({"variant": name, "target": t, "objects": label,
                                 **{f"dMAE, seed {s}": f"{d:+.4g}" for s, d in zip(seeds, p["per_seed"])}})
    if not rows:
        return ""
    return ("\n### Paired differences seed by seed\n\n" + _md(pd.DataFrame(rows))
            + "\n\nEach seed of a variant against the same seed of the full model (MAE difference, same objects).\n")


def _combine_single_task(folder: Path, runs: list[Path], recipe: Recipe) -> dict[str, dict[str, float]]:
    """Join the single-target runs' predictions on ``id``; write them and their metrics in ``folder``."""
    frame = None
    for run_dir in runs:
        run = Run.open(run_dir)
        part = _prediction_columns(pd.read_parquet(run_dir / "predictions.parquet"), run.recipe.target_names)
        frame = part if frame is None else frame.merge(part, on="id", how="outer", validate="one_to_one")
    metrics = labelled_metrics(frame, recipe.target_names, redshift_targets(recipe))
    with atomic_path(folder / "predictions.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    write_metrics_json(folder / "metrics.json", {"split": recipe.evaluation.split, "models": {recipe.model.name: metrics}})
    return metrics


def plot_ablation(table: pd.DataFrame, path: str | os.PathLike, *, title: str | None = None,
                  published: Mapping[str, Mapping[str, Any]] | None = None, label: str = "published") -> Path:
    """Grouped bars of each variant's MAE relative to the full model, one group per target.

    Where ``published`` has the variant and target, its ratio is drawn as a black marker
    on the bar. Over several training seeds (``MAE <t> sd`` columns) each bar has an error
    bar of the MAE's standard deviation over the seeds, relative to the full model's MAE.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`astroreg.evaluation.ablation_table`.
    path : path-like
        Output PNG, written atomically.
    title : str, optional
        Figure title.
    published : dict, optional
        Published ratios, ``{variant: {"mae": {target: float}, ...}}`` (the
        ``values`` of the recipe's paper-table set's ablation, e.g. paper 001's
        Table 5); None (the default): no markers.
    label : str
        Legend entry of the markers, e.g. ``"paper Table 5"``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from astroreg.evaluation._plots import _new_figure, _png_path, save_figure

    out = _png_path(path)
    cols = [c for c in table.columns if c.startswith("MAE ") and c.endswith(" (rel)")]
    targets = [c[4:-6] for c in cols]
    variants = [v for v in table["variant"] if v != table.attrs.get("full", FULL)] or list(table["variant"])
    fig = _new_figure(max(5.0, 1.6 * len(targets) * max(1, len(variants)) / 2 + 2), 4.0)
    ax = fig.subplots()
    width = 0.8 / max(1, len(variants))
    x = np.arange(len(targets))
    published = published or {}
    full_row = table.iloc[0]  # ablation_table lists the full model first
    top = 1.0
    marked = False
    for k, v in enumerate(variants):
        row = table[table["variant"] == v].iloc[0]
        pos = x + (k - (len(variants) - 1) / 2) * width
        heights = [float(row[c]) for c in cols]
        # over several training seeds: the MAE's standard deviation over them, relative to the full model's
        spread = [float(row[f"MAE {t} sd"]) / float(full_row[f"MAE {t}"]) if f"MAE {t} sd" in table.columns
                  else np.nan for t in targets]
        ax.bar(pos, heights, width, label=v, yerr=None if np.isnan(spread).all() else spread, capsize=3)
        theirs = [published.get(v, {}).get("mae", {}).get(t, np.nan) for t in targets]
        if np.isfinite(theirs).any():
            ax.plot(pos, theirs, "kD", ms=5, label=None if marked else label)
            marked = True
        top = np.nanmax([top, *heights, *theirs])
    ax.axhline(1.0, color="black", lw=1, ls="--", label=table.attrs.get("full", FULL))
    ax.set_ylim(0, 1.3 * top)
    ax.set_xticks(x, targets)
    ax.set_ylabel("MAE / MAE(full model)")
    ax.legend(fontsize="small", ncol=2, loc="upper center")
    if title:
        ax.set_title(title)
    return save_figure(fig, out)


def ablate_recipe(
    recipe: Recipe,
    *,
    data: str | os.PathLike | None = None,
    runs_root: str | os.PathLike = "runs",
    out: str | os.PathLike | None = None,
    progress: bool = True,
    epochs: int | None = None,
    only: Sequence[str] | None = None,
    overwrite: bool = False,
    seeds: Sequence[int] | None = None,
    jobs: int = 1,
) -> Path:
    """Train the full model and every ablation variant of a recipe; write the ablation table.

    Each variant is the recipe with its ``overrides`` applied (dotted keys, as ``--set``);
    ``single_task: true`` trains one network per target (each with only its own head when
    ``model.params.heads`` is a per-target list) and scores the joined predictions;
    its parameters are the sum over the networks, its prediction time the sum of their
    times. Baselines are not trained. Parameters count the saved network's trainable
    weights; ``predict_objects_per_s`` is the prediction speed that :func:`train_recipe`
    measured for each network (``model_info.json``: the ``astroreg predict`` path on the
    evaluation rows, fastest of a few passes after a warm-up), the same way for every variant.

    Parameters
    ----------
    recipe : Recipe
        A recipe with ``variants``.
    data : path-like, optional
        Dataset to use instead of ``recipe.dataset.path``.
    runs_root : path-like
        Parent of the default output folder ``<runs_root>/<name>-ablation-<stamp>``.
    out : path-like, optional
        Exact output folder. It must not exist, be empty, or (with ``overwrite``) be a
        previous ablation folder.
    progress : bool
        Show progress bars.
    epochs : int, optional
        Override ``training.epochs`` (e.g. for a quick look).
    only : sequence of str, optional
        Train only these variants (and the full model).
    overwrite : bool
        Replace an existing ``out`` if it is an ablation folder (recognised by its
        ``ablation.csv`` and ``ablation.json``), once the new one is complete; anything
        else is never replaced.
    seeds : sequence of int, optional
        Train every network once per training seed (``training.seed``); the table gives
        the mean MAE over the seeds and its standard deviation, the paired differences
        are pooled over the seeds (module docstring). Default: the recipe's seed, once.
    jobs : int
        Networks trained at a time, each in its own worker process (module docstring).

    Returns
    -------
    pathlib.Path
        The finished output folder (layout in the module docstring).

    Raises
    ------
    ValueError
        Before any training: if ``evaluation.paper_tables`` names no registered set, the
        recipe has no variants, ``seeds`` is invalid, a variant is invalid or does
        not fit the dataset (see :func:`astroreg.pipeline._train.check_before_training`),
        or the output folder exists, is busy or cannot be written.

    Examples
    --------
    >>> folder = ablate_recipe(load_recipe("stellar-params"))  # doctest: +SKIP
    >>> pd.read_csv(folder / "ablation.csv")["variant"].tolist()  # doctest: +SKIP
    ['full', 'no_skip', 'no_skip_no_layernorm', 'single_task']
    """
    recipe_paper_tables(recipe)  # an unknown evaluation.paper_tables fails here, not after training
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs {jobs!r}: give the number of networks to train at a time, a whole number >= 1")
    nets = ablation_recipes(recipe, epochs=epochs, only=only, seeds=seeds)
    data_path = Path(data or recipe.dataset.path)
    with Dataset(data_path) as ds:
        for name, recipes in nets.items():
            for r in recipes:
                try:
                    check_before_training(r.with_overrides({"dataset.path": str(data_path)}), ds)
                except ValueError as err:
                    raise ValueError(f"variant {name!r}: {err}") from None
    if out is not None:
        check_output_dir(out, kind="ablation", inputs=[data_path], overwrite=overwrite)
    else:
        check_writable_folder(runs_root)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    final, _ = build_dir(out if out is not None else Path(runs_root) / f"{recipe.name}-ablation-{stamp}",
                         lambda partial: _ablate_in(partial, recipe, nets, data=data, epochs=epochs, only=only,
                                                    seeds=seeds, workers=jobs, progress=progress),
                         kind="ablation", overwrite=overwrite, unique=out is None)
    return final


def resume_ablation(partial: str | os.PathLike, *, progress: bool = True, overwrite: bool = False) -> Path:
    """Finish an ablation that was interrupted, killed or failed: its finished runs are kept.

    Parameters
    ----------
    partial : path-like
        The ``<out>.partial`` folder that ``astroreg ablate`` left.
    progress : bool
    overwrite : bool
        Let the finished folder replace a previous ablation folder at its final name.

    Returns
    -------
    pathlib.Path
        The finished ablation folder.

    Raises
    ------
    ValueError
        If ``partial`` is not an ablation folder that can be resumed.
    """
    from astroreg.config import load_recipe

    p = Path(partial)
    if not (p / ABLATION_RECIPE).is_file() or not (p / ABLATION_OPTIONS).is_file():
        raise ValueError(f"{p} is not an interrupted ablation (it lacks {ABLATION_RECIPE} or {ABLATION_OPTIONS}); "
                         "run `astroreg ablate` again instead")
    recipe = load_recipe(p / ABLATION_RECIPE)
    options = json.loads((p / ABLATION_OPTIONS).read_text())
    seeds = options.get("seeds")  # absent in folders written before --seeds and --jobs
    nets = ablation_recipes(recipe, epochs=options["epochs"], only=options["only"], seeds=seeds)
    final, _ = resume_dir(p, lambda q: _ablate_in(q, recipe, nets, data=options["data"], epochs=options["epochs"],
                                                   only=options["only"], seeds=seeds, workers=options.get("jobs", 1),
                                                   progress=progress),
                          kind="ablation", overwrite=overwrite)
    return final


def _train_or_resume(recipe: Recipe, data: str | os.PathLike | None, run_dir: Path, progress: bool) -> Path:
    """The run of one ablation job: kept if it had finished, resumed if it was interrupted, else trained."""
    if is_run_folder(run_dir):
        return run_dir
    if resume_command(partial_name(run_dir)) is not None:
        return resume_run(partial_name(run_dir), data=data, progress=progress)
    return train_recipe(recipe, data=data, run_dir=run_dir, progress=progress)


def _ablate_in(partial: Path, recipe: Recipe, jobs: dict[str, list[Recipe]], *, data: str | os.PathLike | None,
               epochs: int | None, only: Sequence[str] | None, seeds: Sequence[int] | None, workers: int,
               progress: bool) -> None:
    """Train every job into the claimed folder ``partial`` (going on with what is there) and write the table."""
    atomic_write_text(partial / ABLATION_RECIPE, recipe_to_yaml(recipe))
    write_json(partial / ABLATION_OPTIONS, {"data": None if data is None else str(data), "epochs": epochs,
                                           "only": None if only is None else list(only),
                                           "seeds": None if seeds is None else [int(s) for s in seeds],
                                           "jobs": int(workers)})
    mark_resumable(partial, f"astroreg resume {partial}")  # a killed ablation is kept too
    attempted: list[Path] = []
    try:
        _ablate_jobs(partial, recipe, jobs, data=data, epochs=epochs, seeds=seeds, workers=workers,
                     progress=progress, attempted=attempted)
    except BaseException:
        if not any(is_run_folder(d) or resume_command(partial_name(d)) for d in attempted):
            unmark_resumable(partial)  # nothing trained yet: the folder goes, as any failed output's
        raise


def _train_job(recipe: Recipe, data: str | os.PathLike | None, run_dir: Path) -> Path:
    """One network of a parallel ablation, in a worker process (no progress bar)."""
    return _train_or_resume(recipe, data, run_dir, False)


def _train_all(tasks: list[tuple[Recipe, Path]], data: str | os.PathLike | None, *, root: Path, workers: int,
               progress: bool, bar: tqdm, attempted: list[Path]) -> list[Path]:
    """Each task's run folder (below ``root``): trained, kept or resumed, one by one or ``workers`` at a time."""
    if workers <= 1 or len(tasks) <= 1:
        runs = []
        for r, sub in tasks:
            bar.set_postfix_str(sub.relative_to(root).as_posix())
            attempted.append(sub)
            runs.append(_train_or_resume(r, data, sub, progress))
            bar.update(1)
        return runs
    from concurrent.futures import FIRST_COMPLETED, wait

    from astroreg.data._parallel import process_pool, run_task

    workers = min(workers, len(tasks))
    each = max(1, (tasks[0][0].training.threads or default_threads()) // workers)  # the cores split between the runs
    # spawn: torch has started its thread pools here, in which a forked worker could deadlock; and
    # the workers are the command's own children, which the kernel kills when it dies (a
    # forkserver's would outlive it).
    runs: list[Path | None] = [None] * len(tasks)
    pool = process_pool(workers, method="spawn")
    try:
        pending = {}
        for i, (r, sub) in enumerate(tasks):
            attempted.append(sub)
            job = r.with_overrides({"training.threads": each})
            pending[pool.submit(run_task, _train_job, job, data, sub)] = i
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                runs[pending.pop(f)] = f.result()  # a failed run raises here: the queued ones are cancelled
                bar.update(1)
    finally:
        # Runs already training finish (Ctrl-C has stopped them too); queued ones never start.
        pool.shutdown(wait=True, cancel_futures=True)
    return runs


def _ablate_jobs(partial: Path, recipe: Recipe, jobs: dict[str, list[Recipe]], *, data: str | os.PathLike | None,
                 epochs: int | None, seeds: Sequence[int] | None, workers: int, progress: bool,
                 attempted: list[Path]) -> None:
    """Train every job (each run folder is added to ``attempted`` before it starts); write the table and plot."""
    descriptions = {v.name: v.description for v in recipe.variants}
    descriptions[FULL] = "the recipe as written"
    single = {v.name for v in recipe.variants if v.single_task}
    seeded = seeds is not None

    # (variant, seed folder, recipe, run folder) of every network, in the order they are trained
    tasks = []
    for name, recipes in jobs.items():
        for r in recipes:
            base = _seed_folder(partial / name, r, seeded)
            tasks.append((name, base, r, base / r.target_names[0] if name in single else base))
    n_nets = len(tasks)
    with tqdm(total=n_nets, desc="ablation", unit="net", disable=not progress) as bar:
        runs = _train_all([(r, sub) for _, _, r, sub in tasks], data, root=partial, workers=workers,
                          progress=progress, bar=bar, attempted=attempted)

    # each variant's runs, seed by seed (one a seed, or one per target for a single-task variant)
    grouped: dict[str, dict[Path, list[tuple[Recipe, Path]]]] = {}
    for (name, base, r, _), run_dir in zip(tasks, runs):
        grouped.setdefault(name, {}).setdefault(base, []).append((r, run_dir))
    results: dict[str, dict[str, Any]] = {}
    predictions: dict[str, list[Path]] = {}
    for name, by_seed in grouped.items():
        params, seconds = 0, 0.0
        for r, run_dir in next(iter(by_seed.values())):  # every seed has the same networks
            # Size and speed as train_recipe measured them (the prediction path of astroreg predict).
            info = json.loads((run_dir / "model_info.json").read_text())[r.model.name]
            params += info["parameters"]
            seconds += 1.0 / info["predict_objects_per_s"]
        seed_metrics, seed_low = [], []
        for base, pairs in by_seed.items():
            if name in single:
                seed_metrics.append(_combine_single_task(base, [d for _, d in pairs], _without_baselines(recipe)))
                predictions.setdefault(name, []).append(base / "predictions.parquet")
            else:
                r, run_dir = pairs[0]
                metrics = Run.open(run_dir).metrics
                seed_metrics.append(metrics["models"][r.model.name])
                seed_low.append(metrics.get("low_end", {}).get(r.model.name))  # with evaluation.regimes
                predictions.setdefault(name, []).append(run_dir / "predictions.parquet")
        results[name] = {
            "description": descriptions.get(name, ""),
            "single_task": name in single,
            "metrics": _mean_metrics(seed_metrics) if seeded else seed_metrics[0],
            "parameters": params,
            "predict_objects_per_s": 1.0 / seconds,
            "runs": [d.relative_to(partial).as_posix() for pairs in by_seed.values() for _, d in pairs],
        }
        if seed_low and all(seed_low):
            results[name]["low_end"] = _mean_metrics(seed_low) if seeded else seed_low[0]
        if seeded:
            results[name] |= {"seeds": [int(s) for s in seeds], "seed_metrics": seed_metrics}
            if "low_end" in results[name]:
                results[name]["seed_low_end"] = seed_low

    for name, paired in _paired_differences(predictions, recipe).items():
        results[name]["paired"] = paired
    table = ablation_table(results, FULL, targets=recipe.target_names)
    with atomic_path(partial / "ablation.csv") as tmp:
        table.to_csv(tmp, index=False)
    write_json(partial / "ablation.json", {"recipe": recipe.name, "split": recipe.evaluation.split,
                                           "seeds": None if seeds is None else [int(s) for s in seeds],
                                           "variants": results})
    split = recipe.evaluation.split
    paper = recipe_paper_tables(recipe)
    ref = paper.ablation() if paper is not None else None
    title = f"{recipe.name}: ablations relative to the full model" + (f" ({ref.label})" if ref else "")
    md = ablation_markdown(table, published=ref.values if ref else None, source=ref.source if ref else "",
                           title=title)
    regimes = recipe.evaluation.regimes
    if regimes is not None:
        md += (f"\n`low end`: the objects whose true {regimes.target or recipe.target_names[0]} is at or below the "
               f"{regimes.low_quantile:g} quantile of the {split} split (`evaluation.regimes`).\n")
    if seeded and len(seeds) > 1:
        md += _per_seed_markdown(results, seeds)
    note = (f"\nMAE on the {split} split; {n_nets} network(s) trained"
            + (f" for {epochs} epoch(s) each" if epochs else "")
            + (f", training seed(s) {', '.join(str(s) for s in seeds)}" if seeded else "")
            + "; baselines not retrained.\n")
    atomic_write_text(partial / "ablation.md", md + note)
    spread = f"\n({len(seeds)} seeds: mean, error bars one s.d.)" if seeded and len(seeds) > 1 else ""
    plot_ablation(table, partial / "ablation_mae.png", title=f"{recipe.name}: MAE relative to the full model{spread}",
                  published=ref.values if ref else None, label=ref.label if ref else "published")


def read_ablation(folder: str | os.PathLike) -> pd.DataFrame:
    """The ``ablation.csv`` table of a finished ablation folder."""
    path = Path(folder) / "ablation.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; give a folder made by `astroreg ablate`")
    table = pd.read_csv(path, keep_default_na=True)
    table["description"] = table["description"].fillna("")
    meta = json.loads((Path(folder) / "ablation.json").read_text()) if (Path(folder) / "ablation.json").exists() else {}
    table.attrs.update(full=FULL, recipe=meta.get("recipe"))
    return table
