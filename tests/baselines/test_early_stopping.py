"""Early-stopped boosted-tree baselines (validation split, trees chosen, refit on train + val) and knn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from astroreg.baselines import fit_early_stopped, make_estimator, run_baseline
from astroreg.config import BaselineConfig, recipe_from_dict
from astroreg.data import Dataset, DatasetWriter
from astroreg.pipeline import train_recipe

LGBM = {"n_estimators": 400, "learning_rate": 0.1, "num_leaves": 15, "random_state": 0, "n_jobs": 1}
HGB = {"max_iter": 400, "learning_rate": 0.1, "max_leaf_nodes": 15, "random_state": 0}


def _noisy(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two targets: a smooth function under unit noise (easy to overfit), and a near-linear one."""
    x = rng.uniform(-2, 2, (n, 5))
    f = np.sin(2 * x[:, 0]) + 0.5 * x[:, 1] ** 2
    return x, np.stack([f + rng.normal(0, 1.0, n), 0.3 * x[:, 2] + rng.normal(0, 0.3, n)], axis=1)


@pytest.fixture(scope="module")
def noisy():
    rng = np.random.default_rng(0)
    return _noisy(800, rng), _noisy(400, rng), _noisy(3000, rng)


def _mse(est, x, y) -> np.ndarray:
    return ((np.asarray(est.predict(x)).reshape(len(x), -1) - y) ** 2).mean(axis=0)


@pytest.mark.parametrize("kind, params, targets", [("lightgbm", LGBM, 2), ("hist_gradient_boosting", HGB, 1)])
def test_early_stopping_picks_fewer_trees_and_beats_the_full_model(noisy, kind, params, targets):
    (xt, yt), (xv, yv), (xs, ys) = noisy
    yt, yv, ys = yt[:, :targets], yv[:, :targets], ys[:, :targets]
    cfg = BaselineConfig(name="b", kind=kind, params=params, early_stopping={"rounds": 30})
    with threadpool_limits(1):  # scikit-learn's OpenMP threads: a shared machine's cores are busy
        est, info = fit_early_stopped(cfg, xt, yt, xv, yv)
        full = make_estimator(BaselineConfig(name="f", kind=kind, params=params), targets).fit(
            xt, yt if targets > 1 else yt[:, 0])
    trees = info["early_stopping"]["trees"]
    assert len(trees) == targets and info["early_stopping"]["max_trees"] == next(iter(params.values()))
    assert max(trees) < 0.3 * info["early_stopping"]["max_trees"], trees
    stopped, grown = _mse(est, xs, ys), _mse(full, xs, ys)
    # Unit noise on 800 rows: the model grown to the maximum fits the noise; stopping on val
    # must be at least 10 % better on the test rows, per target.
    assert (stopped < 0.9 * grown).all(), (stopped, grown)


def test_refit_uses_train_and_val_with_the_chosen_trees(noisy):
    (xt, yt), (xv, yv), _ = noisy
    cfg = BaselineConfig(name="b", kind="lightgbm", params=LGBM, early_stopping={"rounds": 30}, refit="train+val")
    est, info = fit_early_stopped(cfg, xt, yt, xv, yv)
    only_train, info_t = fit_early_stopped(cfg.model_copy(update={"refit": "train"}), xt, yt, xv, yv)
    es = info["early_stopping"]
    assert es["fit_rows"] == len(xt) + len(xv) and info_t["early_stopping"]["fit_rows"] == len(xt)
    assert es["trees"] == info_t["early_stopping"]["trees"]  # chosen on val before the refit
    for model, n in zip(est.estimators_, es["trees"]):
        assert model.booster_.num_trees() == n
        root = model.booster_.dump_model()["tree_info"][0]["tree_structure"]
        assert root["internal_count"] == len(xt) + len(xv)  # rows under the first tree's root (no bagging)
    # the refit model saw the val rows: it fits them better than the train-only model
    assert (_mse(est, xv, yv) < _mse(only_train, xv, yv)).all()


