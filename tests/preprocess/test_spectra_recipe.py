"""The ``spectra`` input modality of recipes: shipped recipe, learning, rest frame, missing RV."""

import json

import numpy as np
import pytest

from astroreg.cli import main
from astroreg.config import recipe_from_dict
from astroreg.data import Dataset, DatasetWriter, SpectraSpec
from astroreg.pipeline import train_recipe
from astroreg.modalities import RecipePreprocessor, recipe_input_shapes
from astroreg.preprocess._spectra import doppler_loglam_shift

LOGLAM = np.linspace(3.60, 3.66, 600)  # input pixels, spacing 1e-4 like SDSS
LINE = 3.63  # rest-frame loglam of the one absorption line


def _spectra(teff, feh, rv, rng, *, line_sigma=0.002, noise=0.01):
    """Flux (n, 600): continuum slope set by teff, line depth by feh, observed at radial velocity rv (km/s)."""
    x = LOGLAM[None] - doppler_loglam_shift(np.asarray(rv, float))[:, None]  # rest-frame loglam of each pixel
    slope = (np.asarray(teff)[:, None] - 5500.0) / 1500.0 * 4.0
    depth = 0.1 + 0.5 * (np.asarray(feh)[:, None] + 2.0) / 2.5
    scale = rng.uniform(10, 1000, (len(teff), 1))  # distance: removed by per-spectrum standardising
    # A strong fixed ripple sets every spectrum's std, so standardising keeps the line depth.
    ripple = 1 + 0.8 * np.sin(2 * np.pi * (x - 3.60) / 0.03)
    shape = ripple * (1 + slope * (x - LINE)) * (1 - depth * np.exp(-0.5 * ((x - LINE) / line_sigma) ** 2))
    sigma = noise * scale * np.ones_like(shape)
    return scale * shape + sigma * rng.normal(size=shape.shape), 1.0 / sigma**2


def _write(path, teff, feh, rv, rng, z=None, **kw):
    n = len(teff)
    flux, ivar = _spectra(teff, feh, np.nan_to_num(rv), rng, **kw)
    mask = np.zeros(flux.shape, np.uint8)
    bad = rng.random(flux.shape) < 0.005  # a few bad pixels, with garbage flux
    mask[bad] = 1
    flux[bad] = 1e6
    spec = SpectraSpec(n_pixels=LOGLAM.size, wavelength=tuple(10**LOGLAM), with_mask=True, mask_bad_bits=1)
    tab_units, tab = {"RV": "km/s"}, {"RV": rv}
    if z is not None:
        tab_units["Z"], tab["Z"] = "", z
    with DatasetWriter(path, spectra=spec, targets={"teff": "K", "feh": "dex"}, tabular=tab_units) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux, "ivar": ivar, "mask": mask},
                 targets={"teff": teff, "feh": feh}, tabular=tab)
        w.make_splits({"train": 0.6, "val": 0.15, "test": 0.25}, seed=0)
    return path


def _recipe(path, *, rest_frame_column=None, **training):
    return recipe_from_dict({
        "name": "spec",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "spectra"},
        "targets": [{"name": "teff", "unit": "K"}, {"name": "feh", "unit": "dex"}],
        "preprocess": {"spectra": {"grid": [3.605, 3.655, 200], "rest_frame_column": rest_frame_column}},
        "model": {"name": "residual_mlp",
                  "params": {"stem": 32, "blocks": [16], "heads": [16], "trunk_dropout": 0.0}},
        "training": {"epochs": 15, "batch_size": 32, "optimizer": {"name": "adam", "lr": 3e-3}, **training},
        "evaluation": {"baselines": [{"name": "mean_predictor", "kind": "mean"}]},
    })


