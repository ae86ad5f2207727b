"""``astroreg ablate`` on a tiny spectra set: the table's rows, single-task parameters, the full row."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from astroreg.cli import main
from astroreg.config import recipe_from_dict
from astroreg.data import DatasetWriter, SpectraSpec
from astroreg.models import create_model
from astroreg.pipeline import ablate_recipe, ablation_recipes, count_parameters

LOGLAM = np.linspace(3.60, 3.6063, 64)
GRID = 32
HEADS = [[8], [4]]


@pytest.fixture(scope="module")
def spectra_dataset(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 120
    teff, feh = rng.uniform(4000, 7000, n), rng.uniform(-2.0, 0.5, n)
    x = (LOGLAM - LOGLAM.mean()) / np.ptp(LOGLAM)
    flux = 1 + (teff[:, None] - 5500) / 3000 * x + 0.3 * feh[:, None] * np.exp(-0.5 * (x / 0.05) ** 2)
    flux = flux + 0.01 * rng.normal(size=flux.shape)
    path = tmp_path_factory.mktemp("abl") / "spec.h5"
    spec = SpectraSpec(n_pixels=LOGLAM.size, wavelength=tuple(10**LOGLAM))
    with DatasetWriter(path, spectra=spec, targets={"teff": "K", "feh": "dex"}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux, "ivar": np.full(flux.shape, 1e4)},
                 targets={"teff": teff, "feh": feh})
        w.make_splits({"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    return path


def _recipe(path, variants=True):
    return recipe_from_dict({
        "name": "tiny",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "spectra"},
        "targets": [{"name": "teff", "unit": "K"}, {"name": "feh", "unit": "dex"}],
        "preprocess": {"spectra": {"grid": [3.6005, 3.6058, GRID]}},
        "model": {"name": "residual_mlp", "params": {"stem": 8, "blocks": [6], "heads": HEADS}},
        "training": {"epochs": 2, "batch_size": 32},
        "evaluation": {"baselines": [{"name": "ridge", "kind": "ridge"}], "reference": "ridge",
                       "compare_to": ["ridge"]},
        "variants": [
            {"name": "no_skip", "description": "no skip connections", "overrides": {"model.params.skip": False}},
            {"name": "single_task", "single_task": True},
        ] if variants else [],
    })


def test_ablation_recipes_split_the_heads(spectra_dataset):
    jobs = ablation_recipes(_recipe(spectra_dataset), epochs=1)
    assert list(jobs) == ["full", "no_skip", "single_task"]
    assert all(r.evaluation.baselines == [] and r.training.epochs == 1 for rs in jobs.values() for r in rs)
    assert jobs["no_skip"][0].model.params["skip"] is False
    single = jobs["single_task"]
    assert [r.target_names for r in single] == [["teff"], ["feh"]]
    assert [r.model.params["heads"] for r in single] == [[[8]], [[4]]]
    assert list(ablation_recipes(_recipe(spectra_dataset), only=["no_skip"])) == ["full", "no_skip"]
    with pytest.raises(ValueError, match="no such variant"):
        ablation_recipes(_recipe(spectra_dataset), only=["nope"])


def test_ablation_leaves_default_heads_to_the_model(spectra_dataset):
    # no special case on a model name: without a per-target heads list each network keeps the model's default
    recipe = _recipe(spectra_dataset).with_overrides({"model.params": {"stem": 8, "blocks": [6]}})
    single = ablation_recipes(recipe)["single_task"]
    assert [r.target_names for r in single] == [["teff"], ["feh"]]
    assert all("heads" not in r.model.params for r in single)


def test_unknown_paper_tables_fail_before_training(spectra_dataset, tmp_path):
    recipe = _recipe(spectra_dataset).with_overrides({"evaluation.paper_tables": "nope"})
    with pytest.raises(ValueError, match="'nope' is not a known set of paper tables"):
        ablate_recipe(recipe, out=tmp_path / "abl", progress=False)
    assert not (tmp_path / "abl").exists()


def test_no_variants_is_a_clear_error(spectra_dataset):
    with pytest.raises(ValueError, match="has no 'variants'"):
        ablate_recipe(_recipe(spectra_dataset, variants=False), out="unused", progress=False)


def test_ablate_writes_the_table(spectra_dataset, tmp_path, capsys):
    out = tmp_path / "abl"
    recipe_path = tmp_path / "tiny.yaml"
    from astroreg.config import recipe_to_yaml

    recipe_path.write_text(recipe_to_yaml(_recipe(spectra_dataset)))
    assert main(["ablate", str(recipe_path), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "single_task" in printed and "MAE teff (rel)" in printed
    assert not out.with_name("abl.partial").exists()
    table = pd.read_csv(out / "ablation.csv")
    assert table["variant"].tolist() == ["full", "no_skip", "single_task"]
    full = table.iloc[0]
    assert full["MAE teff (rel)"] == 1.0 and full["MAE feh (rel)"] == 1.0 and full["parameters (rel)"] == 1.0
    # Single task: the sum of the two one-target networks, each with only its own head.
    expected = sum(
        count_parameters(create_model("residual_mlp", input_shapes={"flux": (GRID,)}, n_outputs=1,
                                      stem=8, blocks=[6], heads=[h]))
        for h in HEADS
    )
    assert table.set_index("variant").loc["single_task", "parameters"] == expected
    multitask = count_parameters(create_model("residual_mlp", input_shapes={"flux": (GRID,)}, n_outputs=2,
                                              stem=8, blocks=[6], heads=HEADS))
    assert full["parameters"] == multitask
    for row in table.itertuples():
        assert np.isfinite(row[table.columns.get_loc("MAE teff") + 1])
    rel = table.set_index("variant")["MAE feh (rel)"]
    mae = table.set_index("variant")["MAE feh"]
    assert rel["no_skip"] == pytest.approx(mae["no_skip"] / mae["full"])
    # No baseline was retrained; the combined single-task metrics are stored.
    assert list(json.loads((out / "full" / "metrics.json").read_text())["models"]) == ["residual_mlp"]
    combined = json.loads((out / "single_task" / "metrics.json").read_text())["models"]["residual_mlp"]
    assert set(combined) == {"teff", "feh"}
    assert combined["feh"]["mae"] == pytest.approx(mae["single_task"])
    assert (out / "single_task" / "teff" / "model.pt").exists()
    md = (out / "ablation.md").read_text()
    # the recipe names no paper_tables: no published ratios beside ours
    assert "| single_task |" in md and "Table 5" not in md and "(paper)" not in md
    assert (out / "ablation_mae.png").stat().st_size > 1000
    # Paired MAE differences to the full model on the same test objects, with their intervals.
    by = table.set_index("variant")
    assert np.isnan(by.loc["full", "dMAE feh"])
    for v in ("no_skip", "single_task"):
        d, lo, hi = by.loc[v, ["dMAE feh", "dMAE feh lo", "dMAE feh hi"]]
        assert d == pytest.approx(mae[v] - mae["full"], abs=1e-9) and lo <= d <= hi
    assert "dMAE teff [95%]" in md and "bootstrap interval" in md


def test_paper_tables_put_table_5_beside_ours(spectra_dataset, tmp_path):
    recipe = _recipe(spectra_dataset).with_overrides({"evaluation.paper_tables": "stellar-params"})
    out = ablate_recipe(recipe, out=tmp_path / "abl", progress=False, epochs=1, only=["no_skip"])
    md = (out / "ablation.md").read_text()
    assert md.startswith("## tiny: ablations relative to the full model (paper Table 5)")
    assert "MAE teff (rel) (paper)" in md and "1.39" in md  # paper 001's no-skip Teff ratio
    assert "Table 5" in md


def test_seeds_repeat_every_network_and_are_checked(spectra_dataset):
    jobs = ablation_recipes(_recipe(spectra_dataset), only=["single_task"], seeds=[3, 5])
    assert [r.training.seed for r in jobs["full"]] == [3, 5]
    assert [(r.training.seed, r.target_names[0]) for r in jobs["single_task"]] == [
        (3, "teff"), (3, "feh"), (5, "teff"), (5, "feh")]
    for bad in ([], [1, 1], [-1]):
        with pytest.raises(ValueError, match="distinct training seeds"):
            ablation_recipes(_recipe(spectra_dataset), seeds=bad)


def test_ablate_over_seeds_pools_the_pairs_seed_by_seed(spectra_dataset, tmp_path, capsys):
    from astroreg.config import recipe_to_yaml
    from astroreg.evaluation._paired import paired_mae_difference

    recipe = _recipe(spectra_dataset).with_overrides({"training.epochs": 1,
                                                      "evaluation.regimes": {"bins": 3, "low_quantile": 0.2}})
    (tmp_path / "tiny.yaml").write_text(recipe_to_yaml(recipe))
    out = tmp_path / "abl"
    assert main(["ablate", str(tmp_path / "tiny.yaml"), "--out", str(out), "--quiet", "--seeds", "0", "1"]) == 0
    assert "MAE feh sd" in capsys.readouterr().out
    for seed in (0, 1):
        assert (out / "full" / f"seed-{seed}" / "model.pt").exists()
        assert (out / "no_skip" / f"seed-{seed}" / "model.pt").exists()
        assert (out / "single_task" / f"seed-{seed}" / "feh" / "model.pt").exists()
        assert (out / "single_task" / f"seed-{seed}" / "predictions.parquet").exists()
    # The two seeds trained different networks.
    f0, f1 = (pd.read_parquet(out / "full" / f"seed-{s}" / "predictions.parquet") for s in (0, 1))
    assert not np.allclose(f0["feh_pred"], f1["feh_pred"])
    table = pd.read_csv(out / "ablation.csv").set_index("variant")
    meta = json.loads((out / "ablation.json").read_text())
    assert meta["seeds"] == [0, 1]
    for v in ("full", "no_skip", "single_task"):
        per_seed = [m["feh"]["mae"] for m in meta["variants"][v]["seed_metrics"]]
        assert table.loc[v, "MAE feh"] == pytest.approx(np.mean(per_seed))
        assert table.loc[v, "MAE feh sd"] == pytest.approx(np.std(per_seed, ddof=1))
    # dMAE pairs seed s of the variant with seed s of the full model and averages the pairs.
    diffs = []
    for s in (0, 1):
        ref = pd.read_parquet(out / "full" / f"seed-{s}" / "predictions.parquet")
        mine = pd.read_parquet(out / "no_skip" / f"seed-{s}" / "predictions.parquet")
        both = ref.merge(mine, on="id", suffixes=("_ref", ""))
        diffs.append(paired_mae_difference(both["feh_true"], both["feh_pred"], both["feh_pred_ref"])["diff"])
    paired = meta["variants"]["no_skip"]["paired"]["feh"]["all"]
    assert paired["per_seed"] == pytest.approx(diffs)
    assert table.loc["no_skip", "dMAE feh"] == pytest.approx(np.mean(diffs))
    assert table.loc["no_skip", "dMAE feh lo"] <= table.loc["no_skip", "dMAE feh"] <= table.loc["no_skip", "dMAE feh hi"]
    # The low end of Teff (evaluation.regimes): the seeds' mean MAE there and its spread; the
    # single-task variant's runs are one per target and have no low end of their own.
    for v in ("full", "no_skip"):
        low = [json.loads((out / v / f"seed-{s}" / "metrics.json").read_text())["low_end"]["residual_mlp"]["teff"]["mae"]
               for s in (0, 1)]
        assert table.loc[v, "MAE teff low end"] == pytest.approx(np.mean(low))
        assert table.loc[v, "MAE teff low end sd"] == pytest.approx(np.std(low, ddof=1))
    assert np.isnan(table.loc["single_task", "MAE teff low end"])
    assert np.isfinite(table.loc["no_skip", "dMAE teff low end"])
    md = (out / "ablation.md").read_text()
    assert "MAE teff low end" in md and "| MAE teff low end (rel)" not in md
    assert "`low end`: the objects whose true teff is at or below the 0.2 quantile of the test split" in md
    assert "trained with 2 training seeds" in md and "seed by seed" in md and "dMAE, seed 1" in md
    assert json.loads((out / "ablation-options.json").read_text())["seeds"] == [0, 1]


def test_jobs_train_in_worker_processes_and_give_the_same_table(spectra_dataset, tmp_path, monkeypatch):
    import astroreg.pipeline._ablate as ablate_mod

    recipe = _recipe(spectra_dataset).with_overrides({"training.epochs": 1, "training.threads": 2})
    one = ablate_recipe(recipe, out=tmp_path / "one", progress=False, only=["no_skip"], seeds=[0, 1])
    # Training in this process now fails the test: with --jobs the networks train in worker processes.
    monkeypatch.setattr(ablate_mod, "_train_or_resume", lambda *a, **k: pytest.fail("trained in the parent"))
    two = ablate_recipe(recipe, out=tmp_path / "two", progress=False, only=["no_skip"], seeds=[0, 1], jobs=2)
    a, b = pd.read_csv(one / "ablation.csv"), pd.read_csv(two / "ablation.csv")
    timed = [c for c in a if "per_s" in c or "time" in c]  # prediction speed, measured in each run
    pd.testing.assert_frame_equal(a.drop(columns=timed), b.drop(columns=timed), rtol=1e-5)
    # The two cores were split between the two runs at a time.
    assert json.loads((two / "ablation-options.json").read_text())["jobs"] == 2
    import yaml

    assert yaml.safe_load((two / "full" / "seed-1" / "config.yaml").read_text())["training"]["threads"] == 1
    with pytest.raises(ValueError, match="--jobs 0"):
        ablate_recipe(recipe, out=tmp_path / "bad", progress=False, jobs=0)
