"""training.max_minutes and the report's account of what ended a fit."""

import numpy as np
import pandas as pd
import pytest
from conftest import make_tabular_dataset

from astroreg.config import recipe_from_dict
from astroreg.pipeline import train_recipe


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    rng = np.random.default_rng(3)
    n = 400
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.0, -0.5, 0.2]) + 0.1 * rng.normal(size=n)
    return make_tabular_dataset(tmp_path_factory.mktemp("stop") / "stop.h5", {f"x{i}": x[:, i] for i in range(3)},
                                {"y": y})


def _recipe(path, **training):
    return recipe_from_dict({
        "name": "stop",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "tabular", "columns": ["x0", "x1", "x2"]},
        "targets": [{"name": "y"}],
        "model": {"name": "mlp", "params": {"hidden": [16], "dropout": 0.0}},
        "training": {"batch_size": 16, "optimizer": {"name": "adam", "lr": 1e-3}, **training},
        "evaluation": {"baselines": [{"name": "mean_predictor", "kind": "mean"}]},
    })


def _report(run):
    return (run / "report.md").read_text()


def test_time_limit_ends_the_fit_and_keeps_the_best_epoch(small_dataset, tmp_path):
    # 100,000 epochs of 15 batches cannot finish in 3 s: the time limit must end the fit.
    run = train_recipe(_recipe(small_dataset, epochs=100_000, max_minutes=0.05), runs_root=tmp_path, progress=False)
    history = pd.read_csv(run / "history.csv")
    assert 1 <= len(history) < 100_000
    assert "ended by the time limit (training.max_minutes)" in _report(run)
    # the best validated epoch was saved, evaluated and beats the mean on the test split
    assert (run / "model.pt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
    frame = pd.read_parquet(run / "predictions.parquet")
    assert np.isfinite(frame["y_pred"]).all()
    assert np.mean(np.abs(frame["y_pred"] - frame["y_true"])) < 0.5 * np.mean(np.abs(frame["y_true"] - frame["y_true"].mean()))


def test_epoch_limit_and_early_stopping_are_told_apart(small_dataset, tmp_path):
    assert "ended by the epoch limit (training.epochs)" in _report(
        train_recipe(_recipe(small_dataset, epochs=2), runs_root=tmp_path / "a", progress=False))
    # No epoch improves by min_delta: patience 1 stops the fit at the second epoch.
    stopped = train_recipe(_recipe(small_dataset, epochs=50, early_stopping={"patience": 1, "min_delta": 1e6}),
                           runs_root=tmp_path / "b", progress=False)
    assert "ended by early stopping;" in _report(stopped)
    assert len(pd.read_csv(stopped / "history.csv")) == 2


def test_time_limit_refuses_a_cosine_schedule():
    with pytest.raises(ValueError, match="max_minutes"):
        _recipe("x.h5", epochs=5, max_minutes=1.0, scheduler={"name": "warmup_cosine"})
