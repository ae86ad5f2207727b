"""Classical baselines (scikit-learn, LightGBM) run through the recipe's splits and evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.multioutput import MultiOutputRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from astroreg.config import BaselineConfig
from astroreg.data import Dataset


def _lightgbm(**params) -> BaseEstimator:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(**{"verbose": -1, **params})


# Each kind: (factory, needs feature scaling, handles several targets natively).
_KINDS = {
    "mean": (DummyRegressor, False, True),
    "linear_regression": (LinearRegression, False, True),
    "ridge": (Ridge, True, True),
    "decision_tree": (DecisionTreeRegressor, False, True),
    "random_forest": (RandomForestRegressor, False, True),
    "lightgbm": (_lightgbm, False, False),
    "logistic_regression": (LogisticRegression, True, False),
    "random_forest_classifier": (RandomForestClassifier, False, False),
}


def make_estimator(cfg: BaselineConfig, n_targets: int = 1) -> BaseEstimator:
    """The scikit-learn estimator of a baseline, with its parameters."""
    factory, scale, multi = _KINDS[cfg.kind]
    try:
        est = factory(**cfg.params)
    except TypeError as err:
        raise ValueError(f"baseline {cfg.name!r} ({cfg.kind}): bad params {cfg.params}: {err}") from None
    if not cfg.is_classifier and not multi and n_targets > 1:
        est = MultiOutputRegressor(est)
    return make_pipeline(StandardScaler(), est) if scale else est


def select_features(cfg: BaselineConfig, dataset: Dataset) -> list[str]:
    """Tabular columns a baseline uses: ``include`` (default: all numeric) minus ``exclude``."""
    have = list(dataset.tabular_columns)
    if cfg.features.include is not None:
        missing = [c for c in cfg.features.include if c not in have]
        if missing:
            raise ValueError(
                f"baseline {cfg.name!r}: feature column(s) {missing} not in {dataset.path}; "
                f"tabular columns are {have}: fix evaluation.baselines[].features.include"
            )
        cols = list(cfg.features.include)
    else:
        cols = list(dataset.tabular(have, indices=[0]).select_dtypes("number").columns) if have else []
    cols = [c for c in cols if c not in set(cfg.features.exclude)]
    if not cols:
        raise ValueError(
            f"baseline {cfg.name!r} has no feature columns left (dataset tabular columns: {have}); "
            "set features.include"
        )
    return cols


def bucket_edges(y_train: NDArray, n_buckets: int) -> NDArray[np.float64]:
    """Inner edges of equal-count buckets of the training target."""
    return np.quantile(y_train, np.linspace(0, 1, n_buckets + 1)[1:-1])


@dataclass
class BaselineResult:
    """Predictions of one baseline on the evaluation rows."""

    name: str
    kind: str
    features: list[str]
    predictions: NDArray  # regressors: (n, n_targets) in target units; classifiers: (n,) bucket labels
    truth_labels: NDArray | None = None
    labels: list[str] | None = None


def run_baseline(cfg: BaselineConfig, dataset: Dataset, y: NDArray, fit_rows: NDArray,
                 eval_rows: NDArray) -> BaselineResult:
    """Fit one baseline on ``fit_rows`` and predict ``eval_rows``.

    Parameters
    ----------
    cfg : BaselineConfig
    dataset : Dataset
    y : array of shape (n_objects, n_targets)
        Transformed targets of every dataset row (NaN = missing).
    fit_rows, eval_rows : array of int
        Rows to fit on and to predict.
    """
    cols = select_features(cfg, dataset)
    frame = dataset.tabular(cols)
    x = frame.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(x[fit_rows]).all(axis=1) | ~np.isfinite(y[fit_rows]).all(axis=1)
    fit_rows = fit_rows[~bad]
    if cfg.is_classifier:
        edges = bucket_edges(y[fit_rows, 0], len(cfg.buckets))
        labels = np.asarray(cfg.buckets)
        est = make_estimator(cfg).fit(x[fit_rows], labels[np.digitize(y[fit_rows, 0], edges)])
        truth = labels[np.digitize(y[eval_rows, 0], edges)]
        return BaselineResult(cfg.name, cfg.kind, cols, est.predict(_finite(x[eval_rows])), truth, list(cfg.buckets))
    est = make_estimator(cfg, y.shape[1]).fit(x[fit_rows], y[fit_rows] if y.shape[1] > 1 else y[fit_rows, 0])
    pred = np.asarray(est.predict(_finite(x[eval_rows])), dtype=np.float64).reshape(len(eval_rows), -1)
    return BaselineResult(cfg.name, cfg.kind, cols, pred)


def _finite(x: NDArray) -> NDArray:
    """Replace non-finite features by 0 for prediction; rows with them are already counted as bad fits."""
    return np.where(np.isfinite(x), x, 0.0)


def baseline_frame(result: BaselineResult, ids: NDArray, target_names: list[str]) -> pd.DataFrame:
    """Predictions of a regression baseline as a table: id and ``<target>_pred``."""
    data = {"id": ids}
    for j, t in enumerate(target_names):
        data[f"{t}_pred"] = result.predictions[:, j]
    return pd.DataFrame(data)
