"""Paper-style result tables: MAE ratios, model size and speed, range-normalised errors, ablations.

Every table function is pure: it takes run metrics (the ``metrics.json`` shape,
``{"split": ..., "models": {model: {target: {"mae": ..}}}}``, or just its ``"models"``
mapping) and returns a :class:`pandas.DataFrame`; :func:`paper_tables_markdown` renders
them, with the published values of paper 001 (:data:`PAPER_001`) beside ours.

Layouts (``<t>`` is a target, ``<m>`` a model name):

- :func:`mae_ratio_table` (paper Tables 2 and 3): one row per target; ``MAE <m>`` for the
  model and each comparison model, then ``<m> / <b>`` ratios.
- :func:`model_size_table` (Tables 3 and 4): one row per model; ``parameters``,
  ``objects_per_s``, ``ms_per_1000``, ``MAE <t>``, then ``parameters (rel)``,
  ``time (rel)`` and ``MAE <t> (rel)`` divided by the reference model's values.
- :func:`range_normalised_errors` (Section 6): one row per model and target; ``mae``,
  ``range`` (max - min of the true values on the evaluation split) and their ratio.
- :func:`ablation_table` (Table 5): one row per variant, the full model first;
  ``parameters``, ``MAE <t>`` and the same relative to the full model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from astroreg.evaluation._report import markdown_table

__all__ = [
    "PAPER_001",
    "mae_ratio_table",
    "model_size_table",
    "target_ranges",
    "range_normalised_errors",
    "ablation_table",
    "ablation_markdown",
    "paper_tables_markdown",
]

#: Published values of paper 001 (``../shared/seeds/001_ae21780aa044d73e.txt``), real SDSS
#: DR12 spectra. The text lost the target symbols of the table headers; the column order
#: Teff, [Fe/H], log g is read from the abstract (59.76 K, 0.103 dex, 0.130 dex) and checked
#: against Section 6 (test ranges 5441 K, 4.97 dex, 4.81 dex give 1.10 %, 2.07 %, 2.70 %).
#: Roles: ``proposed`` (the residual multitask MLP), ``ols``, ``ridge``, ``cnn`` (after
#: Fabbro et al.), ``dnn`` (after Li et al. 2017); ablations ``full``, ``no_skip``,
#: ``no_skip_no_layernorm``, ``single_task`` ("No Multitasking"). Table 4 and 5 ``time``
#: is inference time relative to the reference (DNN = 1, resp. full model = 1). The
#: abstract gives 59.76 K where Tables 2 and 3 give 59.75 K; the tables are used. The
#: paper's tuned learning rate is not legible in the text and is not used here.
PAPER_001: Mapping[str, Any] = MappingProxyType({
    "source": "paper 001 (SDSS DR12, residual multitask MLP)",
    "targets": ("teff", "feh", "logg"),
    # Table 2: test MAE (K, dex, dex).
    "table2_mae": {
        "ols": {"teff": 143.75, "feh": 0.26, "logg": 0.28},
        "ridge": {"teff": 115.24, "feh": 0.21, "logg": 0.23},
        "proposed": {"teff": 59.75, "feh": 0.10, "logg": 0.13},
    },
    # Table 3: trainable parameters and test MAE.
    "table3": {
        "cnn": {"parameters": 4.13e6, "mae": {"teff": 81.72, "feh": 0.138, "logg": 0.166}},
        "dnn": {"parameters": 13.66e6, "mae": {"teff": 60.51, "feh": 0.103, "logg": 0.140}},
        "proposed": {"parameters": 0.55e6, "mae": {"teff": 59.75, "feh": 0.103, "logg": 0.130}},
    },
    # Table 4: relative to the DNN (= 1.00).
    "table4_relative_to_dnn": {
        "cnn": {"parameters": 0.30, "time": 0.50, "mae": {"teff": 1.35, "feh": 1.34, "logg": 1.18}},
        "dnn": {"parameters": 1.00, "time": 1.00, "mae": {"teff": 1.00, "feh": 1.00, "logg": 1.00}},
        "proposed": {"parameters": 0.04, "time": 0.16, "mae": {"teff": 0.99, "feh": 1.00, "logg": 0.93}},
    },
    # Table 5: ablations relative to the full model (= 1.00).
    "table5_relative_to_full": {
        "no_skip": {"parameters": 0.99, "time": 0.69, "mae": {"teff": 1.39, "feh": 1.24, "logg": 1.15}},
        "no_skip_no_layernorm": {"parameters": 0.98, "time": 0.73,
                                 "mae": {"teff": 1.56, "feh": 1.17, "logg": 1.28}},
        "single_task": {"parameters": 2.97, "time": 2.71, "mae": {"teff": 0.99, "feh": 1.00, "logg": 1.01}},
        "full": {"parameters": 1.00, "time": 1.00, "mae": {"teff": 1.00, "feh": 1.00, "logg": 1.00}},
    },
    # Section 6: MAE / (max - min of the test labels).
    "range_normalised": {
        "range": {"teff": 5441.0, "feh": 4.97, "logg": 4.81},
        "percent": {"teff": 1.10, "feh": 2.07, "logg": 2.70},
    },
    "parameters_exact": 542_771,
})

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

    The layout of paper 001's Table 2 (against OLS and Ridge) and the MAE part of Table 3.

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

    The layout of paper 001's Tables 3 (absolute) and 4 (relative to the DNN = 1.00).
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

    Paper 001 (Section 6) divides the test MAE by the empirical range of the test labels
    (``max - min``: 5441 K for Teff, 4.97 dex for [Fe/H], 4.81 dex for log g) and quotes
    it in percent (1.10 %, 2.07 %, 2.70 %). The same definition is used here.

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
    """Ablation variants against the full model (paper 001, Table 5).

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
        columns are 1.0 (``time (rel)`` as in :func:`model_size_table`).

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
    cols = ["variant", "description", "parameters", "objects_per_s", *(f"MAE {t}" for t in ts),
            "parameters (rel)", "time (rel)", *(f"MAE {t} (rel)" for t in ts)]
    table = pd.DataFrame(rows, columns=cols)
    table.attrs.update(full=full)
    return table


