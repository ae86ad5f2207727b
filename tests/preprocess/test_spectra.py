"""Spectrum preprocessing: resampling, rest-frame shift, standardisation, augmentation."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from astropy.io import fits
from scipy.interpolate import CubicSpline
from sklearn.base import clone

from astroreg.preprocess import (
    PAPER_LOGLAM_GRID,
    GaussianNoiseAugmenter,
    LogLamResampler,
    SpectrumStandardizer,
    loglam_grid,
    rest_frame_shift,
)
from astroreg.preprocess._spectra import SPEED_OF_LIGHT_KMS, doppler_loglam_shift

pytestmark = pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")


@pytest.fixture(scope="module")
def sdss_files(shared_dir):
    folder = shared_dir / "data" / "sdss" / "spectra"
    files = sorted(folder.glob("*.fits"))
    if not files:
        pytest.skip(f"{folder} (real SDSS spectra) is absent")
    return files


def _read(path):
    d = fits.getdata(path, 1)
    return (np.asarray(d["loglam"], np.float64), np.asarray(d["flux"], np.float64),
            np.asarray(d["ivar"], np.float64), np.asarray(d["and_mask"]))


# -- LogLamResampler -----------------------------------------------------------------------------
def test_resampling_real_spectra_round_trips_to_one_percent(sdss_files):
    """Onto a 7x finer grid covering each file (its nodes off the file's pixels) and back."""
    for path in sdss_files:
        loglam, flux, ivar, mask = _read(path)
        fine = LogLamResampler(loglam_min=loglam[0], loglam_max=loglam[-1], n_pixels=7 * loglam.size).fit()
        f, iv = fine.transform(flux[None], loglam=loglam, ivar=ivar[None], mask=mask[None])
        assert f.shape == iv.shape == (1, 7 * loglam.size) and np.isfinite(f).all()
        back = CubicSpline(fine.grid_, f[0].astype(np.float64))(loglam)
        good = ivar > 0
        # 1% of the flux, or of the spectrum's median flux level where the flux crosses zero.
        level = np.maximum(np.abs(flux[good]), np.median(np.abs(flux[good])))
        assert np.max(np.abs(back[good] - flux[good]) / level) < 0.01, path.name


def test_resampling_onto_the_spectrum_own_grid_is_the_identity(sdss_files):
    loglam, flux, ivar, mask = _read(sdss_files[0])
    exact = np.round(loglam / 1e-4) * 1e-4  # SDSS pixels sit at multiples of 1e-4; float32 blurs that
    own = LogLamResampler(loglam_min=exact[0], loglam_max=exact[-1], n_pixels=exact.size, bad_mask_bits=0).fit()
    f, iv = own.transform(flux[None], loglam=exact, ivar=ivar[None])
    good = ivar > 0
    np.testing.assert_allclose(f[0][good], flux[good], rtol=1e-6)
    np.testing.assert_allclose(iv[0][good], ivar[good], rtol=1e-6)
    np.testing.assert_allclose(own.wavelength_, 10**exact, rtol=1e-12)


def test_resampling_the_ingested_dataset_equals_resampling_the_file(sdss_files, tmp_path):
    """Native storage plus padding loses nothing: both paths give the same resampled spectra."""
    import pandas as pd

    from astroreg.data import Dataset
    from astroreg.ingest import ingest_sdss_spectra

    keys = []
    for path in sdss_files:
        row = fits.getdata(path, 2)[0]
        keys.append((int(row["PLATE"]), int(row["MJD"]), int(row["FIBERID"])))
    pd.DataFrame(keys, columns=["PLATE", "MJD", "FIBERID"]).assign(TEFF_ADOP=5000.0).to_csv(tmp_path / "l.csv")
    ingest_sdss_spectra(sdss_files[0].parent, tmp_path / "l.csv", tmp_path / "d.h5", targets={"TEFF_ADOP": "K"},
                        progress=False)
    res = LogLamResampler().fit()
    with Dataset(tmp_path / "d.h5") as ds:
        s = ds.read_spectra(slice(None), keys=("flux", "ivar", "mask", "wavelength"))
        from_ds, ivar_ds = res.transform(s["flux"], loglam=np.log10(s["wavelength"]), ivar=s["ivar"], mask=s["mask"])
        ids = list(ds.ids)
    for path, (p, m, f) in zip(sdss_files, keys):
        loglam, flux, ivar, mask = _read(path)
        direct, ivar_direct = res.transform(flux[None], loglam=loglam, ivar=ivar[None], mask=mask[None])
        row = ids.index(f"{p:04d}-{m:05d}-{f:04d}")
        # Only the float32 rounding of the file's loglam (< 0.002 pixel) separates the two.
        level = np.median(np.abs(flux))
        np.testing.assert_allclose(from_ds[row], direct[0], atol=0.01 * level, err_msg=path.name)
        np.testing.assert_array_equal(ivar_ds[row] > 0, ivar_direct[0] > 0)


def test_paper_grid_and_clamping_at_the_ends():
    res = LogLamResampler().fit()
    assert res.grid_.shape == (4000,) and (res.grid_[0], res.grid_[-1]) == PAPER_LOGLAM_GRID[:2]
    assert round(res.wavelength_[0]) == 3762 and round(res.wavelength_[-1]) == 9268
    loglam = np.arange(36000, 39000) * 1e-4  # 3981-7943 Angstrom: inside the paper's grid
    flux = 5.0 + np.sin(loglam * 300)
    f, iv = res.transform(flux[None], loglam=loglam, ivar=np.ones((1, loglam.size)))
    below, above = res.grid_ < loglam[0], res.grid_ > loglam[-1]
    assert below.sum() > 100 and above.sum() > 100
    np.testing.assert_allclose(f[0, below], flux[0], rtol=1e-6)
    np.testing.assert_allclose(f[0, above], flux[-1], rtol=1e-6)
    assert np.all(iv[0, below | above] == 0) and np.all(iv[0, ~(below | above)] > 0)


def test_bad_pixels_are_interpolated_over_or_masked():
    loglam = np.arange(36000, 36100) * 1e-4
    flux = np.full(100, 10.0)
    flux[50] = 1e6  # a cosmic ray
    ivar = np.ones(100)
    mask = np.zeros(100, np.uint32)
    mask[50] = 1 << 18  # FULLREJECT
    res = LogLamResampler(loglam_min=loglam[0], loglam_max=loglam[-1], n_pixels=199).fit()
    f, iv = res.transform(flux[None], loglam=loglam, ivar=ivar[None], mask=mask[None])
    np.testing.assert_allclose(f[0], 10.0, rtol=1e-9)
    near = np.abs(res.grid_ - loglam[50]) < 0.75e-4  # the node and the half-pixels beside it
    assert near.sum() == 3 and np.all(iv[0, near] == 0) and np.all(iv[0, ~near] > 0)
    masked, _ = LogLamResampler(loglam_min=loglam[0], loglam_max=loglam[-1], n_pixels=199,
                                bad_pixels="mask").fit().transform(flux[None], loglam=loglam, mask=mask[None])
    assert np.isnan(masked[0, near]).all() and np.allclose(masked[0, ~near], 10.0)
    # Bits that do not mark bad pixels (BRIGHTSKY) keep the pixel; bad_mask_bits=None counts every bit.
    mask[50] = 1 << 23
    kept, _ = res.transform(flux[None], loglam=loglam, mask=mask[None])
    assert kept[0].max() == pytest.approx(1e6)
    dropped, _ = clone(res).set_params(bad_mask_bits=None).fit().transform(flux[None], loglam=loglam, mask=mask[None])
    np.testing.assert_allclose(dropped[0], 10.0)


def test_propagated_ivar_at_half_pixels():
    loglam = np.arange(36000, 36010) * 1e-4
    ivar = np.array([1.0, 4.0] * 5)
    res = LogLamResampler(loglam_min=loglam[0], loglam_max=loglam[-1], n_pixels=19).fit()
    _, iv = res.transform(np.ones((1, 10)), loglam=loglam, ivar=ivar[None])
    np.testing.assert_allclose(iv[0, ::2], ivar)
    # Half-way: the mean of the two variances, 1 and 1/4.
    np.testing.assert_allclose(iv[0, 1::2], 1 / 0.625)


def test_grid_ends_are_learned_when_not_given():
    loglam = np.arange(36000, 36100) * 1e-4
    ivar = np.ones((2, 100))
    ivar[0, :10] = 0
    ivar[1, -5:] = 0
    res = LogLamResampler(loglam_min=None, loglam_max=None, n_pixels=50)
    res.fit(np.ones((2, 100)), loglam=loglam, ivar=ivar)
    assert res.grid_[0] == pytest.approx(loglam[0]) and res.grid_[-1] == pytest.approx(loglam[-1])
    ragged = res.fit([np.ones(5), np.ones(3)], loglam=[loglam[10:15], loglam[2:5]])
    assert ragged.grid_[0] == pytest.approx(loglam[2]) and ragged.grid_[-1] == pytest.approx(loglam[14])


def test_resampler_is_picklable_and_clonable():
    res = LogLamResampler(n_pixels=100, bad_pixels="mask").fit()
    again = pickle.loads(pickle.dumps(res))
    np.testing.assert_array_equal(again.grid_, res.grid_)
    assert clone(res).get_params() == res.get_params() and not hasattr(clone(res), "grid_")


@pytest.mark.parametrize("kwargs, message", [
    ({"bad_pixels": "drop"}, "bad_pixels is 'drop'"),
    ({"n_pixels": 1}, "n_pixels must be an integer >= 2"),
    ({"loglam_min": 3.9, "loglam_max": 3.6}, "loglam_min < loglam_max"),
    ({"loglam_min": 3800.0, "loglam_max": 9200.0}, "look like wavelengths"),
    ({"loglam_min": None}, "learns it from the training spectra"),
])
def test_resampler_settings_are_checked_in_fit(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LogLamResampler(**kwargs).fit()


def test_resampler_input_errors():
    res = LogLamResampler().fit()
    with pytest.raises(ValueError, match="increase strictly"):
        res.transform(np.ones((1, 3)), loglam=np.array([3.6, 3.6, 3.7]))
    with pytest.raises(ValueError, match="shape"):
        res.transform(np.ones(3), loglam=np.array([3.6, 3.65, 3.7]))
    with pytest.raises(RuntimeError, match="not fitted"):
        LogLamResampler().transform(np.ones((1, 3)), loglam=np.array([3.6, 3.65, 3.7]))


# -- rest-frame shift -------------------------------------------------------------------------------
@pytest.mark.parametrize("rv", [-300.0, 137.0, 850.0])
def test_line_moves_to_its_rest_wavelength(rv):
    rest = 6564.61  # H-alpha, vacuum
    beta = rv / SPEED_OF_LIGHT_KMS
    observed = rest * np.sqrt((1 + beta) / (1 - beta))
    loglam = np.arange(35800, 39600) * 1e-4  # SDSS pixels
    wave = 10**loglam
    flux = 1.0 - 0.6 * np.exp(-0.5 * ((wave - observed) / 2.5) ** 2)
    res = LogLamResampler().fit()
    step = res.grid_[1] - res.grid_[0]

    def centre(spectrum):
        depth = 1.0 - spectrum
        near = np.abs(res.grid_ - np.log10(rest)) < 40 * step
        return np.sum(res.grid_[near] * depth[near]) / np.sum(depth[near])

    # One interpolation, shifting the input pixels ...
    shifted, _ = res.transform(flux[None], loglam=loglam, rv_kms=[rv])
    assert abs(centre(shifted[0]) - np.log10(rest)) / step < 0.1
    # ... or the paper's two: resample, then shift the grid and interpolate back onto it.
    observed_grid, _ = res.transform(flux[None], loglam=loglam)
    assert abs(centre(observed_grid[0]) - np.log10(observed)) / step < 0.1
    back, _ = res.transform(observed_grid, loglam=rest_frame_shift(res.grid_, [rv]))
    assert abs(centre(back[0]) - np.log10(rest)) / step < 0.1


def test_rest_frame_shift_shapes_and_formula():
    loglam = np.array([3.6, 3.7, 3.8])
    shift = 0.5 * np.log10((1 + 0.001) / (1 - 0.001))
    np.testing.assert_allclose(rest_frame_shift(loglam, SPEED_OF_LIGHT_KMS * 0.001), loglam - shift)
    both = rest_frame_shift(loglam, [0.0, SPEED_OF_LIGHT_KMS * 0.001])
    assert both.shape == (2, 3)
    np.testing.assert_allclose(both, [loglam, loglam - shift])
    per_row = rest_frame_shift(np.stack([loglam, loglam + 0.1]), [0.0, 0.0])
    np.testing.assert_allclose(per_row[1], loglam + 0.1)
    with pytest.raises(ValueError, match="RV_ADOP = -9999 is stored as NaN"):
        rest_frame_shift(loglam, [10.0, np.nan])
    with pytest.raises(ValueError, match="below c"):
        rest_frame_shift(loglam, 4e5)
    with pytest.raises(ValueError, match="has 2 spectra but rv_kms has 3"):
        rest_frame_shift(np.stack([loglam, loglam]), [0.0, 0.0, 0.0])


def test_loglam_grid():
    g = loglam_grid(*PAPER_LOGLAM_GRID)
    assert g.shape == (4000,) and g[0] == 3.5754 and g[-1] == 3.9670


# -- SpectrumStandardizer ----------------------------------------------------------------------------
def test_standardizer_gives_mean_zero_std_one():
    rng = np.random.default_rng(0)
    flux = rng.normal(0, 1, (5, 300)) * rng.uniform(1, 1000, (5, 1)) + rng.uniform(-50, 500, (5, 1))
    z = SpectrumStandardizer().fit_transform(flux)
    assert z.dtype == np.float32 and z.shape == flux.shape
    np.testing.assert_allclose(z.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=1), 1, rtol=1e-5)
    # Scale-free: a spectrum 1000 times brighter standardises to the same thing.
    np.testing.assert_allclose(SpectrumStandardizer().fit_transform(1000 * flux + 3), z, atol=1e-5)


def test_standardizer_uses_good_pixels_only():
    rng = np.random.default_rng(1)
    flux = rng.normal(10, 2, (2, 200))
    ivar = np.ones_like(flux)
    flux[0, :20] = 1e5  # no data here
    ivar[0, :20] = 0
    flux[1, 5] = np.nan
    std = SpectrumStandardizer().fit(flux)
    z = std.transform(flux, ivar)
    good = (ivar > 0) & np.isfinite(flux)
    for i in range(2):
        assert z[i, good[i]].mean() == pytest.approx(0, abs=1e-5) and z[i, good[i]].std() == pytest.approx(1, rel=1e-5)
    assert np.all(z[~good] == 0)
    kept = SpectrumStandardizer(fill_bad=None).fit_transform(flux, ivar)
    assert np.isnan(kept[1, 5]) and kept[0, 0] > 1000
    assert np.all(SpectrumStandardizer().fit_transform(np.full((1, 4), 7.0)) == 0)
    with pytest.raises(ValueError, match="fitted on 200 pixels"):
        std.transform(flux[:, :100])
    assert pickle.loads(pickle.dumps(std)).n_pixels_ == 200


# -- GaussianNoiseAugmenter --------------------------------------------------------------------------
def test_augmenter_adds_k_copies_at_the_right_noise_level():
    rng = np.random.default_rng(2)
    flux = rng.normal(0, 1, (30, 4000)) * rng.uniform(0.5, 20, (30, 1))
    aug = GaussianNoiseAugmenter(copies=2, level=(0.01, 0.05), seed=7)
    out, rows = aug.fit_transform(flux)
    assert out.shape == (90, 4000) and out.dtype == np.float32
    np.testing.assert_array_equal(rows, np.tile(np.arange(30), 3))
    np.testing.assert_allclose(out[:30], flux, rtol=1e-6)
    std = flux.std(axis=1)
    levels = np.concatenate([(out[30 * k:30 * (k + 1)] - flux).std(axis=1) / std for k in (1, 2)])
    # Each copy's noise is 1%-5% of its spectrum's std (4000 pixels estimate it to ~1.1%).
    assert levels.min() > 0.01 * 0.96 and levels.max() < 0.05 * 1.04
    assert levels.max() - levels.min() > 0.02  # drawn across the range, not fixed
    fixed, _ = GaussianNoiseAugmenter(copies=1, level=(0.03, 0.03), seed=0).fit_transform(flux)
    np.testing.assert_allclose((fixed[30:] - flux).std(axis=1) / std, 0.03, rtol=0.05)


def test_augmenter_is_reproducible_with_a_seed():
    flux = np.random.default_rng(3).normal(size=(4, 50))
    a, _ = GaussianNoiseAugmenter(seed=11).fit_transform(flux)
    b, _ = GaussianNoiseAugmenter(seed=11).fit_transform(flux)
    c, _ = GaussianNoiseAugmenter(seed=12).fit_transform(flux)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    aug = GaussianNoiseAugmenter(seed=11).fit(flux)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(aug)).transform(flux)[0], a)
    only, rows = GaussianNoiseAugmenter(copies=3, include_original=False, seed=0).fit_transform(flux)
    assert only.shape == (12, 50) and not np.any(np.all(only[:4] == flux, axis=1))
    assert rows.tolist() == [0, 1, 2, 3] * 3


