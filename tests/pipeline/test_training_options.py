"""Training options through a whole recipe, on a small seeded tabular problem."""

import json

import numpy as np
import pandas as pd
import pytest
from conftest import make_tabular_dataset

from astroreg.config import recipe_from_dict
from astroreg.pipeline import train_recipe


@pytest.fixture(scope="module")
def tabular_dataset(tmp_path_factory):
    rng = np.random.default_rng(3)
    n = 1200
    x = rng.normal(size=(n, 3))
    y1 = np.sin(2 * x[:, 0]) + x[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    y2 = 10 * (x[:, 2] - 0.5 * x[:, 0]) + 0.5 * rng.normal(size=n)
    return make_tabular_dataset(tmp_path_factory.mktemp("tab") / "tab.h5",
                                {"x0": x[:, 0], "x1": x[:, 1], "x2": x[:, 2], "w": rng.uniform(0.5, 1.5, n)},
                                {"y1": y1, "y2": y2}, units={"y2": "mag"})


def _recipe(path, **training):
    return recipe_from_dict({
        "name": "tab",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "tabular", "columns": ["x0", "x1", "x2"]},
        "targets": [{"name": "y1"}, {"name": "y2"}],
        "model": {"name": "mlp", "params": {"hidden": [64, 64], "dropout": 0.0}},
        "training": {"epochs": 30, "batch_size": 64, **training},
        "evaluation": {"baselines": [
            {"name": "mean_predictor", "kind": "mean"},
            {"name": "ridge", "kind": "ridge", "features": {"include": ["x0", "x1", "x2"]}},
            {"name": "lightgbm", "kind": "lightgbm", "features": {"include": ["x0", "x1", "x2"]},
             "params": {"n_estimators": 200, "num_leaves": 15}},
        ]},
    })


@pytest.mark.parametrize("training", [
    {"loss": "weighted_huber", "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 1e-4},
     "scheduler": {"name": "warmup_cosine", "warmup_fraction": 0.05}, "weight_column": "w"},
    {"loss": "mse", "optimizer": {"name": "adamax", "lr": 3e-3}, "scheduler": {"name": "plateau", "patience": 2},
     "early_stopping": {"patience": 4}},
])
def test_mlp_options_learn_and_beat_baselines(tabular_dataset, tmp_path, training):
    run = train_recipe(_recipe(tabular_dataset, **training), runs_root=tmp_path, progress=False)
    models = json.loads((run / "metrics.json").read_text())["models"]
    for target in ("y1", "y2"):
        mlp = models["mlp"][target]["mse"]
        assert mlp < 0.2 * models["mean_predictor"][target]["mse"], target
    # y1 is non-linear in the features: the network and LightGBM must beat the linear Ridge.
    assert models["mlp"]["y1"]["mse"] < 0.5 * models["ridge"]["y1"]["mse"]
    assert models["lightgbm"]["y1"]["mse"] < 0.5 * models["ridge"]["y1"]["mse"]
    history = pd.read_csv(run / "history.csv")
    assert history["val_loss"].notna().all()
    lr_cols = [c for c in history if c.startswith("lr-")]
    assert lr_cols, "the scheduler's learning rate is logged per epoch"
    lr = history[lr_cols[0]].to_numpy()
    if training["scheduler"]["name"] == "warmup_cosine":
        assert lr[-1] < 0.2 * lr.max()


def test_early_stopping_stops(tabular_dataset, tmp_path):
    recipe = _recipe(tabular_dataset, epochs=200, early_stopping={"patience": 2, "min_delta": 10.0},
                     optimizer={"name": "adam", "lr": 1e-3})
    run = train_recipe(recipe, runs_root=tmp_path, progress=False)
    assert len(pd.read_csv(run / "history.csv")) < 10


def test_missing_labels_are_skipped_per_target(tabular_dataset, tmp_path):
    import h5py

    path = tmp_path / "gaps.h5"
    path.write_bytes(tabular_dataset.read_bytes())
    with h5py.File(path, "r+") as f:
        y1 = f["targets/y1"][...]
        y1[::7] = np.nan  # a seventh of the objects lack y1, as catalogues lack labels
        f["targets/y1"][...] = y1
    run = train_recipe(_recipe(path, epochs=5), runs_root=tmp_path, progress=False)
    models = json.loads((run / "metrics.json").read_text())["models"]
    assert np.isfinite(models["mlp"]["y1"]["mse"]) and np.isfinite(models["ridge"]["y1"]["mse"])
    frame = pd.read_parquet(run / "predictions.parquet")
    assert frame["y1_true"].isna().sum() > 0 and frame["y1_pred"].notna().all()
