"""Run report: model comparison table, metrics file and the Markdown report.

The metrics of a run share one shape, used by :func:`write_metrics_json`,
:func:`comparison_table` and :func:`write_report`::

    {"split": "test",
     "models": {"<model name>": {"<target>": {"mae": .., "mse": .., "rmse": ..,
                                               "r2": .., "nmad": .., "bias": ..}}}}

A redshift target (recipe ``targets[].kind: redshift``) also carries the five
statistics of ``e_z = (pred - true) / (1 + true)`` (``sigma_iqr_ez``,
``sigma_nmad_ez``, ``bias_ez``, ``outlier_rate``, ``catastrophic_rate``; see
:mod:`astroreg.evaluation._metrics`), shown by :func:`redshift_table`; with ``"redshift_bins"`` the same statistics, ``n`` and
the MAE of z in each bin of the true redshift::

    "redshift_bins": {"<model name>": {"<target>": [{"bin_lo": 0.0, "bin_hi": 0.1, "n": 412,
                                                     "mae": .., "sigma_nmad_ez": .., ...}, ...]}}

Classifier results have the shape ``{"<model name>": {"accuracy": .., "confusion_matrix":
[[..]], "labels": [..]}}`` (the output of
:func:`~astroreg.evaluation.classification_metrics`).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd
import yaml

from astroreg.evaluation._metrics import REDSHIFT_METRICS, REGRESSION_METRICS
from astroreg.data._atomic import atomic_write_text
from astroreg.evaluation._plots import plot_confusion_matrix
from astroreg.evaluation._regimes import low_end_frame

__all__ = [
    "REPORT_NAME",
    "comparison_table",
    "redshift_table",
    "format_table",
    "format_metrics",
    "write_metrics_json",
    "read_metrics_json",
    "write_report",
]

#: File name of the report inside a run folder.
REPORT_NAME = "report.md"
#: Prefix of the model used by default as the MSE reference.
REFERENCE_PREFIX = "linear_regression"

_METRICS_KEYS = ("split", "models")
# low_end: {model: {target: {mae, bias, nmad, n, slope, quantile, threshold}}} when evaluation.regimes is set;
# redshift_bins: {model: {target: [{bin_lo, bin_hi, n, mae, sigma_iqr_ez, ...}, ...]}} for redshift targets.
_OPTIONAL_KEYS = ("low_end", "redshift_bins")
_HEADERS = {"mae": "MAE", "mse": "MSE", "rmse": "RMSE", "r2": "R²", "nmad": "NMAD", "bias": "bias"}
#: Report headers of the redshift table (:func:`redshift_table`).
_Z_HEADERS = {"sigma_iqr_ez": "σ_IQR(e_z)", "sigma_nmad_ez": "σ_NMAD(e_z)", "bias_ez": "bias(e_z)",
              "outlier_rate": "outlier rate", "catastrophic_rate": "catastrophic rate"}
#: Report headers of the raw-error columns when the e_z statistics are shown beside them.
_RAW_HEADERS = {"nmad": "NMAD(pred - true)", "bias": "bias(pred - true)"}


# --------------------------------------------------------------------------- validation


def _is_number(value: Any) -> bool:
    return isinstance(value, (Real, np.number)) and not isinstance(value, (bool, np.bool_))


def _validate_metrics(metrics: Any) -> None:
    """Raise ValueError unless ``metrics`` has the run-metrics shape (see module doc)."""
    if not isinstance(metrics, Mapping):
        raise ValueError(
            f"metrics must be a dict with keys {list(_METRICS_KEYS)}; got {type(metrics).__name__}"
        )
    missing = [k for k in _METRICS_KEYS if k not in metrics]
    unknown = [k for k in metrics if k not in _METRICS_KEYS + _OPTIONAL_KEYS]
    if missing or unknown:
        raise ValueError(
            f"metrics must have the keys {list(_METRICS_KEYS)} (and optionally {list(_OPTIONAL_KEYS)}); "
            f"missing {missing}, unknown {unknown}"
        )
    if "low_end" in metrics:
        _validate_metrics({"split": metrics["split"], "models": metrics["low_end"]})
    if "redshift_bins" in metrics:
        _validate_bins(metrics["redshift_bins"])
    if not isinstance(metrics["split"], str):
        raise ValueError(f"metrics['split'] must be a str such as 'test'; got {metrics['split']!r}")
    models = metrics["models"]
    if not isinstance(models, Mapping):
        raise ValueError(
            f"metrics['models'] must be a dict of model name -> {{target: metrics}}; got "
            f"{type(models).__name__}"
        )
    for model, targets in models.items():
        if not isinstance(model, str):
            raise ValueError(f"model names must be str; got {model!r}")
        if not isinstance(targets, Mapping) or not targets:
            raise ValueError(
                f"metrics['models'][{model!r}] must be a non-empty dict of target -> metric "
                f"dict, e.g. {{'teff': {{'mae': 80.0, ...}}}}; got {targets!r}"
            )
        for target, values in targets.items():
            where = f"metrics['models'][{model!r}][{target!r}]"
            if not isinstance(target, str):
                raise ValueError(f"target names must be str; got {target!r} for model {model!r}")
            if not isinstance(values, Mapping) or not values:
                raise ValueError(
                    f"{where} must be a non-empty dict of metric name -> number, e.g. "
                    f"{{'mae': 80.0, 'rmse': 110.0}}; got {values!r}"
                )
            bad = {k: v for k, v in values.items()
                   if not isinstance(k, str) or not (v is None or _is_number(v))}
            if bad:
                raise ValueError(f"{where} must map metric names (str) to numbers; bad entries: {bad}")


def _validate_bins(bins: Any) -> None:
    """Raise ValueError unless ``bins`` is ``{model: {target: [{name: number}, ...]}}`` (``redshift_bins``)."""
    shape = "{model: {target: [{'bin_lo': 0.0, 'bin_hi': 0.1, 'n': 10, ...}, ...]}}"
    if not isinstance(bins, Mapping):
        raise ValueError(f"metrics['redshift_bins'] must be {shape}; got {type(bins).__name__}")
    for model, targets in bins.items():
        if not isinstance(targets, Mapping):
            raise ValueError(f"metrics['redshift_bins'][{model!r}] must be {{target: [bin, ...]}}; got {targets!r}")
        for target, rows in targets.items():
            where = f"metrics['redshift_bins'][{model!r}][{target!r}]"
            if not isinstance(rows, Sequence) or isinstance(rows, str) or not rows:
                raise ValueError(f"{where} must be a non-empty list of bins, each {{name: number}}; got {rows!r}")
            for row in rows:
                if not isinstance(row, Mapping) or any(
                        not isinstance(k, str) or not (v is None or _is_number(v)) for k, v in row.items()):
                    raise ValueError(f"{where} holds a bin that is not a dict of name -> number: {row!r}")


def _validate_classifiers(classifier_metrics: Any) -> None:
    if not isinstance(classifier_metrics, Mapping):
        raise ValueError(
            "classifier_metrics must be a dict of model name -> {'accuracy', "
            f"'confusion_matrix', 'labels'}}; got {type(classifier_metrics).__name__}"
        )
    required = ("accuracy", "confusion_matrix", "labels")
    for model, entry in classifier_metrics.items():
        where = f"classifier_metrics[{model!r}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a dict with keys {list(required)}; got {entry!r}")
        missing = [k for k in required if k not in entry]
        if missing:
            raise ValueError(
                f"{where} lacks key(s) {missing}; it has {list(entry)}; expected {list(required)}"
            )
        if not _is_number(entry["accuracy"]):
            raise ValueError(f"{where}['accuracy'] must be a number; got {entry['accuracy']!r}")
        try:
            matrix = np.asarray(entry["confusion_matrix"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}['confusion_matrix'] must be a list of lists of counts") from exc
        n = len(entry["labels"])
        if matrix.shape != (n, n):
            raise ValueError(
                f"{where}['confusion_matrix'] has shape {matrix.shape} but there are {n} labels; "
                f"expected ({n}, {n})"
            )


# --------------------------------------------------------------------------- tables


def _default_reference(models: Sequence[str]) -> str | None:
    for name in models:
        if name.startswith(REFERENCE_PREFIX):
            return name
    return models[0] if models else None


def comparison_table(metrics: Mapping[str, Any], reference: str | None = None) -> pd.DataFrame:
    """One row per model and target with the regression metrics and an MSE ratio.

    Parameters
    ----------
    metrics : dict
        Run metrics, ``{"split": ..., "models": {model: {target: {metric: value}}}}``.
    reference : str, optional
        Model whose MSE divides every other model's MSE on the same target. By default
        the first model whose name starts with ``linear_regression``, else the first
        model.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, target, mae, mse, rmse, r2, nmad, bias`` and
        ``"MSE / MSE(<reference>)"`` (NaN where the reference lacks the target); a
        missing metric is NaN. ``table.attrs`` holds ``reference``, ``ratio_column``
        and ``split``.

    Raises
    ------
    ValueError
        If ``metrics`` does not have the run-metrics shape, or ``reference`` is not
        one of its models.

    Examples
    --------
    >>> m = {"split": "test", "models": {
    ...     "linear_regression": {"teff": {"mse": 4.0}}, "mlp": {"teff": {"mse": 1.0}}}}
    >>> comparison_table(m)["MSE / MSE(linear_regression)"].tolist()
    [1.0, 0.25]
    """
    _validate_metrics(metrics)
    models = metrics["models"]
    names = list(models)
    if reference is None:
        reference = _default_reference(names)
    elif reference not in models:
        raise ValueError(
            f"reference model {reference!r} is not among the models {names}; pick one of them"
        )
    ratio_column = f"MSE / MSE({reference})"
    rows = []
    for model, targets in models.items():
        for target, values in targets.items():
            row: dict[str, Any] = {"model": model, "target": target}
            for key in REGRESSION_METRICS:
                value = values.get(key)
                row[key] = np.nan if value is None else float(value)
            ref_value = models.get(reference, {}).get(target, {}).get("mse") if reference else None
            if ref_value is None or np.isnan(row["mse"]):
                row[ratio_column] = np.nan
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    row[ratio_column] = float(np.float64(row["mse"]) / np.float64(ref_value))
            rows.append(row)
    table = pd.DataFrame(rows, columns=["model", "target", *REGRESSION_METRICS, ratio_column])
    table.attrs.update(reference=reference, ratio_column=ratio_column, split=metrics["split"])
    return table


def redshift_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """One row per model and redshift target with the five statistics of ``e_z``.

    ``e_z = (pred - true) / (1 + true)``; a target is a redshift target of a model
    when its metrics carry every key of
    :data:`~astroreg.evaluation._metrics.REDSHIFT_METRICS` (as
    :func:`~astroreg.evaluation.labelled_metrics` gives for ``kind: redshift``).

    Parameters
    ----------
    metrics : dict
        Run metrics, ``{"split": ..., "models": {model: {target: {metric: value}}}}``.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, target, sigma_iqr_ez, sigma_nmad_ez, bias_ez, outlier_rate,
        catastrophic_rate`` (dimensionless; rates are fractions); empty when no
        target is a redshift.

    Raises
    ------
    ValueError
        If ``metrics`` does not have the run-metrics shape.

    Examples
    --------
    >>> z = {"sigma_iqr_ez": 0.02, "sigma_nmad_ez": 0.021, "bias_ez": 0.001,
    ...      "outlier_rate": 0.03, "catastrophic_rate": 0.01}
    >>> m = {"split": "test", "models": {"mlp": {"z": {"mae": 0.1, **z}, "mass": {"mae": 0.2}}}}
    >>> redshift_table(m)["target"].tolist()
    ['z']
    """
    _validate_metrics(metrics)
    rows = []
    for model, targets in metrics["models"].items():
        for target, values in targets.items():
            if all(k in values for k in REDSHIFT_METRICS):
                rows.append({"model": model, "target": target,
                             **{k: np.nan if values[k] is None else float(values[k]) for k in REDSHIFT_METRICS}})
    return pd.DataFrame(rows, columns=["model", "target", *REDSHIFT_METRICS])


def _format_cell(value: Any, float_format: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return "nan" if math.isnan(value) else float_format.format(float(value))
    return str(value)


def _is_numeric_column(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def format_table(df: pd.DataFrame, *, float_format: str = "{:.4g}") -> str:
    """Render a DataFrame as a plain fixed-width text table for the terminal.

    Numbers are right-aligned, text left-aligned; the index is not shown.

    Parameters
    ----------
    df : pandas.DataFrame
        Table to render, e.g. from :func:`comparison_table`.
    float_format : str, default "{:.4g}"
        :meth:`str.format` pattern for floats.

    Returns
    -------
    str
        Header line, a dashed rule and one line per row (no trailing newline).

    Examples
    --------
    >>> print(format_table(pd.DataFrame({"model": ["mlp"], "rmse": [0.1234567]})))
    model    rmse
    -----  ------
    mlp    0.1235
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas.DataFrame; got {type(df).__name__}")
    headers = [str(c) for c in df.columns]
    columns = []
    for name in df.columns:
        series = df[name]
        cells = [_format_cell(v, float_format) for v in series.tolist()]
        columns.append((cells, _is_numeric_column(series)))
    widths = [max([len(h)] + [len(c) for c in cells]) for h, (cells, _) in zip(headers, columns)]

    def line(items: Sequence[str]) -> str:
        parts = [
            item.rjust(w) if numeric else item.ljust(w)
            for item, w, (_, numeric) in zip(items, widths, columns)
        ]
        return "  ".join(parts).rstrip()

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out.extend(line([cells[i] for cells, _ in columns]) for i in range(len(df)))
    return "\n".join(out)