@pytest.mark.parametrize("kwargs, message", [
    ({"copies": -1}, "copies must be a non-negative integer"),
    ({"level": (0.05, 0.01)}, "0 <= low <= high"),
    ({"level": 0.05}, "pair"),
    ({"copies": 0, "include_original": False}, "no spectra"),
])
def test_augmenter_settings_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GaussianNoiseAugmenter(**kwargs).fit(np.ones((2, 3)))


# -- the batched common-grid path ---------------------------------------------------------------
def _common_grid_batch(n=40, seed=3):
    """Spectra on one native grid with padding, ivar = 0 pixels, bad mask bits and RVs."""
    rng = np.random.default_rng(seed)
    loglam = np.log10(10 ** (np.arange(35800, 39651) * 1e-4))  # as datasets store it: via wavelengths
    x = np.arange(loglam.size)
    flux = 5 + np.sin(x[None] / rng.uniform(5, 50, (n, 1))) + rng.normal(0, 0.3, (n, loglam.size))
    ivar = rng.uniform(1, 4, flux.shape)
    ivar[rng.random(flux.shape) < 0.01] = 0.0
    ivar[:, 1000:1040] = 0.0                                  # a long gap
    mask = np.zeros(flux.shape, np.uint32)
    mask[rng.random(flux.shape) < 0.005] = 1 << 18          # FULLREJECT: bad
    mask[rng.random(flux.shape) < 0.01] |= 1 << 23          # BRIGHTSKY: kept
    lo, hi = rng.integers(0, 300, n), loglam.size - rng.integers(0, 300, n)
    pad = (x[None] < lo[:, None]) | (x[None] >= hi[:, None])
    ivar[pad], mask[pad] = 0.0, (1 << 24) | (1 << 31)
    ivar[1, :-3] = 0.0                                        # 3 good pixels: the per-spectrum fallback
    ivar[2, ::2] = 0.0                                        # every other pixel bad
    rv = rng.uniform(-300, 300, n)
    rv[0] = 0.0
    return loglam, flux, ivar, mask, rv


