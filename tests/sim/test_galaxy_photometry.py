"""Tests of the mock photometric galaxy catalogue (``astroreg simulate galaxy-photometry``)."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.cosmology import Planck18

from astroreg.cli import main
from astroreg.data import Dataset
from astroreg.sim import (
    sigma_sfr,
    simulate_galaxy_photometry,
    write_photometry_catalog,
    write_photometry_dataset,
)
from astroreg.sim._galaxy_photometry import (
    BANDS,
    DEPTH_5SIGMA,
    MISSING,
    calzetti_k,
    magnitude_error,
    main_sequence,
    model_magnitudes,
    sdss_filters,
    sed_grid,
)
from astroreg.sim._galaxy_photometry_output import (
    DATASET_MISSING_ERROR,
    DATASET_TABULAR,
    dataset_columns,
)


@pytest.fixture(scope="module")
def filters(shared_dir):
    return shared_dir / "data" / "sdss"


@pytest.fixture(scope="module")
def cat(filters):
    return simulate_galaxy_photometry(20_000, seed=7, filter_dir=filters)


def test_same_seed_same_catalogue_and_smaller_n_is_a_prefix(filters):
    a = simulate_galaxy_photometry(300, seed=4, filter_dir=filters)
    b = simulate_galaxy_photometry(300, seed=4, filter_dir=filters)
    pd.testing.assert_frame_equal(a, b)
    head = simulate_galaxy_photometry(120, seed=4, filter_dir=filters)
    pd.testing.assert_frame_equal(head, a.iloc[:120])
    other = simulate_galaxy_photometry(300, seed=5, filter_dir=filters)
    assert not np.allclose(other["log_mstar"], a["log_mstar"])
    assert len(a) == 300 and a["id"].is_unique


def test_main_sequence_and_quenched_fractions(cat):
    sf = cat[~cat["quenched"]]
    q = cat[cat["quenched"]]
    offset = cat["log_sfr"] - main_sequence(cat["log_mstar"], cat["redshift"])
    np.testing.assert_allclose(offset, cat["delta_ms"], atol=1e-9)
    # Speagle et al. 2014: 0.2 dex around the sequence (a flux limit barely biases SF galaxies)
    assert abs(sf["delta_ms"].mean()) < 0.05
    assert 0.17 < sf["delta_ms"].std() < 0.23
    # quenched galaxies lie at least 0.7 dex below it, 1.7 dex on average, with a tail to 3+ dex
    assert q["delta_ms"].max() < -0.7
    assert 1.5 < -q["delta_ms"].mean() < 1.9
    assert (q["delta_ms"] < -3).mean() > 0.02
    # mass quenching: most massive galaxies are quenched, few dwarfs are
    frac = cat.groupby(pd.cut(cat["log_mstar"], [8, 9.5, 10.5, 11, 12]), observed=True)["quenched"].mean()
    assert frac.iloc[0] < 0.25 and frac.iloc[-1] > 0.8
    assert np.all(np.diff(frac.to_numpy()) > 0)
    assert 0.2 < cat["quenched"].mean() < 0.6
    # low Sigma_SFR is the long tail: the distribution is skewed to low values
    s = cat["log_sigma_sfr"]
    assert s.mean() < s.median() - 0.1
    assert 0.04 < (s < s.median() - 1.5).mean() < 0.15


def test_sigma_sfr_units_on_a_hand_computed_galaxy(cat):
    # SFR 1 M_sun/yr, R_e 2 arcsec at z = 0.1
    d_a = Planck18.angular_diameter_distance(0.1).to_value(u.kpc)
    r_e = 2.0 / 206264.806 * d_a
    assert r_e == pytest.approx(3.813, abs=0.01)
    assert sigma_sfr(1.0, 2.0, 0.1) == pytest.approx(1.0 / (2 * np.pi * r_e**2), rel=1e-6)
    assert sigma_sfr(1.0, 2.0, 0.1) == pytest.approx(0.01095, rel=1e-3)  # M_sun/yr/kpc^2
    # the catalogue's target is the same formula with its true radius in kpc
    hand = np.log10(10.0 ** cat["log_sfr"] / (2 * np.pi * cat["r_e_kpc"] ** 2))
    np.testing.assert_allclose(cat["log_sigma_sfr"], hand, atol=1e-3)


def test_quenched_galaxies_are_redder(cat):
    q = cat["quenched"].to_numpy()
    for blue, red, gap in (("u", "r", 0.8), ("g", "r", 0.3)):
        colour = cat[f"mag_{blue}_true"] - cat[f"mag_{red}_true"]
        assert colour[q].median() > colour[~q].median() + gap
    det = (cat["mag_g"] < MISSING).to_numpy()
    g_r = (cat["mag_g"] - cat["mag_r"]).to_numpy()
    assert np.median(g_r[det & q]) > np.median(g_r[det & ~q]) + 0.3
    assert cat.loc[q, "g_r_rest"].median() > cat.loc[~q, "g_r_rest"].median() + 0.2


def test_magnitudes_fainter_with_redshift_at_fixed_mass(filters):
    z = np.array([0.03, 0.06, 0.1, 0.2, 0.3])
    n = z.size
    grid = sed_grid(filters)
    for ssfr in (-12.0, -10.0, -9.3):
        mags, _, _ = model_magnitudes(np.full(n, 10.5), z, np.full(n, ssfr), np.full(n, 0.3), grid=grid)
        assert np.all(np.diff(mags, axis=0) > 0), ssfr
        dm = Planck18.distmod(z).value
        # beyond the distance modulus only the k-correction: below 1.5 mag in r out to z = 0.3
        assert np.all(np.abs(mags[:, 2] - mags[0, 2] - (dm - dm[0])) < 1.5)
    # more mass, brighter; more dust, fainter
    m_lo, _, _ = model_magnitudes(np.array([10.0]), np.array([0.1]), np.array([-10.0]), np.array([0.3]), grid=grid)
    m_hi, _, _ = model_magnitudes(np.array([11.0]), np.array([0.1]), np.array([-10.0]), np.array([0.3]), grid=grid)
    m_dust, _, _ = model_magnitudes(np.array([10.0]), np.array([0.1]), np.array([-10.0]), np.array([1.3]), grid=grid)
    np.testing.assert_allclose(m_lo - m_hi, 2.5, atol=1e-6)
    assert np.all(m_dust > m_lo) and (m_dust - m_lo)[0, 0] > (m_dust - m_lo)[0, 4]


def test_errors_and_non_detections_rise_at_the_faint_end(cat):
    assert magnitude_error(DEPTH_5SIGMA["g"], "g") == pytest.approx(0.2, abs=0.005)  # S/N 5 at the limit
    assert magnitude_error(16.0, "r") == pytest.approx(0.01, abs=0.002)  # calibration floor
    faint = pd.qcut(cat["mag_r_true"], 5, labels=False)
    lo, hi = cat[faint == 0], cat[faint == 4]
    for b in BANDS:
        assert lo[f"magerr_{b}"].median() < hi[f"magerr_{b}"].median()
    assert (hi["mag_u"] == MISSING).mean() > (lo["mag_u"] == MISSING).mean() + 0.1
    missing = cat["mag_u"] == MISSING
    assert missing.equals(cat["magerr_u"] == MISSING)
    assert 0.02 < missing.mean() < 0.5
    # a non-detection is faint: its true u is past the detection limit on average
    assert cat.loc[missing, "mag_u_true"].median() > DEPTH_5SIGMA["u"]
    det = cat.loc[~missing]
    assert (det["magerr_u"] <= 1.0857362 / 3 + 1e-6).all()
    # errors are right: measured - true over the error is unit normal for bright detections
    g = cat[cat["mag_g_true"] < 20]
    pull = (g["mag_g"] - g["mag_g_true"]) / g["magerr_g"]
    assert 0.85 < pull.std() < 1.15
    # the flux limit is in measured r
    assert cat["mag_r"].max() <= 20.5


def test_catalogue_and_dataset_files(cat, tmp_path):
    small = cat.iloc[:2000]
    pq_path = write_photometry_catalog(small, tmp_path / "mock.parquet", settings={"seed": 7})
    back = pd.read_parquet(pq_path)
    pd.testing.assert_frame_equal(back, small.reset_index(drop=True))
    meta = json.loads(pq.read_schema(pq_path).metadata[b"astroreg"])
    assert meta["units"]["log_sigma_sfr"] == "dex(M_sun/yr/kpc^2)" and meta["missing"] == 99.0

    h5 = write_photometry_dataset(small, tmp_path / "mock.h5",
                                  split_fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=1)
    with Dataset(h5) as ds:
        assert len(ds) == 2000
        assert set(ds.target_names) == {"log_sigma_sfr", "log_sfr", "log_mstar", "redshift"}
        assert ds.unit("log_sigma_sfr") == "dex(M_sun/yr/kpc^2)" and ds.unit("mag_r") == "mag(AB)"
        assert set(ds.tabular_columns) == set(DATASET_TABULAR)
        np.testing.assert_allclose(ds.target("log_sigma_sfr"), small["log_sigma_sfr"])
        tab = ds.tabular()
        assert np.isfinite(tab.to_numpy(float)).all()
        sizes = [len(ds.split(s)) for s in ("train", "val", "test")]
        assert sum(sizes) == 2000 and sizes[0] == 1200
    # a non-detection is stored at the band's limit (S/N 3) with error 1
    missing = small["mag_u"].to_numpy() == MISSING
    assert missing.any()
    np.testing.assert_allclose(tab["mag_u"].to_numpy()[missing], DEPTH_5SIGMA["u"] + 2.5 * np.log10(5 / 3))
    assert np.all(tab["magerr_u"].to_numpy()[missing] == DATASET_MISSING_ERROR)


def test_photometry_predicts_sigma_sfr_better_than_the_mean(cat):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    tab = dataset_columns(cat)
    x = np.column_stack([tab[f"mag_{b}"] for b in BANDS] + [tab["z_spec"], np.log10(tab["r_e_arcsec"])])
    y = cat["log_sigma_sfr"].to_numpy()
    train, test = slice(0, 14_000), slice(14_000, None)
    model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x[train], y[train])
    mae = np.mean(np.abs(model.predict(x[test]) - y[test]))
    mae_mean = np.mean(np.abs(y[train].mean() - y[test]))
    assert mae < 0.7 * mae_mean, (mae, mae_mean)  # measured: 0.35 against 0.62 dex


def test_calzetti_curve():
    assert calzetti_k(5500.0) == pytest.approx(4.05, abs=0.01)
    assert calzetti_k(6563.0) == pytest.approx(3.33, abs=0.01)
    assert calzetti_k(1500.0) > calzetti_k(3000.0) > calzetti_k(9000.0)
    with pytest.raises(ValueError, match="1200-22000 Angstrom"):
        calzetti_k(900.0)


def test_missing_filters_say_where_they_were_looked_for(tmp_path):
    with pytest.raises(ValueError, match=r"SLOAN_SDSS.*not found in .*empty.*--filters DIR"):
        sdss_filters(tmp_path / "empty")


def test_bad_settings_are_refused(filters):
    with pytest.raises(ValueError, match="z_range"):
        simulate_galaxy_photometry(10, z_range=(0.3, 0.1), filter_dir=filters)
    with pytest.raises(ValueError, match="r_limit"):
        simulate_galaxy_photometry(10, r_limit=30.0, filter_dir=filters)


def test_cli_writes_both_files_and_guards_them(filters, tmp_path, capsys):
    pq_path, h5 = tmp_path / "m.parquet", tmp_path / "m.h5"
    args = ["simulate", "galaxy-photometry", "--n", "500", "--seed", "2", "--filters", str(filters),
            "--out", str(pq_path), "--out", str(h5)]
    assert main(args) == 0
    cat = pd.read_parquet(pq_path)
    with Dataset(h5) as ds:
        np.testing.assert_allclose(ds.target("log_sfr"), cat["log_sfr"])
        assert set(ds.split_names) == {"train", "val", "test"}
    assert main(args) != 0
    assert "exists; pass --overwrite" in capsys.readouterr().err
    (tmp_path / "other.parquet").write_text("not ours")
    assert main([*args[:-4], "--out", str(tmp_path / "other.parquet"), "--overwrite"]) != 0
    assert "not a previous galaxy-photometry catalogue" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--no-splits"]) == 0
    with Dataset(h5) as ds:
        assert ds.split_names == ()


@pytest.mark.slow
def test_100k_galaxies_well_under_a_minute(filters):
    sed_grid(filters)
    start = time.perf_counter()
    cat = simulate_galaxy_photometry(100_000, seed=0, filter_dir=filters)
    assert len(cat) == 100_000
    assert time.perf_counter() - start < 30
