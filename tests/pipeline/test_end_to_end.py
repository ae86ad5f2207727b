"""A tiny seeded end-to-end training: the CNN must beat the mean predictor and the catalogue baselines."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from astroreg.config import load_recipe
from astroreg.data import Dataset
from astroreg.pipeline import Run, evaluate_run, iter_predictions, predict, predict_frame, train_recipe


@pytest.fixture(scope="module")
def trained_run(blob_dataset, tmp_path_factory):
    recipe = load_recipe("galaxy-flux", {
        "dataset.path": str(blob_dataset), "inputs.crop": 32, "training.epochs": 12, "training.seed": 0,
    })
    return train_recipe(recipe, runs_root=tmp_path_factory.mktemp("runs"), progress=False)


def test_run_folder_is_complete(trained_run):
    assert not trained_run.name.endswith(".partial")
    for name in ("config.yaml", "model.pt", "preprocessors.json", "metrics.json", "predictions.parquet",
                 "report.md", "history.csv", "environment.json", "splits.npz", "plots/loss_curves.png"):
        assert (trained_run / name).is_file(), name
    report = (trained_run / "report.md").read_text()
    assert "trained for 12 epoch(s)" in report
    for model in ("paper_cnn", "linear_regression", "linear_regression_re_bt", "random_forest_buckets"):
        assert model in report
    history = pd.read_csv(trained_run / "history.csv")
    assert list(history["epoch"]) == list(range(12))
    assert history["val_loss"].notna().all()


def test_metrics_json_shape(trained_run):
    m = json.loads((trained_run / "metrics.json").read_text())
    assert m["split"] == "test"
    assert set(m["models"]["paper_cnn"]["log_total_flux"]) == {"mae", "mse", "rmse", "r2", "nmad", "bias"}
    assert set(m["models"]["logistic_regression_buckets"]["log_total_flux"]) == {"accuracy"}


def test_cnn_beats_mean_predictor_and_linear_baseline(trained_run):
    models = json.loads((trained_run / "metrics.json").read_text())["models"]
    cnn = models["paper_cnn"]["log_total_flux"]["mse"]
    # The blobs' flux is in the pixels only; catalogue columns carry no flux information.
    assert cnn < 0.3 * models["mean_predictor"]["log_total_flux"]["mse"]
    assert cnn < 0.3 * models["linear_regression"]["log_total_flux"]["mse"]
    assert models["paper_cnn"]["log_total_flux"]["r2"] > 0.7


def test_predictions_parquet_matches_metrics(trained_run, blob_dataset):
    frame = pd.read_parquet(trained_run / "predictions.parquet")
    with Dataset(blob_dataset) as ds:
        test_ids = ds.ids[ds.split("test")]
    assert list(frame["id"]) == list(test_ids)
    mse = float(np.mean((frame["log_total_flux_pred"] - frame["log_total_flux_true"]) ** 2))
    m = json.loads((trained_run / "metrics.json").read_text())
    assert mse == pytest.approx(m["models"]["paper_cnn"]["log_total_flux"]["mse"], rel=1e-9)


def test_streamed_predict_equals_in_memory(trained_run, blob_dataset, tmp_path):
    out = predict(trained_run, blob_dataset, tmp_path / "pred.parquet", chunk_size=37, batch_size=16,
                  progress=False)
    streamed = pd.read_parquet(out)
    run = Run.open(trained_run)
    net, pre = run.load_network(), run.load_preprocessor()
    import torch

    with Dataset(blob_dataset) as ds:
        x = torch.from_numpy(pre.single.transform(ds, np.arange(len(ds))))
        ids = ds.ids
    with torch.no_grad():
        direct = pre.unscale_targets(net({"image": x}).numpy())[:, 0]
    assert list(streamed["id"]) == list(ids)
    np.testing.assert_allclose(streamed["log_total_flux_pred"], direct, rtol=1e-5, atol=1e-6)
    meta = json.loads(pq.read_schema(out).metadata[b"astroreg"])
    assert meta["units"]["log_total_flux_pred"] == "dex(ADU)"
    assert not list(tmp_path.glob("*.part"))


def test_predict_chunks_are_bounded(trained_run, blob_dataset):
    run = Run.open(trained_run)
    with Dataset(blob_dataset) as ds:
        sizes = [len(f) for f in iter_predictions(run, ds, chunk_size=100, progress=False)]
        whole = predict_frame(run, ds, ds.split("test"), progress=False)
    assert max(sizes) == 100 and sum(sizes) == 600
    assert len(whole) == 150


def test_evaluate_reproduces_training_metrics(trained_run):
    metrics, path = evaluate_run(trained_run, progress=False)
    saved = json.loads((trained_run / "metrics.json").read_text())["models"]["paper_cnn"]["log_total_flux"]
    assert metrics["models"]["paper_cnn"]["log_total_flux"]["mse"] == pytest.approx(saved["mse"], rel=1e-6)
    assert path.is_file()


def test_run_open_rejects_partial_and_foreign_folders(tmp_path):
    (tmp_path / "x.partial").mkdir()
    with pytest.raises(ValueError, match="unfinished run"):
        Run.open(tmp_path / "x.partial")
    with pytest.raises(ValueError, match="not a complete astroreg run folder"):
        Run.open(tmp_path)


def test_train_rejects_missing_target(blob_dataset, tmp_path):
    recipe = load_recipe("galaxy-flux", {"dataset.path": str(blob_dataset), "inputs.crop": 32})
    recipe = recipe.with_overrides({"targets": [{"name": "teff", "column": "TEFF_ADOP"}]})
    with pytest.raises(ValueError, match=r"'TEFF_ADOP'.*targets are \['total_flux'\]"):
        train_recipe(recipe, runs_root=tmp_path, progress=False)
    assert not any(tmp_path.glob("*/model.pt"))


def test_predictions_carry_source_quantity_with_units(trained_run, blob_dataset, tmp_path):
    out = predict(trained_run, blob_dataset, tmp_path / "p.parquet", split="test", progress=False)
    frame = pd.read_parquet(out)
    np.testing.assert_allclose(frame["total_flux_pred"], 10 ** frame["log_total_flux_pred"], rtol=1e-9)
    units = json.loads(pq.read_schema(out).metadata[b"astroreg"])["units"]
    assert units["total_flux_pred"] == "ADU"