@pytest.mark.parametrize("bad_pixels", ["interpolate", "mask"])
def test_batched_common_grid_path_equals_one_spline_per_spectrum(bad_pixels):
    """A 1-D loglam takes the batched solve; ragged lists take the scipy CubicSpline per spectrum."""
    loglam, flux, ivar, mask, rv = _common_grid_batch()
    res = LogLamResampler(bad_pixels=bad_pixels).fit()
    f1, i1 = res.transform(flux, loglam=loglam, ivar=ivar, mask=mask, rv_kms=rv)
    n = len(flux)
    f0, i0 = res.transform(list(flux), loglam=[loglam] * n, ivar=list(ivar), mask=list(mask), rv_kms=rv)
    np.testing.assert_array_equal(np.isnan(f1), np.isnan(f0))
    if bad_pixels == "mask":
        assert np.isnan(f0).any()
    std = np.maximum(np.nanstd(f0, axis=1, keepdims=True), 1e-3)  # rows with all inside pixels masked
    assert np.nanmax(np.abs(f1 - f0) / std) < 1e-5
    np.testing.assert_allclose(i1, i0, rtol=1e-5, atol=0)
    # Without ivar propagation the flux is the same.
    f2, i2 = res.transform(flux, loglam=loglam, ivar=ivar, mask=mask, rv_kms=rv, return_ivar=False)
    assert i2 is None
    np.testing.assert_array_equal(f2, f1)


