"""Classical baselines on the preprocessed spectra (``inputs: model``), model sizes, network-baseline recipes."""

import numpy as np
import pytest
import torch

from astroreg.baselines import (
    ModelInputs,
    count_parameters,
    make_estimator,
    resolve_inputs,
    run_baseline,
)
from astroreg.config import BaselineConfig, recipe_from_dict
from astroreg.data import Dataset, DatasetWriter, SpectraSpec
from astroreg.modalities import RecipePreprocessor, raw_targets
from astroreg.pipeline import derive_recipe

LOGLAM = np.linspace(3.60, 3.66, 128)
LINES = (3.61, 3.625, 3.64, 3.652)


def write_spectra(path, n=400, seed=0):
    """Spectra with four absorption lines; ``a`` is linear in two depths, ``b`` non-linear in the others."""
    rng = np.random.default_rng(seed)
    d = rng.uniform(0.05, 0.6, (n, len(LINES)))
    profile = np.stack([np.exp(-0.5 * ((LOGLAM - c) / 0.0015) ** 2) for c in LINES])  # (4, L)
    ripple = 1 + 0.5 * np.sin(2 * np.pi * (LOGLAM - 3.60) / 0.02)  # sets the std: keeps depths after standardising
    flux = ripple * (1 - d @ profile) * rng.uniform(5, 50, (n, 1))
    flux += 0.01 * flux.mean(axis=1, keepdims=True) * rng.normal(size=flux.shape)
    a = 5000 + 3000 * d[:, 0] - 1500 * d[:, 1]
    b = 4.0 * d[:, 2] ** 2 + np.sin(6 * d[:, 3])
    b[:7] = np.nan  # a few missing labels
    spec = SpectraSpec(n_pixels=LOGLAM.size, wavelength=tuple(10**LOGLAM), with_mask=False)
    with DatasetWriter(path, spectra=spec, targets={"a": "K", "b": "dex"}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux, "ivar": np.ones_like(flux)},
                 targets={"a": a, "b": b})
        w.make_splits({"train": 0.6, "val": 0.15, "test": 0.25}, seed=0)
    return path


def spectra_recipe(path, baselines=(), **training):
    return recipe_from_dict({
        "name": "spec-base",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "spectra"},
        "targets": [{"name": "a", "unit": "K"}, {"name": "b", "unit": "dex"}],
        "preprocess": {"spectra": {"grid": [3.601, 3.659, 96]}, "targets": "robust"},
        "model": {"name": "residual_mlp", "params": {"stem": 16, "blocks": [8], "heads": [8]}},
        "training": {"epochs": 2, "batch_size": 64, **training},
        "evaluation": {"baselines": list(baselines)},
    })


@pytest.fixture(scope="module")
def spectra(tmp_path_factory):
    path = write_spectra(tmp_path_factory.mktemp("spec") / "spec.h5")
    recipe = spectra_recipe(path)
    ds = Dataset(path)
    pre = RecipePreprocessor.fit(recipe, ds, ds.split("train"))
    yield recipe, ds, pre
    ds.close()


def _mae(res, y, rows):
    ok = np.isfinite(y[rows])
    return [float(np.mean(np.abs(res.predictions[ok[:, j], j] - y[rows][ok[:, j], j]))) for j in range(y.shape[1])]


def test_ols_and_ridge_fit_the_spectra(spectra):
    recipe, ds, pre = spectra
    y = raw_targets(recipe, ds)
    train, test = ds.split("train"), ds.split("test")
    inputs = ModelInputs(pre, ds)
    res = {}
    for cfg in (BaselineConfig(name="ols", kind="linear_regression", inputs="model"),
                BaselineConfig(name="ridge", kind="ridge", params={"alpha": 1.0}),  # auto = model for spectra
                BaselineConfig(name="mean", kind="mean")):
        res[cfg.name] = run_baseline(cfg, ds, y, train, test, model_inputs=inputs, default_inputs="model")
        assert res[cfg.name].predictions.shape == (len(test), 2)
        assert np.isfinite(res[cfg.name].predictions).all()
        assert res[cfg.name].predict_objects_per_s > 0
    mae = {k: _mae(r, y, test) for k, r in res.items()}
    # Target a is linear in the line depths: Ridge recovers it; b is non-linear, Ridge still beats the mean.
    assert mae["ridge"][0] < 0.1 * mae["mean"][0]
    assert mae["ridge"][1] < 0.7 * mae["mean"][1]
    assert mae["ols"][0] < 0.3 * mae["mean"][0]
    # Coefficients and intercepts: 96 pixels x 2 targets + 2.
    assert res["ols"].parameters == res["ridge"].parameters == 96 * 2 + 2
    assert res["mean"].parameters is None
    # Only rows with every target known are fitted: OLS equals a direct least-squares fit on them.
    known = train[np.isfinite(y[train]).all(axis=1)]
    x = inputs.flat(known).astype(np.float64)
    design = np.c_[x, np.ones(len(x))]
    coef, *_ = np.linalg.lstsq(design, y[known], rcond=None)
    direct = np.c_[inputs.flat(test), np.ones(len(test))] @ coef
    assert np.allclose(res["ols"].predictions[:, 0], direct[:, 0], rtol=1e-3, atol=2.0)


