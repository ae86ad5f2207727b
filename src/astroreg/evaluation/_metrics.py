"""Point-estimate metrics for regression, photometric redshifts and classification.

All regression metrics use the error ``e = y_pred - y_true`` (prediction minus truth),
so a positive bias means the model over-predicts.

Metric names (the keys of ``metrics.json``)
-------------------------------------------
Every regression target gets :data:`REGRESSION_METRICS`, all of the raw error ``e``:

- ``mae``, ``mse``, ``rmse``, ``r2``;
- ``nmad``: ``1.4826 * median(|e - median(e)|)``;
- ``bias``: ``median(e)``.

A redshift target (recipe ``targets[].kind: redshift``) also gets
:data:`REDSHIFT_METRICS`, all of ``e_z = (z_pred - z_true) / (1 + z_true)``; the
``_ez`` suffix marks the statistics that also exist for ``e`` above:

- ``sigma_iqr_ez``: inter-quartile range of ``e_z`` divided by 1.349;
- ``sigma_nmad_ez``: ``1.4826 * median(|e_z - median(e_z)|)`` (not ``nmad``, which is of ``e``);
- ``bias_ez``: ``median(e_z)`` (not ``bias``, which is of ``e``);
- ``outlier_rate``: fraction with ``|e_z| > max(0.06, 3 * sigma_iqr_ez)``;
- ``catastrophic_rate``: fraction with ``|e_z| > 0.15``.

scikit-learn is imported when a metric is first computed, so that importing this
module (as the run folder code does) stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "NMAD_SCALE",
    "REGRESSION_METRICS",
    "REDSHIFT_METRICS",
    "regression_metrics",
    "redshift_metrics",
    "classification_metrics",
    "binned_metrics",
    "evaluate_predictions",
    "labelled_metrics",
    "robust_residual_stats",
    "residuals_by_snr",
    "snr_bin_labels",
]

#: Scale that turns a median absolute deviation into a Gaussian sigma.
NMAD_SCALE = 1.4826
#: Ratio of the inter-quartile range to sigma for a Gaussian.
IQR_TO_SIGMA = 1.349
#: Floor of the redshift outlier threshold on ``|dz / (1 + z)|``.
OUTLIER_FLOOR = 0.06
#: Threshold on ``|dz / (1 + z)|`` above which an estimate is catastrophic.
CATASTROPHIC_THRESHOLD = 0.15

#: Keys returned by :func:`regression_metrics`, in order.
REGRESSION_METRICS = ("mae", "mse", "rmse", "r2", "nmad", "bias")
#: Keys returned by :func:`redshift_metrics`, in order (see the module docstring).
REDSHIFT_METRICS = ("sigma_iqr_ez", "sigma_nmad_ez", "bias_ez", "outlier_rate", "catastrophic_rate")

_MAX_LISTED = 10


def _describe_positions(mask: NDArray[np.bool_]) -> str:
    positions = np.flatnonzero(mask)
    shown = ", ".join(str(int(i)) for i in positions[:_MAX_LISTED])
    more = f", ... ({positions.size - _MAX_LISTED} more)" if positions.size > _MAX_LISTED else ""
    return f"[{shown}{more}]"


def _check_pair(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    names: tuple[str, str] = ("y_true", "y_pred"),
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Return ``(y_true, y_pred)`` as finite 1-D float arrays of equal length.

    Raises
    ------
    ValueError
        If the shapes differ, an array is not 1-D, the input is empty, or any value is
        NaN or infinite (the message gives the count and positions per array).
    """
    arrays = []
    for name, values in zip(names, (y_true, y_pred)):
        try:
            arr = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be numeric; could not convert it to floats ({exc})") from exc
        arrays.append(arr)
    a, b = arrays
    if a.shape != b.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape; got {a.shape} and {b.shape}"
        )
    if a.ndim != 1:
        raise ValueError(
            f"{names[0]} and {names[1]} must be 1-D arrays of shape (n_objects,); got shape "
            f"{a.shape}; evaluate one target at a time"
        )
    if a.size == 0:
        raise ValueError(f"{names[0]} and {names[1]} are empty; need at least one object")
    problems = []
    for name, arr in zip(names, (a, b)):
        bad = ~np.isfinite(arr)
        if bad.any():
            problems.append(
                f"{name} has {int(bad.sum())} non-finite value(s) (NaN or inf) at positions "
                f"{_describe_positions(bad)}"
            )
    if problems:
        raise ValueError("; ".join(problems) + "; drop or impute them before computing metrics")
    return a, b