def test_batched_path_matches_scipy_on_a_spectrum_without_bad_pixels():
    loglam, flux, _, _, _ = _common_grid_batch(n=3)
    res = LogLamResampler().fit()
    f, iv = res.transform(flux, loglam=loglam, rv_kms=np.array([0.0, 150.0, -200.0]))
    assert iv is None
    shift = rest_frame_shift(loglam, np.array([0.0, 150.0, -200.0]))
    for i in range(3):
        x = shift[i]
        expect = CubicSpline(x, flux[i])(np.clip(res.grid_, x[0], x[-1]))
        np.testing.assert_allclose(f[i], expect, rtol=2e-7)


def test_standardizer_row_blocks_equal_the_whole_array_arithmetic():
    """Beyond _ROW_BLOCK spectra the standardiser works block by block: the same numbers."""
    from astroreg.preprocess import _spectra

    rng = np.random.default_rng(5)
    flux = rng.normal(3, 2, (_spectra._ROW_BLOCK * 2 + 7, 50)).astype("f4")
    flux[3, 4] = np.nan
    ivar = rng.uniform(0, 1, flux.shape)
    ivar[ivar < 0.2] = 0.0
    st = SpectrumStandardizer().fit(flux)
    for iv in (None, ivar):
        np.testing.assert_array_equal(st.transform(flux, iv), st._standardize(flux, iv, flux.shape[1]))
    with pytest.raises(ValueError, match="ivar has shape"):
        st.transform(flux, ivar[:, :10])
    with pytest.raises(ValueError, match="fitted on 50 pixels"):
        st.transform(np.zeros((_spectra._ROW_BLOCK + 1, 49)))


