"""Paired comparison of two models on the same objects: MAE difference with a bootstrap interval.

Two networks scored on one test split differ by a few thousandths of a dex in MAE; whether
that is more than the luck of which objects are in the split is what the interval says.
The objects are resampled with replacement (``scipy.stats.bootstrap``, percentile method)
and the difference of the two mean absolute errors is recomputed on each resample; both
models see the same resample, which removes the scatter the two share.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from astroreg.evaluation._metrics import _check_pair

__all__ = ["paired_mae_difference"]


def paired_mae_difference(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    y_ref: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """MAE of ``y_pred`` minus MAE of ``y_ref`` over the same objects, with a bootstrap interval.

    Parameters
    ----------
    y_true, y_pred, y_ref : array-like of shape (n_objects,)
        True values and the predictions of the model and of the reference, object by object.
    mask : array-like of bool, optional
        Objects to use (for example the low end of the true values); default all.
    n_resamples : int, default 2000
        Bootstrap resamples of the objects.
    confidence : float, default 0.95
        Coverage of the interval.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    dict
        ``diff`` (negative: the model is better), ``lo`` and ``hi`` (the interval), ``n``.

    Raises
    ------
    ValueError
        For arrays of different shapes, NaN or inf values, an empty selection or a
        ``confidence`` outside (0, 1).

    Examples
    --------
    >>> t = np.linspace(0.0, 1.0, 200)
    >>> d = paired_mae_difference(t, t + 0.1, t + 0.2)
    >>> round(d["diff"], 6), round(d["lo"], 6), round(d["hi"], 6)
    (-0.1, -0.1, -0.1)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    t, p = _check_pair(y_true, y_pred, ("y_true", "y_pred"))
    _, r = _check_pair(y_true, y_ref, ("y_true", "y_ref"))
    d = np.abs(p - t) - np.abs(r - t)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != d.shape:
            raise ValueError(f"mask must have the shape of y_true {d.shape}, got {m.shape}")
        d = d[m]
    if d.size == 0:
        raise ValueError("no objects selected for the paired MAE difference; check the mask")
    diff = float(d.mean())
    if d.size == 1 or np.ptp(d) == 0:  # no spread to resample
        return {"diff": diff, "lo": diff, "hi": diff, "n": int(d.size)}
    res = stats.bootstrap((d,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                          method="percentile", vectorized=True, batch=100, rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return {"diff": diff, "lo": float(ci.low), "hi": float(ci.high), "n": int(d.size)}