def test_kinds_without_early_stopping_refuse_it():
    with pytest.raises(ValueError, match=r"baseline 'r' \(ridge\) cannot stop early; kinds that can are "
                                         r"\['lightgbm', 'hist_gradient_boosting'\]"):
        BaselineConfig(name="r", kind="ridge", early_stopping={"rounds": 10})
    with pytest.raises(ValueError, match="cannot stop early"):
        BaselineConfig(name="k", kind="knn", early_stopping={})
    with pytest.raises(ValueError, match=r"refit: train\+val refits with the number of trees"):
        BaselineConfig(name="l", kind="lightgbm", refit="train+val")
    with pytest.raises(ValueError, match=r"params \['early_stopping_round'\] set early stopping a second way"):
        BaselineConfig(name="l", kind="lightgbm", params={"early_stopping_round": 5}, early_stopping={})


def _dataset(path, n=900, seed=0):
    rng = np.random.default_rng(seed)
    x, y = _noisy(n, rng)
    with DatasetWriter(path, targets={"y": "", "w": ""}, tabular={f"x{j}": "" for j in range(5)}) as w:
        w.append([f"o{i}" for i in range(n)], targets={"y": y[:, 0], "w": y[:, 1]},
                 tabular={f"x{j}": x[:, j] for j in range(5)})
        w.make_splits({"train": 0.5, "val": 0.2, "test": 0.3}, seed=seed)
    return path


def test_run_baseline_needs_the_val_rows(tmp_path):
    ds = Dataset(_dataset(tmp_path / "d.h5"))
    y = np.stack([ds.target("y"), ds.target("w")], axis=1)
    cfg = BaselineConfig(name="l", kind="lightgbm", params=LGBM, early_stopping={"rounds": 20})
    with pytest.raises(ValueError, match="no validation rows"):
        run_baseline(cfg, ds, y, ds.split("train"), ds.split("test"))
    res = run_baseline(cfg, ds, y, ds.split("train"), ds.split("test"), val_rows=ds.split("val"))
    assert res.predictions.shape == (len(ds.split("test")), 2)
    assert res.fit_info["early_stopping"]["fit_rows"] == len(ds.split("train"))


def test_a_recipe_records_the_trees_and_knn_beats_the_mean(tmp_path):
    path = _dataset(tmp_path / "d.h5")
    recipe = recipe_from_dict({
        "name": "es", "dataset": {"path": str(path)},
        "inputs": {"x": {"kind": "tabular"}},
        "targets": [{"name": "y", "unit": ""}, {"name": "w", "unit": ""}],
        "model": {"name": "mlp", "params": {"hidden": [16], "dropout": 0.0}},
        "training": {"epochs": 2, "batch_size": 64, "seed": 0, "threads": 1},
        "evaluation": {"baselines": [
            {"name": "mean", "kind": "mean"},
            {"name": "knn", "kind": "knn", "params": {"n_neighbors": 15}},
            {"name": "lgbm_es", "kind": "lightgbm", "params": LGBM, "early_stopping": {"rounds": 30},
             "refit": "train+val"},
            {"name": "lgbm_model_inputs", "kind": "lightgbm", "inputs": "model", "params": LGBM,
             "early_stopping": {"rounds": 30}},
        ]},
    }, source="test")
    run = train_recipe(recipe, runs_root=tmp_path, progress=False)
    info = json.loads((run / "model_info.json").read_text())
    es = info["lgbm_es"]["early_stopping"]
    assert len(es["trees"]) == 2 and max(es["trees"]) < 400 and es["refit"] == "train+val"
    metrics = json.loads((run / "metrics.json").read_text())["models"]
    # y's signal variance is ~0.35 under unit noise; knn on 450 rows must take a third of it off the mean's MSE
    assert metrics["knn"]["y"]["mse"] < metrics["mean"]["y"]["mse"] - 0.1, metrics
    assert metrics["lgbm_es"]["y"]["mse"] < metrics["mean"]["y"]["mse"] - 0.1, metrics
    # the same model on the recipe's preprocessed inputs (scaled columns) stops on val too
    assert len(info["lgbm_model_inputs"]["early_stopping"]["trees"]) == 2
    assert metrics["lgbm_model_inputs"]["y"]["mse"] < metrics["mean"]["y"]["mse"] - 0.1, metrics
