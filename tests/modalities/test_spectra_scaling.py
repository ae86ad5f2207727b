"""Per-pixel scaling of spectra (``inputs.<name>.scaling``): fitted on the training split, stored, applied everywhere."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from astroreg.config import recipe_from_dict
from astroreg.data import Dataset, DatasetWriter, SpectraSpec
from astroreg.data._prepared import (
    PREPARED_BAD_BITS,
    PREPARED_BAD_PIXELS,
    PREPARED_BY,
    PREPARED_GRID,
    PREPARED_REDSHIFT,
    PREPARED_REST_FRAME,
)
from astroreg.ingest import SDSS_BAD_PIXEL_BITS
from astroreg.modalities import RecipePreprocessor
from astroreg.pipeline import Run, predict, train_recipe
from astroreg.preprocess import LogLamResampler
from astroreg.preprocess._spectra import parse_grid, standardize_rows_
from astroreg.preprocess._transforms import fit_feature_affine

GRID = (3.60, 3.70, 64)


def _gaia_dataset(path, n: int = 60, seed: int = 0):
    """Mock Gaia XP galaxies: 186 fluxes on the ``gaia-xp`` grid (W/m^2/nm-like, ~1e-17), one constant pixel."""
    rng = np.random.default_rng(seed)
    wave = parse_grid("gaia-xp").wavelength()
    z = rng.uniform(0.0, 0.6, n)
    t = (wave - wave.min()) / np.ptp(wave)
    flux = 1e-17 * (1 + (z[:, None] + 0.2) * t + 0.3 * np.exp(-0.5 * ((t - 0.3 - z[:, None] / 2) / 0.03) ** 2))
    flux *= rng.uniform(0.5, 2.0, (n, 1))
    flux[:, 40] = 3e-17  # a pixel with the same value everywhere: scaled to 0, no division by zero
    spec = SpectraSpec(n_pixels=wave.size, wavelength=tuple(wave), with_ivar=False, with_mask=False)
    with DatasetWriter(path, targets={"z": ""}, spectra=spec) as w:
        w.append([f"g{i}" for i in range(n)], spectra={"flux": flux.astype("f4")}, targets={"z": z})
        w.make_splits({"train": 0.63, "val": 0.27, "test": 0.10}, seed=seed)
    return path


def _gaia_recipe(data, scaling="minmax", **training):
    return recipe_from_dict({
        "name": "gaia-scaling",
        "dataset": {"path": str(data)},
        "inputs": {"flux": {"kind": "spectra", "grid": "gaia-xp", "resample": False, "standardize": False,
                            "scaling": scaling}},
        "targets": [{"name": "z", "column": "z", "kind": "redshift"}],
        "model": {"name": "mlp", "params": {"hidden": [16]}},
        "training": {"epochs": 1, "batch_size": 16, "augment": {"copies": 0}, **training},
        "evaluation": {"baselines": [], "reference": None, "compare_to": []},
    })


def _prepared_dataset(path, n: int = 80, seed: int = 0):
    """Spectra stored on the recipe's grid as ``ingest sdss-spectra --grid`` marks them: predict reads them fast."""
    rng = np.random.default_rng(seed)
    res = LogLamResampler(loglam_min=GRID[0], loglam_max=GRID[1], n_pixels=GRID[2]).fit()
    t = np.linspace(0, 1, GRID[2])
    teff = rng.uniform(4000, 9000, n)
    flux = 10 + ((teff - 6500) / 2500)[:, None] * t + rng.normal(0, 0.1, (n, GRID[2]))
    flux[::11] += 500.0  # far from the others: only a per-pixel scaling fitted on them brings them in
    flux[5, 9] = np.nan
    attrs = {PREPARED_GRID: np.asarray(GRID, np.float64), PREPARED_REST_FRAME: "", PREPARED_REDSHIFT: "Z",
             PREPARED_BAD_PIXELS: "interpolate", PREPARED_BAD_BITS: np.uint32(SDSS_BAD_PIXEL_BITS),
             PREPARED_BY: "test"}
    spec = SpectraSpec(n_pixels=GRID[2], wavelength=tuple(res.wavelength_), with_ivar=True, with_mask=True,
                       mask_dtype="uint32", mask_bad_bits=SDSS_BAD_PIXEL_BITS, attrs=attrs)
    with DatasetWriter(path, targets={"TEFF": "K"}, spectra=spec) as w:
        w.append([f"p{i}" for i in range(n)],
                 spectra={"flux": flux.astype("f4"), "ivar": np.ones((n, GRID[2]), "f4"),
                          "mask": np.zeros((n, GRID[2]), np.uint32)},
                 targets={"TEFF": teff})
        w.make_splits({"train": 0.6, "val": 0.2, "test": 0.2}, seed=seed)
    return path