def test_shipped_recipe_summary_without_data(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data/sdss-stars.h5 does not exist here
    assert main(["summary", "stellar-params"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "trainable parameters: 542771"


def test_input_shape_comes_from_the_grid(tmp_path):
    assert recipe_input_shapes(_recipe(tmp_path / "absent.h5")) == {"flux": (200,)}


def test_residual_mlp_learns_from_spectra(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    teff, feh = rng.uniform(4000, 7000, n), rng.uniform(-2.0, 0.5, n)
    path = _write(tmp_path / "spec.h5", teff, feh, rng.uniform(-200, 200, n), rng)
    recipe = _recipe(path, rest_frame_column="RV")
    with Dataset(path) as ds:
        pre = RecipePreprocessor.fit(recipe, ds, ds.split("train"))
        x = pre.single.transform(ds, np.arange(10))
    assert x.shape == (10, 200) and x.dtype == np.float32 and np.isfinite(x).all()
    run = train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)
    models = json.loads((run / "metrics.json").read_text())["models"]
    for target in ("teff", "feh"):
        assert models["residual_mlp"][target]["mse"] < 0.5 * models["mean_predictor"][target]["mse"], target


def test_rest_frame_shift_aligns_the_line(tmp_path):
    rng = np.random.default_rng(1)
    # The same star twice (labels a hair apart: fit refuses a constant target), at two RVs.
    teff, feh = np.array([5500.0, 5500.001]), np.array([-0.5, -0.5 + 1e-6])
    path = _write(tmp_path / "rv.h5", teff, feh, np.array([0.0, 300.0]), rng, line_sigma=0.0005, noise=1e-4)
    rows = np.array([0, 1])
    with Dataset(path) as ds:
        shifted = RecipePreprocessor.fit(_recipe(path, rest_frame_column="RV"), ds, rows).single.transform(ds, rows)
        observed = RecipePreprocessor.fit(_recipe(path), ds, rows).single.transform(ds, rows)
    moved = np.abs(observed[0] - observed[1]).max()
    aligned = np.abs(shifted[0] - shifted[1]).max()
    assert moved > 0.3  # 300 km/s moves the narrow line by ~1.7 output pixels
    assert aligned < 0.1 * moved
    # The line minimum of the RV 300 km/s star moves back onto the rest-frame star's.
    near = np.flatnonzero(np.abs(np.linspace(3.605, 3.655, 200) - LINE) < 0.0015)
    rest_pixel = near[np.argmin(observed[0, near])]
    assert near[np.argmin(shifted[1, near])] == rest_pixel
    assert near[np.argmin(observed[1, near])] > rest_pixel  # redshifted before the correction


def test_missing_radial_velocity_names_the_object(tmp_path):
    rng = np.random.default_rng(2)
    n = 20
    rv = np.zeros(n)
    rv[7] = np.nan
    path = _write(tmp_path / "nan.h5", rng.uniform(4000, 7000, n), rng.uniform(-2, 0.5, n), rv, rng)
    with Dataset(path) as ds, pytest.raises(ValueError, match=r"'RV' is missing \(NaN\) for 1 object\(s\): s7"):
        RecipePreprocessor.fit(_recipe(path, rest_frame_column="RV"), ds, np.arange(n))


def test_missing_radial_velocity_falls_back_to_the_pipeline_redshift(tmp_path):
    rng = np.random.default_rng(3)
    n = 12
    true_rv = rng.uniform(-250, 250, n)
    beta = true_rv / 299_792.458
    z = np.sqrt((1 + beta) / (1 - beta)) - 1  # what the SDSS pipeline's Z holds for a star
    rv = true_rv.copy()
    rv[[2, 5]] = np.nan  # SSPP -9999, stored as NaN
    teff, feh = rng.uniform(4000, 7000, n), rng.uniform(-2, 0.5, n)
    path = _write(tmp_path / "z.h5", teff, feh, rv, rng, z=z)
    recipe = _recipe(path, rest_frame_column="RV")
    with Dataset(path) as ds:
        pre = RecipePreprocessor.fit(recipe, ds, np.arange(n))
        filled = pre.single._radial_velocity(ds, np.arange(n))
        assert np.allclose(filled, true_rv, atol=1e-6)
        strict = recipe.with_overrides({"preprocess.spectra.missing_rv": "error"})
        with pytest.raises(ValueError, match=r"missing \(NaN\) for 2 object\(s\): s2, s5"):
            RecipePreprocessor.fit(strict, ds, np.arange(n))


def test_any_grid_and_a_redshift_rest_frame_through_the_spectra_input(tmp_path):
    """Two linear segments in nm (as Gaia's BP and RP), shifted by a redshift column: a line lands at its rest pixel."""
    rng = np.random.default_rng(3)
    n = 40
    rv = rng.uniform(-3000, 3000, n)
    z = np.sqrt((1 + rv / 299792.458) / (1 - rv / 299792.458)) - 1  # the same shift, as a redshift
    path = _write(tmp_path / "s.h5", rng.uniform(4000, 7000, n), rng.uniform(-2, 0.5, n), rv, rng, z=z, noise=0.0,
                  line_sigma=0.0002)  # about 0.2 nm, on input pixels of about 0.1 nm
    rest = 10**LINE / 10  # nm
    segments = [{"scale": "linear", "start": rest - 3.0, "stop": rest - 0.5, "n": 60, "unit": "nm"},
                {"scale": "linear", "start": rest - 0.5, "stop": rest + 3.0, "n": 90, "unit": "nm"}]
    base = {"name": "grid", "dataset": {"path": str(path)}, "targets": [{"name": "teff", "unit": "K"}],
            "model": {"name": "mlp"}}
    by_z = recipe_from_dict({**base, "inputs": {"flux": {
        "kind": "spectra", "grid": segments, "rest_frame_column": "Z", "rest_frame_quantity": "redshift",
        "standardize": False}}})
    by_v = by_z.with_overrides({"inputs.flux.rest_frame_column": "RV", "inputs.flux.rest_frame_quantity": "velocity"})
    assert recipe_input_shapes(by_z) == {"flux": (150,)}
    with Dataset(path) as ds:
        rows = np.arange(n)
        x_z = RecipePreprocessor.fit(by_z, ds, rows).single.transform(ds, rows)
        x_v = RecipePreprocessor.fit(by_v, ds, rows).single.transform(ds, rows)
    assert x_z.shape == (n, 150)
    # the line's minimum (relative to the local continuum) is within a pixel of its rest wavelength for every z
    wl = np.r_[np.linspace(rest - 3.0, rest - 0.5, 60), np.linspace(rest - 0.5, rest + 3.0, 90)]
    near = np.abs(wl - rest) < 0.6
    centre = wl[near][np.argmin(x_z[:, near], axis=1)]
    assert np.all(np.abs(centre - rest) < 0.1), centre - rest  # grid pixels are ~0.04 nm, input ones ~0.1 nm
    # a velocity and the equivalent redshift give the same rest frame
    np.testing.assert_allclose(x_v, x_z, rtol=2e-3, atol=1e-3 * np.abs(x_z).max())
