"""The shipped sigma-sfr-photometry recipe (paper 000): its setup, and a small run on the mock."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from astroreg.cli._main import main
from astroreg.config import load_recipe

# A narrow stand-in for the paper's network, so that the run takes seconds; the shipped
# layout itself is checked by its parameter count (tests/models/test_cnn1d.py).
SMALL = ["--set", "model.params.filters=[8, 16, 16, 16]", "--set", "model.params.dense=[32, 16]",
         "--set", "training.epochs=8", "--set", "training.batch_size=64", "--set", "training.optimizer.lr=3e-3",
         "--set", "evaluation.baselines=[{name: ridge, kind: ridge, inputs: model}, "
                  "{name: mean_predictor, kind: mean}]",
         "--set", "evaluation.reference=null", "--threads", "1", "--quiet"]


def test_recipe_weights_the_output_layer_and_keeps_the_other_weightings_as_variants():
    r = load_recipe("sigma-sfr-photometry")
    w = r.training.sample_weights
    assert (w.kind, w.stage, w.power, w.clip) == ("lds", "head", 0.25, (0.2, 5.0))
    assert (r.training.loss, r.training.scheduler.name, r.model.name) == ("huber", "plateau", "residual_cnn1d")
    variants = {v.name: v.overrides for v in r.variants}
    assert variants["no_sample_weights"] == {"training.sample_weights.kind": "none"}
    assert variants["joint_weights"] == {"training.sample_weights.stage": "joint", "training.sample_weights.power": 0.5}
    assert variants["no_skip"] == {"model.params.skip": False}
    assert {b.name for b in r.evaluation.baselines} >= {"plain_cnn1d", "ridge", "lightgbm"}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sigma")
    data = tmp / "mock.h5"
    assert main(["simulate", "galaxy-photometry", "--n", "3000", "--out", str(data), "--seed", "2"]) == 0
    run = tmp / "run"
    assert main(["train", "sigma-sfr-photometry", "--data", str(data), "--run-dir", str(run), *SMALL]) == 0
    return run


def test_small_run_refits_the_output_layer_and_beats_the_median_by_40_percent(small_run):
    w = json.loads((small_run / "sample_weights.json").read_text())
    assert w["stage"] == "head" and w["power"] == 0.25
    refit = w["head_refit"]
    assert refit["layer"].endswith("output")
    assert refit["weighted_val_loss_after"] <= refit["weighted_val_loss_before"]
    assert "output layer `" in (small_run / "report.md").read_text()

    frame = pd.read_parquet(small_run / "predictions.parquet")
    truth = frame["log_sigma_sfr_true"].to_numpy()
    pred = frame["log_sigma_sfr_pred"].to_numpy()
    mae = np.abs(pred - truth).mean()
    median_mae = np.abs(truth - np.median(truth)).mean()
    assert mae < 0.6 * median_mae, (mae, median_mae)  # 0.49x on this machine


def test_train_console_summary_prints_the_low_end_of_every_model(small_run, capsys):
    from astroreg.cli._run import print_comparison

    low_end = json.loads((small_run / "metrics.json").read_text())["low_end"]
    print_comparison(small_run)
    out = capsys.readouterr().out
    assert "low end:" in out
    table = out.split("low end:")[1]
    for model, targets in low_end.items():
        row = next(line for line in table.splitlines() if line.startswith(model + " "))
        assert f"{targets['log_sigma_sfr']['mae']:.4g}" in row.split(), row


def test_evaluate_on_another_mock_reports_the_low_end(small_run, tmp_path, capsys):
    other = tmp_path / "other.h5"
    assert main(["simulate", "galaxy-photometry", "--n", "1000", "--out", str(other), "--seed", "5",
                 "--no-splits"]) == 0
    out = tmp_path / "other-metrics.json"
    capsys.readouterr()
    assert main(["evaluate", str(small_run), "--data", str(other), "--out", str(out), "--threads", "1", "--quiet"]) == 0
    assert "low end:" in capsys.readouterr().out
    low = json.loads(out.read_text())["low_end"]["residual_cnn1d"]["log_sigma_sfr"]
    frame = pd.read_parquet(out.with_suffix(".parquet"))
    assert len(frame) == 1000
    truth, pred = frame["log_sigma_sfr_true"].to_numpy(), frame["log_sigma_sfr_pred"].to_numpy()
    at_low = truth <= low["threshold"]
    assert low["quantile"] == 0.2 and low["n"] == at_low.sum() and 195 <= low["n"] <= 205
    assert low["mae"] == pytest.approx(np.abs(pred - truth)[at_low].mean(), rel=1e-6)
