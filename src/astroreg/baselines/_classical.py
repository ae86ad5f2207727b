"""Classical baselines (scikit-learn, LightGBM) run through the recipe's splits and evaluation.

Boosted trees (``lightgbm``, ``hist_gradient_boosting``) can be run the way practitioners
run them: ``early_stopping: {rounds: N}`` stops adding trees once the loss on the
validation split has not improved for N iterations (one model a target, each with its
own number of trees), and ``refit: train+val`` then fits again on train + val with the
number chosen. The numbers are recorded in :attr:`BaselineResult.fit_info`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.multioutput import MultiOutputRegressor
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from astroreg.baselines._inputs import ModelInputs, count_parameters, timed
from astroreg.config import BaselineConfig
from astroreg.config._recipe import (
    CLASSICAL_BASELINE_KINDS,
    EARLY_STOPPING_BASELINE_KINDS,
)
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
    "knn": (KNeighborsRegressor, True, True),
    "hist_gradient_boosting": (HistGradientBoostingRegressor, False, False),
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
    fit_info: dict[str, Any] = field(default_factory=dict)  # e.g. early stopping: trees chosen a target


def run_baseline(cfg: BaselineConfig, dataset: Dataset, y: NDArray, fit_rows: NDArray,
                 eval_rows: NDArray, *, model_inputs: ModelInputs | None = None,
                 default_inputs: str = "tabular", val_rows: NDArray | None = None) -> BaselineResult:
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
    val_rows : array of int, optional
        The validation rows, needed by ``early_stopping`` (the loss watched) and
        ``refit: train+val``; rows with a missing target or non-finite feature are left out.

    Returns
    -------
    BaselineResult
        Predictions on ``eval_rows``, the number of fitted coefficients, the prediction
        speed (timed after a warm-up, from the prepared inputs) and, with early stopping,
        ``fit_info``: ``{"early_stopping": {"rounds", "max_trees", "trees": [one a target],
        "refit", "fit_rows"}}``.

    Raises
    ------
    ValueError
        If ``cfg`` asks for early stopping and ``val_rows`` is empty or None.
    """
    if cfg.kind == "network":
        raise ValueError(f"baseline {cfg.name!r} is kind network; train it with run_network_baseline")
    fit_rows, eval_rows = np.asarray(fit_rows), np.asarray(eval_rows)
    source = resolve_inputs(cfg, default_inputs)
    stops = cfg.early_stopping is not None
    if stops and (val_rows is None or len(val_rows) == 0):
        raise ValueError(
            f"baseline {cfg.name!r} stops early on the validation split, but the dataset has no validation rows; "
            "store a val split (or set splits.val > 0), or remove early_stopping"
        )
    x_val = None
    if source == "model":
        if model_inputs is None:
            raise ValueError(f"baseline {cfg.name!r} reads the model inputs (inputs: model) but none were given")
        cols = [f"model_input[{model_inputs.n_features}]"]
        x_fit, x_eval = model_inputs.flat(fit_rows), model_inputs.flat(eval_rows)
        if stops:
            x_val = model_inputs.flat(np.asarray(val_rows))
    else:
        cols = select_features(cfg, dataset)
        x = dataset.tabular(cols).to_numpy(dtype=np.float64)
        x_fit, x_eval = x[fit_rows], _finite(x[eval_rows])
        if stops:
            x_val = x[np.asarray(val_rows)]
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
    info: dict[str, Any] = {}
    if stops:
        y_val = y[np.asarray(val_rows)]
        keep = np.isfinite(x_val).all(axis=1) & np.isfinite(y_val).all(axis=1)
        if not keep.any():
            raise ValueError(f"baseline {cfg.name!r}: none of the {len(val_rows)} validation rows has every target "
                             "and feature finite, so there is no loss to stop on")
        est, info = fit_early_stopped(cfg, x_fit, y_fit, x_val[keep], y_val[keep])
    else:
        est = make_estimator(cfg, y.shape[1]).fit(x_fit, y_fit if y.shape[1] > 1 else y_fit[:, 0])
    pred, speed = _timed_predict(est, x_eval)
    pred = np.asarray(pred, dtype=np.float64).reshape(len(eval_rows), -1)
    return BaselineResult(cfg.name, cfg.kind, cols, pred, parameters=count_parameters(est),
                          predict_objects_per_s=speed, fit_info=info)


