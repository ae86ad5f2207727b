"""Tests of the mock HSC-like galaxy survey (``astroreg simulate galaxy-images``)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from astroreg.data import Dataset
from astroreg.sim import (
    PAPER_COLUMNS,
    REQUIRED_COLUMNS,
    composite_half_light_radius,
    draw_parameters,
    render_galaxy,
    simulate_galaxy_images,
)

# The shared folder is the repository root's sibling; tests that need it skip without it.
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
PAPER_TEST_CSV = SHARED / "data" / "galaxyflux" / "gal_morph_test.csv"
needs_paper_csv = pytest.mark.skipif(
    not PAPER_TEST_CSV.is_file(),
    reason=f"the seed paper's catalogue {PAPER_TEST_CSV} is absent (shared data folder not checked out)",
)


def _stamps_from_folder(folder: Path, catalog: pd.DataFrame) -> np.ndarray:
    return np.stack([fits.getdata(folder / name) for name in catalog["file_name"]])


def test_draw_parameters_follow_the_paper_distributions():
    cat = draw_parameters(3000, np.random.default_rng(0))
    assert list(cat.columns) == list(PAPER_COLUMNS)
    assert (cat["num_components"] == 2).all()
    assert cat["img_number"].is_unique
    for col, lo, hi in [("sersic_idx_d", 0.8, 1.2), ("sersic_idx_b", 3.5, 5.0), ("R_e_d", 0.1, 3.0),
                        ("R_e_b", 0.1, 2.0), ("axis_ratio_d", 0.25, 1.0), ("axis_ratio_b", 0.25, 1.0),
                        ("PA_d", -90, 90), ("flux_frac_b", 0, 1), ("total_flux", 0, 30000)]:
        values = cat[col].to_numpy()
        assert values.min() >= lo and values.max() <= hi, col
        # Uniform: the range is filled, the mean is central.
        assert values.min() < lo + 0.02 * (hi - lo) and values.max() > hi - 0.02 * (hi - lo), col
        assert abs(values.mean() - (lo + hi) / 2) < 0.03 * (hi - lo), col
    offset = cat["PA_b"] - cat["PA_d"]
    assert offset.abs().max() <= 15 and offset.abs().max() > 14
    np.testing.assert_allclose(cat["flux_frac_d"] + cat["flux_frac_b"], 1.0)
    np.testing.assert_array_equal(cat["bt"], cat["flux_frac_b"])
    np.testing.assert_allclose(cat["log_total_flux"], np.log10(cat["total_flux"]))
    assert (cat["file_name"] == cat["img_number"].astype(str) + ".fits").all()
    # The composite radius lies between the components' circular-aperture extremes.
    lo_r = np.minimum(cat["R_e_d"] * np.sqrt(cat["axis_ratio_d"]), cat["R_e_b"] * np.sqrt(cat["axis_ratio_b"]))
    hi_r = np.maximum(cat["R_e_d"] / np.sqrt(cat["axis_ratio_d"]), cat["R_e_b"] / np.sqrt(cat["axis_ratio_b"]))
    assert ((cat["R_e"] >= lo_r) & (cat["R_e"] <= hi_r)).all()
    # Same seed, same parameters.
    pd.testing.assert_frame_equal(cat, draw_parameters(3000, np.random.default_rng(0)))


def test_composite_half_light_radius_of_a_single_round_component_is_its_own():
    cat = draw_parameters(20, 1)
    cat["flux_frac_b"] = 0.0
    cat["axis_ratio_d"] = 1.0
    np.testing.assert_allclose(composite_half_light_radius(cat), cat["R_e_d"], rtol=1e-6)


@needs_paper_csv
def test_composite_half_light_radius_reproduces_the_paper_column():
    paper = pd.read_csv(PAPER_TEST_CSV).iloc[:2000]
    rel = composite_half_light_radius(paper) / paper["R_e"].to_numpy() - 1
    assert np.median(np.abs(rel)) < 0.005
    assert np.mean(np.abs(rel) < 0.05) > 0.97


def test_same_seed_same_images_whatever_the_number_of_jobs(tmp_path):
    serial = simulate_galaxy_images(10, out_dir=tmp_path / "serial", seed=7, n_jobs=1, chunk_size=4,
                                    progress=False)
    simulate_galaxy_images(10, dataset=tmp_path / "parallel.h5", seed=7, n_jobs=2, chunk_size=3, progress=False)
    a = _stamps_from_folder(tmp_path / "serial", serial)
    with Dataset(tmp_path / "parallel.h5") as ds:
        b = ds.read_images(slice(None))[:, 0]
        psf = ds.tabular(["psf_fwhm"])["psf_fwhm"].to_numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(serial["psf_fwhm"].to_numpy(), psf)
    other = simulate_galaxy_images(3, out_dir=tmp_path / "other", seed=8, n_jobs=1, progress=False)
    assert not np.array_equal(_stamps_from_folder(tmp_path / "other", other), a[:3])


def test_fits_folder_has_readable_stamps_and_the_paper_catalogue(tmp_path):
    out = tmp_path / "mock"
    cat = simulate_galaxy_images(4, out_dir=out, seed=3, stamp_size=65, n_jobs=1, progress=False)
    csv = pd.read_csv(out / "gal_morph.csv")
    assert list(csv.columns[:17]) == list(PAPER_COLUMNS)
    assert list(csv.columns[17:]) == ["psf_fwhm", "sky_sigma"]
    assert len(csv) == 4
    np.testing.assert_allclose(csv["total_flux"], cat["total_flux"])
    for _, row in csv.iterrows():
        with fits.open(out / row["file_name"]) as hdul:
            data, header = hdul[0].data, hdul[0].header
        assert data.dtype == np.dtype(">f4") and data.shape == (65, 65)
        assert np.isfinite(data).all()
        assert header["BUNIT"] == "ADU"
        assert header["PIXSCALE"] == pytest.approx(0.168)
        assert header["PSFFWHM"] == pytest.approx(row["psf_fwhm"])
        assert 0.6 <= header["PSFFWHM"] <= 0.7
        assert header["SEED"] == 3
        assert header["IMGNUM"] == row["img_number"]
        assert header["SKYSIGMA"] == pytest.approx(row["sky_sigma"])


def test_dataset_holds_images_targets_and_tabular_columns(tmp_path):
    cat = simulate_galaxy_images(5, dataset=tmp_path / "g.h5", seed=2, stamp_size=33, n_jobs=1, progress=False)
    with Dataset(tmp_path / "g.h5") as ds:
        assert len(ds) == 5
        assert ds.image_spec.shape == (1, 33, 33)
        assert ds.image_spec.pixel_scale == pytest.approx(0.168)
        assert list(ds.ids) == [str(i) for i in cat["img_number"]]
        np.testing.assert_allclose(ds.target("total_flux"), cat["total_flux"])
        np.testing.assert_allclose(ds.target("log_total_flux"), cat["log_total_flux"])
        assert ds.unit("total_flux") == "ADU"
        assert not {"file_name", "total_flux", "log_total_flux"} & set(ds.tabular_columns)
        assert {"R_e", "bt", "img_number", "psf_fwhm", "sky_sigma"} <= set(ds.tabular_columns)


def test_fits_folder_ingests_into_the_same_dataset_as_direct_output(tmp_path):
    from astroreg.ingest import ingest_image_folder

    simulate_galaxy_images(4, out_dir=tmp_path / "stamps", seed=6, stamp_size=33, n_jobs=1, progress=False)
    simulate_galaxy_images(4, dataset=tmp_path / "direct.h5", seed=6, stamp_size=33, n_jobs=1, progress=False)
    ingest_image_folder(tmp_path / "stamps" / "gal_morph.csv", tmp_path / "stamps", tmp_path / "ingested.h5",
                        targets={"total_flux": "ADU", "log_total_flux": "dex"}, crop=None, split_fractions=None,
                        n_jobs=1, progress=False)
    with Dataset(tmp_path / "direct.h5") as a, Dataset(tmp_path / "ingested.h5") as b:
        np.testing.assert_array_equal(a.read_images(slice(None)), b.read_images(slice(None)))
        np.testing.assert_array_equal(a.ids, b.ids)
        assert set(a.tabular_columns) == set(b.tabular_columns)
        assert b.image_spec.pixel_scale == pytest.approx(0.168)
        np.testing.assert_allclose(a.target("total_flux"), b.target("total_flux"))


def test_noise_level_matches_the_sky_setting():
    row = draw_parameters(1, 4).iloc[0].copy()
    row["total_flux"] = 300.0
    clean = render_galaxy(row, noiseless=True, stamp_size=101)
    noisy = render_galaxy(row, seed=11, stamp_size=101, gain=3.0, sky_level=15.0)
    border = (noisy - clean)[:20]
    assert border.std() == pytest.approx(np.sqrt(15.0 / 3.0), rel=0.1)
    np.testing.assert_array_equal(noisy, render_galaxy(row, seed=11, stamp_size=101))


def test_catalogue_missing_a_column_is_named(tmp_path):
    cat = draw_parameters(3, 0).drop(columns=["R_e_b"])
    path = tmp_path / "cat.csv"
    cat.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) R_e_b; a galaxy catalogue needs sersic_idx_d"):
        simulate_galaxy_images(catalog=path, out_dir=tmp_path / "out", n_jobs=1, progress=False)
    with pytest.raises(ValueError, match="R_e_b"):
        render_galaxy(cat.iloc[0], noiseless=True)


def test_bad_catalogue_values_and_arguments_are_reported(tmp_path):
    cat = draw_parameters(3, 0)
    cat.loc[1, "axis_ratio_b"] = 1.5
    with pytest.raises(ValueError, match=r"'axis_ratio_b' has 1 value\(s\) outside .* row 1"):
        simulate_galaxy_images(catalog=cat, dataset=tmp_path / "x.h5", n_jobs=1, progress=False)
    with pytest.raises(ValueError, match="exactly one of out_dir"):
        simulate_galaxy_images(3, progress=False)
    with pytest.raises(ValueError, match="exactly one of out_dir"):
        simulate_galaxy_images(3, out_dir=tmp_path / "a", dataset=tmp_path / "b.h5", progress=False)
    with pytest.raises(ValueError, match="give n"):
        simulate_galaxy_images(out_dir=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="only 3 rows"):
        simulate_galaxy_images(5, catalog=draw_parameters(3, 0), out_dir=tmp_path / "a", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_rounded_sersic_index_keeps_the_image_sum_within_0p1_percent():
    cat = draw_parameters(6, 5)
    # Large disks feel the index most (their wings leave the stamp); put the indices
    # half-way between the default 0.025 grid points, the worst case of the rounding.
    cat["R_e_d"] = [2.9, 2.5, 2.0, 1.0, 2.8, 0.5]
    cat["sersic_idx_d"] = [0.8125, 0.9125, 1.0625, 1.1125, 1.1875, 0.9875]
    cat["sersic_idx_b"] = [3.5125, 3.7875, 4.0125, 4.2625, 4.5375, 4.9875]
    for _, row in cat.iterrows():
        exact = render_galaxy(row, noiseless=True, sersic_step=None).sum(dtype=np.float64)
        cached = render_galaxy(row, noiseless=True).sum(dtype=np.float64)
        assert cached != exact
        assert abs(cached / exact - 1) < 1e-3


@needs_paper_csv
def test_paper_catalogue_renders_with_the_flux_in_the_stamp(tmp_path):
    n = 60
    cat = simulate_galaxy_images(n, catalog=PAPER_TEST_CSV, dataset=tmp_path / "paper.h5", noiseless=True,
                                 n_jobs=2, progress=False)
    paper = pd.read_csv(PAPER_TEST_CSV).iloc[:n]
    # The catalogue's own values are kept, including its R_e and image numbers.
    np.testing.assert_array_equal(cat["img_number"], paper["img_number"])
    np.testing.assert_allclose(cat["R_e"], paper["R_e"])
    with Dataset(tmp_path / "paper.h5") as ds:
        sums = ds.read_images(slice(None)).sum(axis=(1, 2, 3), dtype=np.float64)
        assert list(ds.ids[:2]) == [str(i) for i in paper["img_number"][:2]]
    ratio = sums / paper["total_flux"].to_numpy() - 1
    # Flux is lost only beyond the stamp edge (de Vaucouleurs wings), never gained.
    assert abs(np.median(ratio)) < 0.02
    assert ratio.max() < 2e-3
    # GalSim's default accuracy with exact indices gives the same sums.
    for _, row in paper.iloc[:3].iterrows():
        fast = render_galaxy(row, noiseless=True).sum(dtype=np.float64)
        exact = render_galaxy(row, noiseless=True, sersic_step=None, fast=False).sum(dtype=np.float64)
        assert abs(fast / exact - 1) < 2e-3


def _cli() -> argparse.ArgumentParser:
    from astroreg.cli._simulate import register

    parser = argparse.ArgumentParser(prog="astroreg")
    register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_writes_a_folder_and_a_dataset(tmp_path):
    parser = _cli()
    args = parser.parse_args(["simulate", "galaxy-images", "--n", "3", "--out", str(tmp_path / "stamps"),
                              "--seed", "4", "--stamp-size", "41", "--jobs", "1", "--quiet"])
    assert args.func(args) == 0
    assert sorted(p.name for p in (tmp_path / "stamps").iterdir()) == ["0.fits", "1.fits", "2.fits", "gal_morph.csv"]
    args = parser.parse_args(["simulate", "galaxy-images", "--catalog", str(tmp_path / "stamps" / "gal_morph.csv"),
                              "--out", str(tmp_path / "again.h5"), "--seed", "4", "--stamp-size", "41",
                              "--jobs", "1", "--quiet"])
    assert args.func(args) == 0
    with Dataset(tmp_path / "again.h5") as ds:
        # Re-rendering the written catalogue with its seed reproduces the stamps.
        np.testing.assert_array_equal(ds.read_images(slice(None))[:, 0],
                                      np.stack([fits.getdata(tmp_path / "stamps" / f"{i}.fits") for i in range(3)]))
    args = parser.parse_args(["simulate", "galaxy-images", "--out", str(tmp_path / "x.h5")])
    with pytest.raises(ValueError, match="--n"):
        args.func(args)


def test_cli_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        _cli().parse_args(["simulate", "galaxy-images", "--help"])
    text = capsys.readouterr().out
    assert "astroreg simulate galaxy-images --n 40000 --out data/galaxy-images.h5" in text
    for option in ("--n", "--catalog", "--out", "--seed", "--stamp-size", "--jobs", "--noiseless"):
        assert option in text


def test_required_columns_are_paper_columns():
    assert set(REQUIRED_COLUMNS) <= set(PAPER_COLUMNS)