def _robust_stats(error: NDArray[np.float64]) -> tuple[float, float]:
    """Return ``(median, NMAD)`` of a non-empty error array."""
    median = float(np.median(error))
    nmad = NMAD_SCALE * float(np.median(np.abs(error - median)))
    return median, nmad


def regression_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, *, names: tuple[str, str] = ("y_true", "y_pred")
) -> dict[str, float]:
    """Summary statistics of a point regression.

    With ``e = y_pred - y_true``:

    - ``mae``: mean ``|e|``; ``mse``: mean ``e**2``; ``rmse``: ``sqrt(mse)``;
    - ``r2``: coefficient of determination (NaN with fewer than two objects);
    - ``nmad``: ``1.4826 * median(|e - median(e)|)``, a sigma robust to outliers;
    - ``bias``: ``median(e)``.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values, in the same (arbitrary) unit. ``mae``, ``rmse``,
        ``nmad`` and ``bias`` come out in that unit, ``mse`` in its square.
    names : tuple of str, optional
        Names of the two arrays used in error messages.

    Returns
    -------
    dict of str to float
        Keys exactly ``mae, mse, rmse, r2, nmad, bias``.

    Raises
    ------
    ValueError
        On mismatched shapes, empty input, or NaN / infinite values.

    Examples
    --------
    >>> m = regression_metrics([0, 1, 2, 3], [1, 0, 4, 3])
    >>> m["mae"], m["mse"], m["bias"]
    (1.0, 1.5, 0.5)
    """
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    t, p = _check_pair(y_true, y_pred, names)
    mse = float(mean_squared_error(t, p))
    # r2_score warns and returns NaN for a single object; say so without the warning.
    r2 = float(r2_score(t, p)) if t.size >= 2 else float("nan")
    bias, nmad = _robust_stats(p - t)
    return {
        "mae": float(mean_absolute_error(t, p)),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "r2": r2,
        "nmad": nmad,
        "bias": bias,
    }


def redshift_metrics(
    z_true: ArrayLike, z_pred: ArrayLike, *, names: tuple[str, str] = ("z_true", "z_pred")
) -> dict[str, float]:
    """Standard photometric-redshift statistics of ``e_z = (z_pred - z_true) / (1 + z_true)``.

    Parameters
    ----------
    z_true, z_pred : array-like of shape (n_objects,)
        True (spectroscopic) and estimated redshifts (dimensionless); ``z_true > -1``.
    names : tuple of str, optional
        Names of the two arrays used in error messages.

    Returns
    -------
    dict of str to float
        Keys exactly :data:`REDSHIFT_METRICS`, all dimensionless:

        - ``sigma_iqr_ez``: inter-quartile range of ``e_z`` (linearly interpolated
          quartiles, :func:`numpy.percentile`) divided by 1.349;
        - ``sigma_nmad_ez``: ``1.4826 * median(|e_z - median(e_z)|)``;
        - ``bias_ez``: ``median(e_z)``;
        - ``outlier_rate``: fraction with ``|e_z| > max(0.06, 3 * sigma_iqr_ez)``;
        - ``catastrophic_rate``: fraction with ``|e_z| > 0.15``.

    Raises
    ------
    ValueError
        On mismatched shapes, empty or non-finite input, or ``z_true <= -1``.

    Examples
    --------
    >>> m = redshift_metrics([1.0, 1.0, 1.0], [1.0, 1.02, 1.6])
    >>> round(m["catastrophic_rate"], 3)
    0.333
    """
    t, p = _check_pair(z_true, z_pred, names)
    bad = t <= -1.0
    if bad.any():
        raise ValueError(
            f"{names[0]} has {int(bad.sum())} value(s) <= -1 at positions "
            f"{_describe_positions(bad)}; redshifts must be > -1 so that 1 + z is positive"
        )
    e_z = (p - t) / (1.0 + t)
    q25, q75 = np.percentile(e_z, [25.0, 75.0])
    sigma_iqr = float(q75 - q25) / IQR_TO_SIGMA
    threshold = max(OUTLIER_FLOOR, 3.0 * sigma_iqr)
    abs_e = np.abs(e_z)
    bias_ez, sigma_nmad_ez = _robust_stats(e_z)
    return {
        "sigma_iqr_ez": sigma_iqr,
        "sigma_nmad_ez": sigma_nmad_ez,
        "bias_ez": bias_ez,
        "outlier_rate": float(np.mean(abs_e > threshold)),
        "catastrophic_rate": float(np.mean(abs_e > CATASTROPHIC_THRESHOLD)),
    }