def test_model_inputs_are_float32_and_cached(spectra):
    _, ds, pre = spectra
    inputs = ModelInputs(pre, ds)
    rows = ds.split("val")
    x = inputs.flat(rows)
    assert x.dtype == np.float32 and x.shape == (len(rows), 96)
    assert inputs.get(rows) is inputs.get(rows.copy())
    np.testing.assert_array_equal(x[:5], pre.single.transform(ds, rows[:5]))


def test_inputs_auto_keeps_tabular_outside_spectra():
    from astroreg.modalities import baseline_inputs

    assert resolve_inputs(BaselineConfig(name="r", kind="ridge"), baseline_inputs(["spectra"])) == "model"
    assert resolve_inputs(BaselineConfig(name="r", kind="ridge"), baseline_inputs(["images"])) == "tabular"
    assert resolve_inputs(BaselineConfig(name="r", kind="ridge"), baseline_inputs(["spectra", "tabular"])) == "tabular"
    assert resolve_inputs(BaselineConfig(name="r", kind="ridge", inputs="tabular"), "model") == "tabular"


def test_model_inputs_required_and_clear_errors(spectra):
    recipe, ds, _ = spectra
    y = raw_targets(recipe, ds)
    cfg = BaselineConfig(name="ols", kind="linear_regression", inputs="model")
    with pytest.raises(ValueError, match="'ols' reads the model inputs"):
        run_baseline(cfg, ds, y, ds.split("train"), ds.split("test"), default_inputs="model")
    y_missing = y.copy()
    y_missing[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"baseline 'ols': none of the \d+ training rows"):
        run_baseline(cfg, ds, y_missing, ds.split("train"), ds.split("test"), model_inputs=ModelInputs(spectra[2], ds),
                     default_inputs="model")


def test_count_parameters():
    net = torch.nn.Sequential(torch.nn.Linear(10, 4), torch.nn.Linear(4, 2))
    net[0].weight.requires_grad_(False)
    assert count_parameters(net) == 4 + 4 * 2 + 2
    x, y = np.random.default_rng(0).normal(size=(50, 6)), np.random.default_rng(1).normal(size=(50, 3))
    assert count_parameters(make_estimator(BaselineConfig(name="r", kind="ridge"), 3).fit(x, y)) == 6 * 3 + 3
    lgbm_like = make_estimator(BaselineConfig(name="t", kind="decision_tree"), 3).fit(x, y)
    assert count_parameters(lgbm_like) is None


def test_derive_recipe_replaces_model_and_training(spectra):
    recipe = spectra_recipe("x.h5", baselines=[
        {"name": "cnn", "kind": "network", "model": {"name": "starnet_cnn"},
         "training": {"epochs": 5, "optimizer.lr": 5e-4, "augment.copies": 0}},
        {"name": "mean", "kind": "mean"},
    ], augment={"copies": 2})
    derived = derive_recipe(recipe, recipe.evaluation.baselines[0])
    assert derived.model.name == "starnet_cnn" and derived.model.params == {}
    assert derived.training.epochs == 5 and derived.training.optimizer.lr == 5e-4
    assert derived.training.augment.copies == 0 and derived.training.batch_size == 64
    assert derived.evaluation.baselines == [] and derived.preprocess == recipe.preprocess
    bad = BaselineConfig(name="cnn", kind="network", model={"name": "starnet_cnn"}, training={"epoch": 5})
    with pytest.raises(ValueError, match=r"(?s)baseline 'cnn'.*unknown key 'epoch'"):
        derive_recipe(recipe, bad)
