"""Redshift targets: the five e_z statistics on hand-computed values, everywhere a run shows metrics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from astroreg.evaluation import (
    REDSHIFT_METRICS,
    format_metrics,
    labelled_metrics,
    plot_pred_vs_true,
    plot_residual_hist,
    plot_residuals,
    redshift_metrics,
    redshift_table,
    write_metrics_json,
    write_report,
)
from astroreg.evaluation._plots import _inset_text

# e_z chosen by hand; pred = true + e_z (1 + true), so the statistics below are exact.
Z_TRUE = np.array([0.0, 0.5, 1.0, 1.0, 2.0, 3.0, 0.0, 0.25])
E_Z = np.array([0.00, 0.03, -0.02, 0.01, 0.20, -0.12, 0.04, -0.01])
Z_PRED = Z_TRUE + E_Z * (1.0 + Z_TRUE)
# sorted e_z: -0.12 -0.02 -0.01 0.00 0.01 0.03 0.04 0.20
# quartiles (numpy's linear interpolation, positions 1.75 and 5.25): -0.0125 and 0.0325
SIGMA_IQR = 0.045 / 1.349
BIAS_EZ = 0.005  # median of e_z: (0.00 + 0.01) / 2
# |e_z - 0.005| sorted: .005 .005 .015 .025 .025 .035 .125 .195 -> median 0.025
SIGMA_NMAD = 1.4826 * 0.025
# threshold max(0.06, 3 * 0.03336) = 0.1001: -0.12 and 0.20 are outliers; only 0.20 is > 0.15
OUTLIER_RATE = 2 / 8
CATASTROPHIC_RATE = 1 / 8


def _frame() -> pd.DataFrame:
    # one unlabelled object: left out of the scores
    return pd.DataFrame({
        "z_true": [*Z_TRUE, np.nan], "z_pred": [*Z_PRED, 9.0],
        "mass_true": np.arange(9.0), "mass_pred": np.arange(9.0) + 0.5,
    })


def test_each_statistic_on_hand_computed_values():
    m = redshift_metrics(Z_TRUE, Z_PRED)
    assert tuple(m) == REDSHIFT_METRICS
    assert m["sigma_iqr_ez"] == pytest.approx(SIGMA_IQR)
    assert m["sigma_nmad_ez"] == pytest.approx(SIGMA_NMAD)
    assert m["bias_ez"] == pytest.approx(BIAS_EZ)
    assert m["outlier_rate"] == pytest.approx(OUTLIER_RATE)
    assert m["catastrophic_rate"] == pytest.approx(CATASTROPHIC_RATE)


def test_outlier_threshold_has_a_floor_of_0_06():
    # tight core (sigma_iqr tiny): the floor 0.06 decides; 0.059 is in, 0.061 out, 0.15 not catastrophic
    e_z = np.array([0.0] * 12 + [0.059, -0.061, 0.15, 0.151])
    m = redshift_metrics(np.zeros(16), e_z)
    assert m["sigma_iqr_ez"] == 0.0
    assert m["outlier_rate"] == pytest.approx(3 / 16)
    assert m["catastrophic_rate"] == pytest.approx(1 / 16)


def test_labelled_metrics_carry_both_nmads_under_their_own_names():
    metrics = labelled_metrics(_frame(), ["z", "mass"], ["z"])
    z = metrics["z"]
    assert z["sigma_nmad_ez"] == pytest.approx(SIGMA_NMAD)
    assert z["bias_ez"] == pytest.approx(BIAS_EZ)
    # the raw error pred - true: sorted -0.48 -0.04 -0.0125 0 0.02 0.04 0.045 0.6, median 0.01
    assert z["bias"] == pytest.approx(0.01)
    raw = Z_PRED - Z_TRUE
    assert z["nmad"] == pytest.approx(1.4826 * np.median(np.abs(raw - np.median(raw))))
    assert z["nmad"] != pytest.approx(z["sigma_nmad_ez"])
    assert not set(REDSHIFT_METRICS) & set(metrics["mass"])
    with pytest.raises(ValueError, match=r"redshift targets \['zz'\] are not in targets"):
        labelled_metrics(_frame(), ["z"], ["zz"])
    with pytest.raises(ValueError, match="no object of the evaluation split has a known 'q'"):
        labelled_metrics(pd.DataFrame({"q_true": [np.nan], "q_pred": [1.0]}), ["q"])


def test_labelled_metrics_is_still_importable_from_the_run_module():
    from astroreg.pipeline._run import labelled_metrics as from_run

    assert from_run is labelled_metrics


def _run_metrics() -> dict:
    frame = _frame()
    return {"split": "test", "models": {
        "mlp": labelled_metrics(frame, ["z", "mass"], ["z"]),
        "ridge": labelled_metrics(frame.assign(z_pred=frame["z_true"] + 0.01), ["z", "mass"], ["z"]),
    }}


def test_metrics_json_keeps_the_e_z_keys(tmp_path):
    out = write_metrics_json(tmp_path / "metrics.json", _run_metrics())
    saved = json.loads(out.read_text())["models"]["mlp"]["z"]
    assert saved["sigma_iqr_ez"] == pytest.approx(SIGMA_IQR)
    assert saved["catastrophic_rate"] == pytest.approx(CATASTROPHIC_RATE)
    assert {"nmad", "bias", "sigma_nmad_ez", "bias_ez"} <= set(saved)


def test_redshift_table_has_the_redshift_targets_only():
    table = redshift_table(_run_metrics())
    assert list(table.columns) == ["model", "target", *REDSHIFT_METRICS]
    assert table[["model", "target"]].values.tolist() == [["mlp", "z"], ["ridge", "z"]]
    assert table.iloc[0]["outlier_rate"] == pytest.approx(OUTLIER_RATE)
    no_z = {"split": "test", "models": {"m": {"mass": {"mae": 1.0}}}}
    assert redshift_table(no_z).empty


def test_console_table_shows_the_five_statistics():
    text = format_metrics(_run_metrics(), reference="ridge")
    for key in REDSHIFT_METRICS:
        assert key in text
    assert "nmad(pred-true)" in text and "bias(pred-true)" in text
    line = next(row for row in text.splitlines() if row.startswith("mlp") and " z " in f" {row} "
                and "0.03336" in row)
    assert f"{SIGMA_NMAD:.4g}" in line and "0.25" in line and "0.125" in line
    plain = format_metrics({"split": "test", "models": {"m": {"mass": {"mae": 1.0, "nmad": 0.1}}}})
    assert "e_z" not in plain and "nmad(pred-true)" not in plain


def test_report_shows_the_statistics_and_says_which_nmad(tmp_path):
    out = write_report(tmp_path, title="photo-z", metrics=_run_metrics(), classifier_metrics={}, config={},
                       environment={}, plots={})
    text = out.read_text()
    assert "### Redshift statistics of e_z = (pred - true) / (1 + true)" in text
    assert "| model | target | σ_IQR(e_z) | σ_NMAD(e_z) | bias(e_z) | outlier rate | catastrophic rate |" in text
    assert "NMAD(pred - true)" in text and "bias(pred - true)" in text
    assert f"| mlp | z | {SIGMA_IQR:.4g} | {SIGMA_NMAD:.4g} | {BIAS_EZ:.4g} | 0.25 | 0.125 |" in text
    # the e_z keys are not repeated under "Further metrics"
    assert "### Further metrics" not in text


def test_plot_inset_with_a_redshift_target(tmp_path):
    box = _inset_text(Z_TRUE, Z_PRED, None, redshift=True)
    for name in ("sigma_IQR(e_z)", "sigma_NMAD(e_z)", "bias(e_z)", "outliers", "catastrophic",
                 "NMAD(pred-true)"):
        assert name in box
    assert f"{SIGMA_NMAD:.4g}" in box and "25.00%" in box and "12.50%" in box
    assert "e_z" not in _inset_text(Z_TRUE, Z_PRED, None, redshift=False)
    for n in (8, 6000):  # scatter and hexbin
        rng = np.random.default_rng(0)
        z = rng.uniform(0.0, 2.0, n) if n > 8 else Z_TRUE
        zp = z + 0.03 * (1 + z) * rng.normal(size=z.size) if n > 8 else Z_PRED
        out = plot_pred_vs_true(z, zp, tmp_path / f"z{n}.png", label="z", redshift=True)
        assert out.stat().st_size > 1000
    # the old keyword still works
    assert plot_pred_vs_true(Z_TRUE, Z_PRED, tmp_path / "old.png", redshift_like=True).is_file()
    assert plot_residuals(Z_TRUE, Z_PRED, tmp_path / "r.png", redshift=True).is_file()
    assert plot_residual_hist(Z_TRUE, Z_PRED, tmp_path / "h.png", redshift=True).is_file()
    with pytest.raises(ValueError, match="z_true|y_true"):
        plot_pred_vs_true([-1.0, 0.5], [0.0, 0.5], tmp_path / "bad.png", redshift=True)


def test_a_transformed_redshift_target_is_refused_naming_it():
    from astroreg.config import TargetConfig

    with pytest.raises(ValueError, match=r"target 'z': kind redshift scores e_z .* keep transform: none"):
        TargetConfig(name="z", kind="redshift", transform="log10")
    assert TargetConfig(name="z", kind="redshift").is_redshift
