"""Redshift statistics in bins of the true redshift: table, metrics.json, report section and figure."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest

from astroreg.config import recipe_from_dict
from astroreg.config._recipe import EvaluationConfig
from astroreg.data import DatasetWriter, SpectraSpec
from astroreg.evaluation import (
    REDSHIFT_BIN_EDGES,
    plot_redshift_bins,
    read_metrics_json,
    redshift_bin_edges,
    redshift_bin_metrics,
    redshift_bins_for_frames,
    redshift_bins_markdown,
    write_metrics_json,
    write_report,
)
from astroreg.evaluation._regimes import assign_bins
from astroreg.pipeline import evaluate_run, train_recipe

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Bin 0 (0 <= z < 0.1): e_z = 0, 0.01, 0.02, 0.5; bin 1 empty; bin 2 (0.2 <= z <= 0.3, closed): e_z = 0, 0.1.
# The last two objects lie outside the edges and are in no bin.
Z_TRUE = np.array([0.0, 0.0, 0.0, 0.0, 0.25, 0.3, 0.31, -0.05])
Z_PRED = np.array([0.0, 0.01, 0.02, 0.5, 0.25, 0.43, 0.9, 0.4])
EDGES = [0.0, 0.1, 0.2, 0.3]


def test_per_bin_values_of_a_hand_made_example():
    t = redshift_bin_metrics(Z_TRUE, Z_PRED, EDGES)
    assert t["n"].tolist() == [4, 0, 2]
    assert t["bin_lo"].tolist() == [0.0, 0.1, 0.2] and t["bin_hi"].tolist() == [0.1, 0.2, 0.3]
    b0, b2 = t.iloc[0], t.iloc[2]
    assert b0["mae"] == pytest.approx(0.1325)
    assert b0["bias_ez"] == pytest.approx(0.015)
    assert b0["sigma_nmad_ez"] == pytest.approx(1.4826 * 0.01)
    # quartiles of (0, 0.01, 0.02, 0.5), linearly interpolated: 0.0075 and 0.14
    assert b0["sigma_iqr_ez"] == pytest.approx(0.1325 / 1.349)
    assert b0["outlier_rate"] == 0.25 and b0["catastrophic_rate"] == 0.25
    assert b2["mae"] == pytest.approx(0.065)
    assert b2["bias_ez"] == pytest.approx(0.05)
    assert b2["sigma_nmad_ez"] == pytest.approx(1.4826 * 0.05)
    assert b2["sigma_iqr_ez"] == pytest.approx(0.05 / 1.349)
    assert b2["outlier_rate"] == 0.0 and b2["catastrophic_rate"] == 0.0


def test_an_empty_bin_is_n_0_and_nan_not_an_error():
    t = redshift_bin_metrics(Z_TRUE, Z_PRED, EDGES)
    empty = t.iloc[1]
    assert empty["n"] == 0
    assert empty[["mae", "sigma_iqr_ez", "sigma_nmad_ez", "bias_ez", "outlier_rate", "catastrophic_rate"]].isna().all()
    # every object outside the bins: all bins empty
    all_out = redshift_bin_metrics([0.9, 1.2], [0.9, 1.0], EDGES)
    assert all_out["n"].tolist() == [0, 0, 0] and all_out["mae"].isna().all()


def test_fixed_edges_leave_objects_outside_in_no_bin_and_quantile_bins_keep_them():
    assert assign_bins([-0.1, 0.0, 0.1, 0.3, 0.31], EDGES, outside="none").tolist() == [-1, 0, 1, 2, -1]
    assert assign_bins([-0.1, 0.31], EDGES).tolist() == [0, 2]  # regimes: the nearest end bin, as before
    with pytest.raises(ValueError, match="outside must be"):
        assign_bins([0.1], EDGES, outside="clip")
    with pytest.raises(ValueError, match=r"evaluation\.redshift_bins must be at least two .*increasing"):
        redshift_bin_metrics(Z_TRUE, Z_PRED, [0.3, 0.1])


def test_default_edges_are_the_papers_six_bins_and_settable():
    assert REDSHIFT_BIN_EDGES == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    assert redshift_bin_edges(EvaluationConfig().redshift_bins) == REDSHIFT_BIN_EDGES
    assert redshift_bin_edges(EvaluationConfig(redshift_bins=[0, 0.5, 1]).redshift_bins) == (0.0, 0.5, 1.0)
    assert redshift_bin_edges(EvaluationConfig(redshift_bins=[]).redshift_bins) == ()
    with pytest.raises(ValueError, match="redshift_bins must be at least two finite, strictly increasing"):
        EvaluationConfig(redshift_bins=[0.2, 0.1])


def _frames():
    rng = np.random.default_rng(0)
    z = rng.uniform(0, 0.6, 300)
    net = pd.DataFrame({"z_true": z, "z_pred": z + 0.02 * rng.normal(size=z.size)})
    ridge = pd.DataFrame({"z_true": z, "z_pred": 0.5 * z + 0.07})
    net.loc[3, "z_true"] = np.nan  # unlabelled: left out
    return {"cnn": net, "ridge": ridge}


def test_frames_give_metrics_json_entries_per_model_target_and_bin(tmp_path):
    table, entry, outside = redshift_bins_for_frames(_frames(), ["z"])
    assert set(table["model"]) == {"cnn", "ridge"} and len(table) == 12
    assert sorted(entry) == ["cnn", "ridge"] and len(entry["cnn"]["z"]) == 6
    assert sum(b["n"] for b in entry["cnn"]["z"]) == 299 and sum(b["n"] for b in entry["ridge"]["z"]) == 300
    assert outside == {"z": 0}
    # the ridge is biased high at low z and low at high z; the network is not
    bias = table.pivot(index="bin", columns="model", values="bias_ez")
    assert bias["ridge"].iloc[0] > 0.03 and bias["ridge"].iloc[-1] < -0.03 and bias["cnn"].abs().max() < 0.01
    empty = redshift_bin_metrics([0.05], [0.05], [0.0, 0.1, 0.2])
    entry["cnn"]["z"][0]["sigma_nmad_ez"] = empty["sigma_nmad_ez"].iloc[1]  # NaN: written as null
    metrics = {"split": "test", "models": {"cnn": {"z": {"mae": 0.1}}, "ridge": {"z": {"mae": 0.2}}},
               "redshift_bins": entry}
    path = write_metrics_json(tmp_path / "metrics.json", metrics)
    raw = json.loads(path.read_text())
    first = raw["redshift_bins"]["cnn"]["z"][0]
    assert first["sigma_nmad_ez"] is None and isinstance(first["n"], int)
    assert set(first) == {"bin_lo", "bin_hi", "n", "mae", "sigma_iqr_ez", "sigma_nmad_ez", "bias_ez",
                          "outlier_rate", "catastrophic_rate"}
    back = read_metrics_json(path)
    assert np.isnan(back["redshift_bins"]["cnn"]["z"][0]["sigma_nmad_ez"])
    assert back["redshift_bins"]["ridge"]["z"][5]["n"] == entry["ridge"]["z"][5]["n"]
    with pytest.raises(ValueError, match=r"metrics\['redshift_bins'\]\['cnn'\]\['z'\] must be a non-empty list"):
        write_metrics_json(tmp_path / "bad.json", {**metrics, "redshift_bins": {"cnn": {"z": []}}})


def test_figure_is_a_png_even_after_something_switched_latex_on(tmp_path):
    table, _, _ = redshift_bins_for_frames(_frames(), ["z"])
    with matplotlib.rc_context({"text.usetex": True}):  # as importing GaiaXPy does; no LaTeX here
        out = plot_redshift_bins(table, tmp_path / "redshift_bins.png", target="z", title="z")
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="no redshift-bin rows for target 'q'"):
        plot_redshift_bins(table, tmp_path / "q.png", target="q")


def test_report_contains_the_table(tmp_path):
    table, _, _ = redshift_bins_for_frames(_frames(), ["z"])
    section = redshift_bins_markdown(table, {"z": 4})
    report = write_report(tmp_path, title="t", metrics={"split": "test", "models": {"cnn": {"z": {"mae": 0.1}}}},
                          classifier_metrics={}, config={}, environment={}, plots={}, sections=[section])
    text = report.read_text()
    assert "## Redshift statistics in bins of true z" in text
    assert "| model | z_true | n | MAE(z) | σ_NMAD(e_z) |" in text
    assert "| ridge | 0.5-0.6 |" in text and "outside 0 <= z <= 0.6, in no bin: 4 (z)" in text


def _dataset(path, n: int = 120, seed: int = 0):
    """Spectra whose line moves with z; z up to 0.7, so some objects lie beyond the default bins."""
    rng = np.random.default_rng(seed)
    loglam = np.linspace(3.60, 3.70, 48)
    z = rng.uniform(0.0, 0.7, n)
    flux = 1 + np.exp(-0.5 * ((loglam[None] - 3.61 - 0.1 * z[:, None]) / 0.004) ** 2)
    flux += 0.02 * rng.normal(size=flux.shape)
    spec = SpectraSpec(n_pixels=loglam.size, wavelength=tuple(10**loglam), with_ivar=False, with_mask=False)
    with DatasetWriter(path, targets={"z": ""}, spectra=spec) as w:
        w.append([f"g{i}" for i in range(n)], spectra={"flux": flux.astype("f4")}, targets={"z": z})
        w.make_splits({"train": 0.6, "val": 0.2, "test": 0.2}, seed=seed)
    return path


def test_a_trained_redshift_run_writes_the_bins_for_the_network_and_every_baseline(tmp_path):
    data = _dataset(tmp_path / "z.h5")
    recipe = recipe_from_dict({
        "name": "zbins",
        "dataset": {"path": str(data)},
        "inputs": {"flux": {"kind": "spectra", "grid": [3.60, 3.70, 48], "resample": False, "scaling": "minmax"}},
        "targets": [{"name": "z", "column": "z", "kind": "redshift"}],
        "model": {"name": "mlp", "params": {"hidden": [8]}},
        "training": {"epochs": 1, "batch_size": 16, "augment": {"copies": 0}},
        "evaluation": {"baselines": [{"name": "ridge", "kind": "ridge"}], "reference": None, "compare_to": []},
    })
    run = train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)
    metrics = json.loads((run / "metrics.json").read_text())
    assert sorted(metrics["redshift_bins"]) == ["mlp", "ridge"]
    bins = metrics["redshift_bins"]["mlp"]["z"]
    assert [b["bin_lo"] for b in bins] == list(REDSHIFT_BIN_EDGES[:-1])
    predictions = pd.read_parquet(run / "predictions.parquet")
    inside = int(((predictions["z_true"] >= 0) & (predictions["z_true"] <= 0.6)).sum())
    assert sum(b["n"] for b in bins) == inside < len(predictions)
    csv = pd.read_csv(run / "metrics_redshift_bins.csv")
    assert len(csv) == 12 and set(csv["model"]) == {"mlp", "ridge"}
    assert (run / "plots" / "redshift_bins.png").read_bytes()[:8] == PNG_MAGIC
    report = (run / "report.md").read_text()
    assert "## Redshift statistics in bins of true z" in report and "](plots/redshift_bins.png)" in report
    # the figure sits right after the network's predicted-vs-true plot
    assert report.index("mlp_z_pred_vs_true.png") < report.index("redshift_bins.png") < report.index(
        "mlp_z_residuals.png")
    # astroreg evaluate gives the network's bins too, equal to those of the run
    again, _ = evaluate_run(run, progress=False)
    assert again["redshift_bins"]["mlp"]["z"][0]["n"] == bins[0]["n"]
    assert again["redshift_bins"]["mlp"]["z"][0]["mae"] == pytest.approx(bins[0]["mae"], rel=1e-9, nan_ok=True)
