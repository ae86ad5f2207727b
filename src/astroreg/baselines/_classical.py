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

from astroreg.baselines._inputs import ModelInputs, count_parameters, timed
from astroreg.config import BaselineConfig
from astroreg.config._recipe import CLASSICAL_BASELINE_KINDS
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
if set(_KINDS) != set(CLASSICAL_BASELINE_KINDS):  # the recipe schema's list is the one list
    raise ImportError(f"baseline kinds {sorted(_KINDS)} differ from the recipe's {CLASSICAL_BASELINE_KINDS}")


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


def resolve_inputs(cfg: BaselineConfig, default: str) -> str:
    """What a classical baseline reads: ``tabular`` columns or the ``model`` inputs.

    ``auto`` is ``default``, which the recipe's inputs decide
    (:func:`astroreg.modalities.baseline_inputs`: ``model`` for spectra, the preprocessed
    spectra; ``tabular``, the catalogue columns, otherwise).
    """
    return default if cfg.inputs == "auto" else cfg.inputs


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
    parameters: int | None = None  # fitted coefficients (linear models), trainable weights (networks)
    predict_objects_per_s: float | None = None  # inference only, from prepared inputs to predictions


def run_baseline(cfg: BaselineConfig, dataset: Dataset, y: NDArray, fit_rows: NDArray,
                 eval_rows: NDArray, *, model_inputs: ModelInputs | None = None,
                 default_inputs: str = "tabular") -> BaselineResult:
    """Fit one classical baseline on ``fit_rows`` and predict ``eval_rows``.

    Parameters
    ----------
    cfg : BaselineConfig
        A classical baseline (``kind: network`` runs through :func:`run_network_baseline`).
    dataset : Dataset
    y : array of shape (n_objects, n_targets)
        Transformed targets of every dataset row (NaN = missing); rows to fit with a
        missing target or a non-finite feature are left out.
    fit_rows, eval_rows : array of int
        Rows to fit on and to predict.
    model_inputs : ModelInputs, optional
        The recipe's preprocessed inputs, needed when the baseline reads ``inputs: model``
        (``auto`` on a spectra recipe).
    default_inputs : {"tabular", "model"}
        What ``inputs: auto`` reads for this recipe (:func:`astroreg.modalities.baseline_inputs`).

    Returns
    -------
    BaselineResult
        Predictions on ``eval_rows``, the number of fitted coefficients and the
        prediction speed (timed after a warm-up, from the prepared inputs).
    """
    if cfg.kind == "network":
        raise ValueError(f"baseline {cfg.name!r} is kind network; train it with run_network_baseline")
    fit_rows, eval_rows = np.asarray(fit_rows), np.asarray(eval_rows)
    source = resolve_inputs(cfg, default_inputs)
    if source == "model":
        if model_inputs is None:
            raise ValueError(f"baseline {cfg.name!r} reads the model inputs (inputs: model) but none were given")
        cols = [f"model_input[{model_inputs.n_features}]"]
        x_fit, x_eval = model_inputs.flat(fit_rows), model_inputs.flat(eval_rows)
    else:
        cols = select_features(cfg, dataset)
        x = dataset.tabular(cols).to_numpy(dtype=np.float64)
        x_fit, x_eval = x[fit_rows], _finite(x[eval_rows])
    good = np.isfinite(x_fit).all(axis=1) & np.isfinite(y[fit_rows]).all(axis=1)
    if not good.any():
        raise ValueError(
            f"baseline {cfg.name!r}: none of the {len(fit_rows)} training rows has every target and feature "
            f"finite ({'model inputs' if source == 'model' else f'features {cols}'}); check the targets' "
            "missing values or choose other evaluation.baselines[].features"
        )
    if not good.all():
        x_fit = x_fit[good]
    y_fit = y[fit_rows[good]]
    if cfg.is_classifier:
        edges = bucket_edges(y_fit[:, 0], len(cfg.buckets))
        labels = np.asarray(cfg.buckets)
        est = make_estimator(cfg).fit(x_fit, labels[np.digitize(y_fit[:, 0], edges)])
        truth = labels[np.digitize(y[eval_rows, 0], edges)]
        pred, speed = _timed_predict(est, x_eval)
        return BaselineResult(cfg.name, cfg.kind, cols, pred, truth, list(cfg.buckets),
                              count_parameters(est), speed)
    est = make_estimator(cfg, y.shape[1]).fit(x_fit, y_fit if y.shape[1] > 1 else y_fit[:, 0])
    pred, speed = _timed_predict(est, x_eval)
    pred = np.asarray(pred, dtype=np.float64).reshape(len(eval_rows), -1)
    return BaselineResult(cfg.name, cfg.kind, cols, pred, parameters=count_parameters(est),
                          predict_objects_per_s=speed)


def _timed_predict(est: BaseEstimator, x: NDArray) -> tuple[NDArray, float | None]:
    """Predictions of ``x`` and objects per second (after a warm-up call on a few rows; fastest of a few)."""
    if len(x) == 0:
        return est.predict(x), None
    est.predict(x[:min(len(x), 64)])
    return timed(lambda: est.predict(x), len(x))


def _finite(x: NDArray) -> NDArray:
    """Replace non-finite features by 0 for prediction; rows with them are already counted as bad fits."""
    return np.where(np.isfinite(x), x, 0.0)


def baseline_frame(result: BaselineResult, ids: NDArray, target_names: list[str]) -> pd.DataFrame:
    """Predictions of a regression baseline as a table: id and ``<target>_pred``."""
    data = {"id": ids}
    for j, t in enumerate(target_names):
        data[f"{t}_pred"] = result.predictions[:, j]
    return pd.DataFrame(data)
