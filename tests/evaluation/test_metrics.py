"""Metrics against values worked out by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from astroreg.evaluation import (
    binned_metrics,
    classification_metrics,
    evaluate_predictions,
    redshift_metrics,
    regression_metrics,
)

# e = pred - true = [1, -1, 2, 0]
TRUE = np.array([0.0, 1.0, 2.0, 3.0])
PRED = np.array([1.0, 0.0, 4.0, 3.0])


def test_regression_metrics_by_hand():
    m = regression_metrics(TRUE, PRED)
    assert list(m) == ["mae", "mse", "rmse", "r2", "nmad", "bias"]
    assert m["mae"] == pytest.approx(1.0)  # (1 + 1 + 2 + 0) / 4
    assert m["mse"] == pytest.approx(1.5)  # (1 + 1 + 4 + 0) / 4
    assert m["rmse"] == pytest.approx(math.sqrt(1.5))
    # SS_res = 6, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5
    assert m["r2"] == pytest.approx(1.0 - 6.0 / 5.0)
    # sorted e = [-1, 0, 1, 2]: median 0.5; |e - 0.5| = [0.5, 1.5, 1.5, 0.5]: median 1.0
    assert m["bias"] == pytest.approx(0.5)
    assert m["nmad"] == pytest.approx(1.4826)
    assert all(isinstance(v, float) for v in m.values())


def test_regression_metrics_single_object_has_nan_r2():
    m = regression_metrics([2.0], [3.0])
    assert m["mae"] == 1.0 and m["bias"] == 1.0 and m["nmad"] == 0.0
    assert math.isnan(m["r2"])


def test_regression_metrics_rejects_shape_mismatch():
    with pytest.raises(ValueError, match=r"same shape.*\(4,\) and \(3,\)"):
        regression_metrics(TRUE, PRED[:3])


def test_regression_metrics_rejects_2d():
    with pytest.raises(ValueError, match="1-D"):
        regression_metrics(TRUE.reshape(2, 2), PRED.reshape(2, 2))


def test_regression_metrics_rejects_empty():
    with pytest.raises(ValueError, match="empty"):
        regression_metrics([], [])


def test_regression_metrics_reports_non_finite_count_and_array():
    pred = PRED.copy()
    pred[[1, 3]] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"y_pred has 2 non-finite value\(s\).*\[1, 3\]") as info:
        regression_metrics(TRUE, pred)
    assert "y_true" not in str(info.value)
    true = TRUE.copy()
    true[0] = np.nan
    with pytest.raises(ValueError, match=r"y_true has 1 non-finite.*\[0\]"):
        regression_metrics(true, PRED)


def test_redshift_metrics_constructed_case():
    # z_true = 1, so e_z = (z_pred - 1) / 2; nine sorted values with quartiles at
    # indices 2 and 6 exactly.
    e_z = np.array([-0.2, -0.01, -0.01, 0.0, 0.0, 0.01, 0.01, 0.07, 0.3])
    z_true = np.ones_like(e_z)
    m = redshift_metrics(z_true, z_true + 2.0 * e_z)
    assert m["sigma_iqr_ez"] == pytest.approx(0.02 / 1.349)
    # 3 sigma_iqr = 0.044 < 0.06, so the threshold is 0.06: -0.2, 0.07, 0.3 are outliers
    assert m["outlier_rate"] == pytest.approx(3 / 9)
    assert m["catastrophic_rate"] == pytest.approx(2 / 9)  # -0.2 and 0.3
    assert m["bias_ez"] == pytest.approx(0.0, abs=1e-12)
    # |e_z| sorted: [0, 0, 0.01, 0.01, 0.01, 0.01, 0.07, 0.2, 0.3] -> median 0.01
    assert m["sigma_nmad_ez"] == pytest.approx(1.4826 * 0.01)


def test_redshift_outlier_threshold_grows_with_scatter():
    # IQR = 0.1 -> sigma_iqr = 0.0741, 3 sigma = 0.222 > 0.06: |0.1| is not an outlier.
    e_z = np.array([-0.1, -0.05, 0.0, 0.05, 0.1])
    m = redshift_metrics(np.zeros(5), e_z)
    assert m["sigma_iqr_ez"] == pytest.approx(0.1 / 1.349)
    assert m["outlier_rate"] == 0.0
    assert m["catastrophic_rate"] == 0.0


def test_redshift_metrics_rejects_z_below_minus_one():
    with pytest.raises(ValueError, match=r"z_true has 1 value\(s\) <= -1"):
        redshift_metrics([0.5, -1.0], [0.5, 0.0])


def test_classification_metrics():
    m = classification_metrics(
        ["star", "qso", "galaxy", "star"], ["star", "star", "galaxy", "qso"],
        labels=["star", "galaxy", "qso"],
    )
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]
    assert m["labels"] == ["star", "galaxy", "qso"]


def test_classification_metrics_rejects_unknown_label():
    with pytest.raises(ValueError, match=r"y_pred contains label\(s\) \['agn'\] not in labels"):
        classification_metrics(["star"], ["agn"], labels=["star", "qso"])


def test_classification_metrics_numpy_labels_are_plain():
    m = classification_metrics(np.array([0, 1, 1]), np.array([0, 1, 0]), labels=np.array([0, 1]))
    assert m["confusion_matrix"] == [[1, 0], [1, 1]]
    assert all(type(v) is int for v in m["labels"])


def test_binned_metrics_with_edges_keeps_empty_bins():
    table = binned_metrics(TRUE, PRED, bins=[0.0, 2.0, 4.0, 6.0])
    assert list(table.columns) == ["bin_lo", "bin_hi", "n", "mae", "rmse", "nmad", "bias"]
    assert table["n"].tolist() == [2, 2, 0]
    # bin [0, 2): e = [1, -1]; bin [2, 4): e = [2, 0]
    assert table.loc[0, "mae"] == pytest.approx(1.0)
    assert table.loc[0, "bias"] == pytest.approx(0.0)
    assert table.loc[0, "nmad"] == pytest.approx(1.4826)
    assert table.loc[1, "rmse"] == pytest.approx(math.sqrt(2.0))
    assert table.loc[1, "bias"] == pytest.approx(1.0)
    assert table.loc[2, ["mae", "rmse", "nmad", "bias"]].isna().all()


def test_binned_metrics_integer_bins_cover_range_and_include_max():
    rng = np.random.default_rng(0)
    true = rng.uniform(0.0, 10.0, 200)
    table = binned_metrics(true, true + rng.normal(0.0, 0.1, 200), bins=5)
    assert len(table) == 5
    assert table["n"].sum() == 200
    assert table["bin_lo"].iloc[0] == true.min() and table["bin_hi"].iloc[-1] == true.max()


def test_binned_metrics_rejects_bad_edges():
    with pytest.raises(ValueError, match="strictly increasing"):
        binned_metrics(TRUE, PRED, bins=[0.0, 2.0, 1.0])


def test_evaluate_predictions():
    frame = pd.DataFrame(
        {"teff_true": TRUE, "teff_pred": PRED, "z_true": [0.0, 0.5, 1.0, 2.0],
         "z_pred": [0.0, 0.5, 1.0, 2.0]}
    )
    result = evaluate_predictions(frame, ["teff", "z"], redshift_like=["z"])
    assert set(result) == {"teff", "z"}
    assert result["teff"] == pytest.approx(regression_metrics(TRUE, PRED))
    assert "sigma_iqr_ez" not in result["teff"]
    assert result["z"]["outlier_rate"] == 0.0 and result["z"]["rmse"] == 0.0


def test_evaluate_predictions_missing_column():
    frame = pd.DataFrame({"teff_true": TRUE})
    with pytest.raises(ValueError, match=r"\['teff_pred'\] not found.*columns are: \['teff_true'\]"):
        evaluate_predictions(frame, ["teff"])


def test_evaluate_predictions_names_the_bad_column():
    frame = pd.DataFrame({"logg_true": TRUE, "logg_pred": [1.0, np.nan, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"logg_pred has 1 non-finite"):
        evaluate_predictions(frame, "logg")


def test_evaluate_predictions_redshift_like_must_be_a_target():
    frame = pd.DataFrame({"z_true": TRUE, "z_pred": PRED})
    with pytest.raises(ValueError, match="not in targets"):
        evaluate_predictions(frame, ["z"], redshift_like=["redshift"])
