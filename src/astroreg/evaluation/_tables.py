"""Result tables: MAE ratios, model size and speed, range-normalised errors, ablations.

Every table function is pure: it takes run metrics (the ``metrics.json`` shape,
``{"split": ..., "models": {model: {target: {"mae": ..}}}}``, or just its ``"models"``
mapping) and returns a :class:`pandas.DataFrame`. Nothing here is specific to a paper:
a recipe's ``evaluation.paper_tables`` set (:mod:`astroreg.evaluation._paper`) puts
published values beside these tables.

Layouts (``<t>`` is a target, ``<m>`` a model name):

- :func:`mae_ratio_table`: one row per target; ``MAE <m>`` for the model and each
  comparison model, then ``<m> / <b>`` ratios.
- :func:`model_size_table`: one row per model; ``parameters``, ``objects_per_s``,
  ``ms_per_1000``, ``MAE <t>``, then ``parameters (rel)``, ``time (rel)`` and
  ``MAE <t> (rel)`` divided by the reference model's values.
- :func:`range_normalised_errors`: one row per model and target; ``mae``, ``range``
  (max - min of the true values on the evaluation split) and their ratio.
- :func:`ablation_table`: one row per variant, the full model first; ``parameters``,
  ``MAE <t>`` and the same relative to the full model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from astroreg.evaluation._report import markdown_table

__all__ = [
    "mae_ratio_table",
    "model_size_table",
    "target_ranges",
    "range_normalised_errors",
    "ablation_table",
    "ablation_markdown",
]

_NAN = float("nan")


# --------------------------------------------------------------------------- helpers


def _models(metrics: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``{model: {target: {metric: value}}}`` mapping of run metrics (or that mapping itself)."""
    if not isinstance(metrics, Mapping):
        raise ValueError(f"metrics must be a dict (the metrics.json shape); got {type(metrics).__name__}")
    models = metrics.get("models", metrics) if "split" in metrics or "models" in metrics else metrics
    if not isinstance(models, Mapping):
        raise ValueError("metrics['models'] must be a dict of model name -> {target: {metric: value}}")
    return models


def _need(models: Mapping[str, Any], names: Sequence[str], what: str) -> None:
    missing = [n for n in names if n not in models]
    if missing:
        raise ValueError(f"{what} {missing} not among the models {list(models)}; pick from them")


def _targets(models: Mapping[str, Any], names: Sequence[str], targets: Sequence[str] | None) -> list[str]:
    if targets is not None:
        return list(targets)
    out: dict[str, None] = {}
    for n in names:
        for t, v in models[n].items():
            if isinstance(v, Mapping) and "mae" in v:
                out[t] = None
    return list(out)


def _mae(models: Mapping[str, Any], model: str, target: str) -> float:
    value = models.get(model, {}).get(target, {})
    value = value.get("mae") if isinstance(value, Mapping) else None
    return _NAN if value is None else float(value)


def _seed_sd(per_seed: Sequence[Mapping[str, Any]] | None, target: str) -> float:
    """Standard deviation of ``target``'s MAE over the seeds' ``{target: {"mae": ..}}`` (NaN for fewer than 2)."""
    values = [_mae({"seed": m}, "seed", target) for m in per_seed or []]
    return float(np.std(values, ddof=1)) if len(values) > 1 else _NAN


def _ratio(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return _NAN
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b) or b == 0:
        return _NAN
    return a / b


def _add_relative(rows: list[dict[str, Any]], ref: Mapping[str, Any], targets: Sequence[str]) -> None:
    """Add ``parameters (rel)``, ``time (rel)`` and ``MAE <t> (rel)`` to each row, relative to ``ref``."""
    for row in rows:
        row["parameters (rel)"] = _ratio(row["parameters"], ref["parameters"])
        row["time (rel)"] = _ratio(ref["objects_per_s"], row["objects_per_s"])
        for t in targets:
            row[f"MAE {t} (rel)"] = _ratio(row[f"MAE {t}"], ref[f"MAE {t}"])


def _num(value: Any) -> float:
    return _NAN if value is None else float(value)


# --------------------------------------------------------------------------- tables


