"""A spectra recipe end to end with the paper's kinds of baselines: OLS, Ridge, a network baseline, the mean."""

import json

import numpy as np
import pandas as pd
import pytest

from astroreg.config import recipe_from_dict
from astroreg.data import DatasetWriter, SpectraSpec
from astroreg.pipeline import Run, predict, train_recipe
from conftest import LINE_LOGLAM, line_spectra

LOGLAM = LINE_LOGLAM


def _write(path, n=400, seed=0):
    rng = np.random.default_rng(seed)
    flux, d = line_spectra(n, rng)
    spec = SpectraSpec(n_pixels=LOGLAM.size, wavelength=tuple(10**LOGLAM), with_mask=False)
    snr = rng.uniform(3, 60, n)
    with DatasetWriter(path, spectra=spec, targets={"a": "K", "b": "dex"}, tabular={"SNR": ""}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux, "ivar": np.ones_like(flux)},
                 tabular={"SNR": snr},
                 targets={"a": 5000 + 3000 * d[:, 0] - 1500 * d[:, 1], "b": 4.0 * d[:, 2] ** 2 + np.sin(6 * d[:, 3])})
        w.make_splits({"train": 0.6, "val": 0.15, "test": 0.25}, seed=0)
    return path


@pytest.fixture(scope="module")
def spectra_run(tmp_path_factory):
    path = _write(tmp_path_factory.mktemp("data") / "spec.h5")
    recipe = recipe_from_dict({
        "name": "spec-pipe",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "spectra"},
        "targets": [{"name": "a", "unit": "K"}, {"name": "b", "unit": "dex"}],
        "preprocess": {"spectra": {"grid": [3.601, 3.659, 96]}, "targets": "robust"},
        "model": {"name": "residual_mlp", "params": {"stem": 16, "blocks": [16], "heads": [8], "trunk_dropout": 0.0}},
        "training": {"epochs": 3, "batch_size": 64, "loss": "weighted_huber", "optimizer": {"name": "adamw", "lr": 3e-3},
                     "scheduler": {"name": "warmup_cosine"}, "augment": {"copies": 2}},
        "evaluation": {"reference": "ridge", "compare_to": ["ols", "ridge", "dnn"], "snr_column": "SNR",
                       "paper_tables": "stellar-params",
                       "snr_edges": [10, 30], "baselines": [
            {"name": "ols", "kind": "linear_regression", "inputs": "model"},
            {"name": "ridge", "kind": "ridge", "inputs": "model", "params": {"alpha": 1.0}},
            {"name": "dnn", "kind": "network", "model": {"name": "dnn_li2017", "params": {"hidden": [16, 8]}},
             "training": {"augment.copies": 0, "epochs": 2, "loss": "weighted_mse"}},
            {"name": "mean_predictor", "kind": "mean"},
        ]},
    })
    return train_recipe(recipe, runs_root=tmp_path_factory.mktemp("runs"), progress=False), path


def test_every_baseline_is_scored(spectra_run):
    run, _ = spectra_run
    models = json.loads((run / "metrics.json").read_text())["models"]
    assert set(models) == {"residual_mlp", "ols", "ridge", "dnn", "mean_predictor"}
    for name in ("ols", "ridge"):
        assert models[name]["a"]["mae"] < 0.3 * models["mean_predictor"]["a"]["mae"]
    binned = pd.read_csv(run / "metrics_binned.csv")
    assert set(binned["model"]) == set(models)
    # Every regression baseline's predictions are kept, one row per object and baseline.
    preds = pd.read_parquet(run / "baseline_predictions.parquet")
    assert set(preds["model"]) == set(models) - {"residual_mlp"}
    ridge = preds[preds["model"] == "ridge"]
    known = ridge["a_true"].notna()
    mae = float(np.mean(np.abs(ridge["a_pred"] - ridge["a_true"])[known]))
    assert mae == pytest.approx(models["ridge"]["a"]["mae"], rel=1e-6)
    assert "dnn" in (run / "report.md").read_text()