def _prepared_recipe(data, scaling: str, model: dict):
    return recipe_from_dict({
        "name": "scaled",
        "dataset": {"path": str(data)},
        "inputs": {"flux": {"kind": "spectra", "grid": list(GRID), "scaling": scaling}},
        "targets": [{"name": "teff", "column": "TEFF", "unit": "K"}],
        "model": model,
        "training": {"epochs": 1, "batch_size": 16, "augment": {"copies": 0}},
        "evaluation": {"baselines": [], "reference": None, "compare_to": []},
    })


@pytest.fixture(scope="module")
def gaia(tmp_path_factory):
    return _gaia_dataset(tmp_path_factory.mktemp("gaia") / "gaia.h5")


def test_paper_gaia_minmax_puts_the_training_split_in_0_1_from_training_rows_only(gaia):
    recipe = _gaia_recipe(gaia)
    with Dataset(gaia) as ds:
        train, test = ds.split("train"), ds.split("test")
        pre = RecipePreprocessor.fit(recipe, ds, train)
        flux = pre.single
        raw = ds.read_rows(ds.spectra["flux"], np.sort(train)).astype(np.float64)
        x_train = flux.transform(ds, train)
        x_test = flux.transform(ds, test)
    assert flux.shape == (186,) and x_train.dtype == np.float32
    assert x_train.min() >= 0.0 and x_train.max() <= 1.0
    # every pixel but the constant one spans [0, 1] on the training rows: min and max are of train only
    span = x_train.max(axis=0) - x_train.min(axis=0)
    assert np.allclose(np.delete(span, 40), 1.0, atol=1e-6) and np.all(x_train[:, 40] == 0.0)
    np.testing.assert_allclose(flux.pixel_offset_, raw.min(axis=0).astype(np.float32), rtol=1e-6)
    np.testing.assert_allclose(flux.pixel_scale_[40], 1.0)
    # the test rows are scaled with the training statistics, so they are not re-stretched to [0, 1]
    with Dataset(gaia) as ds:
        raw_test = ds.read_rows(ds.spectra["flux"], test).astype(np.float32)
    want = (raw_test - flux.pixel_offset_.astype(np.float32)) / flux.pixel_scale_.astype(np.float32)
    np.testing.assert_array_equal(x_test, want)


@pytest.mark.parametrize("kind", ["standard", "robust"])
def test_standard_and_robust_scaling_follow_scikit_learn_on_the_training_rows(gaia, kind):
    from sklearn.preprocessing import RobustScaler, StandardScaler

    with Dataset(gaia) as ds:
        train = ds.split("train")
        pre = RecipePreprocessor.fit(_gaia_recipe(gaia, scaling=kind), ds, train)
        raw = ds.read_rows(ds.spectra["flux"], train).astype(np.float32)
        got = pre.single.transform(ds, train)
    ref = (StandardScaler() if kind == "standard" else RobustScaler()).fit(raw.astype(np.float64))
    np.testing.assert_allclose(got, ref.transform(raw.astype(np.float64)), rtol=1e-4, atol=1e-4)
    if kind == "standard":
        np.testing.assert_allclose(np.delete(got.mean(axis=0), 40), 0.0, atol=1e-4)


