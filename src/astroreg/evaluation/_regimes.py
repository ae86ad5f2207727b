"""Regime diagnostics: metrics in quantile bins of the true target, the low end, median collapse.

A network trained on an imbalanced target tends to predict the median of a sparse regime
instead of resolving it (paper 000: low star-formation surface density). Within each bin
of the true value the slope of predicted against true says which: near 1 the bin is
resolved, near 0 the model answers the bin's median whatever the truth.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from astroreg.evaluation._metrics import NMAD_SCALE, _check_pair

REGIME_COLUMNS = ("bin", "bin_lo", "bin_hi", "n", "mae", "rmse", "bias", "nmad", "slope", "median_true",
                  "median_pred")
LOW_END_KEYS = ("mae", "bias", "nmad", "n", "quantile", "threshold")


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


def assign_bins(y_true: ArrayLike, edges: ArrayLike) -> NDArray[np.int64]:
    """Bin of each value: ``[lo, hi)`` except the last bin, closed; values outside get the nearest end bin."""
    t = np.asarray(y_true, dtype=np.float64)
    e = np.asarray(edges, dtype=np.float64)
    return np.clip(np.searchsorted(e, t, side="right") - 1, 0, e.size - 2).astype(np.int64)


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


def regimes_markdown(table: pd.DataFrame, low_end: Mapping[str, Any], *, unit: str | None = None) -> str:
    """The report section: the low end of every model, then the per-bin table."""
    from astroreg.evaluation._report import markdown_table

    u = f" [{unit}]" if unit else ""
    rows = [{"model": m, "target": t, **v} for m, targets in low_end.items() for t, v in targets.items()]
    low = pd.DataFrame(rows)
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
        _density,
        _new_figure,
        _png_path,
        _save,
    )

    out = _png_path(path)
    t, p = _check_pair(y_true, y_pred)
    r = p - t
    e = np.asarray(edges, dtype=np.float64)
    fig = _new_figure(7.0, 4.5)
    ax = fig.add_subplot()
    _density(ax, fig, t, r, hexbin_threshold)
    ax.axhline(0.0, color="black", lw=1.0, ls="--")
    if low_threshold is not None:
        ax.axvspan(t.min(), low_threshold, color="tab:orange", alpha=0.15, label="low end")
    for x in e[1:-1]:
        ax.axvline(x, color="grey", lw=0.8, ls=":")
    index = assign_bins(t, e)
    centres = [np.median(t[index == k]) for k in range(e.size - 1) if np.any(index == k)]
    medians = [np.median(r[index == k]) for k in range(e.size - 1) if np.any(index == k)]
    ax.plot(centres, medians, "o-", color="tab:red", lw=2.0, label="median residual per bin")
    ax.legend(loc="upper right")
    ax.set_xlabel(_axis_label("true", label, unit))
    ax.set_ylabel(_axis_label("pred - true", label, unit))
    if title:
        ax.set_title(title)
    return _save(fig, out)