def _plain(value: Any) -> Any:
    """Turn a numpy scalar into the matching Python scalar (for JSON / YAML)."""
    return value.item() if isinstance(value, np.generic) else value


def classification_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, labels: Sequence[Any]
) -> dict[str, Any]:
    """Accuracy and confusion matrix of a classifier.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted class labels.
    labels : sequence
        All class labels, in the order of the confusion-matrix rows and columns.

    Returns
    -------
    dict
        ``accuracy`` (float in [0, 1]), ``confusion_matrix`` (list of lists of int,
        shape (n_labels, n_labels); rows are true classes, columns predicted ones) and
        ``labels`` (list, the order used).

    Raises
    ------
    ValueError
        On mismatched lengths, empty input, empty or repeated ``labels``, or a value of
        ``y_true`` / ``y_pred`` that is not one of ``labels``.

    Examples
    --------
    >>> m = classification_metrics(["star", "qso"], ["star", "star"], labels=["star", "qso"])
    >>> m["accuracy"], m["confusion_matrix"]
    (0.5, [[1, 0], [1, 0]])
    """
    from sklearn.metrics import accuracy_score, confusion_matrix

    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise ValueError(
            f"y_true and y_pred must be 1-D arrays of the same length; got shapes {t.shape} "
            f"and {p.shape}"
        )
    if t.size == 0:
        raise ValueError("y_true and y_pred are empty; need at least one object")
    label_list = [_plain(v) for v in labels]
    if not label_list:
        raise ValueError("labels is empty; pass every class label, e.g. labels=['star', 'qso']")
    if len(set(label_list)) != len(label_list):
        raise ValueError(f"labels must be unique; got {label_list}")
    known = set(label_list)
    for name, arr in (("y_true", t), ("y_pred", p)):
        unknown = sorted({_plain(v) for v in np.unique(arr)} - known, key=str)
        if unknown:
            raise ValueError(
                f"{name} contains label(s) {unknown[:_MAX_LISTED]} not in labels {label_list}; "
                "add them to labels"
            )
    matrix = confusion_matrix(t, p, labels=np.asarray(labels))
    return {
        "accuracy": float(accuracy_score(t, p)),
        "confusion_matrix": matrix.astype(int).tolist(),
        "labels": label_list,
    }