def test_fit_on_chunks_equals_one_fit_and_rejects_nan():
    x = np.random.default_rng(1).normal(size=(30, 4))
    for kind in ("minmax", "standard", "robust"):
        a = fit_feature_affine([x[:7], x[7:19], x[19:]], kind)
        b = fit_feature_affine([x], kind)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-12)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-12)
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 value"):
        fit_feature_affine([x], "minmax")
    with pytest.raises(ValueError, match="'zscore' is not one of"):
        fit_feature_affine([x], "zscore")


def test_scaling_round_trips_through_preprocessors_json_and_old_files_read_as_none(gaia, tmp_path):
    with Dataset(gaia) as ds:
        train = ds.split("train")
        pre = RecipePreprocessor.fit(_gaia_recipe(gaia), ds, train)
        pre.save(tmp_path / "preprocessors.json")
        back = RecipePreprocessor.load(tmp_path / "preprocessors.json")
        assert back.single.settings.scaling == "minmax"
        np.testing.assert_array_equal(back.single.pixel_offset_, pre.single.pixel_offset_)
        np.testing.assert_array_equal(back.single.pixel_scale_, pre.single.pixel_scale_)
        np.testing.assert_array_equal(back.single.transform(ds, train), pre.single.transform(ds, train))
        # a file written before the setting existed: no scaling fields, no scaling key
        doc = json.loads((tmp_path / "preprocessors.json").read_text())
        fields = doc["preprocessor"]["inputs"]["flux"]["fields"]
        del fields["pixel_offset_"], fields["pixel_scale_"]
        del fields["settings"]["scaling"]
        (tmp_path / "old.json").write_text(json.dumps(doc))
        old = RecipePreprocessor.load(tmp_path / "old.json")
        assert old.single.settings.scaling == "none" and old.single.pixel_offset_ is None
        raw = ds.read_rows(ds.spectra["flux"], np.sort(train)).astype(np.float32)
        np.testing.assert_array_equal(old.single.transform(ds, np.sort(train)), raw)
    # arrays of the wrong length are refused on reading, naming the input
    fields = json.loads((tmp_path / "preprocessors.json").read_text())["preprocessor"]["inputs"]["flux"]["fields"]
    fields["pixel_scale_"]["__ndarray__"].update(shape=[3], data=[1.0, 1.0, 1.0])
    doc["preprocessor"]["inputs"]["flux"]["fields"] = fields
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"bad\.json.*'flux' \(spectra, scaling: minmax\) needs pixel_offset_"):
        RecipePreprocessor.load(tmp_path / "bad.json")


@pytest.mark.parametrize("model", [
    {"name": "residual_mlp", "params": {"stem": 16, "blocks": [16], "heads": [8]}},  # foldable if unscaled
    {"name": "plain_cnn1d", "params": {"filters": [4, 8], "convs_per_block": [1, 1], "dense": [8]}},
], ids=["dense", "conv"])
def test_predict_on_prepared_spectra_equals_the_eager_network_on_scaled_inputs(tmp_path, model):
    data = _prepared_dataset(tmp_path / "prepared.h5")
    run = train_recipe(_prepared_recipe(data, "robust", model), runs_root=tmp_path / "runs", progress=False)
    r = Run.open(run)
    pre = r.load_preprocessor()
    flux = pre.single
    assert flux.scales_pixels and flux.settings.scaling == "robust"
    out = predict(run, data, tmp_path / "fast.parquet", split="test", chunk_size=5, progress=False)
    fast = pd.read_parquet(out)
    with Dataset(data) as ds:
        rows = ds.split("test")
        assert flux.prepared(ds)
        x = ds.read_rows(ds.spectra["flux"], rows).astype(np.float32)
    x = (standardize_rows_(x) - flux.pixel_offset_.astype(np.float32)) / flux.pixel_scale_.astype(np.float32)
    with torch.inference_mode():
        y = r.load_network()({"flux": torch.from_numpy(x)}).numpy()
    np.testing.assert_allclose(fast["teff_pred"].to_numpy(), pre.unscale_targets(y)[:, 0], rtol=1e-5)
    # the far rows were brought in by the scaling, so it was applied: without it the inputs differ a lot
    assert np.abs(x).max() < 50