def mae_ratio_table(
    metrics: Mapping[str, Any],
    model: str,
    against: Sequence[str],
    *,
    targets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """MAE per target of a model and of comparison models, with the model / comparison ratios.


    Parameters
    ----------
    metrics : dict
        Run metrics (``metrics.json``) or its ``"models"`` mapping.
    model : str
        The model in the numerator, e.g. ``"residual_mlp"``.
    against : sequence of str
        Comparison models, e.g. ``["ols", "ridge"]`` (the recipe's ``evaluation.compare_to``).
    targets : sequence of str, optional
        Targets (rows) in order; default every target of ``model``.

    Returns
    -------
    pandas.DataFrame
        Columns ``target``, ``MAE <model>``, ``MAE <b>`` per comparison, ``<model> / <b>``
        per comparison (NaN where a MAE is missing). ``attrs``: ``model``, ``against``.

    Raises
    ------
    ValueError
        If a named model is not in ``metrics``.

    Examples
    --------
    >>> m = {"mlp": {"teff": {"mae": 60.0}}, "ridge": {"teff": {"mae": 120.0}}}
    >>> mae_ratio_table(m, "mlp", ["ridge"])["mlp / ridge"].tolist()
    [0.5]
    """
    models = _models(metrics)
    against = [a for a in against if a != model]
    _need(models, [model, *against], "model(s)")
    rows = []
    for t in _targets(models, [model], targets):
        row: dict[str, Any] = {"target": t, f"MAE {model}": _mae(models, model, t)}
        for b in against:
            row[f"MAE {b}"] = _mae(models, b, t)
        for b in against:
            row[f"{model} / {b}"] = _ratio(row[f"MAE {model}"], row[f"MAE {b}"])
        rows.append(row)
    cols = ["target", f"MAE {model}", *(f"MAE {b}" for b in against), *(f"{model} / {b}" for b in against)]
    table = pd.DataFrame(rows, columns=cols)
    table.attrs.update(model=model, against=list(against))
    return table


def model_size_table(
    metrics: Mapping[str, Any],
    model_info: Mapping[str, Mapping[str, Any]] | None,
    models: Sequence[str],
    relative_to: str,
    *,
    targets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Parameters, prediction speed and MAE per model, absolute and relative to one model.

    ``time (rel)`` is the inference time per object relative to the reference, i.e.
    ``objects_per_s(reference) / objects_per_s(model)``.

    Parameters
    ----------
    metrics : dict
        Run metrics or its ``"models"`` mapping.
    model_info : dict or None
        ``{model: {"parameters": int | None, "predict_objects_per_s": float}}`` (the
        ``model_info`` entry of a run's metrics.json); missing entries give NaN.
    models : sequence of str
        Rows, in order.
    relative_to : str
        Reference model (one of ``models``).
    targets : sequence of str, optional
        Targets in order; default those of the models.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, parameters, objects_per_s, ms_per_1000, MAE <t>...,
        parameters (rel), time (rel), MAE <t> (rel)...``; the reference row's relative
        columns are 1.0 where its values are known. ``attrs``: ``relative_to``.

    Raises
    ------
    ValueError
        If a model is not in ``metrics`` or ``relative_to`` is not in ``models``.

    Examples
    --------
    >>> m = {"mlp": {"t": {"mae": 1.0}}, "dnn": {"t": {"mae": 2.0}}}
    >>> info = {"mlp": {"parameters": 10, "predict_objects_per_s": 400.0},
    ...         "dnn": {"parameters": 100, "predict_objects_per_s": 100.0}}
    >>> model_size_table(m, info, ["mlp", "dnn"], "dnn")["time (rel)"].tolist()
    [0.25, 1.0]
    """
    table_models = _models(metrics)
    models = list(models)
    _need(table_models, models, "model(s)")
    if relative_to not in models:
        raise ValueError(f"relative_to {relative_to!r} is not one of the rows {models}; add it to models")
    info = model_info or {}
    ts = _targets(table_models, models, targets)
    rows = []
    for m in models:
        entry = info.get(m) or {}
        rate = _num(entry.get("predict_objects_per_s"))
        row: dict[str, Any] = {
            "model": m,
            "parameters": _num(entry.get("parameters")),
            "objects_per_s": rate,
            "ms_per_1000": _ratio(1000.0 * 1000.0, rate),
        }
        for t in ts:
            row[f"MAE {t}"] = _mae(table_models, m, t)
        rows.append(row)
    _add_relative(rows, next(r for r in rows if r["model"] == relative_to), ts)
    cols = ["model", "parameters", "objects_per_s", "ms_per_1000", *(f"MAE {t}" for t in ts),
            "parameters (rel)", "time (rel)", *(f"MAE {t} (rel)" for t in ts)]
    table = pd.DataFrame(rows, columns=cols)
    table.attrs.update(relative_to=relative_to)
    return table


def target_ranges(frame: pd.DataFrame, targets: Sequence[str]) -> dict[str, float]:
    """``max - min`` of each target's known true values in a predictions table.

    Parameters
    ----------
    frame : pandas.DataFrame
        Predictions with ``<target>_true`` columns (the evaluation split).
    targets : sequence of str
        Targets.

    Returns
    -------
    dict of str to float
        Range per target (NaN where no value is known).

    Examples
    --------
    >>> target_ranges(pd.DataFrame({"t_true": [1.0, 4.0, np.nan]}), ["t"])
    {'t': 3.0}
    """
    out = {}
    for t in targets:
        col = f"{t}_true"
        if col not in frame.columns:
            raise ValueError(f"column {col!r} not in the predictions table; columns are {list(frame.columns)}")
        v = frame[col].to_numpy(dtype=np.float64, na_value=np.nan)
        v = v[np.isfinite(v)]
        out[t] = float(v.max() - v.min()) if v.size else _NAN
    return out


def range_normalised_errors(
    metrics: Mapping[str, Any],
    ranges: Mapping[str, float] | pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """MAE divided by the full range of each target's true values on the evaluation split.

    The range is the empirical one, ``max - min`` of the known true values (the
    definition of paper 001, Section 6, which quotes the ratio in percent).

    Parameters
    ----------
    metrics : dict
        Run metrics or its ``"models"`` mapping.
    ranges : dict of str to float, or pandas.DataFrame
        Range per target, or the predictions table of the evaluation split (ranges
        from its ``<target>_true`` columns, see :func:`target_ranges`).
    models : sequence of str, optional
        Models, in order; default all.
    targets : sequence of str, optional
        Targets, in order; default those of the models that have a range.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, target, mae, range, mae_over_range, percent`` (one row per
        model and target).

    Examples
    --------
    >>> m = {"mlp": {"t": {"mae": 0.5}}}
    >>> range_normalised_errors(m, {"t": 10.0})["percent"].tolist()
    [5.0]
    """
    all_models = _models(metrics)
    names = list(models) if models is not None else list(all_models)
    _need(all_models, names, "model(s)")
    ts = _targets(all_models, names, targets)
    if isinstance(ranges, pd.DataFrame):
        ranges = target_ranges(ranges, [t for t in ts if f"{t}_true" in ranges.columns])
    if targets is None:
        ts = [t for t in ts if t in ranges]
    rows = []
    for m in names:
        for t in ts:
            mae = _mae(all_models, m, t)
            rng = _num(ranges.get(t))
            frac = _ratio(mae, rng)
            rows.append({"model": m, "target": t, "mae": mae, "range": rng,
                         "mae_over_range": frac, "percent": 100.0 * frac})
    return pd.DataFrame(rows, columns=["model", "target", "mae", "range", "mae_over_range", "percent"])


def ablation_table(
    results: Mapping[str, Mapping[str, Any]],
    full: str = "full",
    *,
    targets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Ablation variants against the full model.

    Parameters
    ----------
    results : dict
        ``{variant: {"metrics": {target: {"mae": ..}}, "parameters": int | None,
        "predict_objects_per_s": float | None, "description": str}}``; only
        ``metrics`` is required.
    full : str
        The variant everything is divided by (listed first).
    targets : sequence of str, optional
        Targets, in order; default those of the full model.

    Returns
    -------
    pandas.DataFrame
        Columns ``variant, description, parameters, objects_per_s, MAE <t>...,
        parameters (rel), time (rel), MAE <t> (rel)...``; the full row's relative
        columns are 1.0 (``time (rel)`` as in :func:`model_size_table`). Where entries
        carry ``"paired": {target: {"all": {"diff", "lo", "hi"}, "low_end": {...}}}``
        (:func:`astroreg.evaluation._paired.paired_mae_difference` against the full
        model), also ``dMAE <t>``, ``dMAE <t> lo``, ``dMAE <t> hi`` and the same with
        `` low end``: the variant's MAE minus the full model's and its interval (NaN on
        the full row). Where entries carry ``"seed_metrics"`` (one metrics dict per
        training seed; ``metrics`` is then their mean), also ``MAE <t> sd``: the standard
        deviation of the MAE over the seeds; the table's ``attrs["seeds"]`` is their number.
        Where entries carry ``"low_end": {target: {"mae": ..}}`` (the low end of the true
        values, ``evaluation.regimes``; over seeds their mean, with ``"seed_low_end"`` per
        seed), also ``MAE <t> low end`` (and ``MAE <t> low end sd``).

    Raises
    ------
    ValueError
        If ``full`` is not in ``results`` or an entry lacks ``metrics``.

    Examples
    --------
    >>> r = {"full": {"metrics": {"t": {"mae": 2.0}}, "parameters": 10},
    ...      "no_skip": {"metrics": {"t": {"mae": 3.0}}, "parameters": 9}}
    >>> ablation_table(r)["MAE t (rel)"].tolist()
    [1.0, 1.5]
    """
    if full not in results:
        raise ValueError(f"the full model {full!r} is not among the ablation results {list(results)}")
    bad = [k for k, v in results.items() if not isinstance(v, Mapping) or not isinstance(v.get("metrics"), Mapping)]
    if bad:
        raise ValueError(f"ablation results {bad} lack a 'metrics' dict of target -> {{'mae': ..}}")
    names = [full, *(k for k in results if k != full)]
    metrics = {k: results[k]["metrics"] for k in names}
    ts = _targets(metrics, [full], targets)
    rows = []
    for k in names:
        entry = results[k]
        row: dict[str, Any] = {
            "variant": k,
            "description": str(entry.get("description", "") or ""),
            "parameters": _num(entry.get("parameters")),
            "objects_per_s": _num(entry.get("predict_objects_per_s")),
        }
        for t in ts:
            row[f"MAE {t}"] = _mae(metrics, k, t)
        rows.append(row)
    _add_relative(rows, rows[0], ts)
    seeds = max((len(results[k].get("seed_metrics") or []) for k in names), default=0)
    spread = [f"MAE {t} sd" for t in ts] if seeds > 1 else []
    for k, row in zip(names, rows):  # the MAE's standard deviation over the training seeds
        for t in ts if spread else ():
            row[f"MAE {t} sd"] = _seed_sd(results[k].get("seed_metrics"), t)
    # The low end of the true values (evaluation.regimes): its MAE, and its spread over the seeds.
    low_cols: list[str] = []
    for t in ts:
        if not any(isinstance((results[k].get("low_end") or {}).get(t), Mapping) for k in names):
            continue
        keys = [f"MAE {t} low end", *([f"MAE {t} low end sd"] if spread else [])]
        for k, row in zip(names, rows):
            row[keys[0]] = _mae({k: results[k].get("low_end") or {}}, k, t)
            if spread:
                row[keys[1]] = _seed_sd(results[k].get("seed_low_end"), t)
        low_cols += keys
    cols = ["variant", "description", "parameters", "objects_per_s",
            *(c for t in ts for c in (f"MAE {t}", *([f"MAE {t} sd"] if spread else []))), *low_cols,
            "parameters (rel)", "time (rel)", *(f"MAE {t} (rel)" for t in ts)]
    # Paired differences to the full model (variant minus full, same objects) with their intervals.
    for t in ts:
        for part, suffix in (("all", ""), ("low_end", " low end")):
            if not any(isinstance(results[k].get("paired", {}).get(t, {}).get(part), Mapping) for k in names):
                continue
            keys = [f"dMAE {t}{suffix}{end}" for end in ("", " lo", " hi")]
            for k, row in zip(names, rows):
                p = results[k].get("paired", {}).get(t, {}).get(part) or {}
                for key, field in zip(keys, ("diff", "lo", "hi")):
                    row[key] = _num(p.get(field))
            cols += keys
    table = pd.DataFrame(rows, columns=cols)
    table.attrs.update(full=full, seeds=seeds)
    return table


# --------------------------------------------------------------------------- markdown


def _fmt_params(value: Any, *, millions: bool = False) -> str:
    """Ours exactly (``542,771``); the paper's as it prints them (``0.55M``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    v = float(value)
    return f"{v / 1e6:.2f}M" if millions else f"{int(round(v)):,}"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _interleave(ours: pd.DataFrame, paper: pd.DataFrame | None, keys: Sequence[str]) -> pd.DataFrame:
    """``ours`` with a ``(paper)`` column after each of its columns that ``paper`` has values for."""
    if paper is None:
        return ours
    out = {}
    for c in ours.columns:
        out[c] = ours[c].tolist()
        if c in keys or c not in paper.columns:
            continue
        values = paper[c].tolist()
        if not all(_blank(v) for v in values):
            out[f"{c} (paper)"] = values
    return pd.DataFrame(out)


def _params_as_text(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    for c in table.columns:
        if c.startswith("parameters") and not c.startswith("parameters (rel)"):
            table[c] = [_fmt_params(v, millions=c.endswith("(paper)")) for v in table[c]]
    return table


def _md(table: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    return markdown_table(table.reset_index(drop=True), float_format=float_format)




def ablation_markdown(
    table: pd.DataFrame,
    *,
    published: Mapping[str, Mapping[str, Any]] | None = None,
    source: str = "the paper",
    title: str = "Ablations relative to the full model",
) -> str:
    """Markdown of an :func:`ablation_table`, optionally with published ratios beside ours.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`ablation_table`.
    published : dict, optional
        Published ratios to the full model, ``{variant: {"parameters": float, "time":
        float, "mae": {target: float}}}`` (a recipe's paper-table set gives them, e.g.
        paper 001's Table 5); shown as ``(paper)`` columns where they have values.
        None (the default): ours only.
    source : str
        Where ``published`` comes from, for the note under the table.
    title : str
        Section title.

    Returns
    -------
    str
        A ``## title`` section with the table and a note on ``time (rel)``.

    Examples
    --------
    >>> t = ablation_table({"full": {"metrics": {"t": {"mae": 2.0}}, "parameters": 10}})
    >>> ablation_markdown(t).splitlines()[0]
    '## Ablations relative to the full model'
    """
    targets = [c[4:] for c in table.columns if c.startswith("MAE ") and not c.endswith(("(rel)", " sd", " low end"))]
    cols = ["variant", "parameters",
            *(c for t in targets for c in (f"MAE {t}", f"MAE {t} sd") if c in table.columns),
            *(c for t in targets for c in (f"MAE {t} low end", f"MAE {t} low end sd") if c in table.columns),
            "parameters (rel)", "time (rel)", *(f"MAE {t} (rel)" for t in targets)]
    theirs = None
    if published:
        rows = []
        for v in table["variant"]:
            e = published.get(v, {})
            row: dict[str, Any] = {"variant": v, "parameters (rel)": _num(e.get("parameters")),
                                   "time (rel)": _num(e.get("time"))}
            for t in targets:
                row[f"MAE {t} (rel)"] = _num(e.get("mae", {}).get(t))
            rows.append(row)
        theirs = pd.DataFrame(rows)
    merged = _interleave(table[cols], theirs, ["variant"])
    for c in (c for c in cols if " low end" in c):  # a variant without a low end of its own: blank
        merged[c] = ["" if not np.isfinite(v) else f"{v:.3g}" for v in merged[c]]
    paired = [c for c in table.columns if c.startswith("dMAE ") and not c.endswith((" lo", " hi"))]
    for c in paired:  # "+0.0034 [+0.0012, +0.0056]": variant minus full, 95% interval
        merged[f"{c} [95%]"] = [
            "" if not np.isfinite(d) else f"{d:+.4g} [{lo:+.4g}, {hi:+.4g}]"
            for d, lo, hi in zip(table[c], table[f"{c} lo"], table[f"{c} hi"])
        ]
    shown = any(c.endswith("(paper)") for c in merged.columns)
    lines = [f"## {title}", "", _md(_params_as_text(merged), float_format="{:.3g}"), ""]
    seeds = int(table.attrs.get("seeds") or 0)
    if seeds > 1:
        lines += [f"Each network was trained with {seeds} training seeds: `MAE` is the mean over the seeds, "
                  "`MAE ... sd` its standard deviation over them.", ""]
    if paired and seeds > 1:
        lines += ["`dMAE`: the variant's MAE minus the full model's on the same objects, seed paired with seed and "
                  "averaged over the seeds (negative: the variant is better), with a 95% interval from resampling "
                  "the seeds and then the objects; an interval that holds 0 means these seeds and this split "
                  "cannot tell the two apart. With few seeds whose differences scatter more than the objects' "
                  "do, the interval is too narrow: read the seed-by-seed table.", ""]
    elif paired:
        lines += ["`dMAE`: the variant's MAE minus the full model's on the same objects (negative: the variant "
                  "is better), with a 95% bootstrap interval over the objects; an interval that holds 0 means "
                  "the split cannot tell the two apart.", ""]
    desc = [f"- `{v}`: {d}" for v, d in zip(table["variant"], table["description"]) if d]
    lines += desc + ([""] if desc else [])
    lines.append("`time (rel)`: prediction time per object divided by the full model's (lower is faster)."
                 + (f" `(paper)` columns: {source}." if shown else ""))
    return "\n".join(lines) + "\n"