def _bin_edges(y_true: NDArray[np.float64], bins: int | ArrayLike) -> NDArray[np.float64]:
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"bins must be a positive number of bins or an array of edges; got {bins}")
        lo, hi = float(y_true.min()), float(y_true.max())
        if lo == hi:
            # Same convention as numpy.histogram for a single value.
            lo, hi = lo - 0.5, hi + 0.5
        return np.linspace(lo, hi, int(bins) + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2:
        raise ValueError(
            f"bins must be an int or a 1-D array of at least 2 edges; got shape {edges.shape}"
        )
    if not np.all(np.isfinite(edges)) or np.any(np.diff(edges) <= 0):
        raise ValueError(f"bin edges must be finite and strictly increasing; got {edges.tolist()}")
    return edges


def binned_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, bins: int | ArrayLike = 10
) -> pd.DataFrame:
    """Regression metrics in bins of the true value.

    Bins are half-open ``[bin_lo, bin_hi)`` except the last, which includes its upper
    edge (as :func:`numpy.histogram`). Objects whose true value lies outside the edges
    are left out.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values (same unit).
    bins : int or array-like of shape (n_bins + 1,), default 10
        Number of equal-width bins spanning the range of ``y_true``, or the bin edges.

    Returns
    -------
    pandas.DataFrame
        One row per bin, columns ``bin_lo, bin_hi, n, mae, rmse, nmad, bias``. Empty bins
        are kept with ``n = 0`` and NaN metrics.

    Raises
    ------
    ValueError
        On invalid input (see :func:`regression_metrics`) or invalid ``bins``.

    Examples
    --------
    >>> table = binned_metrics([0.0, 1.0, 2.0, 3.0], [0.5, 1.0, 2.0, 2.0], bins=[0, 2, 4])
    >>> table["n"].tolist()
    [2, 2]
    """
    t, p = _check_pair(y_true, y_pred)
    edges = _bin_edges(t, bins)
    n_bins = edges.size - 1
    index = np.searchsorted(edges, t, side="right") - 1
    index[t == edges[-1]] = n_bins - 1
    rows = []
    for k in range(n_bins):
        e = (p - t)[index == k]
        row = {"bin_lo": float(edges[k]), "bin_hi": float(edges[k + 1]), "n": int(e.size)}
        if e.size:
            bias, nmad = _robust_stats(e)
            row.update(
                mae=float(np.mean(np.abs(e))),
                rmse=float(np.sqrt(np.mean(e**2))),
                nmad=nmad,
                bias=bias,
            )
        else:
            row.update(mae=np.nan, rmse=np.nan, nmad=np.nan, bias=np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=["bin_lo", "bin_hi", "n", "mae", "rmse", "nmad", "bias"])