# --------------------------------------------------------------------------- markdown


def _fmt_params(value: Any, *, millions: bool = False) -> str:
    """Ours exactly (``542,771``); the paper's as it prints them (``0.55M``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    v = float(value)
    return f"{v / 1e6:.2f}M" if millions else f"{int(round(v)):,}"


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
        if any(v is not None and not (isinstance(v, float) and math.isnan(v)) for v in values):
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


def _paper_targets(paper: Mapping[str, Any], targets: Sequence[str]) -> bool:
    return bool(set(targets) & set(paper.get("targets", ())))


def _table2(models: Mapping[str, Any], model: str, ols: str, ridge: str, paper: Mapping[str, Any],
            targets: Sequence[str]) -> str:
    against = [b for b in (ols, ridge) if b in models]
    ours = mae_ratio_table(models, model, against, targets=targets)
    p = paper.get("table2_mae", {})
    role = {model: "proposed", ols: "ols", ridge: "ridge"}
    rows = []
    for t in ours["target"]:
        row: dict[str, Any] = {"target": t}
        for name in [model, *against]:
            row[f"MAE {name}"] = _num(p.get(role[name], {}).get(t))
        for b in against:
            row[f"{model} / {b}"] = _ratio(row[f"MAE {model}"], row[f"MAE {b}"])
        rows.append(row)
    return _md(_interleave(ours, pd.DataFrame(rows), ["target"]))


def _size_tables(models: Mapping[str, Any], model_info: Mapping[str, Any] | None, names: Sequence[str],
                 relative_to: str, roles: Mapping[str, str], paper: Mapping[str, Any],
                 targets: Sequence[str]) -> tuple[str, str]:
    ours = model_size_table(models, model_info, names, relative_to, targets=targets)
    p3, p4 = paper.get("table3", {}), paper.get("table4_relative_to_dnn", {})
    rows = []
    for m in ours["model"]:
        e3, e4 = p3.get(roles.get(m, ""), {}), p4.get(roles.get(m, ""), {})
        row: dict[str, Any] = {"model": m, "parameters": _num(e3.get("parameters")),
                               "parameters (rel)": _num(e4.get("parameters")), "time (rel)": _num(e4.get("time"))}
        for t in targets:
            row[f"MAE {t}"] = _num(e3.get("mae", {}).get(t))
            row[f"MAE {t} (rel)"] = _num(e4.get("mae", {}).get(t))
        rows.append(row)
    theirs = pd.DataFrame(rows)
    abs_cols = ["model", "parameters", "objects_per_s", "ms_per_1000", *(f"MAE {t}" for t in targets)]
    rel_cols = ["model", "parameters (rel)", "time (rel)", *(f"MAE {t} (rel)" for t in targets)]
    t3 = _md(_params_as_text(_interleave(ours[abs_cols], theirs, ["model"])))
    t4 = _md(_interleave(ours[rel_cols], theirs, ["model"]), float_format="{:.2f}")
    return t3, t4


def _ablation_md(table: pd.DataFrame, paper: Mapping[str, Any], targets: Sequence[str]) -> str:
    p5 = paper.get("table5_relative_to_full", {})
    rows = []
    for v in table["variant"]:
        e = p5.get(v, {})
        row: dict[str, Any] = {"variant": v, "parameters (rel)": _num(e.get("parameters")),
                               "time (rel)": _num(e.get("time"))}
        for t in targets:
            row[f"MAE {t} (rel)"] = _num(e.get("mae", {}).get(t))
        rows.append(row)
    cols = ["variant", "parameters", *(f"MAE {t}" for t in targets), "parameters (rel)", "time (rel)",
            *(f"MAE {t} (rel)" for t in targets)]
    merged = _interleave(table[cols], pd.DataFrame(rows), ["variant"])
    return _md(_params_as_text(merged), float_format="{:.3g}")


def ablation_markdown(table: pd.DataFrame, *, paper: Mapping[str, Any] | None = PAPER_001,
                      title: str = "Ablations relative to the full model (paper Table 5)") -> str:
    """Markdown of an :func:`ablation_table`, with the paper's Table 5 ratios beside ours.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`ablation_table`.
    paper : dict or None
        Published values (default :data:`PAPER_001`); None leaves them out.
    title : str
        Section title.

    Returns
    -------
    str
        A ``## title`` section with the table and a note on ``time (rel)``.
    """
    targets = [c[4:] for c in table.columns if c.startswith("MAE ") and not c.endswith("(rel)")]
    use = paper if paper and _paper_targets(paper, targets) else {}
    lines = [f"## {title}", "", _ablation_md(table, use, targets), ""]
    desc = [f"- `{v}`: {d}" for v, d in zip(table["variant"], table["description"]) if d]
    lines += desc + ([""] if desc else [])
    lines.append("`time (rel)`: prediction time per object divided by the full model's (lower is faster)."
                 + (f" `(paper)` columns: {use.get('source', 'the paper')}, Table 5." if use else ""))
    return "\n".join(lines) + "\n"


def paper_tables_markdown(
    metrics: Mapping[str, Any],
    *,
    model: str,
    model_info: Mapping[str, Mapping[str, Any]] | None = None,
    ranges: Mapping[str, float] | pd.DataFrame | None = None,
    ols: str = "ols",
    ridge: str = "ridge",
    cnn: str = "starnet_cnn",
    dnn: str = "dnn_li2017",
    ablation: pd.DataFrame | None = None,
    snr: pd.DataFrame | None = None,
    paper: Mapping[str, Any] | None = PAPER_001,
    targets: Sequence[str] | None = None,
) -> str:
    """The paper-style sections of a report, with the paper's published values beside ours.

    Sections are written only when their models are present: Table 2 (MAE against
    ``ols`` / ``ridge``), Table 3 (parameters, speed and MAE of ``cnn``, ``dnn`` and the
    model), Table 4 (the same relative to ``dnn``, or to the model when there is no
    ``dnn``), range-normalised errors (when ``ranges`` is given), Table 5 (``ablation``,
    an :func:`ablation_table`) and the residuals in S/N bins (``snr``, a
    :func:`~astroreg.evaluation.residuals_by_snr` table).

    Parameters
    ----------
    metrics : dict
        Run metrics (``metrics.json``) or its ``"models"`` mapping.
    model : str
        The main model's name (the paper's "proposed NN").
    model_info : dict, optional
        ``{name: {"parameters": .., "predict_objects_per_s": ..}}``.
    ranges : dict or pandas.DataFrame, optional
        Target ranges or the evaluation predictions (see :func:`range_normalised_errors`).
    ols, ridge, cnn, dnn : str
        Names of the models playing the paper's baselines' roles.
    ablation, snr : pandas.DataFrame, optional
        Tables to append.
    paper : dict or None
        Published values (default :data:`PAPER_001`); None leaves them out, as they are
        left out when none of our targets is one of the paper's (teff, feh, logg).
    targets : sequence of str, optional
        Targets, in order; default those of ``model``.

    Returns
    -------
    str
        Markdown, sections titled ``## ...``; empty string when nothing applies.

    Raises
    ------
    ValueError
        If ``model`` is not in ``metrics``.
    """
    models = _models(metrics)
    _need(models, [model], "model")
    ts = _targets(models, [model], targets)
    use = paper if paper and _paper_targets(paper, ts) else {}
    note = f" `(paper)` columns: {use.get('source', 'the paper')}." if use else ""
    parts: list[str] = []
    if any(b in models for b in (ols, ridge)):
        parts += ["## MAE against the linear baselines (paper Table 2)", "",
                  _table2(models, model, ols, ridge, use, ts), "",
                  "Ratios below 1 mean the model is better." + note, ""]
    nets = [m for m in (cnn, dnn) if m in models]
    if nets:
        names = [*nets, model]
        rel = dnn if dnn in models else model
        roles = {cnn: "cnn", dnn: "dnn", model: "proposed"}
        t3, t4 = _size_tables(models, model_info, names, rel, roles, use, ts)
        parts += ["## Size, speed and MAE of the networks (paper Table 3)", "", t3, "",
                  "`objects_per_s`: prediction throughput; `ms_per_1000`: milliseconds per 1000 objects." + note, "",
                  f"## Relative to `{rel}` (paper Table 4)", "", t4, "",
                  f"`time (rel)`: prediction time per object divided by `{rel}`'s.", ""]
    if ranges is not None:
        rn = range_normalised_errors(models, ranges, targets=ts)
        wide = rn.pivot(index="model", columns="target", values="percent").reindex(
            index=list(dict.fromkeys(rn["model"])), columns=[t for t in ts if t in set(rn["target"])])
        wide.columns = [f"{t} (%)" for t in wide.columns]
        wide = wide.reset_index()
        used = rn.drop_duplicates("target").set_index("target")["range"]
        rng_row = {"model": "range (max - min)", **{f"{t} (%)": float(r) for t, r in used.items()}}
        wide = pd.concat([wide, pd.DataFrame([rng_row])], ignore_index=True)
        pr = use.get("range_normalised", {})
        if pr:
            wide = pd.concat([wide, pd.DataFrame([
                {"model": "paper: proposed", **{f"{t} (%)": _num(pr["percent"].get(t)) for t in ts}},
                {"model": "paper: range", **{f"{t} (%)": _num(pr["range"].get(t)) for t in ts}},
            ])], ignore_index=True)
        parts += ["## Range-normalised errors", "", _md(wide, float_format="{:.4g}"), "",
                  "MAE / (max - min of the true values on the evaluation split), in percent; "
                  "the `range` rows give the ranges in the targets' units.", ""]
    if ablation is not None:
        parts += [ablation_markdown(ablation, paper=use or None)]
    if snr is not None:
        parts += ["## Residuals in bins of S/N", "",
                  _md(snr.drop(columns=[c for c in ("snr_lo", "snr_hi") if c in snr.columns])), "",
                  "`median`: median of pred - true; `sigma_mad`: 1.4826 x its median absolute deviation.", ""]
    return "\n".join(parts)
