"""Paired MAE differences with bootstrap intervals (the ablation table's dMAE columns)."""

import numpy as np
import pytest

from astroreg.evaluation import ablation_table
from astroreg.evaluation._paired import paired_mae_difference
from astroreg.evaluation._tables import ablation_markdown


def _data(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=n)
    return t, t + rng.normal(scale=0.30, size=n), t + rng.normal(scale=0.36, size=n)


def test_difference_is_the_mae_difference_and_the_interval_holds_it():
    t, good, worse = _data()
    d = paired_mae_difference(t, good, worse)
    assert d["diff"] == pytest.approx(np.mean(np.abs(good - t)) - np.mean(np.abs(worse - t)))
    assert d["lo"] < d["diff"] < d["hi"] < 0  # 0.30 against 0.36 scatter: clearly better
    assert d["n"] == 4000
    # The interval is about 1.96 standard errors of the mean paired difference each side.
    e = np.abs(good - t) - np.abs(worse - t)
    se = e.std(ddof=1) / np.sqrt(e.size)
    assert (d["hi"] - d["lo"]) / 2 == pytest.approx(1.96 * se, rel=0.15)


def test_two_equal_models_get_an_interval_across_zero_and_identical_ones_zero():
    rng = np.random.default_rng(1)
    t = rng.normal(size=3000)
    a, b = t + rng.normal(scale=0.3, size=t.size), t + rng.normal(scale=0.3, size=t.size)
    d = paired_mae_difference(t, a, b)
    assert d["lo"] < 0 < d["hi"]
    assert paired_mae_difference(t, a, a) == {"diff": 0.0, "lo": 0.0, "hi": 0.0, "n": 3000}


def test_mask_selects_the_objects_and_the_seed_fixes_the_interval():
    t, good, worse = _data()
    low = t <= np.quantile(t, 0.2)
    d = paired_mae_difference(t, good, worse, mask=low)
    assert d["n"] == int(low.sum())
    assert d["diff"] == pytest.approx(np.mean(np.abs(good - t)[low]) - np.mean(np.abs(worse - t)[low]))
    assert d == paired_mae_difference(t, good, worse, mask=low)
    assert d != paired_mae_difference(t, good, worse, mask=low, seed=1)


@pytest.mark.parametrize("kwargs, match", [
    (dict(mask=np.zeros(10, bool)), "no objects selected"),
    (dict(mask=np.ones(3, bool)), "mask must have the shape"),
    (dict(confidence=1.0), "confidence"),
])
def test_bad_arguments_are_named(kwargs, match):
    t = np.arange(10.0)
    with pytest.raises(ValueError, match=match):
        paired_mae_difference(t, t + 1, t + 2, **kwargs)


def test_nan_predictions_are_refused_with_their_count():
    t = np.arange(5.0)
    with pytest.raises(ValueError, match="y_ref has 1 non-finite"):
        paired_mae_difference(t, t, np.array([0, 1, np.nan, 3, 4.0]))


def test_ablation_table_and_markdown_show_the_differences():
    results = {
        "full": {"metrics": {"y": {"mae": 0.30}}},
        "no_skip": {"metrics": {"y": {"mae": 0.31}},
                    "paired": {"y": {"all": {"diff": 0.01, "lo": 0.004, "hi": 0.016},
                                     "low_end": {"diff": 0.02, "lo": -0.001, "hi": 0.041}}}},
    }
    table = ablation_table(results)
    row = table.set_index("variant").loc["no_skip"]
    assert (row["dMAE y"], row["dMAE y lo"], row["dMAE y hi"]) == (0.01, 0.004, 0.016)
    assert row["dMAE y low end hi"] == 0.041
    assert np.isnan(table.set_index("variant").loc["full", "dMAE y"])
    md = ablation_markdown(table)
    assert "+0.01 [+0.004, +0.016]" in md and "+0.02 [-0.001, +0.041]" in md
    # without paired entries the table has no dMAE columns
    assert not any(c.startswith("dMAE") for c in ablation_table({"full": results["full"]}).columns)


