"""The shipped photoz-boss recipe on the real BOSS DR10 photometry (skipped without ../shared)."""

from __future__ import annotations

import json

import pytest

from astroreg.cli._main import main
from astroreg.config import load_recipe


def test_recipe_reads_magnitudes_colours_and_clipped_errors_with_a_redshift_target():
    r = load_recipe("photoz-boss")
    phot = r.inputs["photometry"]
    assert phot.magnitudes == [f"MAG_{b}" for b in "UGRIZ"] and phot.colours == "adjacent"
    assert phot.error_clip_quantile == 0.99
    assert r.targets[0].is_redshift and r.targets[0].column == "Z"
    assert r.evaluation.reference == "lightgbm"
    lgbm = next(b for b in r.evaluation.baselines if b.name == "lightgbm")
    assert lgbm.early_stopping is not None and lgbm.refit == "train+val"


@pytest.fixture(scope="module")
def boss(shared_dir, tmp_path_factory):
    folder = shared_dir / "data" / "photoz"
    files = [folder / f"boss_dr10_{k}.csv" for k in ("0", "1")]
    if not all(f.exists() for f in files):
        pytest.skip(f"BOSS DR10 catalogues absent from {folder}")
    out = tmp_path_factory.mktemp("boss") / "boss.h5"
    assert main(["ingest", "catalog", "--catalog", *map(str, files), "--out", str(out), "--target", "Z",
                 "--unit", "MAG*=mag", "--splits", "train=0.6,val=0.2,test=0.2", "--seed", "0", "--quiet"]) == 0
    return out


def test_recipe_on_real_boss_photometry_beats_ridge_and_knn(boss, tmp_path):
    """12,000 real galaxies, the recipe's MLP for 25 epochs: sigma_NMAD(e_z) below Ridge's and kNN's."""
    run = tmp_path / "run"
    args = ["train", "photoz-boss", "--data", str(boss), "--run-dir", str(run), "--threads", "1", "--quiet",
            "--set", "training.epochs=25",
            "--set", "evaluation.baselines=[{name: ridge, kind: ridge, inputs: model}, "
                     "{name: knn, kind: knn, inputs: model, params: {n_neighbors: 15, weights: distance}}]",
            "--set", "evaluation.reference=ridge"]
    assert main(args) == 0
    models = json.loads((run / "metrics.json").read_text())["models"]
    nmad = {m: models[m]["z"]["sigma_nmad_ez"] for m in ("mlp", "ridge", "knn")}
    # measured: 0.66x Ridge and 0.83x kNN (2026-12-03); the full recipe on all three files: docs/photoz-boss.md
    assert nmad["mlp"] < 0.8 * nmad["ridge"], nmad
    assert nmad["mlp"] < nmad["knn"], nmad
    assert models["mlp"]["z"]["catastrophic_rate"] < 0.05
