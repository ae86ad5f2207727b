"""Tests of the mock SDSS stellar survey (``astroreg simulate sdss-stars``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from astroreg.data import Dataset
from astroreg.ingest import ingest_sdss_spectra
from astroreg.ingest import SDSS_BAD_PIXEL_BITS
from astroreg.sim import draw_stellar_labels, loglam_grid, observe_star, simulate_sdss_stars, synthesize
from astroreg.sim._stars import LABEL_COLUMNS, MISSING, _catalogue, star_seed

SHARED_SPECTRA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sdss" / "spectra"
WAVE = 10.0 ** loglam_grid()


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    return simulate_sdss_stars(24, tmp_path_factory.mktemp("stars"), seed=5, n_jobs=1, progress=False)


def _ew(flux, cont, lo, hi):
    m = (WAVE > lo) & (WAVE < hi)
    return float(np.sum((1.0 - flux[m] / cont[m]) * np.gradient(WAVE)[m]))


def test_files_have_the_layout_of_real_sdss_files(survey):
    files = sorted(survey.spectra_dir.glob("spec-*.fits"))
    assert len(files) == 24
    assert files[0].name == "spec-0266-51602-0001.fits"
    with fits.open(files[3]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "COADD", "SPECOBJ"]
        head = hdul[0].header
        assert (head["PLATEID"], head["MJD"], head["FIBERID"]) == (266, 51602, 4)
        assert head["BUNIT"] == "1E-17 erg/cm^2/s/Ang" and head["VACUUM"] is True
        coadd = hdul[1]
        formats = {c.name: c.format for c in coadd.columns}
        assert formats == {"flux": "E", "loglam": "E", "ivar": "E", "and_mask": "J", "or_mask": "J",
                           "wdisp": "E", "sky": "E", "model": "E"}
        loglam = coadd.data["loglam"]
        assert loglam.size == 3841
        np.testing.assert_allclose(np.diff(loglam.astype(np.float64)), 1e-4, atol=2e-6)
        assert abs(10 ** loglam[0] - 3800) < 1 and abs(10 ** loglam[-1] - 9200) < 1.5
        spec = hdul[2].data
        assert (spec["PLATE"][0], spec["MJD"][0], spec["FIBERID"][0]) == (266, 51602, 4)
        assert spec["CLASS"][0] == "STAR" and spec["SUBCLASS"][0][0] in "AFGK"
        row = survey.labels.iloc[3]
        beta = row["RV_TRUE"] / 299792.458
        assert spec["Z"][0] == pytest.approx(math.sqrt((1 + beta) / (1 - beta)) - 1, rel=1e-5, abs=1e-9)
        assert spec["SN_MEDIAN_ALL"][0] == pytest.approx(row["SNR"], rel=1e-5)
    real = sorted(SHARED_SPECTRA.glob("spec-*.fits")) if SHARED_SPECTRA.is_dir() else []
    if real:  # same COADD columns and formats, and the SPECOBJ columns used by the ingest, as a real file
        with fits.open(real[0]) as hdul:
            assert {c.name: c.format for c in hdul[1].columns} == formats
            real_specobj = {c.name: c.format for c in hdul[2].columns}
        with fits.open(files[3]) as hdul:
            ours = {c.name: c.format for c in hdul[2].columns}
        assert all(real_specobj[name] == fmt for name, fmt in ours.items() if name not in ("CLASS", "SUBCLASS"))


def test_labels_carry_sspp_names_and_missing_values(survey, tmp_path):
    cat = survey.labels
    for col in ("PLATE", "MJD", "FIBERID", *LABEL_COLUMNS, *(c + "_UNC" for c in LABEL_COLUMNS), "SNR",
                "TEFF_TRUE", "FEH_TRUE", "LOGG_TRUE", "RV_TRUE"):
        assert col in cat
    on_disk = fits.getdata(survey.labels_path, 1)
    np.testing.assert_array_equal(on_disk["TEFF_ADOP"], cat["TEFF_ADOP"].to_numpy())
    # about 1% missing per label, SSPP-style; checked on a larger catalogue without writing spectra
    labels = draw_stellar_labels(4000, 1)
    for k in ("plate", "mjd", "fiber"):
        labels[k] = np.arange(4000)
    # spectrum fits of Fisher matrix F and score s ~ N(0, F): over stars drawn from the prior the fitted
    # errors have covariance (F + L)^-1 (labels drawn from the population itself, which is the prior)
    rng = np.random.default_rng(3)
    fisher = np.diag([40.0 ** -2, 0.1 ** -2, 0.2 ** -2])
    results = [{"SN_MEDIAN_ALL": 25.0, "Z": 0.0, "fisher": fisher,
                "score": rng.multivariate_normal(np.zeros(3), fisher)} for _ in range(4000)]
    big = _catalogue(labels, results, np.random.default_rng(2), 1.0, 0.01)
    for col in LABEL_COLUMNS:
        frac = float((big[col] == MISSING).mean())
        assert 0.004 < frac < 0.02, (col, frac)
        assert ((big[col] == MISSING) == (big[col + "_UNC"] == MISSING)).all()
    ok = big["TEFF_ADOP"] != MISSING
    for col in ("TEFF", "FEH", "LOGG", "RV"):
        ok = big[col + "_ADOP"] != MISSING
        resid = (big[col + "_ADOP"] - big[col + "_TRUE"])[ok] / big[col + "_ADOP_UNC"][ok]
        assert 0.85 < float(resid.std()) < 1.15, col
    # the spectrum fit dominates where it is sharper than the colour temperature (40 K against 150 K)
    ok = big["TEFF_ADOP"] != MISSING
    assert float(big.loc[ok, "TEFF_ADOP_UNC"].median()) == pytest.approx((40.0 ** -2 + 150.0 ** -2) ** -0.5, rel=1e-4)


def test_label_prior_is_the_population():
    from astroreg.sim._stars import POPULATION_PRIOR

    labels = draw_stellar_labels(100_000, 4)
    for col, name in (("FEH_ADOP", "feh"), ("LOGG_ADOP", "logg")):
        mean, spread = POPULATION_PRIOR[col]
        assert labels[name].mean() == pytest.approx(mean, abs=0.02)
        assert labels[name].std() == pytest.approx(spread, abs=0.02)


def test_fitted_label_errors_follow_the_spectrum_noise():
    """The label fit's error is the spectrum's noise seen through the fit: its scatter over noise
    draws matches the Fisher matrix, and it is a function of the noise (same draw, same error)."""
    from astroreg.sim._stars import observe_star, spectrum_fit_information

    star = dict(teff=5200.0, logg=2.8, feh=-0.8, rv=40.0)
    errs = []
    for k in range(60):
        obs = observe_star(**star, snr=20.0, gmag=17.5, rng=np.random.default_rng(k), ebv=0.05,
                           calibration_rms=0.03)
        fisher, score = spectrum_fit_information(obs, **star)
        errs.append(np.linalg.solve(fisher, score))
    errs = np.array(errs)
    predicted = np.sqrt(np.diag(np.linalg.inv(fisher)))
    # 60 draws: the sample std is within ~20 % of the truth at 2.5 sigma
    np.testing.assert_allclose(errs.std(axis=0), predicted, rtol=0.3)
    assert 5.0 < predicted[0] < 100.0 and 0.005 < predicted[1] < 0.2 and 0.01 < predicted[2] < 0.3
    obs = observe_star(**star, snr=20.0, gmag=17.5, rng=np.random.default_rng(0), ebv=0.05, calibration_rms=0.03)
    np.testing.assert_allclose(np.linalg.solve(*spectrum_fit_information(obs, **star)), errs[0], rtol=1e-9)


def test_label_distributions_follow_table_1():
    labels = draw_stellar_labels(5000, 0)
    assert labels["teff"].between(4000, 9500).all() and labels["feh"].between(-4.4, 0.7).all()
    assert labels["logg"].between(0.2, 5.0).all()
    assert (labels["logg"] > 3.5).mean() > 0.6  # dwarfs dominate
    giants = labels["logg"] < 3.0
    assert labels.loc[giants & (labels["teff"] < 5500), "teff"].size > 0.7 * giants.sum()  # giants are cool
    assert labels["feh"].min() < -3.5 and labels["teff"].max() > 9000
    assert 20 < labels["snr"].median() < 30 and labels["snr"].between(5, 100).all()
    assert labels["rv"].abs().max() <= 300


def test_ingest_reads_every_file_and_joins_the_labels(survey, tmp_path):
    out = tmp_path / "stars.h5"
    report = ingest_sdss_spectra(survey.spectra_dir, survey.labels_path, out, n_jobs=1, progress=False)
    assert report.n_ok == 24 and report.n_skipped == 0
    with Dataset(out) as ds:
        ids = list(ds.ids)
        lab = survey.labels
        keys = [f"{p:04d}-{m:05d}-{f:04d}" for p, m, f in zip(lab.PLATE, lab.MJD, lab.FIBERID)]
        cat = survey.labels.set_axis(pd.Index(keys))
        expect = cat.loc[ids, "TEFF_ADOP"].to_numpy(np.float64)
        got = ds.target("TEFF_ADOP")
        np.testing.assert_allclose(got, np.where(expect == MISSING, np.nan, expect), rtol=1e-6)
        assert ds.spectra["flux"].shape == (24, 3841)


def test_ivar_is_the_inverse_variance_of_the_added_noise(survey):
    chi2 = []
    for path in sorted(survey.spectra_dir.glob("spec-*.fits")):
        d = fits.getdata(path, 1)
        good = d["ivar"] > 0
        chi2.append((d["flux"][good] - d["model"][good]) ** 2 * d["ivar"][good])
    chi2 = np.concatenate(chi2)
    assert chi2.size > 80_000
    assert abs(chi2.mean() - 1.0) < 0.03


def test_masked_pixels_have_zero_ivar_and_a_bad_bit(survey):
    for path in sorted(survey.spectra_dir.glob("spec-*.fits")):
        d = fits.getdata(path, 1)
        zero = d["ivar"] == 0
        bad = (d["and_mask"].astype(np.int64) & SDSS_BAD_PIXEL_BITS) != 0
        assert zero.sum() >= 1
        np.testing.assert_array_equal(zero, bad)
        assert ((d["or_mask"] & d["and_mask"]) == d["and_mask"]).all()


def test_hydrogen_lines_peak_in_a_stars():
    teffs = np.arange(5000, 11001, 500)
    hbeta, hdelta = [], []
    for teff in teffs:
        flux, cont = synthesize(float(teff), 4.2, 0.0)
        hbeta.append(_ew(flux, cont, 4822, 4902))
        hdelta.append(_ew(flux, cont, 4082, 4124))
    at = dict(zip(teffs.tolist(), zip(hbeta, hdelta)))
    assert at[9000][0] > 3 * at[5000][0] and at[9000][1] > 3 * at[5000][1]
    assert 9000 <= teffs[int(np.argmax(hbeta))] <= 10000
    assert max(hbeta) > 1.05 * hbeta[-1]  # and falls again in hotter stars


def test_metal_lines_grow_with_metallicity():
    rich, rc = synthesize(5500, 4.4, 0.0)
    poor, pc = synthesize(5500, 4.4, -2.0)
    assert _ew(rich, rc, 3925, 3945) > 1.5 * _ew(poor, pc, 3925, 3945)  # Ca II K
    assert _ew(rich, rc, 4378, 4390) > 3.0 * _ew(poor, pc, 4378, 4390)  # Fe I 4383.5
    assert _ew(rich, rc, 5160, 5195) > 3.0 * _ew(poor, pc, 5160, 5195)  # Mg b
    # gravity: Mg b damping wings are stronger in a dwarf than in a giant of the same Teff
    giant, gc = synthesize(5000, 2.0, 0.0)
    dwarf, dc = synthesize(5000, 4.6, 0.0)
    assert _ew(dwarf, dc, 5160, 5195) > 1.3 * _ew(giant, gc, 5160, 5195)


def test_radial_velocity_shifts_lines_by_the_doppler_pixels():
    at_rest, cont0 = synthesize(6000, 4.0, 0.0, rv=0.0)
    moving, cont1 = synthesize(6000, 4.0, 0.0, rv=300.0)
    pix = np.arange(WAVE.size, dtype=np.float64)
    inner = slice(100, -100)
    shifts = np.arange(3.0, 6.0, 0.01)
    # the rest-frame spectrum moved by s pixels, against the moving star's spectrum
    cost = [np.sum((np.interp(pix - s, pix, at_rest / cont0) - moving / cont1)[inner] ** 2) for s in shifts]
    beta = 300.0 / 299792.458
    expected = 0.5 * math.log10((1 + beta) / (1 - beta)) / 1e-4
    assert expected == pytest.approx(4.35, abs=0.01)
    assert shifts[int(np.argmin(cost))] == pytest.approx(expected, abs=0.05)


def test_same_seed_gives_identical_files_for_any_jobs(tmp_path):
    one = simulate_sdss_stars(40, tmp_path / "one", seed=9, n_jobs=1, chunk_size=8, progress=False)
    two = simulate_sdss_stars(40, tmp_path / "two", seed=9, n_jobs=2, chunk_size=8, progress=False)
    names = sorted(p.name for p in one.spectra_dir.glob("*.fits"))
    assert names == sorted(p.name for p in two.spectra_dir.glob("*.fits")) and len(names) == 40
    for name in names:
        assert (one.spectra_dir / name).read_bytes() == (two.spectra_dir / name).read_bytes(), name
    pd.testing.assert_frame_equal(one.labels, two.labels)


def test_star_streams_do_not_depend_on_the_run_size():
    a = np.random.default_rng(star_seed(3, 17)).standard_normal(5)
    b = np.random.default_rng(star_seed(3, 17)).standard_normal(5)
    c = np.random.default_rng(star_seed(3, 18)).standard_normal(5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_teff_is_learnable_by_ridge_from_the_spectra():
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    labels = draw_stellar_labels(400, 11)
    x = np.empty((400, WAVE.size))
    for i, row in labels.iterrows():
        obs = observe_star(row.teff, row.logg, row.feh, row.rv, row.snr, row.gmag, np.random.default_rng(i))
        flux = np.where(obs["ivar"] > 0, obs["flux"], np.median(obs["flux"]))
        x[i] = (flux - flux.mean()) / flux.std()
    y = labels["teff"].to_numpy()
    model = Ridge(alpha=1.0).fit(x[:300], y[:300])
    pred = model.predict(x[300:])
    assert r2_score(y[300:], pred) > 0.8
    mae, mae_mean = np.abs(pred - y[300:]).mean(), np.abs(y[:300].mean() - y[300:]).mean()
    assert mae < 0.4 * mae_mean


def test_cli_writes_the_survey_and_prints_the_ingest_command(tmp_path, capsys):
    from astroreg.cli._main import main

    status = main(["simulate", "sdss-stars", "--n", "3", "--out", str(tmp_path / "m"), "--jobs", "1", "--quiet"])
    assert status == 0
    out = capsys.readouterr().out
    assert "astroreg ingest sdss-spectra --spectra" in out and "sspp-labels.fits" in out
    assert len(list((tmp_path / "m" / "spectra").glob("spec-*.fits"))) == 3


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        simulate_sdss_stars(0, tmp_path)
    with pytest.raises(ValueError, match="label_noise"):
        simulate_sdss_stars(2, tmp_path, label_noise=-1)


def _band_depth(teff, logg, feh, lo, hi):
    """Mean fractional depth of the molecular bands alone over lo-hi Angstrom."""
    from astroreg.sim._star_lines import band_opacity

    m = (WAVE > lo) & (WAVE < hi)
    return float(np.mean(-np.expm1(-band_opacity(WAVE[m], teff, logg, feh))))


def test_molecular_bands_follow_temperature_gravity_and_metallicity():
    mgh = (5100.0, 5210.0)
    cn = (3850.0, 3884.0)
    # MgH: strong in a K dwarf, weak in a K giant of the same Teff; CN the other way round
    assert _band_depth(4500, 4.6, 0.0, *mgh) > 5 * _band_depth(4500, 2.0, 0.0, *mgh)
    assert _band_depth(4500, 2.0, 0.0, *cn) > 1.5 * _band_depth(4500, 4.6, 0.0, *cn)
    # G band fades from K to F stars and with metallicity
    g_band = (4290.0, 4316.0)
    assert _band_depth(4800, 4.5, 0.0, *g_band) > 5 * _band_depth(6500, 4.3, 0.0, *g_band)
    assert _band_depth(5200, 4.5, 0.0, *g_band) > 3 * _band_depth(5200, 4.5, -1.5, *g_band)
    # TiO only in the coolest stars
    tio = (7056.0, 7200.0)
    assert _band_depth(4000, 4.7, 0.0, *tio) > 0.15
    assert _band_depth(5500, 4.5, 0.0, *tio) < 1e-3
    # saturation: no band goes black
    assert _band_depth(4000, 4.7, 0.5, 4250, 4316) < 1.0 - math.exp(-1.5) + 1e-9
    flux, cont = synthesize(4300.0, 4.7, 0.0)
    assert flux.min() >= 0.0 and bool((flux <= cont + 1e-12).all())


def test_reddening_and_calibration_change_the_continuum_smoothly():
    kw = dict(teff=5800.0, logg=4.4, feh=-0.5, rv=0.0, snr=30.0, gmag=17.0)
    clear = observe_star(**kw, rng=np.random.default_rng(0))["model"]
    red = observe_star(**kw, rng=np.random.default_rng(0), ebv=0.2)["model"]
    ratio = red / clear
    blue, nir = ratio[WAVE < 4000].mean(), ratio[WAVE > 9000].mean()
    # E(B-V) = 0.2 dims the blue end more than the red end by about 0.2 * (A_3800 - A_9200) mag
    assert 1.5 < nir / blue < 2.2
    assert np.all(np.diff(ratio) > -1e-6)  # extinction falls monotonically to the red
    cal = observe_star(**kw, rng=np.random.default_rng(0), calibration_rms=0.03)["model"]
    dist = np.log(cal / clear)
    dist -= dist.mean()
    assert 0.005 < dist.std() < 0.15
    assert np.abs(np.diff(dist, 2)).max() < 1e-5  # smooth: a cubic in loglam, no pixel structure


def test_catalogue_carries_the_reddening(survey):
    ebv = survey.labels["EBV"].to_numpy()
    assert np.all((ebv >= 0.005) & (ebv <= 0.5))
    assert 0.01 < np.median(ebv) < 0.15