def format_metrics(metrics: Mapping[str, Any], reference: str | None = None) -> str:
    """The console summary of run metrics: the comparison table, the redshift statistics, the low end.

    When a target is a redshift (its metrics carry the ``e_z`` statistics), the raw-error
    columns are headed ``nmad(pred-true)`` and ``bias(pred-true)`` and a second table
    (:func:`redshift_table`) gives ``sigma_iqr_ez``, ``sigma_nmad_ez``, ``bias_ez``,
    ``outlier_rate`` and ``catastrophic_rate`` of ``e_z = (pred - true) / (1 + true)``.
    With a ``low_end`` entry (``evaluation.regimes``), a last table gives each model's
    metrics on the lowest values of the truth.

    Parameters
    ----------
    metrics : dict
        Regression metrics of a run (``{"split": .., "models": {..}}``, classifiers left out).
    reference : str, optional
        Reference model of the MSE ratio (see :func:`comparison_table`).

    Returns
    -------
    str
        Plain text, no trailing newline.

    Raises
    ------
    ValueError
        If ``metrics`` does not have the run-metrics shape or ``reference`` is unknown.
    """
    table = comparison_table(metrics, reference=reference)
    z_table = redshift_table(metrics)
    parts = [format_table(table)]
    if not z_table.empty:
        parts[0] = format_table(table.rename(columns={"nmad": "nmad(pred-true)", "bias": "bias(pred-true)"}))
        parts += ["", "redshift targets: statistics of e_z = (pred - true) / (1 + true)",
                  "(sigma_iqr_ez = IQR / 1.349, sigma_nmad_ez = 1.4826 x MAD, bias_ez = median; "
                  "outliers: |e_z| > max(0.06, 3 sigma_iqr_ez); catastrophic: |e_z| > 0.15)",
                  format_table(z_table)]
    if metrics.get("low_end"):
        low = low_end_frame(metrics["low_end"])
        columns = ["model", "target", "quantile", "threshold", "n", "mae", "bias", "nmad", "slope"]
        parts += ["", "low end: the objects whose true value is at or below the quantile's threshold "
                  "(slope: of predicted on true there)", format_table(low[columns])]
    return "\n".join(parts)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, float_format: str = "{:.4g}", *,
                   headers: Mapping[str, str] | None = None) -> str:
    """A DataFrame as a Markdown table: numbers right-aligned, formatted with ``float_format``.

    Known metric names get readable headers (``nmad`` -> ``NMAD``, ``r2`` -> ``R²``);
    ``headers`` replaces or adds some of them.
    """
    names = {**_HEADERS, **(headers or {})}
    headers = [_md_escape(names.get(str(c), str(c))) for c in df.columns]
    aligns = ["---:" if _is_numeric_column(df[c]) else ":---" for c in df.columns]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(aligns) + " |"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(_format_cell(v, float_format)) for v in row) + " |")
    return "\n".join(lines)