def test_standardize_rows_in_place_equals_the_standardizer():
    from astroreg.preprocess._spectra import SpectrumStandardizer, standardize_rows_

    rng = np.random.default_rng(4)
    x = (rng.normal(80.0, 15.0, (150, 500)) * rng.uniform(0.1, 10, (150, 1))).astype(np.float32)
    x[3, 7], x[70, :5], x[100, 9] = np.nan, np.inf, -np.inf  # rows left to SpectrumStandardizer
    x[11] = 2.5  # zero std: all zeros
    expect = np.nan_to_num(SpectrumStandardizer().fit(x).transform(x))
    got = x.copy()
    assert standardize_rows_(got) is got
    np.testing.assert_allclose(got, expect, atol=5e-6)
    assert np.all(got[11] == 0) and np.all(np.isfinite(got)) and got[3, 7] == 0
    with pytest.raises(ValueError, match="C-contiguous float32"):
        standardize_rows_(x.astype(np.float64))


# -- wavelength grids ----------------------------------------------------------------------------
def test_old_grid_form_is_a_log_segment_with_the_exact_loglam_ends():
    from astroreg.preprocess._spectra import GridSegment, WavelengthGrid, parse_grid

    g = parse_grid([3.5754, 3.9670, 4000])
    assert isinstance(g, WavelengthGrid) and g.n_pixels == 4000 and len(g.segments) == 1
    seg = g.segments[0]
    assert seg.scale == "log" and seg.name is None
    # The pixels are exactly LogLamResampler's grid: log10 of the stored ends gives the loglam back.
    np.testing.assert_array_equal(seg.coordinate(), loglam_grid(*PAPER_LOGLAM_GRID))
    np.testing.assert_array_equal(g.wavelength(), LogLamResampler().fit().wavelength_)
    assert g.log_range() == PAPER_LOGLAM_GRID
    assert parse_grid(np.array([3.5754, 3.9670, 4000.0])) == g == parse_grid((3.5754, 3.967, 4000))
    assert WavelengthGrid.from_dict(g.to_dict()) == g
    assert parse_grid(g) is g and parse_grid(seg) == g
    assert g != parse_grid([3.5754, 3.9670, 3999])
    assert isinstance(seg, GridSegment) and LogLamResampler().fit().wavelength_grid_ == g


def test_grid_mappings_units_segments_and_json_round_trip():
    import json

    from astroreg.preprocess._spectra import WavelengthGrid, parse_grid

    linear = parse_grid({"scale": "linear", "start": 336, "stop": 1020, "n": 343, "unit": "nm"})
    assert linear.segments[0].start == pytest.approx(3360.0, rel=1e-15)
    assert linear.segments[0].stop == pytest.approx(10200.0, rel=1e-15)
    np.testing.assert_allclose(np.diff(linear.wavelength()), 20.0, rtol=1e-10)  # 2 nm pixels
    same = parse_grid({"scale": "linear", "start": 3360.0, "stop": 10200.0, "n": 343})
    np.testing.assert_allclose(same.wavelength(), linear.wavelength(), rtol=1e-14)
    log = parse_grid({"start": 3800, "stop": 9200, "n": 100})  # scale log, unit Angstrom by default
    np.testing.assert_allclose(np.diff(np.log10(log.wavelength())), np.log10(9200 / 3800) / 99, rtol=1e-9)
    gaia = parse_grid([{"scale": "linear", "start": 330, "stop": 680, "n": 176, "unit": "nm", "name": "BP"},
                       {"scale": "linear", "start": 640, "stop": 1050, "n": 206, "unit": "nm", "name": "RP"}])
    assert gaia.n_pixels == 382 and [s.name for s in gaia.segments] == ["BP", "RP"]
    assert gaia.segment_slices() == (slice(0, 176), slice(176, 382))
    wave = gaia.wavelength()
    assert wave.shape == (382,) and wave[175] == pytest.approx(6800.0) and wave[176] == pytest.approx(6400.0)
    # JSON text and back (run files, dataset attributes): the same grid, bit for bit.
    back = WavelengthGrid.from_dict(json.loads(json.dumps(gaia.to_dict())))
    assert back == gaia and back.wavelength().tobytes() == wave.tobytes()
    assert parse_grid(gaia.to_dict()) == gaia