def test_model_info_has_size_and_speed_of_every_model(spectra_run):
    run, _ = spectra_run
    info = json.loads((run / "model_info.json").read_text())
    assert set(info) == {"residual_mlp", "ols", "ridge", "dnn", "mean_predictor"}
    # Li et al.'s DNN: one 96-16-8-1 network per target.
    assert info["dnn"]["parameters"] == 2 * (96 * 16 + 16 + 16 * 8 + 8 + 8 + 1)
    assert info["ols"]["parameters"] == info["ridge"]["parameters"] == 96 * 2 + 2
    assert info["mean_predictor"]["parameters"] is None
    assert info["residual_mlp"]["parameters"] > 96 * 16
    for name, entry in info.items():
        assert entry["predict_objects_per_s"] > 0, name
        assert entry["timed_objects"] == 100, name


def test_network_baseline_has_its_own_run_folder(spectra_run, tmp_path):
    run, data = spectra_run
    sub = run / "baselines" / "dnn"
    for name in ("config.yaml", "model.pt", "preprocessors.json", "history.csv", "splits.npz"):
        assert (sub / name).is_file(), name
    assert len(pd.read_csv(sub / "history.csv")) == 2
    baseline = Run.open(sub)
    assert baseline.recipe.model.name == "dnn_li2017" and baseline.recipe.training.augment.copies == 0
    out = predict(sub, data, tmp_path / "dnn.parquet", split="test", progress=False)
    frame = pd.read_parquet(out)
    mae = float(np.mean(np.abs(frame["a_pred"] - frame["a_true"])))
    assert mae == pytest.approx(json.loads((run / "metrics.json").read_text())["models"]["dnn"]["a"]["mae"], rel=1e-5)


def test_report_has_the_paper_style_tables_and_snr_bins(spectra_run):
    run, data = spectra_run
    report = (run / "report.md").read_text()
    for heading in ("MAE of `residual_mlp` against the baselines", "paper Table 2", "Range-normalised errors",
                    "Residuals in bins of S/N"):
        assert heading in report, heading
    assert (run / "tables.md").is_file()
    snr = pd.read_csv(run / "residuals_snr.csv")
    assert list(snr[snr["target"] == "a"]["bin"]) == ["S/N < 10", "10-30", "S/N > 30", "all"]
    per_bin = snr[(snr["target"] == "a") & (snr["bin"] != "all")]
    n_test = len(np.load(run / "splits.npz")["test"])
    assert per_bin["n"].sum() == n_test
    assert (per_bin["sigma_mad"] > 0).all()


def test_missing_snr_column_fails_before_training(spectra_run, tmp_path):
    _, data = spectra_run
    recipe = Run.open(spectra_run[0]).recipe.with_overrides({"evaluation.snr_column": "SN_MEDIAN_ALL"})
    with pytest.raises(ValueError, match="snr_column 'SN_MEDIAN_ALL'"):
        train_recipe(recipe, runs_root=tmp_path, progress=False)


def test_streamed_spectra_predict_equals_one_chunk_and_restores_torch_threads(spectra_run, tmp_path):
    """Many chunks (the reading thread preprocesses while torch runs with one thread fewer) give the same table."""
    import torch

    run, data = spectra_run
    threads = torch.get_num_threads()
    one = pd.read_parquet(predict(run, data, tmp_path / "one.parquet", chunk_size=100_000, progress=False))
    many = pd.read_parquet(predict(run, data, tmp_path / "many.parquet", chunk_size=37, progress=False))
    assert torch.get_num_threads() == threads
    assert list(one["id"]) == list(many["id"]) and len(one) == 400
    np.testing.assert_allclose(many["a_pred"], one["a_pred"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(many["b_pred"], one["b_pred"], rtol=1e-5, atol=1e-6)
