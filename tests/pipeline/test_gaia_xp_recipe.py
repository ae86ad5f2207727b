"""The shipped gaia-xp-redshift recipe (paper 004): its network, a small run on the mock, the real DR3 files."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from astroreg.cli._main import main
from astroreg.config import load_recipe

if importlib.util.find_spec("gaiaxpy") is None:  # not importorskip: importing GaiaXPy turns on text.usetex
    pytest.skip("GaiaXPy is not installed", allow_module_level=True)

# A narrow stand-in for the paper's network, so that the run takes seconds; the shipped
# layout itself is checked by its parameter count.
SMALL = ["--set", "model.params.conv=[[16, 5], [16, 5]]", "--set", "model.params.dense=[32]",
         "--set", "training.epochs=6", "--set", "training.batch_size=32", "--set", "training.optimizer.lr=3e-3",
         "--set", "evaluation.baselines=[{name: mean_predictor, kind: mean}]", "--set", "evaluation.reference=null",
         "--threads", "1", "--quiet"]


def test_summary_gives_the_papers_699073_parameters(capsys):
    assert main(["summary", "gaia-xp-redshift"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "trainable parameters: 699073"


def test_recipe_is_the_papers_setup():
    r = load_recipe("gaia-xp-redshift")
    xp = r.inputs["xp"]
    assert (xp.grid, xp.resample, xp.standardize, xp.scaling) == ("gaia-xp", False, True, "minmax")
    assert (r.training.optimizer.name, r.training.optimizer.lr, r.training.loss) == ("adamax", 1e-3, "huber")
    assert (r.training.batch_size, r.training.epochs) == (16, 20)
    assert (r.dataset.splits.train, r.dataset.splits.val, r.dataset.splits.test) == (0.63, 0.27, 0.10)
    assert r.targets[0].is_redshift and r.tuning.objective.metric == "sigma_nmad_ez"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gaia")
    data = tmp / "mock.h5"
    assert main(["simulate", "gaia-xp-galaxies", "--n", "1500", "--out", str(data), "--seed", "3",
                 "--g-range", "17", "18.5", "--quiet"]) == 0
    run = tmp / "run"
    assert main(["train", "gaia-xp-redshift", "--data", str(data), "--run-dir", str(run), *SMALL]) == 0
    return run


def test_small_cnn_on_the_mock_beats_the_mean_by_2x_in_sigma_nmad(small_run):
    import json

    metrics = json.loads((small_run / "metrics.json").read_text())
    text = json.dumps(metrics)
    assert "sigma_nmad_ez" in text and "redshift_bins" in metrics
    frame = pd.read_parquet(small_run / "predictions.parquet") if (small_run / "predictions.parquet").exists() \
        else None
    assert (small_run / "plots" / "redshift_bins.png").is_file()
    net = _metric(metrics, "sigma_nmad_ez", model=None)
    mean = _metric(metrics, "sigma_nmad_ez", model="mean_predictor")
    assert net < 0.5 * mean, (net, mean, frame is None)


def _metric(metrics: dict, name: str, model: str | None) -> float:
    """A test-split metric of the network (model None) or a baseline, wherever metrics.json keeps it."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, path + (str(k),))
        elif path and path[-1] == name and isinstance(node, (int, float)) and "redshift_bins" not in path:
            found.append((path, float(node)))

    walk(metrics, ())
    picked = [v for p, v in found if (model in p if model else not any("mean_predictor" in q for q in p))]
    assert picked, f"no {name} for {model or 'the network'} in metrics.json: {[p for p, _ in found]}"
    return picked[0]


def test_real_dr3_files_ingest_and_predict_with_a_mock_trained_run(small_run, shared_dir, tmp_path):
    xp = shared_dir / "data" / "gaiaxp" / "XP_CONTINUOUS_RAW_with_missing_BP.csv"
    data = tmp_path / "dr3.h5"
    assert main(["ingest", "gaia-xp", "--xp", str(xp), "--out", str(data), "--flux", "calibrated", "--quiet"]) == 0
    out = tmp_path / "z.parquet"
    assert main(["predict", str(small_run), "--data", str(data), "--out", str(out), "--quiet"]) == 0
    z = pd.read_parquet(out)
    assert len(z) >= 1 and np.isfinite(z.filter(like="z").to_numpy(float)).all()
    # the internal (electron/s) flux of the same files is refused by a run trained on calibrated flux
    internal = tmp_path / "dr3-internal.h5"
    assert main(["ingest", "gaia-xp", "--xp", str(xp), "--out", str(internal), "--quiet"]) == 0
    assert main(["predict", str(small_run), "--data", str(internal), "--out", str(tmp_path / "no.parquet")]) == 2