def domain_markdown(frame: pd.DataFrame, split: str) -> str:
    """A report section counting the objects of ``frame`` outside the run's training domain, and why.

    Parameters
    ----------
    frame : pandas.DataFrame
        Predictions with ``in_domain`` (bool) and ``domain_reason`` (str: ``""`` or
        reasons joined by ``";"``), as :func:`astroreg.pipeline.predict` writes them.
    split : str
        Name of the split the predictions are on, for the text.

    Returns
    -------
    str
        A Markdown section (``## Training domain``), or ``""`` when ``frame`` has no
        ``in_domain`` column (a run without a training domain).

    Examples
    --------
    >>> frame = pd.DataFrame({"in_domain": [True, False], "domain_reason": ["", "input_distance"]})
    >>> print(domain_markdown(frame, "test").splitlines()[2])
    1 of 2 objects of the test split (50.0%) lie outside the training domain.
    """
    if "in_domain" not in frame.columns:
        return ""
    inside = frame["in_domain"].to_numpy(dtype=bool)
    n, n_out = len(inside), int((~inside).sum())
    lines = ["## Training domain", "",
             f"{n_out} of {n} objects of the {split} split ({n_out / max(n, 1):.1%}) lie outside the training domain."]
    from astroreg.preprocess._domain import count_reasons

    counts = count_reasons(frame["domain_reason"].to_numpy())
    counts.pop("")
    if counts:
        table = pd.DataFrame({"reason": list(counts), "objects": list(counts.values())})
        lines += ["", markdown_table(table.sort_values("objects", ascending=False, kind="stable"))]
    lines += ["", "Reasons: `input_distance`, the input is far from every training input (robust distance above "
              "the threshold chosen on the validation split); `coverage`, a spectrum with too few good pixels on "
              "the grid; `label_range:<target>`, a prediction outside the training labels' range; "
              "`category:<column>`, a category (e.g. SDSS `CLASS`) that no training object had. `astroreg predict` "
              "writes them per object in the `in_domain` and `domain_reason` columns."]
    return "\n".join(lines)


