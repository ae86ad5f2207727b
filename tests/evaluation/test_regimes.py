"""Regime diagnostics: quantile bins of the truth, the low end, median collapse, the per-epoch callback."""

import json

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from astroreg.config import recipe_from_dict
from astroreg.data import DatasetWriter
from astroreg.evaluation import (
    low_end_metrics,
    plot_regimes,
    quantile_edges,
    read_metrics_json,
    regime_metrics,
    write_metrics_json,
)
from astroreg.pipeline import train_recipe
from astroreg.training import RegimeMAELogger, RegressionModule


def test_quantile_bins_hold_equal_numbers():
    t = np.random.default_rng(0).lognormal(size=1000)
    table = regime_metrics(t, t + 0.1, bins=5)
    assert table["n"].tolist() == [200] * 5
    np.testing.assert_allclose(table["bin_lo"], np.quantile(t, [0, 0.2, 0.4, 0.6, 0.8]))
    np.testing.assert_allclose(table["mae"], 0.1)
    np.testing.assert_allclose(table["bias"], 0.1)
    # Many repeated values merge quantile edges instead of making empty bins.
    assert quantile_edges(np.r_[np.zeros(90), np.arange(1, 11)], 5).size < 6


def test_slope_is_one_when_resolved_and_zero_when_the_median_is_predicted():
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 10, 5000)
    resolved = regime_metrics(t, t, bins=5)
    np.testing.assert_allclose(resolved["slope"], 1.0)
    assert np.all(resolved["mae"] == 0)
    # Median collapse: every object gets its bin's median whatever its truth (plus a little noise).
    edges = quantile_edges(t, 5)
    index = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, 4)
    medians = np.array([np.median(t[index == k]) for k in range(5)])
    collapsed = regime_metrics(t, medians[index] + rng.normal(0, 0.01, t.size), bins=5)
    assert np.all(np.abs(collapsed["slope"]) < 0.05)
    # A model that shrinks towards the mean by half has slope 0.5 in every bin.
    shrunk = regime_metrics(t, 5 + 0.5 * (t - 5), bins=5)
    np.testing.assert_allclose(shrunk["slope"], 0.5)


def test_low_end_is_the_lowest_quantile():
    t = np.arange(100.0)
    p = t.copy()
    p[:20] += 2.0  # only the lowest quintile is off
    low = low_end_metrics(t, p, low_quantile=0.2)
    assert low["n"] == 20
    assert low["mae"] == pytest.approx(2.0 * 20 / 20)
    assert low["bias"] == pytest.approx(2.0)
    assert low["nmad"] == pytest.approx(0.0)
    assert low["threshold"] == pytest.approx(np.quantile(t, 0.2))
    with pytest.raises(ValueError, match="low_quantile must be in"):
        low_end_metrics(t, p, low_quantile=1.5)


def test_low_end_round_trips_through_metrics_json(tmp_path):
    metrics = {"split": "test", "models": {"mlp": {"y": {"mae": 0.1}}},
               "low_end": {"mlp": {"y": {"mae": 0.3, "bias": np.float64(-0.1), "nmad": float("nan"), "n": 20}}}}
    back = read_metrics_json(write_metrics_json(tmp_path / "metrics.json", metrics))
    assert back["low_end"]["mlp"]["y"]["mae"] == 0.3 and np.isnan(back["low_end"]["mlp"]["y"]["nmad"])
    with pytest.raises(ValueError, match="unknown \\['extra'\\]"):
        write_metrics_json(tmp_path / "m.json", {**metrics, "extra": {}})


def test_plot_regimes_writes_a_png(tmp_path):
    t = np.random.default_rng(2).normal(size=6000)  # above the hexbin threshold
    out = plot_regimes(t, 0.5 * t, tmp_path / "r.png", edges=quantile_edges(t, 5),
                       low_threshold=float(np.quantile(t, 0.2)), label="y", unit="dex")
    assert out.stat().st_size > 5000