@pytest.mark.parametrize("value, message", [
    ([3800.0, 9200.0, 4000], r"looks like wavelengths.*np.log10"),
    ([3.9, 3.6, 100], r"loglam_min < loglam_max.*got \[3.9, 3.6, 100\]"),
    ([3.6, 3.9, 1], r"integer n >= 2"),
    ([3.6, 3.9], r"grid is \[3.6, 3.9\].*valid grids: \[3.5754, 3.9670, 4000\]"),
    ("3.6 3.9 10", r"grid is '3.6 3.9 10'.*valid grids"),
    ({"scale": "cubic", "start": 1, "stop": 2, "n": 3}, r"scale is 'cubic'; allowed: \['log', 'linear', 'table'\]"),
    ({"start": 3800, "stop": 9200}, r"lacks \['n'\].*valid grids"),
    ({"start": 3800, "stop": 9200, "n": 10, "unit": "um"}, r"unit is 'um'; allowed: \['Angstrom', 'nm'\]"),
    ({"start": 3800, "stop": 9200, "n": 10, "step": 2}, r"unknown keys \['step'\]; allowed"),
    ({"start": 9200, "stop": 3800, "n": 10}, r"0 < start < stop"),
    ({"start": 3800, "stop": 9200, "n": 10.5}, r"n must be an integer >= 2"),
    ([{"start": 3800, "stop": 9200, "n": 10}, [1, 2, 3]], r"grid is .*neither"),
    ([], r"grid is \[\]"),
])
def test_parse_grid_errors_say_what_was_given_and_show_an_example(value, message):
    from astroreg.preprocess._spectra import parse_grid

    with pytest.raises(ValueError, match=message):
        parse_grid(value)


# -- SpectrumResampler ---------------------------------------------------------------------------
def test_log_grid_is_bit_identical_to_loglam_resampler_on_random_spectra():
    """The generic resampler on a log grid gives LogLamResampler's numbers (which are paper 001's)."""
    from astroreg.preprocess._spectra import SpectrumResampler, log_grid

    loglam, flux, ivar, mask, rv = _common_grid_batch(n=37, seed=11)
    wavelength = 10.0 ** loglam
    for bad_pixels in ("interpolate", "mask"):
        old = LogLamResampler(bad_pixels=bad_pixels, bad_mask_bits=(1 << 18) | (1 << 24) | (1 << 31)).fit()
        new = SpectrumResampler(log_grid(*PAPER_LOGLAM_GRID), bad_pixels=bad_pixels,
                                bad_mask_bits=old.bad_mask_bits).fit()
        np.testing.assert_array_equal(new.wavelength_, old.wavelength_)
        for kw in ({}, {"rv_kms": rv}):
            f0, i0 = old.transform(flux, loglam=np.log10(wavelength), ivar=ivar, mask=mask, **kw)
            f1, i1 = new.transform(flux, wavelength=wavelength, ivar=ivar, mask=mask, return_ivar=True, **kw)
            assert f1.tobytes() == f0.tobytes() and i1.tobytes() == i0.tobytes()
            # one wavelength array per spectrum: the per-spectrum path, the same numbers as before
            p0, _ = old.transform(flux[:5], loglam=np.log10(np.tile(wavelength, (5, 1))), mask=mask[:5],
                                  **{k: v[:5] for k, v in kw.items()})
            p1, _ = new.transform(flux[:5], wavelength=np.tile(wavelength, (5, 1)), mask=mask[:5],
                                  **{k: v[:5] for k, v in kw.items()})
            assert p1.tobytes() == p0.tobytes()
        # A redshift gives the same loglam shift as the velocity, to rounding.
        z = (1 + rv / SPEED_OF_LIGHT_KMS) / np.sqrt(1 - (rv / SPEED_OF_LIGHT_KMS) ** 2) - 1
        fz, _ = new.transform(flux, wavelength=wavelength, ivar=ivar, mask=mask, redshift=z)
        fv, _ = new.transform(flux, wavelength=wavelength, ivar=ivar, mask=mask, rv_kms=rv)
        np.testing.assert_allclose(fz, fv, rtol=1e-6, atol=1e-6)


def test_legacy_default_bad_bits_are_sdss_bits():
    from astroreg.ingest import SDSS_BAD_PIXEL_BITS

    assert LogLamResampler().bad_mask_bits == SDSS_BAD_PIXEL_BITS