def _extra_metrics_table(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """Long table of the metrics beyond the regression set and the redshift table's."""
    rows = []
    keys: list[str] = []
    for model, targets in metrics["models"].items():
        for target, values in targets.items():
            shown = REGRESSION_METRICS + (REDSHIFT_METRICS if all(k in values for k in REDSHIFT_METRICS) else ())
            extra = {k: v for k, v in values.items() if k not in shown}
            if extra:
                keys.extend(k for k in extra if k not in keys)
                rows.append({"model": model, "target": target,
                             **{k: np.nan if v is None else float(v) for k, v in extra.items()}})
    return pd.DataFrame(rows, columns=["model", "target", *keys])


# --------------------------------------------------------------------------- metrics.json


def _to_json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    def number(v: Any) -> float | None:
        if v is None:
            return None
        f = float(v)
        # NaN and inf are not valid JSON; null is the portable "undefined".
        return f if math.isfinite(f) else None

    def tree(models: Mapping[str, Any]) -> dict[str, Any]:
        return {model: {target: {k: number(v) for k, v in values.items()} for target, values in targets.items()}
                for model, targets in models.items()}

    out = {"split": metrics["split"], "models": tree(metrics["models"])}
    if "low_end" in metrics:
        out["low_end"] = tree(metrics["low_end"])
    if "redshift_bins" in metrics:
        out["redshift_bins"] = {
            model: {target: [{k: int(v) if isinstance(v, (int, np.integer)) else number(v) for k, v in row.items()}
                             for row in rows] for target, rows in targets.items()}
            for model, targets in metrics["redshift_bins"].items()}
    return out


def write_metrics_json(path: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Validate run metrics and write them as JSON, atomically.

    Parameters
    ----------
    path : path-like
        Output file, usually ``<run_dir>/metrics.json``; parent folders are created.
    metrics : dict
        ``{"split": str, "models": {model: {target: {metric: number}}}}``. Numpy scalars
        are written as plain numbers; NaN and infinities as ``null``. The metric names
        of a run: ``mae, mse, rmse, r2, nmad, bias`` for every target, all of the raw
        error ``pred - true`` (``nmad`` = 1.4826 x its median absolute deviation,
        ``bias`` = its median); a redshift target (``kind: redshift``) adds the
        statistics of ``e_z = (pred - true) / (1 + true)``: ``sigma_iqr_ez`` (IQR / 1.349),
        ``sigma_nmad_ez`` (1.4826 x median ``|e_z - median(e_z)|``), ``bias_ez``
        (median ``e_z``), ``outlier_rate`` (fraction with ``|e_z| > max(0.06, 3
        sigma_iqr_ez)``) and ``catastrophic_rate`` (fraction with ``|e_z| > 0.15``).
        The ``_ez`` suffix keeps them apart from ``nmad`` and ``bias`` of the raw error.
        An optional ``"low_end"`` entry, of the same ``{model: {target: {name: number}}}``
        shape, holds the low end of the true value (``evaluation.regimes``): ``mae``,
        ``bias``, ``nmad``, ``n``, ``slope``, ``quantile`` and ``threshold``. An optional
        ``"redshift_bins"`` entry, ``{model: {target: [bin, ...]}}``, holds for each bin of
        the true redshift its ``bin_lo``, ``bin_hi``, ``n``, ``mae`` (of z) and the ``e_z``
        statistics above (:func:`~astroreg.evaluation.redshift_bin_metrics`; an empty bin
        has ``n = 0`` and ``null`` statistics).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If ``metrics`` does not have that shape (unknown top-level keys, a model entry
        that is not a dict of target -> metric dict, a non-numeric metric, ...).

    Examples
    --------
    >>> write_metrics_json("runs/x/metrics.json",
    ...     {"split": "test", "models": {"mlp": {"teff": {"rmse": 95.0}}}})  # doctest: +SKIP
    """
    _validate_metrics(metrics)
    text = json.dumps(_to_json_metrics(metrics), indent=2, allow_nan=False) + "\n"
    out = Path(path)
    atomic_write_text(out, text)
    return out


def read_metrics_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a file written by :func:`write_metrics_json`.

    Parameters
    ----------
    path : path-like
        A ``metrics.json`` file.

    Returns
    -------
    dict
        Run metrics; ``null`` values come back as NaN.

    Raises
    ------
    ValueError
        If the file is not valid JSON or does not have the run-metrics shape.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    _validate_metrics(data)
    binned = [row for targets in data.get("redshift_bins", {}).values() for rows in targets.values() for row in rows]
    for targets in [*data["models"].values(), *data.get("low_end", {}).values()]:
        binned.extend(targets.values())
    for values in binned:
        for k, v in values.items():
            if v is None:
                values[k] = float("nan")
    return data


# --------------------------------------------------------------------------- report


def _plain_tree(obj: Any) -> Any:
    """Turn a config / environment object into YAML-safe builtins."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = dataclasses.asdict(obj)
    elif hasattr(obj, "model_dump") and callable(obj.model_dump):
        obj = obj.model_dump()
    if isinstance(obj, Mapping):
        return {str(k): _plain_tree(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [_plain_tree(v) for v in items]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, enum.Enum):
        return _plain_tree(obj.value)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows.extend(_flatten(value, prefix=f"{name}."))
        else:
            rows.append((name, "" if value is None else str(value)))
    return rows


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def _resolve_plot(run_dir: Path, path: str | os.PathLike) -> Path | None:
    p = Path(path)
    candidates = [p] if p.is_absolute() else [run_dir / p, p]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return None


def _link(run_dir: Path, path: Path) -> str:
    rel = os.path.relpath(path.resolve(), run_dir.resolve())
    return quote(Path(rel).as_posix(), safe="/._-~")


def write_report(
    run_dir: str | os.PathLike,
    *,
    title: str,
    metrics: Mapping[str, Any],
    classifier_metrics: Mapping[str, Mapping[str, Any]],
    config: Mapping[str, Any],
    environment: Mapping[str, Any],
    plots: Mapping[str, Sequence[str | os.PathLike]],
    notes: Sequence[str] = (),
    reference: str | None = None,
    sections: Sequence[str] = (),
) -> Path:
    """Write ``<run_dir>/report.md``, the human-readable summary of a run, atomically.

    The report holds, in order: the title and notes; the regression comparison table
    (one row per model and target with MAE, MSE, RMSE, R², NMAD, bias and the MSE
    ratio to ``reference``); for redshift targets the statistics of ``e_z = (pred -
    true) / (1 + true)`` (:func:`redshift_table`, the raw-error columns then headed
    ``NMAD(pred - true)`` and ``bias(pred - true)``); further metrics; the
    classifier table with accuracies and confusion matrices (drawn to
    ``<run_dir>/plots/confusion_<model>.png``); the plots, linked relative to
    ``run_dir``; the resolved configuration as a YAML block; and the environment.

    Parameters
    ----------
    run_dir : path-like
        Run folder; created if needed.
    title : str
        Report title (first heading).
    metrics : dict
        Regression metrics, ``{"split": str, "models": {model: {target: {metric: value}}}}``.
    classifier_metrics : dict
        ``{model: {"accuracy": float, "confusion_matrix": [[int]], "labels": [..]}}``;
        may be empty.
    config : dict
        Resolved configuration (dicts, dataclasses or pydantic models), shown as YAML.
    environment : dict
        Versions and hardware, e.g. ``{"python": "3.11.9", "torch": "2.3.1",
        "device": "cuda:0 (NVIDIA H100)"}``; nested dicts are flattened with dots.
    plots : dict of str to list of path-like
        Section heading -> PNG files. Relative paths are looked up under ``run_dir``
        first, then from the working directory. Every file must exist.
    notes : sequence of str, optional
        Bullet points shown under the title (caveats, warnings from the run).
    reference : str, optional
        Reference model of the MSE ratio; see :func:`comparison_table`.
    sections : sequence of str, optional
        Further Markdown sections (each starting with a ``## `` heading), placed after
        the regression results, e.g. those of
        :func:`~astroreg.evaluation.recipe_report_sections`.

    Returns
    -------
    pathlib.Path
        Path of ``report.md``.

    Raises
    ------
    ValueError
        If ``metrics`` or ``classifier_metrics`` are malformed, ``reference`` is unknown,
        or a plot file does not exist.

    Examples
    --------
    >>> write_report("runs/demo", title="Mock survey", metrics=metrics,
    ...              classifier_metrics={}, config=cfg, environment=env,
    ...              plots={"teff": [Path("runs/demo/plots/teff_pred_vs_true.png")]})
    ... # doctest: +SKIP
    """
    run = Path(run_dir)
    table = comparison_table(metrics, reference)
    _validate_classifiers(classifier_metrics)
    if isinstance(notes, str):
        notes = [notes]

    resolved: dict[str, list[Path]] = {}
    missing: list[str] = []
    for section, paths in plots.items():
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        found = []
        for p in paths:
            hit = _resolve_plot(run, p)
            if hit is None:
                missing.append(str(p))
            else:
                found.append(hit)
        resolved[str(section)] = found
    if missing:
        raise ValueError(
            f"plot file(s) not found: {missing}; looked under {run} and the working directory; "
            "draw the plots before writing the report"
        )

    run.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]

    split = metrics["split"]
    lines += [f"## Regression results ({split} split)", ""]
    if table.empty:
        lines += ["No regression models were evaluated.", ""]
    else:
        z_table = redshift_table(metrics)
        lines += [
            f"Reference model for the MSE ratio: `{table.attrs['reference']}` "
            "(a ratio below 1 is better than the reference).",
            "",
            markdown_table(table, headers=_RAW_HEADERS if not z_table.empty else None),
            "",
        ]
        if not z_table.empty:
            lines += ["### Redshift statistics of e_z = (pred - true) / (1 + true)", "",
                      markdown_table(z_table, headers=_Z_HEADERS), "",
                      "σ_IQR(e_z): inter-quartile range of e_z / 1.349; σ_NMAD(e_z): 1.4826 x median "
                      "|e_z - median(e_z)|; bias(e_z): median e_z; outlier rate: fraction with |e_z| > "
                      "max(0.06, 3 σ_IQR(e_z)); catastrophic rate: fraction with |e_z| > 0.15. "
                      "NMAD and bias in the table above are of pred - true.", ""]
        extra = _extra_metrics_table(metrics)
        if not extra.empty:
            lines += ["### Further metrics", "", markdown_table(extra), ""]
    for section in sections:
        if section.strip():
            lines += [section.rstrip("\n"), ""]

    if classifier_metrics:
        lines += [f"## Classifiers ({split} split)", ""]
        summary = pd.DataFrame(
            [{"model": m, "accuracy": float(e["accuracy"]), "classes": len(e["labels"])}
             for m, e in classifier_metrics.items()],
            columns=["model", "accuracy", "classes"],
        )
        lines += [markdown_table(summary), ""]
        for model, entry in classifier_metrics.items():
            labels = [str(v) for v in entry["labels"]]
            matrix = np.asarray(entry["confusion_matrix"])
            image = plot_confusion_matrix(
                matrix, labels, run / "plots" / f"confusion_{_slug(model)}.png",
                title=f"{model} ({split})",
            )
            cm = pd.DataFrame(matrix.astype(int), columns=labels)
            cm.insert(0, "true \\ predicted", labels)
            lines += [
                f"### {model}",
                "",
                markdown_table(cm),
                "",
                f"![confusion matrix of {_md_escape(model)}]({_link(run, image)})",
                "",
            ]

    if resolved:
        lines += ["## Plots", ""]
        for section, paths in resolved.items():
            lines += [f"### {section}", ""]
            for p in paths:
                lines += [f"![{p.stem}]({_link(run, p)})", ""]

    config_text = yaml.safe_dump(
        _plain_tree(config), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    lines += ["## Configuration", "", "```yaml", config_text.rstrip("\n"), "```", ""]

    lines += ["## Environment", ""]
    env_rows = _flatten(_plain_tree(environment)) if environment else []
    if env_rows:
        lines += ["| item | value |", "| :--- | :--- |"]
        lines += [f"| {_md_escape(k)} | {_md_escape(v)} |" for k, v in env_rows]
    else:
        lines += ["Not recorded."]
    lines += [""]

    out = run / REPORT_NAME
    atomic_write_text(out, "\n".join(lines))
    return out