def fit_early_stopped(cfg: BaselineConfig, x_fit: NDArray, y_fit: NDArray, x_val: NDArray,
                      y_val: NDArray) -> tuple[BaseEstimator, dict[str, Any]]:
    """Fit a boosted-tree baseline with early stopping on validation rows, one model a target.

    LightGBM watches its training objective (L2 by default) on ``(x_val, y_val)`` through
    ``lightgbm.early_stopping`` and predicts with its best iteration;
    ``HistGradientBoostingRegressor`` is given ``X_val, y_val`` and stops after
    ``n_iter_no_change`` iterations without improvement (scikit-learn keeps those last
    trees: its count is where it stopped). With ``refit: train+val`` a new model with the
    chosen number of trees is fitted on the training and validation rows together.

    Parameters
    ----------
    cfg : BaselineConfig
        A baseline of a kind in ``EARLY_STOPPING_BASELINE_KINDS`` with ``early_stopping``.
    x_fit : array of shape (n_fit, n_features)
    y_fit : array of shape (n_fit, n_targets)
    x_val : array of shape (n_val, n_features)
    y_val : array of shape (n_val, n_targets)
        Finite features and targets.

    Returns
    -------
    estimator
        A fitted regressor (a :class:`~sklearn.multioutput.MultiOutputRegressor` holding
        one model a target when there are several), predicting ``(n,)`` or ``(n, n_targets)``.
    dict
        ``{"early_stopping": {"rounds", "max_trees", "trees", "refit", "fit_rows"}}``.
    """
    if cfg.kind not in EARLY_STOPPING_BASELINE_KINDS or cfg.early_stopping is None:
        raise ValueError(f"baseline {cfg.name!r} ({cfg.kind}) has no early stopping; kinds that have it are "
                         f"{list(EARLY_STOPPING_BASELINE_KINDS)}")
    rounds = cfg.early_stopping.rounds
    models, trees = [], []
    for j in range(y_fit.shape[1]):
        est = _boosted(cfg, rounds=rounds)
        if cfg.kind == "lightgbm":
            import lightgbm

            # LightGBM 4.7 renamed eval_set to eval_X/eval_y; 4.0-4.6 know only eval_set
            watch = ({"eval_X": (x_val,), "eval_y": (y_val[:, j],)} if "eval_X" in inspect.signature(est.fit).parameters
                     else {"eval_set": [(x_val, y_val[:, j])]})
            est.fit(x_fit, y_fit[:, j], callbacks=[lightgbm.early_stopping(rounds, verbose=False)], **watch)
            n = int(est.best_iteration_ or est.n_estimators)
        else:
            if "X_val" not in inspect.signature(est.fit).parameters:
                raise ValueError(
                    f"baseline {cfg.name!r}: hist_gradient_boosting stops early on the validation split through "
                    f"HistGradientBoostingRegressor.fit(X_val=...), which scikit-learn {sklearn.__version__} lacks; "
                    "upgrade scikit-learn or use kind lightgbm"
                )
            est.fit(x_fit, y_fit[:, j], X_val=x_val, y_val=y_val[:, j])
            n = int(est.n_iter_)
        if cfg.refit == "train+val":
            est = _boosted(cfg, trees=n).fit(np.concatenate([x_fit, x_val]), np.concatenate([y_fit[:, j], y_val[:, j]]))
        models.append(est)
        trees.append(n)
    probe = _boosted(cfg, rounds=rounds)
    max_trees = int(probe.n_estimators if cfg.kind == "lightgbm" else probe.max_iter)
    if len(models) == 1:
        model = models[0]
    else:  # one early-stopped model a target, predicting through scikit-learn's wrapper
        model = MultiOutputRegressor(_boosted(cfg, rounds=rounds))
        model.estimators_ = models
        model.n_features_in_ = x_fit.shape[1]
    n_rows = len(x_fit) + (len(x_val) if cfg.refit == "train+val" else 0)
    return model, {"early_stopping": {"rounds": rounds, "max_trees": max_trees, "trees": trees,
                                      "refit": cfg.refit, "fit_rows": int(n_rows)}}


def _boosted(cfg: BaselineConfig, *, rounds: int | None = None, trees: int | None = None) -> BaseEstimator:
    """A fresh boosted-tree regressor of ``cfg`` that stops early after ``rounds``, or grows exactly ``trees``."""
    params = dict(cfg.params)
    if cfg.kind == "lightgbm":
        if trees is not None:
            params["n_estimators"] = trees
        factory = _lightgbm
    else:
        params.update({"max_iter": trees, "early_stopping": False} if trees is not None
                      else {"early_stopping": True, "n_iter_no_change": rounds})
        factory = HistGradientBoostingRegressor
    try:
        return factory(**params)
    except TypeError as err:
        raise ValueError(f"baseline {cfg.name!r} ({cfg.kind}): bad params {cfg.params}: {err}") from None


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