def test_linear_grid_resamples_in_wavelength():
    from astroreg.preprocess._spectra import SpectrumResampler

    wave = np.linspace(3300.0, 10500.0, 361)  # Gaia XP's sampling: 2 nm pixels
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 3, (4, 1)), rng.uniform(-1e-4, 1e-4, (4, 1))
    flux = a + b * wave  # a straight line in wavelength: the spline reproduces it exactly
    res = SpectrumResampler({"scale": "linear", "start": 400, "stop": 1000, "n": 1201, "unit": "nm"}).fit()
    out, ivar = res.transform(flux, wavelength=wave, ivar=np.ones_like(flux), return_ivar=True)
    assert out.shape == ivar.shape == (4, 1201) and out.dtype == np.float32
    np.testing.assert_allclose(out, a + b * res.wavelength_, rtol=1e-6)
    assert np.all(ivar == 1.0)
    # The spline runs in wavelength, not log-wavelength: a curve in lambda is followed closely.
    curve = np.sin(wave / 300.0)
    got, _ = res.transform(curve[None], wavelength=wave)
    np.testing.assert_allclose(got[0], np.sin(res.wavelength_ / 300.0), atol=2e-4)


def test_two_segments_are_the_concatenation_of_each_resampled_alone():
    from astroreg.preprocess._spectra import SpectrumResampler

    bp = {"scale": "linear", "start": 330, "stop": 680, "n": 176, "unit": "nm", "name": "BP"}
    rp = {"scale": "log", "start": 640, "stop": 1050, "n": 150, "unit": "nm", "name": "RP"}  # overlaps BP
    wave = np.linspace(3200.0, 10800.0, 800)
    rng = np.random.default_rng(1)
    flux = 5 + np.sin(wave[None] / rng.uniform(50, 300, (6, 1))) + rng.normal(0, 0.1, (6, 800))
    ivar = rng.uniform(1, 2, flux.shape)
    ivar[rng.random(flux.shape) < 0.02] = 0
    z = rng.uniform(0, 0.02, 6)
    both = SpectrumResampler([bp, rp]).fit()
    alone = [SpectrumResampler(s).fit() for s in (bp, rp)]
    for kw in ({}, {"redshift": z}):
        f, iv = both.transform(flux, wavelength=wave, ivar=ivar, return_ivar=True, **kw)
        parts = [r.transform(flux, wavelength=wave, ivar=ivar, return_ivar=True, **kw) for r in alone]
        assert f.shape == (6, 326)
        np.testing.assert_array_equal(f, np.concatenate([p[0] for p in parts], axis=1))
        np.testing.assert_array_equal(iv, np.concatenate([p[1] for p in parts], axis=1))
        cov = both.coverage(flux, wavelength=wave, ivar=ivar, **kw)
        np.testing.assert_allclose(cov, np.mean(iv > 0, axis=1))


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_redshift_moves_a_line_to_its_rest_wavelength_within_a_pixel(scale):
    from astroreg.preprocess._spectra import SpectrumResampler

    rest, z = 6564.61, np.array([0.0, 0.05, 0.31])  # H-alpha
    wave = np.linspace(3600.0, 10400.0, 6000)
    flux = 1.0 - 0.6 * np.exp(-0.5 * ((wave[None] - rest * (1 + z[:, None])) / 3.0) ** 2)
    res = SpectrumResampler({"scale": scale, "start": 5000, "stop": 8000, "n": 3001}).fit()
    out, _ = res.transform(flux, wavelength=wave, redshift=z)
    grid = res.wavelength_
    for row in out:
        near = np.abs(grid - rest) < 40
        depth = 1.0 - row[near]
        centre = np.sum(grid[near] * depth) / np.sum(depth)
        assert abs(centre - rest) < 0.1 * np.diff(grid).mean()
    # Observed frame: the line stays where it was observed.
    obs, _ = res.transform(flux[1:2], wavelength=wave)
    assert abs(grid[np.argmin(obs[0])] - rest * 1.05) < 1.5


def test_resample_false_keeps_the_pixels_and_handles_bad_ones():
    from astroreg.preprocess._spectra import SpectrumResampler

    grid = [{"scale": "linear", "start": 4000, "stop": 5000, "n": 101, "name": "a"},
            {"scale": "linear", "start": 6000, "stop": 7000, "n": 51, "name": "b"}]
    res = SpectrumResampler(grid, resample=False).fit()
    wave = res.wavelength_
    flux = np.tile(2.0 + wave / 1000.0, (3, 1))
    ivar = np.ones_like(flux)
    flux[0, 10], ivar[1, 120], flux[2, 60] = np.nan, 0.0, 1e6
    mask = np.zeros(flux.shape, np.uint8)
    mask[2, 60] = 4
    out, iv = res.transform(flux, wavelength=wave, ivar=ivar, mask=mask, return_ivar=True)
    expect = np.tile(2.0 + wave / 1000.0, (3, 1))
    np.testing.assert_allclose(out, expect, rtol=1e-6)  # bad pixels: the spline through the segment's others
    assert iv[0, 10] == iv[1, 120] == iv[2, 60] == 0 and (iv > 0).sum() == iv.size - 3
    masked = SpectrumResampler(grid, resample=False, bad_pixels="mask").fit()
    m, _ = masked.transform(flux, ivar=ivar, mask=mask)
    assert np.isnan(m[0, 10]) and np.isnan(m[1, 120]) and np.isnan(m[2, 60]) and np.isnan(m).sum() == 3
    assert masked.coverage(flux, ivar=ivar, mask=mask).tolist() == [151 / 152, 151 / 152, 151 / 152]
    with pytest.raises(ValueError, match=r"resample=False needs spectra already on the grid \(152 pixels"):
        res.transform(flux[:, :100])
    with pytest.raises(ValueError, match="wavelengths .* differ from it"):
        res.transform(flux, wavelength=wave * 1.01)
    with pytest.raises(ValueError, match="cannot shift them to the rest frame"):
        res.transform(flux, redshift=np.zeros(3))