def _names(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def evaluate_predictions(
    frame: pd.DataFrame,
    targets: str | Sequence[str],
    redshift: Sequence[str] = (),
    *,
    redshift_like: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """Per-target metrics of a predictions table.

    Parameters
    ----------
    frame : pandas.DataFrame
        Predictions with columns ``<target>_true`` and ``<target>_pred`` for each target.
    targets : str or sequence of str
        Target names, e.g. ``["teff", "logg"]``.
    redshift : sequence of str, optional
        Targets (among ``targets``) that are redshifts (recipe ``kind: redshift``); they
        also get the keys of :func:`redshift_metrics`.
    redshift_like : sequence of str, optional
        Old name of ``redshift``; the two lists are joined.

    Returns
    -------
    dict
        ``{target: metrics}`` where ``metrics`` holds the keys of
        :func:`regression_metrics`, followed by those of :func:`redshift_metrics` for
        redshift targets.

    Raises
    ------
    ValueError
        If a column is missing, ``redshift`` names a target not in ``targets``, or
        a column holds invalid values (the message names the column).

    Examples
    --------
    >>> frame = pd.DataFrame({"z_true": [0.5, 1.0], "z_pred": [0.6, 1.0]})
    >>> sorted(evaluate_predictions(frame, ["z"], redshift=["z"])["z"])[:3]
    ['bias', 'bias_ez', 'catastrophic_rate']
    """
    target_list = _names(targets)
    if not target_list:
        raise ValueError("targets is empty; name at least one target, e.g. targets=['redshift']")
    redshift_set = _names(redshift) + _names(redshift_like or ())
    extra = [t for t in redshift_set if t not in target_list]
    if extra:
        raise ValueError(
            f"redshift targets {extra} are not in targets {target_list}; "
            "add them to targets or remove them from the redshift list"
        )
    missing = [
        col
        for t in target_list
        for col in (f"{t}_true", f"{t}_pred")
        if col not in frame.columns
    ]
    if missing:
        raise ValueError(
            f"column(s) {missing} not found in the predictions table; columns are: "
            f"{list(frame.columns)}; each target needs '<target>_true' and '<target>_pred'"
        )
    results: dict[str, dict[str, float]] = {}
    for t in target_list:
        names = (f"{t}_true", f"{t}_pred")
        try:
            true = frame[names[0]].to_numpy(dtype=np.float64, na_value=np.nan)
            pred = frame[names[1]].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"columns {list(names)} must be numeric; could not convert them to floats ({exc})"
            ) from exc
        metrics = regression_metrics(true, pred, names=names)
        if t in redshift_set:
            metrics.update(redshift_metrics(true, pred, names=names))
        results[t] = metrics
    return results


def labelled_metrics(
    frame: pd.DataFrame, targets: Sequence[str], redshift: Sequence[str] = ()
) -> dict[str, dict[str, float]]:
    """Per-target metrics of a predictions table over the objects whose true value is known.

    Missing labels (NaN in ``<target>_true``) are common in survey catalogues; each
    target is scored on its own labelled objects (see :func:`evaluate_predictions`).

    Parameters
    ----------
    frame : pandas.DataFrame
        Predictions with ``<target>_true`` and ``<target>_pred`` columns.
    targets : sequence of str
        Targets to score, in order.
    redshift : sequence of str, optional
        Targets that are redshifts (``[t.name for t in recipe.targets if t.is_redshift]``);
        they also get the five ``e_z`` statistics of :func:`redshift_metrics`.

    Returns
    -------
    dict
        ``{target: metrics}`` as :func:`evaluate_predictions` returns it.

    Raises
    ------
    ValueError
        If a target has no labelled object, a column is missing, or a redshift target
        is not among ``targets``.

    Examples
    --------
    >>> f = pd.DataFrame({"z_true": [0.1, np.nan, 1.0], "z_pred": [0.1, 5.0, 1.2]})
    >>> round(labelled_metrics(f, ["z"], ["z"])["z"]["bias_ez"], 3)
    0.05
    """
    target_list = _names(targets)
    redshift_list = _names(redshift)
    extra = [t for t in redshift_list if t not in target_list]
    if extra:
        raise ValueError(
            f"redshift targets {extra} are not in targets {target_list}; "
            "add them to targets or remove them from the redshift list"
        )
    out: dict[str, dict[str, float]] = {}
    for t in target_list:
        column = f"{t}_true"
        if column not in frame.columns:
            raise ValueError(
                f"column {column!r} not found in the predictions table; columns are: {list(frame.columns)}"
            )
        known = frame[frame[column].notna()]
        if known.empty:
            raise ValueError(f"no object of the evaluation split has a known {t!r}; nothing to score")
        out.update(evaluate_predictions(known, [t], [r for r in redshift_list if r == t]))
    return out


def robust_residual_stats(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """Median and 1.4826 x MAD of the residual ``pred - true``, as stellar-label surveys quote them.

    Objects whose true value is NaN (unlabelled) are left out; a NaN prediction of a
    labelled object is an error.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_objects,)
        True and predicted values, same unit.

    Returns
    -------
    dict
        ``median`` (median residual, the robust bias), ``sigma_mad``
        (``1.4826 * median(|e - median(e)|)``, the same as ``nmad`` of
        :func:`regression_metrics`), ``mae`` and ``n`` (objects used, int).

    Raises
    ------
    ValueError
        On mismatched shapes, no labelled object, or a non-finite prediction.

    Examples
    --------
    >>> s = robust_residual_stats([0.0, 1.0, 2.0, np.nan], [1.0, 2.0, 3.0, 5.0])
    >>> s["median"], s["sigma_mad"], s["n"]
    (1.0, 0.0, 3)
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same shape; got {t.shape} and {p.shape}")
    known = ~np.isnan(t)
    t, p = _check_pair(t[known], p[known])
    e = p - t
    median, sigma = _robust_stats(e)
    return {"median": median, "sigma_mad": sigma, "mae": float(np.mean(np.abs(e))), "n": int(e.size)}


def snr_bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels of the S/N bins open below and above: ``["S/N < 10", "10-20", "20-40", "> 40"]``.

    Examples
    --------
    >>> snr_bin_labels([10, 20])
    ['S/N < 10', '10-20', 'S/N > 20']
    """
    e = [float(v) for v in edges]
    fmt = "{:g}".format
    if not e:
        return ["all"]
    inner = [f"{fmt(lo)}-{fmt(hi)}" for lo, hi in zip(e[:-1], e[1:])]
    return [f"S/N < {fmt(e[0])}", *inner, f"S/N > {fmt(e[-1])}"]


def residuals_by_snr(
    frame: pd.DataFrame,
    targets: str | Sequence[str],
    snr: str | ArrayLike,
    edges: Sequence[float] = (10.0, 20.0, 40.0),
    *,
    include_all: bool = True,
) -> pd.DataFrame:
    """Median and 1.4826 x MAD of the residuals per target in bins of S/N.

    Bins are open below and above the inner ``edges``: ``S/N < e0``, ``[e0, e1)``, ...,
    ``S/N >= e_last`` (labelled ``"S/N > e_last"``). Objects with NaN truth or NaN S/N
    are left out.

    Parameters
    ----------
    frame : pandas.DataFrame
        Predictions with ``<target>_true`` and ``<target>_pred`` columns.
    targets : str or sequence of str
        Targets to summarise.
    snr : str or array-like of shape (n_objects,)
        Column of ``frame`` holding the S/N, or the S/N values in the rows' order.
    edges : sequence of float
        Inner bin edges, strictly increasing (the recipe's ``evaluation.snr_edges``).
    include_all : bool
        Also give one ``"all"`` row per target over every S/N.

    Returns
    -------
    pandas.DataFrame
        Columns ``target, bin, snr_lo, snr_hi, n, median, sigma_mad, mae`` (one row
        per target and bin, in bin order; ``snr_lo`` / ``snr_hi`` are -inf / inf for
        the open ends; empty bins have ``n = 0`` and NaN statistics).

    Raises
    ------
    ValueError
        If a column is missing, ``snr`` has the wrong length, or ``edges`` is not
        strictly increasing.

    Examples
    --------
    >>> f = pd.DataFrame({"t_true": [0.0, 0.0, 0.0], "t_pred": [1.0, 2.0, 0.0], "sn": [5, 15, 50]})
    >>> residuals_by_snr(f, "t", "sn", [10, 20], include_all=False)["n"].tolist()
    [1, 1, 1]
    """
    target_list = [targets] if isinstance(targets, str) else list(targets)
    e = np.asarray(list(edges), dtype=np.float64)
    if e.ndim != 1 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise ValueError(f"S/N edges must be finite and strictly increasing; got {list(edges)}")
    if isinstance(snr, str):
        if snr not in frame.columns:
            raise ValueError(f"S/N column {snr!r} not in the predictions table; columns are {list(frame.columns)}")
        s = frame[snr].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        s = np.asarray(snr, dtype=np.float64)
        if s.shape != (len(frame),):
            raise ValueError(f"snr must have one value per row ({len(frame)}); got shape {s.shape}")
    missing = [c for t in target_list for c in (f"{t}_true", f"{t}_pred") if c not in frame.columns]
    if missing:
        raise ValueError(f"column(s) {missing} not in the predictions table; columns are {list(frame.columns)}")
    labels = snr_bin_labels(e)
    lows = np.concatenate([[-np.inf], e])
    highs = np.concatenate([e, [np.inf]])
    index = np.searchsorted(e, s, side="right")  # 0 below e0, len(e) at or above the last edge
    rows = []
    for t in target_list:
        yt = frame[f"{t}_true"].to_numpy(dtype=np.float64, na_value=np.nan)
        yp = frame[f"{t}_pred"].to_numpy(dtype=np.float64, na_value=np.nan)
        ok = ~np.isnan(yt) & ~np.isnan(s)
        groups = [(labels[k], lows[k], highs[k], ok & (index == k)) for k in range(len(labels))]
        if include_all:
            groups.append(("all", -np.inf, np.inf, ~np.isnan(yt)))
        for label, lo, hi, sel in groups:
            row = {"target": t, "bin": label, "snr_lo": float(lo), "snr_hi": float(hi)}
            if sel.any():
                row.update(robust_residual_stats(yt[sel], yp[sel]))
            else:
                row.update(n=0, median=np.nan, sigma_mad=np.nan, mae=np.nan)
            rows.append(row)
    cols = ["target", "bin", "snr_lo", "snr_hi", "n", "median", "sigma_mad", "mae"]
    return pd.DataFrame(rows, columns=cols).astype({"n": int})