def test_ablation_pairs_variants_on_ids_with_the_low_end_of_the_regimes_target(tmp_path):
    import pandas as pd

    from astroreg.config import recipe_from_dict
    from astroreg.pipeline._ablate import _paired_differences

    t, good, worse = _data(n=2000)
    ids = [f"o{i}" for i in range(t.size)]
    pd.DataFrame({"id": ids, "y_true": t, "y_pred": good, "w_true": t, "w_pred": good}).to_parquet(tmp_path / "f.parquet")
    # the variant's file lists the objects in another order: pairs are made on id
    order = np.random.default_rng(2).permutation(t.size)
    pd.DataFrame({"id": np.array(ids)[order], "y_true": t[order], "y_pred": worse[order], "w_true": t[order],
                  "w_pred": worse[order]}).to_parquet(tmp_path / "v.parquet")
    recipe = recipe_from_dict({
        "name": "p", "dataset": {"path": "x.h5"}, "inputs": {"modality": "tabular", "columns": ["a"]},
        "targets": [{"name": "y"}, {"name": "w"}], "model": {"name": "mlp"},
        "evaluation": {"regimes": {"target": "w", "low_quantile": 0.25}},
    })
    out = _paired_differences({"full": tmp_path / "f.parquet", "v": tmp_path / "v.parquet"}, recipe)["v"]
    assert out["y"]["all"] == paired_mae_difference(t, worse, good)
    assert "low_end" not in out["y"] and out["w"]["low_end"]["n"] == 500
    assert out["w"]["low_end"]["diff"] > 0 and out["w"]["low_end"]["quantile"] == 0.25


def test_pooled_difference_is_the_mean_of_the_seeds_pairs():
    from astroreg.evaluation._paired import pooled_paired_mae_difference

    rng = np.random.default_rng(2)
    t = rng.normal(size=3000)
    preds = np.stack([t + rng.normal(scale=0.30, size=t.size) for _ in range(3)])
    refs = np.stack([t + rng.normal(scale=0.33, size=t.size) for _ in range(3)])
    d = pooled_paired_mae_difference(t, preds, refs)
    per_seed = [paired_mae_difference(t, p, r)["diff"] for p, r in zip(preds, refs)]
    assert d["per_seed"] == pytest.approx(per_seed)
    assert d["diff"] == pytest.approx(np.mean(per_seed))
    assert d["lo"] < d["diff"] < d["hi"] < 0 and d["n"] == 3000 and d["n_seeds"] == 3
    low = t <= np.quantile(t, 0.2)
    masked = pooled_paired_mae_difference(t, preds, refs, mask=low)
    assert masked["n"] == int(low.sum())
    assert masked["diff"] == pytest.approx(np.mean(np.abs(preds - t)[:, low]) - np.mean(np.abs(refs - t)[:, low]))


def test_pooled_interval_holds_the_seed_to_seed_scatter():
    from astroreg.evaluation._paired import pooled_paired_mae_difference

    rng = np.random.default_rng(3)
    t = rng.normal(size=4000)
    ref = t + rng.normal(scale=0.3, size=t.size)
    # Seed 0 of the model is clearly better, seed 1 clearly worse: each alone has a tight
    # interval away from zero, yet together they cannot say which network is better.
    preds = np.stack([t + 0.8 * (ref - t), t + 1.2 * (ref - t)])
    d = pooled_paired_mae_difference(t, preds, np.stack([ref, ref]))
    alone = [paired_mae_difference(t, p, ref) for p in preds]
    assert alone[0]["hi"] < 0 < alone[1]["lo"]
    assert d["lo"] <= alone[0]["diff"] and d["hi"] >= alone[1]["diff"] and d["lo"] < 0 < d["hi"]


@pytest.mark.parametrize("preds, refs, kwargs, match", [
    (np.zeros((2, 5)), np.zeros((3, 5)), {}, "n_seeds, n_objects"),
    (np.zeros(5), np.zeros(5), {}, "n_seeds, n_objects"),
    (np.zeros((2, 5)), np.zeros((2, 5)), dict(mask=np.zeros(5, bool)), "no objects selected"),
    (np.full((2, 5), np.nan), np.zeros((2, 5)), {}, "NaN"),
])
def test_pooled_bad_arguments_are_named(preds, refs, kwargs, match):
    from astroreg.evaluation._paired import pooled_paired_mae_difference

    with pytest.raises(ValueError, match=match):
        pooled_paired_mae_difference(np.arange(5.0), preds, refs, **kwargs)