def test_coverage_follows_the_resampled_ivar():
    from astroreg.preprocess._spectra import SpectrumResampler, log_grid

    loglam, flux, ivar, mask, rv = _common_grid_batch(n=12, seed=2)
    res = SpectrumResampler(log_grid(3.59, 3.95, 900), bad_mask_bits=1 << 18 | 1 << 24 | 1 << 31).fit()
    for kw in ({}, {"rv_kms": rv}, {"redshift": np.full(12, 0.01)}):
        _, iv = res.transform(flux, wavelength=10**loglam, ivar=ivar, mask=mask, return_ivar=True, **kw)
        cov = res.coverage(flux, wavelength=10**loglam, ivar=ivar, mask=mask, **kw)
        np.testing.assert_array_equal(cov, np.mean(iv > 0, axis=1))


def test_spectrum_resampler_contract_and_errors():
    from astroreg.preprocess._spectra import SpectrumResampler, velocity_redshift

    res = SpectrumResampler([3.6, 3.7, 50], bad_pixels="mask")
    assert clone(res).get_params() == res.get_params() and not hasattr(res, "wavelength_grid_")
    with pytest.raises(RuntimeError, match="SpectrumResampler is not fitted"):
        res.transform(np.ones((1, 3)), wavelength=[4000.0, 4500.0, 5000.0])
    res.fit()
    again = pickle.loads(pickle.dumps(res))
    assert again.wavelength_grid_ == res.wavelength_grid_
    with pytest.raises(ValueError, match="bad_pixels is 'drop'"):
        SpectrumResampler([3.6, 3.7, 50], bad_pixels="drop").fit()
    with pytest.raises(ValueError, match="bad_mask_bits must be a non-negative integer"):
        SpectrumResampler([3.6, 3.7, 50], bad_mask_bits=-1).fit()
    with pytest.raises(ValueError, match="looks like wavelengths"):
        SpectrumResampler([3600, 3700, 50]).fit()
    with pytest.raises(ValueError, match="wavelength= .* or loglam="):
        res.transform(np.ones((1, 3)))
    with pytest.raises(ValueError, match="redshifts must be finite and above -1"):
        res.transform(np.ones((1, 3)), wavelength=[4000.0, 4500.0, 5000.0], redshift=[-1.0])
    with pytest.raises(ValueError, match="not both"):
        res.transform(np.ones((1, 3)), wavelength=[4000.0, 4500.0, 5000.0], redshift=[0.0], rv_kms=[0.0])
    with pytest.raises(ValueError, match="wavelength must increase strictly"):
        res.transform(np.ones((1, 3)), wavelength=np.array([[4000.0, 4000.0, 5000.0]]))
    with pytest.raises(ValueError, match=r"redshift has shape \(2,\); expected one value per spectrum, \(1,\)"):
        res.transform(np.ones((1, 3)), wavelength=[4000.0, 4500.0, 5000.0], redshift=[0.0, 0.1])
    # velocity and redshift: the relativistic Doppler relation both ways
    v = np.array([-3000.0, 0.0, 150.0, 2.5e5])
    from astroreg.preprocess._spectra import redshift_velocity

    np.testing.assert_allclose(redshift_velocity(velocity_redshift(v)), v, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(np.log10(1 + velocity_redshift(v)), doppler_loglam_shift(v), rtol=1e-12, atol=1e-16)
    with pytest.raises(ValueError, match="below c"):
        velocity_redshift(3e5)


def test_spectrum_resampler_stores_as_json_once_registered(monkeypatch):
    """What the run file needs: SpectrumResampler, WavelengthGrid and GridSegment in the serialiser's allow-list."""
    serialise = pytest.importorskip("astroreg.modalities._serialise")
    from astroreg.preprocess._spectra import (
        GridSegment,
        SpectrumResampler,
        WavelengthGrid,
    )

    for name, entry in {"SpectrumResampler": (SpectrumResampler, ("wavelength_grid_",)),
                        "WavelengthGrid": (WavelengthGrid, ()), "GridSegment": (GridSegment, ())}.items():
        monkeypatch.setitem(serialise._CLASSES, name, entry)
    import json

    from astroreg.preprocess._spectra import parse_grid

    given = [{"scale": "linear", "start": 330, "stop": 680, "n": 30, "unit": "nm", "name": "BP"},
             {"scale": "log", "start": 6400, "stop": 10500, "n": 20}]
    x = np.linspace(3000, 11000, 300)
    flux = np.sin(x / 200.0)[None]
    for grid in (parse_grid(given), given):  # a WavelengthGrid, or the recipe's plain data
        res = SpectrumResampler(grid, bad_mask_bits=5).fit()
        back = serialise._decode(json.loads(json.dumps(serialise._encode(res, "spectra"))), "spectra")
        assert type(back) is SpectrumResampler and back.wavelength_grid_ == res.wavelength_grid_
        assert parse_grid(back.grid) == parse_grid(res.grid) and back.bad_mask_bits == 5
        np.testing.assert_array_equal(back.transform(flux, wavelength=x)[0], res.transform(flux, wavelength=x)[0])