def test_callback_logs_the_validation_mae_per_bin(tmp_path):
    torch.manual_seed(0)
    x = torch.linspace(0, 1, 200).unsqueeze(1)
    y = 2 * x
    data = DataLoader(TensorDataset(x, y, torch.ones(200)), batch_size=50)
    net = nn.Linear(1, 1)
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.bias.fill_(0.0)  # pred = x, error = x: the MAE grows bin by bin
    module = RegressionModule(net, n_targets=1, lr=1e-12)
    # Scaled space -> units: y * 10 (a standard scaler with std 10).
    cb = RegimeMAELogger([0, 5, 10, 20], target_index=0, to_units=lambda v: 10 * v, low_threshold=5.0)
    trainer = L.Trainer(max_epochs=2, callbacks=[cb], logger=CSVLogger(tmp_path, name="", version=""),
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        enable_checkpointing=False, accelerator="cpu")
    trainer.fit(module, train_dataloaders=data, val_dataloaders=data)
    m = pd.read_csv(tmp_path / "metrics.csv")
    rows = m.dropna(subset=["val_mae_bin0"])
    assert len(rows) == 2
    t_units = 10 * y.squeeze().numpy()
    err = np.abs(10 * x.squeeze().numpy() - t_units)
    expect = [err[(t_units >= lo) & (t_units < hi)].mean() for lo, hi in ((0, 5), (5, 10))]
    expect.append(err[t_units >= 10].mean())  # the last bin is closed
    np.testing.assert_allclose(rows[["val_mae_bin0", "val_mae_bin1", "val_mae_bin2"]].iloc[-1], expect, rtol=1e-4)
    assert rows["val_mae_low"].iloc[-1] == pytest.approx(err[t_units <= 5].mean(), rel=1e-4)


@pytest.fixture(scope="module")
def skewed_run(tmp_path_factory):
    rng = np.random.default_rng(4)
    n = 800
    x = rng.normal(size=(n, 2))
    y = np.exp(0.8 * x[:, 0]) + 0.1 * rng.normal(size=n)
    path = tmp_path_factory.mktemp("reg") / "reg.h5"
    with DatasetWriter(path, tabular={"x0": "", "x1": ""}, targets={"y": "dex"}) as w:
        w.append([f"o{i}" for i in range(n)], tabular={"x0": x[:, 0], "x1": x[:, 1]}, targets={"y": y})
        w.make_splits({"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)

    def run(regimes):
        recipe = recipe_from_dict({
            "name": "reg", "dataset": {"path": str(path)},
            "inputs": {"modality": "tabular", "columns": ["x0", "x1"]}, "targets": [{"name": "y"}],
            "model": {"name": "mlp", "params": {"hidden": [16], "dropout": 0.0}},
            "training": {"epochs": 4, "batch_size": 64},
            "evaluation": {"regimes": regimes,
                           "baselines": [{"name": "ridge", "kind": "ridge", "features": {"include": ["x0", "x1"]}}]},
        })
        return train_recipe(recipe, runs_root=tmp_path_factory.mktemp("runs"), progress=False)

    return run({"bins": 4, "low_quantile": 0.25}), run(None)


def test_regimes_in_the_run_folder(skewed_run):
    run, _ = skewed_run
    history = pd.read_csv(run / "history.csv")
    for col in ("val_mae_bin0", "val_mae_bin1", "val_mae_bin2", "val_mae_bin3", "val_mae_low"):
        assert history[col].notna().all() and (history[col] > 0).all(), col
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["low_end"]) == {"mlp", "ridge"}
    low = metrics["low_end"]["ridge"]["y"]
    assert low["n"] == 40 and low["quantile"] == 0.25
    table = pd.read_csv(run / "metrics_regimes.csv")
    assert table.groupby("model")["n"].sum().tolist() == [160, 160]
    # Ridge is linear in x0 while y = exp(0.8 x0) is convex: the line passes below the curve
    # at the low end.
    assert low["bias"] < 0
    report = (run / "report.md").read_text()
    assert "## Regimes of the true value" in report and "25th percentile" in report
    assert (run / "plots" / "ridge_y_regimes.png").exists()


def test_no_regimes_when_not_asked(skewed_run):
    run_with, run_without = skewed_run
    metrics = json.loads((run_without / "metrics.json").read_text())
    assert "low_end" not in metrics
    assert not (run_without / "metrics_regimes.csv").exists()
    assert not any(c.startswith("val_mae_") for c in pd.read_csv(run_without / "history.csv"))
    # The per-target metrics are the same keys with or without regimes.
    with_m = json.loads((run_with / "metrics.json").read_text())["models"]
    assert {k: sorted(v["y"]) for k, v in with_m.items()} == {k: sorted(v["y"]) for k, v in metrics["models"].items()}
