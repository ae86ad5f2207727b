"""Regime diagnostics: metrics in bins of the true target, the low end, median collapse.

A network trained on an imbalanced target tends to predict the median of a sparse regime
instead of resolving it (paper 000: low star-formation surface density). Within each bin
of the true value the slope of predicted against true says which: near 1 the bin is
resolved, near 0 the model answers the bin's median whatever the truth.

A redshift target gets its photo-z statistics in fixed bins of the true redshift
(:func:`redshift_bin_metrics`; paper 004's six bins of width 0.1 over 0 <= z <= 0.6 by
default, :data:`REDSHIFT_BIN_EDGES`), on the same bin assignment (:func:`assign_bins`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from astroreg.evaluation._metrics import NMAD_SCALE, REDSHIFT_METRICS, _check_pair, redshift_metrics

REGIME_COLUMNS = ("bin", "bin_lo", "bin_hi", "n", "mae", "rmse", "bias", "nmad", "slope", "median_true",
                  "median_pred")
LOW_END_KEYS = ("mae", "bias", "nmad", "n", "quantile", "threshold")
REDSHIFT_BIN_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
"""Edges of the default bins of true redshift (paper 004, Gaia XP galaxies: six bins of 0.1 up to z = 0.6)."""
REDSHIFT_BIN_COLUMNS = ("bin", "bin_lo", "bin_hi", "n", "mae", *REDSHIFT_METRICS)
"""Columns of :func:`redshift_bin_metrics`: ``mae`` is of ``z`` itself, the rest of ``e_z``."""


def quantile_edges(y_true: ArrayLike, bins: int = 5) -> NDArray[np.float64]:
    """Edges of ``bins`` bins holding equal numbers of objects (quantiles of ``y_true``).

    Repeated quantiles (many equal values) are merged, so fewer bins may come back.

    Parameters
    ----------
    y_true : array-like of shape (n_objects,)
        Finite true values.
    bins : int
        Number of bins wanted (>= 1).

    Returns
    -------
    numpy.ndarray of shape (n_bins + 1,)
        Strictly increasing edges from the minimum to the maximum.
    """
    t = np.asarray(y_true, dtype=np.float64)
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    if t.size == 0 or not np.all(np.isfinite(t)):
        raise ValueError(f"quantile bins need a non-empty array of finite values; got {t.size} values")
    edges = np.unique(np.quantile(t, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size < 2:
        edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
    return edges


def assign_bins(y_true: ArrayLike, edges: ArrayLike, *, outside: str = "nearest") -> NDArray[np.int64]:
    """Bin of each value: ``[lo, hi)`` except the last bin, closed.

    Values outside the edges get the nearest end bin (``outside="nearest"``, for quantile
    edges of the same values) or -1 (``outside="none"``, for fixed edges such as
    :data:`REDSHIFT_BIN_EDGES`: a z = 1.2 quasar does not belong to the 0.5-0.6 bin).
    """
    if outside not in ("nearest", "none"):
        raise ValueError(f"outside must be 'nearest' or 'none', got {outside!r}")
    t = np.asarray(y_true, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    index = np.clip(np.searchsorted(e, t, side="right") - 1, 0, e.size - 2).astype(np.int64)
    if outside == "none":
        index[(t < e[0]) | (t > e[-1])] = -1
    return index


def _slope(t: NDArray, p: NDArray) -> float:
    """Least-squares slope of ``p`` on ``t``; NaN when ``t`` does not vary."""
    if t.size < 2:
        return float("nan")
    dt = t - t.mean()
    var = float(np.sum(dt**2))
    return float(np.sum(dt * (p - p.mean())) / var) if var > 0 else float("nan")


def _stats(t: NDArray, p: NDArray) -> dict[str, float]:
    e = p - t
    if e.size == 0:
        return {"n": 0, "mae": np.nan, "rmse": np.nan, "bias": np.nan, "nmad": np.nan, "slope": np.nan,
                "median_true": np.nan, "median_pred": np.nan}
    bias = float(np.median(e))
    return {"n": int(e.size), "mae": float(np.mean(np.abs(e))), "rmse": float(np.sqrt(np.mean(e**2))),
            "bias": bias, "nmad": NMAD_SCALE * float(np.median(np.abs(e - bias))), "slope": _slope(t, p),
            "median_true": float(np.median(t)), "median_pred": float(np.median(p))}


def regime_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, *, bins: int = 5, edges: ArrayLike | None = None,
) -> pd.DataFrame:
    """Metrics and the slope of predicted against true in quantile bins of the true value.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values (same unit); both finite.
    bins : int, default 5
        Number of quantile bins (equal numbers of objects) when ``edges`` is not given.
    edges : array-like of shape (n_bins + 1,), optional
        Bin edges instead of quantiles (values outside go to the nearest end bin).

    Returns
    -------
    pandas.DataFrame
        One row per bin with columns ``bin, bin_lo, bin_hi, n, mae, rmse, bias, nmad,
        slope, median_true, median_pred``: errors of ``pred - true`` in the values' unit;
        ``slope`` is the least-squares slope of ``pred`` on ``true`` within the bin (1:
        resolved, 0: the bin's median predicted whatever the truth).

    Examples
    --------
    >>> t = np.linspace(0, 1, 100)
    >>> regime_metrics(t, t, bins=2)["slope"].round(6).tolist()
    [1.0, 1.0]
    """
    t, p = _check_pair(y_true, y_pred)
    e = quantile_edges(t, bins) if edges is None else np.asarray(edges, dtype=np.float64)
    index = assign_bins(t, e)
    rows = []
    for k in range(e.size - 1):
        sel = index == k
        rows.append({"bin": k, "bin_lo": float(e[k]), "bin_hi": float(e[k + 1]), **_stats(t[sel], p[sel])})
    return pd.DataFrame(rows, columns=list(REGIME_COLUMNS))


def low_end_metrics(y_true: ArrayLike, y_pred: ArrayLike, *, low_quantile: float = 0.2) -> dict[str, float]:
    """MAE, bias (median error), NMAD and count of the objects at or below a quantile of the truth.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values (same unit); both finite.
    low_quantile : float, default 0.2
        The low end is ``y_true <= quantile(y_true, low_quantile)`` (0.2: lowest quintile).

    Returns
    -------
    dict
        ``mae, bias, nmad`` (unit of the values), ``n``, ``quantile`` and ``threshold``
        (the true value at that quantile), plus ``slope`` of predicted against true there.
    """
    if not 0 < low_quantile < 1:
        raise ValueError(f"low_quantile must be in (0, 1), got {low_quantile}")
    t, p = _check_pair(y_true, y_pred)
    threshold = float(np.quantile(t, low_quantile))
    s = _stats(t[t <= threshold], p[t <= threshold])
    return {"mae": s["mae"], "bias": s["bias"], "nmad": s["nmad"], "n": s["n"], "slope": s["slope"],
            "quantile": float(low_quantile), "threshold": threshold}


def regimes_for_frames(
    frames: Mapping[str, pd.DataFrame], target: str, *, bins: int = 5, low_quantile: float = 0.2,
) -> tuple[pd.DataFrame, dict[str, dict[str, dict[str, float]]]]:
    """Regime table and low-end entry of every model, on the same bins of the truth.

    Parameters
    ----------
    frames : mapping of model name -> DataFrame
        Each with ``<target>_true`` and ``<target>_pred`` columns (rows without a truth are left out).
    target : str
    bins, low_quantile : see :func:`regime_metrics` and :func:`low_end_metrics`

    Returns
    -------
    table : pandas.DataFrame
        :func:`regime_metrics` rows with ``model`` and ``target`` columns in front.
    low_end : dict
        ``{model: {target: low_end_metrics(...)}}``, the ``low_end`` entry of ``metrics.json``.
    """
    tables, low = [], {}
    edges = None
    for model, frame in frames.items():
        known = frame[np.isfinite(frame[f"{target}_true"].to_numpy(float))]
        t, p = known[f"{target}_true"].to_numpy(float), known[f"{target}_pred"].to_numpy(float)
        if edges is None:
            edges = quantile_edges(t, bins)
        tables.append(regime_metrics(t, p, edges=edges).assign(model=model, target=target))
        low[model] = {target: low_end_metrics(t, p, low_quantile=low_quantile)}
    table = pd.concat(tables, ignore_index=True)
    return table[["model", "target", *REGIME_COLUMNS]], low


def low_end_frame(low_end: Mapping[str, Any]) -> pd.DataFrame:
    """The ``low_end`` entry of the metrics (``{model: {target: {name: value}}}``) as one row per model and target."""
    rows = [{"model": m, "target": t, **v} for m, targets in low_end.items() for t, v in targets.items()]
    return pd.DataFrame(rows)


def regimes_markdown(table: pd.DataFrame, low_end: Mapping[str, Any], *, unit: str | None = None) -> str:
    """The report section: the low end of every model, then the per-bin table."""
    from astroreg.evaluation._report import markdown_table

    u = f" [{unit}]" if unit else ""
    low = low_end_frame(low_end)
    q = low["quantile"].iloc[0]
    lines = [
        "## Regimes of the true value",
        "",
        (f"Low end: objects with a true value at or below its {100 * q:g}th percentile "
         f"({low['threshold'].iloc[0]:.4g}{u}); MAE, bias (median of pred - true) and NMAD{u}; slope of "
         "predicted against true (1: resolved, 0: the median predicted)."),
        "",
        markdown_table(low[["model", "target", "n", "mae", "bias", "nmad", "slope"]]),
        "",
        "Quantile bins of the true value (equal numbers of objects), `metrics_regimes.csv`:",
        "",
        markdown_table(table[["model", "bin", "bin_lo", "bin_hi", "n", "mae", "bias", "nmad", "slope"]]),
    ]
    return "\n".join(lines)


def plot_regimes(
    y_true: ArrayLike, y_pred: ArrayLike, path: str | os.PathLike, *, edges: Sequence[float],
    low_threshold: float | None = None, label: str = "value", unit: str | None = None, title: str | None = None,
    hexbin_threshold: int = 5000,
) -> Path:
    """Residual against true value with the regime bins, their median residual and the low end shaded.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values, in ``unit``.
    path : path-like
        Output PNG file.
    edges : sequence of float
        Regime bin edges (e.g. from :func:`quantile_edges`).
    low_threshold : float, optional
        Upper end of the low-end region, shaded.
    label, unit, title : str, optional
    hexbin_threshold : int
        Above this many objects a log hexbin replaces the scatter.

    Returns
    -------
    pathlib.Path
    """
    from astroreg.evaluation._plots import (
        _axis_label,
        _binned,
        _finish,
        _png_path,
        _residual_axes,
    )

    out = _png_path(path)
    t, p = _check_pair(y_true, y_pred)
    r = p - t
    e = np.asarray(edges, dtype=np.float64)
    fig, ax = _residual_axes(t, r, hexbin_threshold)
    if low_threshold is not None:
        ax.axvspan(t.min(), low_threshold, color="tab:orange", alpha=0.15, label="low end")
    for x in e[1:-1]:
        ax.axvline(x, color="grey", lw=0.8, ls=":")
    per_bin = _binned(t, r, assign_bins(t, e), e.size - 1, np.median)
    ax.plot([c for c, _ in per_bin], [m for _, m in per_bin], "o-", color="tab:red", lw=2.0,
            label="median residual per bin")
    ax.legend(loc="upper right")
    return _finish(fig, ax, out, xlabel=_axis_label("true", label, unit),
                   ylabel=_axis_label("pred - true", label, unit), title=title)


# -- redshift in fixed bins of the true redshift --------------------------------------------
def redshift_bin_edges(setting: Sequence[float] | None) -> tuple[float, ...]:
    """The edges of a recipe's ``evaluation.redshift_bins``: :data:`REDSHIFT_BIN_EDGES` for None, () for none."""
    return REDSHIFT_BIN_EDGES if setting is None else tuple(float(x) for x in setting)


def check_redshift_edges(edges: ArrayLike) -> NDArray[np.float64]:
    """``edges`` as a float array, or a ValueError naming ``evaluation.redshift_bins``.

    Raises
    ------
    ValueError
        Unless there are at least two finite, strictly increasing edges above -1.
    """
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.isfinite(e).all() or np.any(np.diff(e) <= 0) or e[0] <= -1:
        raise ValueError(
            f"evaluation.redshift_bins must be at least two finite, strictly increasing redshifts above -1, got "
            f"{np.atleast_1d(e).tolist()}; e.g. [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], or [] for no redshift bins"
        )
    return e


def redshift_bin_metrics(
    z_true: ArrayLike, z_pred: ArrayLike, edges: ArrayLike = REDSHIFT_BIN_EDGES,
) -> pd.DataFrame:
    """Photo-z statistics in bins of the true redshift.

    Parameters
    ----------
    z_true, z_pred : array-like of shape (n_objects,)
        True (spectroscopic) and predicted redshifts, finite, ``z_true > -1``.
    edges : array-like of shape (n_bins + 1,), default :data:`REDSHIFT_BIN_EDGES`
        Bin edges in true redshift; bins are ``[lo, hi)``, the last one ``[lo, hi]``.
        Objects outside the edges are in no bin.

    Returns
    -------
    pandas.DataFrame
        One row per bin with the columns :data:`REDSHIFT_BIN_COLUMNS`: ``bin``, ``bin_lo``,
        ``bin_hi`` (true z), ``n``, ``mae`` (mean ``|z_pred - z_true|``) and the
        :func:`~astroreg.evaluation.redshift_metrics` of ``e_z = (z_pred - z_true) / (1 +
        z_true)`` within the bin: ``sigma_iqr_ez``, ``sigma_nmad_ez``, ``bias_ez``,
        ``outlier_rate`` (its threshold ``max(0.06, 3 sigma_iqr_ez)`` is the bin's own) and
        ``catastrophic_rate``. An empty bin has ``n = 0`` and NaN statistics.

    Raises
    ------
    ValueError
        On invalid redshifts (see :func:`~astroreg.evaluation.redshift_metrics`) or edges.

    Examples
    --------
    >>> t = redshift_bin_metrics([0.05, 0.15, 0.15], [0.05, 0.15, 0.38], edges=[0, 0.1, 0.2, 0.3])
    >>> t["n"].tolist(), round(float(t["mae"].iloc[1]), 3), t["catastrophic_rate"].tolist()[:2]
    ([1, 2, 0], 0.115, [0.0, 0.5])
    """
    t, p = _check_pair(z_true, z_pred, ("z_true", "z_pred"))
    e = check_redshift_edges(edges)
    index = assign_bins(t, e, outside="none")
    rows = []
    for k in range(e.size - 1):
        sel = index == k
        row: dict[str, Any] = {"bin": k, "bin_lo": float(e[k]), "bin_hi": float(e[k + 1]), "n": int(sel.sum())}
        if sel.any():
            row["mae"] = float(np.mean(np.abs(p[sel] - t[sel])))
            row.update(redshift_metrics(t[sel], p[sel]))
        else:
            row.update(dict.fromkeys(REDSHIFT_BIN_COLUMNS[4:], np.nan))
        rows.append(row)
    return pd.DataFrame(rows, columns=list(REDSHIFT_BIN_COLUMNS))


def redshift_bins_for_frames(
    frames: Mapping[str, pd.DataFrame], targets: Sequence[str], edges: ArrayLike = REDSHIFT_BIN_EDGES,
) -> tuple[pd.DataFrame, dict[str, dict[str, list[dict[str, float]]]], dict[str, int]]:
    """Redshift-bin table of every model and redshift target, on the same edges.

    Parameters
    ----------
    frames : mapping of model name -> DataFrame
        Each with ``<target>_true`` and ``<target>_pred`` columns (rows without a truth are left out).
    targets : sequence of str
        The redshift targets.
    edges : array-like
        Bin edges in true redshift (see :func:`redshift_bin_metrics`).

    Returns
    -------
    table : pandas.DataFrame
        :func:`redshift_bin_metrics` rows with ``model`` and ``target`` columns in front
        (``metrics_redshift_bins.csv``).
    entry : dict
        ``{model: {target: [bin row, ...]}}``, the ``redshift_bins`` entry of ``metrics.json``
        (each row: ``bin_lo, bin_hi, n, mae, sigma_iqr_ez, ...``).
    outside : dict
        ``{target: number of labelled objects outside the edges}`` (of the first model's frame).
    """
    tables, entry, outside = [], {}, {}
    e = check_redshift_edges(edges)
    for model, frame in frames.items():
        for target in targets:
            t = frame[f"{target}_true"].to_numpy(float)
            known = np.isfinite(t)
            t, p = t[known], frame[f"{target}_pred"].to_numpy(float)[known]
            table = redshift_bin_metrics(t, p, e)
            outside.setdefault(target, int(np.sum((t < e[0]) | (t > e[-1]))))
            tables.append(table.assign(model=model, target=target))
            entry.setdefault(model, {})[target] = [
                {k: v for k, v in row.items() if k != "bin"} for row in table.to_dict(orient="records")]
    table = pd.concat(tables, ignore_index=True)
    return table[["model", "target", *REDSHIFT_BIN_COLUMNS]], entry, outside


_Z_BIN_HEADERS = {"n": "n", "mae": "MAE(z)", "sigma_nmad_ez": "σ_NMAD(e_z)", "sigma_iqr_ez": "σ_IQR(e_z)",
                  "bias_ez": "bias(e_z)", "outlier_rate": "outlier rate", "catastrophic_rate": "catastrophic rate"}


def redshift_bins_markdown(table: pd.DataFrame, outside: Mapping[str, int] | None = None) -> str:
    """The report section: the statistics of every model in each bin of true redshift.

    Parameters
    ----------
    table : pandas.DataFrame
        The table of :func:`redshift_bins_for_frames`.
    outside : mapping of target -> int, optional
        Labelled objects outside the bins, mentioned under the table.
    """
    from astroreg.evaluation._report import markdown_table

    shown = table.copy()
    shown.insert(2, "z_true", [f"{lo:g}-{hi:g}" for lo, hi in zip(shown["bin_lo"], shown["bin_hi"])])
    columns = ["model", "target", "z_true", *_Z_BIN_HEADERS]
    if shown["target"].nunique() == 1:
        columns.remove("target")
    lines = [
        "## Redshift statistics in bins of true z",
        "",
        ("e_z = (pred - true) / (1 + true) in each bin of the true redshift (`metrics_redshift_bins.csv`; "
         "`redshift_bins` in `metrics.json`): MAE(z) is of z itself; σ_NMAD(e_z) = 1.4826 x median "
         "|e_z - median(e_z)|, σ_IQR(e_z) = IQR / 1.349, bias(e_z) = median e_z; outliers: |e_z| > max(0.06, "
         "3 σ_IQR(e_z)) of the bin; catastrophic: |e_z| > 0.15. An empty bin has n = 0 and no statistics."),
        "",
        markdown_table(shown[columns], headers=_Z_BIN_HEADERS),
    ]
    left = {t: n for t, n in (outside or {}).items() if n}
    if left:
        lo, hi = float(table["bin_lo"].min()), float(table["bin_hi"].max())
        lines += ["", "Objects with a true value outside " + f"{lo:g} <= z <= {hi:g}, in no bin: "
                  + ", ".join(f"{n} ({t})" for t, n in left.items()) + "."]
    return "\n".join(lines)


def plot_redshift_bins(
    table: pd.DataFrame, path: str | os.PathLike, *, target: str | None = None, title: str | None = None,
) -> Path:
    """Median bias of e_z, sigma_NMAD(e_z) and the outlier rate against true z, one line per model; n per bin.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of :func:`redshift_bins_for_frames` (``model``, ``bin_lo``, ``bin_hi``, ``n``
        and the ``e_z`` statistics), or of :func:`redshift_bin_metrics` (one model).
    path : path-like
        Output PNG file.
    target : str, optional
        The target to draw when ``table`` holds several.
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    from astroreg.evaluation._plots import _new_figure, _png_path, save_figure

    out = _png_path(path)
    rows = table if target is None or "target" not in table else table[table["target"] == target]
    if rows.empty:
        raise ValueError(f"no redshift-bin rows for target {target!r}; targets are {sorted(set(table['target']))}")
    models = list(dict.fromkeys(rows["model"])) if "model" in rows else [None]
    fig = _new_figure(6.5, 8.0)
    axes = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [3, 3, 3, 1.6]})
    panels = (("bias_ez", "median bias(e_z)"), ("sigma_nmad_ez", "σ_NMAD(e_z)"), ("outlier_rate", "outlier rate"))
    first = rows if models == [None] else rows[rows["model"] == models[0]]
    lo, hi = first["bin_lo"].to_numpy(float), first["bin_hi"].to_numpy(float)
    centre, width = (lo + hi) / 2, hi - lo
    for model in models:
        part = rows if model is None else rows[rows["model"] == model]
        x = ((part["bin_lo"] + part["bin_hi"]) / 2).to_numpy(float)
        for ax, (key, _) in zip(axes, panels):
            ax.plot(x, part[key].to_numpy(float), "o-", lw=1.5, ms=4, label=model)
    axes[0].axhline(0.0, color="black", lw=0.8, ls="--")
    for ax, (_, label) in zip(axes, panels):
        ax.set_ylabel(label)
        for edge in np.r_[lo, hi[-1:]]:
            ax.axvline(edge, color="grey", lw=0.5, ls=":")
    if models != [None]:
        axes[0].legend(loc="best", fontsize=8)
    n = first["n"].to_numpy(int)
    axes[3].bar(centre, n, width=0.9 * width, color="tab:grey")
    for xc, k in zip(centre, n):
        axes[3].annotate(str(k), (xc, k), ha="center", va="bottom", fontsize=8)
    axes[3].set_ylabel("n")
    axes[3].set_ylim(0, max(1, int(n.max())) * 1.3)
    axes[3].set_xlabel(f"true {target or 'z'}")
    if title:
        axes[0].set_title(title)
    return save_figure(fig, out)
