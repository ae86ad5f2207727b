"""Paper-style tables and robust residual statistics on hand-made numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from astroreg.evaluation import (
    PAPER_001,
    ablation_table,
    mae_ratio_table,
    model_size_table,
    paper_tables_markdown,
    range_normalised_errors,
    residuals_by_snr,
    robust_residual_stats,
    target_ranges,
)

MODELS = {
    "residual_mlp": {"teff": {"mae": 60.0, "mse": 1.0}, "logg": {"mae": 0.13}},
    "ols": {"teff": {"mae": 150.0}, "logg": {"mae": 0.26}},
    "ridge": {"teff": {"mae": 120.0}, "logg": {"mae": 0.20}},
    "dnn_li2017": {"teff": {"mae": 50.0}, "logg": {"mae": 0.13}},
}
METRICS = {"split": "test", "models": MODELS}
INFO = {"residual_mlp": {"parameters": 500_000, "predict_objects_per_s": 40_000.0},
        "dnn_li2017": {"parameters": 10_000_000, "predict_objects_per_s": 10_000.0}}


def test_mae_ratio_table():
    table = mae_ratio_table(METRICS, "residual_mlp", ["ols", "ridge"])
    assert table["target"].tolist() == ["teff", "logg"]
    assert table["MAE ols"].tolist() == [150.0, 0.26]
    assert table["residual_mlp / ols"].tolist() == pytest.approx([0.4, 0.5])
    assert table["residual_mlp / ridge"].tolist() == pytest.approx([0.5, 0.65])
    with pytest.raises(ValueError, match="'cnn'"):
        mae_ratio_table(METRICS, "residual_mlp", ["cnn"])


def test_model_size_table_relative_to_reference():
    table = model_size_table(METRICS, INFO, ["residual_mlp", "dnn_li2017"], "dnn_li2017").set_index("model")
    ref = table.loc["dnn_li2017"]
    assert ref["parameters (rel)"] == 1.0 and ref["time (rel)"] == 1.0 and ref["MAE teff (rel)"] == 1.0
    mine = table.loc["residual_mlp"]
    assert mine["parameters (rel)"] == pytest.approx(0.05)
    assert mine["time (rel)"] == pytest.approx(0.25)  # 4x the throughput: a quarter of the time
    assert mine["ms_per_1000"] == pytest.approx(25.0)
    assert mine["MAE teff (rel)"] == pytest.approx(1.2)
    # No model_info: NaN, not an error.
    assert np.isnan(model_size_table(METRICS, None, ["ols"], "ols")["parameters (rel)"].iloc[0])


def test_range_normalisation_matches_the_paper_definition():
    frame = pd.DataFrame({"teff_true": [4006.94, 9448.20, 6000.0, np.nan], "logg_true": [0.18, 4.99, 3.0, 2.0]})
    ranges = target_ranges(frame, ["teff", "logg"])
    assert ranges == pytest.approx({"teff": 5441.26, "logg": 4.81})
    paper = {"residual_mlp": {"teff": {"mae": 59.75}, "logg": {"mae": 0.130}}}
    table = range_normalised_errors(paper, frame).set_index("target")
    # The paper's Section 6: 1.10 % for Teff and 2.70 % for log g.
    assert table.loc["teff", "percent"] == pytest.approx(1.10, abs=0.005)
    assert table.loc["logg", "percent"] == pytest.approx(2.70, abs=0.005)
    assert table.loc["logg", "mae_over_range"] == pytest.approx(0.13 / 4.81)


def test_ablation_table_full_first_and_ratios():
    results = {
        "no_skip": {"metrics": {"teff": {"mae": 90.0}}, "parameters": 95, "predict_objects_per_s": 200.0},
        "full": {"metrics": {"teff": {"mae": 60.0}}, "parameters": 100, "predict_objects_per_s": 100.0},
    }
    table = ablation_table(results)
    assert table["variant"].tolist() == ["full", "no_skip"]
    assert table["MAE teff (rel)"].tolist() == [1.0, 1.5]
    assert table["parameters (rel)"].tolist() == [1.0, 0.95]
    assert table["time (rel)"].tolist() == [1.0, 0.5]
    with pytest.raises(ValueError, match="'full'"):
        ablation_table({"no_skip": results["no_skip"]})


def test_markdown_has_sections_and_paper_values():
    abl = ablation_table({"full": {"metrics": MODELS["residual_mlp"], "parameters": 500_000}})
    md = paper_tables_markdown(METRICS, model="residual_mlp", model_info=INFO,
                               ranges={"teff": 5000.0, "logg": 5.0}, ablation=abl)
    for title in ("paper Table 2", "paper Table 3", "paper Table 4", "Range-normalised", "paper Table 5"):
        assert title in md
    assert "143.8" in md  # the paper's OLS Teff MAE beside ours
    assert "13.66M" in md and "500,000" in md
    # Targets the paper does not have: no paper columns.
    other = {"split": "test", "models": {"m": {"flux": {"mae": 1.0}}, "ols": {"flux": {"mae": 2.0}}}}
    assert "(paper)" not in paper_tables_markdown(other, model="m")
    assert PAPER_001["table2_mae"]["ridge"]["teff"] == 115.24


def test_robust_stats_on_gaussian_residuals():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 10, 5000)
    stats = robust_residual_stats(truth, truth + 3.0 + rng.normal(0, 2.0, truth.size))
    assert stats["n"] == 5000
    assert stats["sigma_mad"] == pytest.approx(2.0, rel=0.1)
    assert stats["median"] == pytest.approx(3.0, abs=0.1)
    # Unlabelled objects are dropped; a NaN prediction of a labelled one is an error.
    assert robust_residual_stats([1.0, np.nan], [2.0, 5.0])["n"] == 1
    with pytest.raises(ValueError, match="non-finite"):
        robust_residual_stats([1.0, 2.0], [np.nan, 2.0])


def test_snr_bins_with_open_ends():
    frame = pd.DataFrame({
        "t_true": [0.0, 0.0, 0.0, 0.0, 0.0, np.nan],
        "t_pred": [1.0, 2.0, 4.0, 8.0, 16.0, 99.0],
        "sn": [3.0, 10.0, 19.9, 40.0, 1000.0, 15.0],
    })
    table = residuals_by_snr(frame, ["t"], "sn", [10, 20, 40])
    assert table["bin"].tolist() == ["S/N < 10", "10-20", "20-40", "S/N > 40", "all"]
    assert table["n"].tolist() == [1, 2, 0, 2, 5]  # 10 falls in 10-20, 40 in the top bin; NaN truth dropped
    assert table["median"].tolist()[:2] == [1.0, 3.0]
    assert np.isnan(table["median"].iloc[2])
    assert table.iloc[3]["median"] == 12.0 and table.iloc[3]["sigma_mad"] == pytest.approx(1.4826 * 4.0)
    assert table.iloc[3]["snr_hi"] == np.inf and table.iloc[0]["snr_lo"] == -np.inf
    with pytest.raises(ValueError, match="strictly increasing"):
        residuals_by_snr(frame, ["t"], "sn", [20, 10])
    with pytest.raises(ValueError, match="'SN_MEDIAN_ALL'"):
        residuals_by_snr(frame, ["t"], "SN_MEDIAN_ALL", [10])
