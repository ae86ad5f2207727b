"""Plots write PNGs; the report and metrics.json have the expected content."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from astroreg.evaluation import (
    comparison_table,
    format_table,
    plot_comparison,
    plot_confusion_matrix,
    plot_loss_curves,
    plot_pred_vs_true,
    plot_residual_hist,
    plot_residuals,
    read_metrics_json,
    write_metrics_json,
    write_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metric(mse: float, **extra: float) -> dict[str, float]:
    return {"mae": mse / 2, "mse": mse, "rmse": math.sqrt(mse), "r2": 0.9, "nmad": 0.1,
            "bias": -0.01, **extra}


def _metrics() -> dict:
    return {
        "split": "test",
        "models": {
            "random_forest": {"teff": _metric(50.0), "redshift": _metric(0.04)},
            "linear_regression": {"teff": _metric(100.0), "redshift": _metric(0.08)},
            "mlp": {"teff": _metric(25.0), "redshift": _metric(0.02, outlier_rate=0.05)},
        },
    }


def _assert_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC
    # No temporary file left beside it.
    assert not list(path.parent.glob("*.part"))


@pytest.mark.parametrize("n", [50, 6000])
def test_point_plots_write_png(tmp_path, n):
    rng = np.random.default_rng(0)
    true = rng.uniform(4000.0, 7000.0, n)
    pred = true + rng.normal(0.0, 100.0, n)
    for func in (plot_pred_vs_true, plot_residuals, plot_residual_hist):
        out = func(true, pred, tmp_path / "plots" / f"{func.__name__}_{n}.png",
                   label="teff", unit="K")
        _assert_png(out)


def test_redshift_residuals(tmp_path):
    rng = np.random.default_rng(1)
    z = rng.uniform(0.0, 2.0, 300)
    out = plot_residuals(z, z + 0.02 * (1 + z) * rng.normal(size=300), tmp_path / "z.png",
                         label="z", redshift_like=True)
    _assert_png(out)


def test_loss_confusion_comparison_plots(tmp_path):
    history = pd.DataFrame({"epoch": [0, 1, 2, 3], "train_loss": [1.0, 0.5, 0.3, 0.2],
                            "val_loss": [1.1, np.nan, 0.4, 0.45]})
    _assert_png(plot_loss_curves(history, tmp_path / "loss.png"))
    _assert_png(plot_confusion_matrix([[5, 1], [2, 7]], ["star", "qso"], tmp_path / "cm.png",
                                      title="classes"))
    _assert_png(plot_comparison(comparison_table(_metrics()), tmp_path / "cmp.png"))


def test_plot_errors(tmp_path):
    with pytest.raises(ValueError, match=r"must end in '\.png'"):
        plot_pred_vs_true([1.0], [1.0], tmp_path / "x.jpg")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['val_loss'\]"):
        plot_loss_curves(pd.DataFrame({"epoch": [0], "train_loss": [1.0]}), tmp_path / "l.png")
    with pytest.raises(ValueError, match="3 labels for a 2x2"):
        plot_confusion_matrix([[1, 0], [0, 1]], ["a", "b", "c"], tmp_path / "c.png")
    assert not list(tmp_path.iterdir())


def test_comparison_table_ratio_defaults_to_linear_regression():
    table = comparison_table(_metrics())
    column = "MSE / MSE(linear_regression)"
    assert list(table.columns) == ["model", "target", "mae", "mse", "rmse", "r2", "nmad",
                                   "bias", column]
    assert len(table) == 6
    ratios = dict(zip(zip(table["model"], table["target"]), table[column]))
    assert ratios[("random_forest", "teff")] == pytest.approx(0.5)
    assert ratios[("mlp", "redshift")] == pytest.approx(0.25)
    assert ratios[("linear_regression", "teff")] == pytest.approx(1.0)


def test_comparison_table_explicit_reference_and_errors():
    table = comparison_table(_metrics(), reference="mlp")
    assert table.loc[table["model"] == "random_forest", "MSE / MSE(mlp)"].tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match=r"reference model 'svr' is not among.*'mlp'"):
        comparison_table(_metrics(), reference="svr")


def test_format_table_is_aligned():
    text = format_table(comparison_table(_metrics()))
    lines = text.splitlines()
    assert len(lines) == 2 + 6
    assert lines[0].startswith("model") and "MSE / MSE(linear_regression)" in lines[0]
    assert set(lines[1]) <= {"-", " "}
    assert "random_forest" in lines[2] and lines[2].rstrip().endswith("0.5")
    # every numeric column is right-aligned to the same end position
    assert len({len(line) for line in lines[:2]}) == 1


def test_metrics_json_round_trip(tmp_path):
    out = write_metrics_json(tmp_path / "run" / "metrics.json", _metrics())
    assert out == tmp_path / "run" / "metrics.json"
    assert json.loads(out.read_text()) == _metrics()
    assert read_metrics_json(out) == _metrics()
    assert not list(out.parent.glob("*.part"))


def test_metrics_json_numpy_scalars_become_numbers(tmp_path):
    metrics = _metrics()
    metrics["models"]["mlp"]["teff"]["bias"] = np.float32(-0.5)
    out = write_metrics_json(tmp_path / "metrics.json", metrics)
    assert json.loads(out.read_text())["models"]["mlp"]["teff"]["bias"] == -0.5


def test_metrics_json_nan_becomes_null_and_back(tmp_path):
    metrics = {"split": "val", "models": {"m": {"t": {"r2": float("nan"), "mae": 1.0}}}}
    out = write_metrics_json(tmp_path / "metrics.json", metrics)
    assert json.loads(out.read_text())["models"]["m"]["t"]["r2"] is None
    assert math.isnan(read_metrics_json(out)["models"]["m"]["t"]["r2"])


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        ({"models": {}}, r"missing \['split'\]"),
        ({"split": "test", "models": {}, "extra": 1}, r"unknown \['extra'\]"),
        ({"split": "test", "models": {"mlp": [1.0]}}, r"\['mlp'\] must be a non-empty dict of target"),
        ({"split": "test", "models": {"mlp": {"teff": 3.0}}}, r"\['teff'\] must be a non-empty dict"),
        ({"split": "test", "models": {"mlp": {"teff": {"mae": "low"}}}}, "bad entries"),
    ],
)
def test_metrics_json_validation(tmp_path, metrics, message):
    with pytest.raises(ValueError, match=message):
        write_metrics_json(tmp_path / "metrics.json", metrics)
    assert not (tmp_path / "metrics.json").exists()


def _write_demo_report(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    true = rng.normal(5000.0, 500.0, 100)
    pred = true + rng.normal(0.0, 80.0, 100)
    plots = {
        "teff": [
            plot_pred_vs_true(true, pred, run / "plots" / "teff_pred_vs_true.png", label="teff"),
            plot_residual_hist(true, pred, run / "plots" / "teff_residual_hist.png"),
        ],
        "training": [Path("plots/teff_pred_vs_true.png")],  # relative to run_dir
    }
    return write_report(
        run,
        title="Mock survey run",
        metrics=_metrics(),
        classifier_metrics={"gbm classifier": {"accuracy": 0.875,
                                               "confusion_matrix": [[3, 1], [0, 4]],
                                               "labels": ["star", "qso"]}},
        config={"data": {"survey": "mock", "bands": ("g", "r")}, "seed": np.int64(7),
                "out": Path("/tmp/x")},
        environment={"python": "3.11.9", "numpy": np.__version__, "device": "cpu"},
        plots=plots,
        notes=["trained on mock data"],
    )


def test_report_content(tmp_path):
    out = _write_demo_report(tmp_path)
    assert out == tmp_path / "run" / "report.md"
    text = out.read_text()
    assert text.startswith("# Mock survey run\n")
    assert "- trained on mock data" in text
    assert "| MAE | MSE | RMSE | R² | NMAD | bias | MSE / MSE(linear_regression) |" in text
    assert "| random_forest | teff | 25 | 50 | 7.071 | 0.9 | 0.1 | -0.01 | 0.5 |" in text
    assert "| mlp | redshift | 0.01 | 0.02 | 0.1414 | 0.9 | 0.1 | -0.01 | 0.25 |" in text
    assert "| linear_regression | teff | 50 | 100 | 10 | 0.9 | 0.1 | -0.01 | 1 |" in text
    assert "### Further metrics" in text and "outlier_rate" in text
    assert "| gbm classifier | 0.875 | 2 |" in text
    assert "| star | 3 | 1 |" in text
    assert "```yaml\ndata:\n  survey: mock\n  bands:\n  - g\n  - r\nseed: 7\nout: /tmp/x\n```" in text
    assert "| python | 3.11.9 |" in text and "| device | cpu |" in text


def test_report_image_links_exist(tmp_path):
    out = _write_demo_report(tmp_path)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", out.read_text())
    assert "plots/teff_pred_vs_true.png" in links
    assert "plots/teff_residual_hist.png" in links
    assert "plots/confusion_gbm_classifier.png" in links
    for link in links:
        assert not Path(link).is_absolute()
        _assert_png(out.parent / link)


def test_report_rejects_missing_plot(tmp_path):
    with pytest.raises(ValueError, match=r"plot file\(s\) not found: \['nowhere.png'\]"):
        write_report(tmp_path, title="t", metrics=_metrics(), classifier_metrics={}, config={},
                     environment={}, plots={"x": ["nowhere.png"]})
    assert not (tmp_path / "report.md").exists()
