"""Ingest of SDSS spectrum files plus a label catalogue, and ``astroreg ingest sdss-spectra``."""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from astroreg.cli import _ingest as cli
from astroreg.data import Dataset, DatasetWriter, SpectraSpec, prepared_spectra_info
from astroreg.ingest import (
    PADDING_MASK,
    SDSS_BAD_PIXEL_BITS,
    SSPP_TARGETS,
    IngestReport,
    NothingIngestedError,
    SpectraIngestReport,
    ingest_sdss_spectra,
)
from astroreg.preprocess._spectra import parse_grid

pytestmark = pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")


# -- helpers ---------------------------------------------------------------------------------
def _direct(path):
    """What astropy reads from a spectrum file: COADD columns and the HDU 2 row."""
    with fits.open(path) as hdul:
        coadd = hdul[1].data
        out = {k: np.asarray(coadd[k]) for k in ("loglam", "flux", "ivar", "and_mask")}
        row = hdul[2].data[0]
        for k in ("PLATE", "MJD", "FIBERID", "Z", "CLASS", "SUBCLASS", "SN_MEDIAN_ALL"):
            out[k] = row[k]
    return out


def _labels(rows, path, **columns):
    """A CSV of SSPP-named labels for the given ``(plate, mjd, fiber)`` rows."""
    n = len(rows)
    frame = pd.DataFrame({
        "PLATE": [r[0] for r in rows], "MJD": [r[1] for r in rows], "FIBERID": [r[2] for r in rows],
        "TEFF_ADOP": 5000.0 + 100.0 * np.arange(n), "FEH_ADOP": -0.1 * np.arange(n),
        "LOGG_ADOP": np.full(n, 4.2), "RV_ADOP": 10.0 * np.arange(n) - 50.0, **columns,
    })
    frame.to_csv(path, index=False)
    return frame


def _key(d):
    return int(d["PLATE"]), int(d["MJD"]), int(d["FIBERID"])


def _write_spec(path, *, pix0=36000, n=60, ids=(1234, 55555, 77), hdu2=True, primary_ids=True, loglam=None,
                flux=None):
    """A small file in the SDSS layout (HDU 1 COADD, HDU 2 SPECOBJ with a few columns)."""
    rng = np.random.default_rng(pix0 + n)
    loglam = (pix0 + np.arange(n)) * 1e-4 if loglam is None else loglam
    flux = rng.normal(10, 1, n) if flux is None else flux
    cols = [fits.Column(name="flux", format="E", array=flux),
            fits.Column(name="loglam", format="E", array=loglam),
            fits.Column(name="ivar", format="E", array=np.full(n, 4.0)),
            fits.Column(name="and_mask", format="J", array=np.arange(n) % 3 << 23),
            fits.Column(name="or_mask", format="J", array=np.zeros(n, int))]
    primary = fits.PrimaryHDU()
    if primary_ids:
        primary.header.update(PLATEID=ids[0], MJD=ids[1], FIBERID=ids[2])
    hdus = [primary, fits.BinTableHDU.from_columns(cols, name="COADD")]
    if hdu2:
        hdus.append(fits.BinTableHDU.from_columns([
            fits.Column(name="PROGRAMNAME", format="8A", array=["legacy"]),
            fits.Column(name="CALIBFLUX", format="5E", array=np.ones((1, 5))),
            fits.Column(name="PLATE", format="J", array=[ids[0]]),
            fits.Column(name="MJD", format="J", array=[ids[1]]),
            fits.Column(name="FIBERID", format="J", array=[ids[2]]),
            fits.Column(name="CLASS", format="6A", array=["STAR"]),
            fits.Column(name="Z", format="E", array=[1e-4]),
        ], name="SPECOBJ"))
    fits.HDUList(hdus).writeto(path)


@pytest.fixture(scope="module")
def sdss_dir(shared_dir):
    folder = shared_dir / "data" / "sdss" / "spectra"
    if not folder.is_dir():
        pytest.skip(f"{folder} (real SDSS spectra) is absent")
    return folder


# -- the real SDSS files ---------------------------------------------------------------------
def test_every_real_file_ingests_losslessly(sdss_dir, tmp_path, capsys):
    files = sorted(sdss_dir.glob("*.fits"))
    assert len(files) == 18
    direct = {f.name: _direct(f) for f in files}
    keys = [_key(d) for d in direct.values()]
    labels = _labels(keys, tmp_path / "labels.csv")
    labels.loc[0, "FEH_ADOP"] = -9999.0
    labels.loc[1, "LOGG_ADOP"] = np.nan
    labels.to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "sdss.h5"

    report = ingest_sdss_spectra(sdss_dir, tmp_path / "labels.csv", out, n_jobs=1)

    assert isinstance(report, IngestReport) and isinstance(report, SpectraIngestReport)
    assert (report.n_rows, report.n_ok, report.skipped) == (18, 18, [])
    assert report.n_catalog_unmatched == 0 and not report.resampled
    assert "ingested 18 of 18 spectrum files" in capsys.readouterr().out
    with Dataset(out) as ds:
        wl = ds.spectra["wavelength"][...]
        assert wl.ndim == 1 and ds.spectra["wavelength"].attrs["medium"] == "vacuum"
        assert report.n_pixels == wl.size and report.wavelength_range == (wl[0], wl[-1])
        # One global grid: consecutive pixels are exactly 1e-4 apart in log10(wavelength).
        np.testing.assert_allclose(np.diff(np.log10(wl)), 1e-4, rtol=1e-8)
        mask = ds.spectra["mask"]
        assert mask.dtype == np.uint32 and int(mask.attrs["bad_bits"]) == SDSS_BAD_PIXEL_BITS
        assert sorted(ds.target_names) == sorted(SSPP_TARGETS)
        assert all(ds.unit(t) == u for t, u in SSPP_TARGETS.items())
        ids = list(ds.ids)
        tab = ds.tabular()
        everything = ds.read_spectra(slice(None), keys=("flux", "ivar", "mask"))
        for name, d in direct.items():
            plate, mjd, fiber = _key(d)
            row = ids.index(f"{plate:04d}-{mjd:05d}-{fiber:04d}")
            first = int(np.argmin(np.abs(np.log10(wl) - d["loglam"][0])))
            pix = slice(first, first + d["loglam"].size)
            # wavelengths: the exact grid 10**(i * 1e-4) vs 10**(float32 loglam) from the file
            np.testing.assert_allclose(wl[pix], 10.0 ** d["loglam"].astype(np.float64), rtol=1e-6, err_msg=name)
            np.testing.assert_array_equal(everything["flux"][row, pix], d["flux"], err_msg=name)
            np.testing.assert_array_equal(everything["ivar"][row, pix], d["ivar"], err_msg=name)
            np.testing.assert_array_equal(everything["mask"][row, pix], d["and_mask"].astype(np.uint32))
            outside = np.ones(wl.size, bool)
            outside[pix] = False
            assert np.all(everything["ivar"][row, outside] == 0) and np.all(everything["flux"][row, outside] == 0)
            assert np.all(everything["mask"][row, outside] == PADDING_MASK)
            assert tab["CLASS"][row] == d["CLASS"].strip() and tab["SUBCLASS"][row] == d["SUBCLASS"].strip()
            assert tab["Z"][row] == pytest.approx(float(d["Z"]), rel=1e-6)
            assert tab["SN_MEDIAN_ALL"][row] == pytest.approx(float(d["SN_MEDIAN_ALL"]), rel=1e-6)
            label = labels.iloc[keys.index((plate, mjd, fiber))]
            assert ds.target("TEFF_ADOP")[row] == label["TEFF_ADOP"]
        # -9999 and NaN labels are kept, as missing.
        assert np.isnan(ds.target("FEH_ADOP")[ids.index("{:04d}-{:05d}-{:04d}".format(*keys[0]))])
        assert np.isnan(ds.target("LOGG_ADOP")[ids.index("{:04d}-{:05d}-{:04d}".format(*keys[1]))])
        assert np.isfinite(ds.target("TEFF_ADOP")).all()
        assert set(tab["CLASS"]) == {"GALAXY", "QSO", "STAR"}
        assert sorted(np.concatenate([ds.split(s) for s in ds.split_names]).tolist()) == list(range(18))


@pytest.mark.parametrize("parallel", ["processes", "threads"])
def test_parallel_ingest_matches_serial(sdss_dir, tmp_path, parallel):
    keys = [_key(_direct(f)) for f in sorted(sdss_dir.glob("*.fits"))]
    _labels(keys, tmp_path / "labels.csv")
    serial = ingest_sdss_spectra(sdss_dir, tmp_path / "labels.csv", tmp_path / "a.h5", n_jobs=1, progress=False)
    par = ingest_sdss_spectra(sdss_dir, tmp_path / "labels.csv", tmp_path / "b.h5", n_jobs=2, parallel=parallel,
                              chunk_size=5, progress=False)
    assert serial.n_ok == par.n_ok == 18
    with Dataset(tmp_path / "a.h5") as a, Dataset(tmp_path / "b.h5") as b:
        np.testing.assert_array_equal(a.ids, b.ids)
        for k in ("flux", "ivar", "mask", "wavelength"):
            np.testing.assert_array_equal(a.spectra[k][...], b.spectra[k][...])
        pd.testing.assert_frame_equal(a.tabular(), b.tabular())


def test_bad_duplicate_and_unmatched_files_are_skipped_and_reported(sdss_dir, tmp_path, capsys):
    folder = tmp_path / "spectra"
    folder.mkdir()
    good = ["spec-3126-54804-0211.fits", "spec-4500-55543-0331.fits", "spec-0411-51817-0119.fits", "blue_star.fits"]
    for name in good + ["spec-7330-56684-0434.fits"]:
        shutil.copy(sdss_dir / name, folder / name)
    data = (sdss_dir / "spec-3127-54835-0622.fits").read_bytes()
    (folder / "spec-9000-50000-0001.fits").write_bytes(np.random.default_rng(0).bytes(20000))  # garbage
    (folder / "spec-9000-50000-0002.fits").write_bytes(data[:60000])  # cut inside the COADD table
    (folder / "spec-9000-50000-0003.fits").write_bytes(data[:150000])  # cut inside HDU 2
    (folder / "spec-9000-50000-0004.fits").write_bytes(b"")
    shutil.copy(sdss_dir / "spec-4500-55543-0331.fits", folder / "zz-copy.fits")  # same plate/MJD/fiber
    keys = [_key(_direct(folder / n)) for n in good] + [(1, 2, 3)]
    _labels(keys, tmp_path / "labels.csv")
    out = tmp_path / "out" / "stars.h5"

    report = ingest_sdss_spectra(folder, tmp_path / "labels.csv", out, n_jobs=1, chunk_size=3)

    reasons = dict(report.skipped)
    assert (report.n_rows, report.n_ok, report.n_skipped) == (10, 4, 6)
    assert list(reasons) == ["spec-7330-56684-0434.fits", "spec-9000-50000-0001.fits", "spec-9000-50000-0002.fits",
                             "spec-9000-50000-0003.fits", "spec-9000-50000-0004.fits", "zz-copy.fits"]
    assert "no catalogue row with PLATE=7330, MJD=56684, FIBERID=434" in reasons["spec-7330-56684-0434.fits"]
    assert "not a readable FITS file" in reasons["spec-9000-50000-0001.fits"]
    assert "truncated" in reasons["spec-9000-50000-0002.fits"]
    assert "truncated or corrupt" in reasons["spec-9000-50000-0003.fits"]
    assert "not a readable FITS file" in reasons["spec-9000-50000-0004.fits"]
    assert "duplicate id '4500-55543-0331' (same as spec-4500-55543-0331.fits)" in reasons["zz-copy.fits"]
    assert report.n_catalog_rows == 5 and report.n_catalog_unmatched == 1
    printed = capsys.readouterr().out
    assert "ingested 4 of 10 spectrum files" in printed and all(f"{f}:" in printed for f in reasons)
    assert "catalogue: 5 rows, 1 without an ingested spectrum" in printed

    with Dataset(out) as ds:
        assert sorted(ds.ids) == sorted("{:04d}-{:05d}-{:04d}".format(*k) for k in keys[:4])
        row = list(ds.ids).index("3126-54804-0211")
        d = _direct(folder / "spec-3126-54804-0211.fits")
        flux = ds.read_spectra([row], keys=("flux",))["flux"][0]
        np.testing.assert_array_equal(flux[flux != 0], d["flux"][d["flux"] != 0])
    written = json.loads(report.report_path.read_text())
    assert report.report_path == out.with_name("stars.h5.ingest-report.json")
    assert (written["n_files"], written["n_ok"], written["n_skipped"]) == (10, 4, 6)
    assert [s["file"] for s in written["skipped"]] == list(reasons)
    assert written["settings"]["id_columns"] == ["PLATE", "MJD", "FIBERID"]


def test_join_on_a_file_name_column(sdss_dir, tmp_path):
    folder = tmp_path / "spectra" / "sub"
    folder.mkdir(parents=True)
    for k in range(3):
        shutil.copy(sdss_dir / "blue_star.fits", folder / f"star{k}.fits")
    frame = pd.DataFrame({"file": ["star0", "star1.fits", "nofile"], "TEFF_ADOP": [9000.0, 9100.0, 1.0]})
    frame.to_csv(tmp_path / "labels.csv", index=False)
    report = ingest_sdss_spectra(tmp_path / "spectra", tmp_path / "labels.csv", tmp_path / "o.h5",
                                 id_column="file", targets={"TEFF_ADOP": "K"}, split_fractions=None, progress=False)
    assert report.n_ok == 2 and report.skipped == [("sub/star2.fits", "no catalogue row with id 'star2' in "
                                                    f"{tmp_path / 'labels.csv'}")]
    assert report.n_catalog_unmatched == 1
    with Dataset(tmp_path / "o.h5") as ds:
        assert list(ds.ids) == ["star0", "star1"] and ds.split_names == ()
        np.testing.assert_array_equal(ds.target("TEFF_ADOP"), [9000.0, 9100.0])


def test_resampling_at_ingest(sdss_dir, tmp_path):
    from astroreg.preprocess import LogLamResampler

    name = "spec-3126-54804-0211.fits"
    d = _direct(sdss_dir / name)
    _labels([_key(d)], tmp_path / "labels.csv")
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(sdss_dir / name, folder / name)
    grid = (3.5754, 3.9670, 4000)
    report = ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "g.h5", grid=grid, progress=False)
    assert report.resampled and report.n_pixels == 4000
    # The same numbers as the recipe's resampling of the natively stored spectrum (on SDSS's
    # exact loglam grid, i * 1e-4, not the file's float32 loglam).
    native = ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "n.h5", progress=False)
    with Dataset(native.out) as ds:
        nat = ds.read_spectra([0], keys=("flux", "ivar", "mask", "wavelength"))
    expect_flux, expect_ivar = LogLamResampler().fit().transform(
        nat["flux"], loglam=np.log10(nat["wavelength"]), ivar=nat["ivar"], mask=nat["mask"])
    file_flux, _ = LogLamResampler().fit().transform(
        d["flux"][None], loglam=d["loglam"], ivar=d["ivar"][None], mask=d["and_mask"][None])
    with Dataset(tmp_path / "g.h5") as ds:
        got = ds.read_spectra([0], keys=("flux", "ivar", "mask", "wavelength"))
        np.testing.assert_allclose(np.log10(got["wavelength"]), np.linspace(*grid[:2], 4000), rtol=1e-12)
        np.testing.assert_allclose(got["flux"][0], expect_flux[0], rtol=1e-6)
        np.testing.assert_allclose(got["ivar"][0], expect_ivar[0], rtol=1e-6)
        # The file's float32 loglam is off the exact grid by up to ~0.003 pixel: 0.1% at most.
        np.testing.assert_allclose(got["flux"][0], file_flux[0], rtol=2e-3, atol=1e-3 * np.abs(file_flux).max())
        info = prepared_spectra_info(ds.spectra.attrs)
        assert parse_grid(info.grid) == parse_grid(grid)
        assert info.rest_frame is None and info.bad_pixels == "interpolate"
        assert info.bad_mask_bits == SDSS_BAD_PIXEL_BITS and info.min_good_fraction == 0.5
        # This star starts at 3.5802: the grid's first pixels lie outside its coverage.
        outside = np.log10(got["wavelength"]) < d["loglam"][0]
        assert outside.sum() > 0 and np.all(got["mask"][0, outside] == PADDING_MASK)
        assert np.all(got["ivar"][0, outside] == 0)


# -- synthetic files: id fallbacks, extras, off-grid -------------------------------------------
def test_ids_fall_back_to_header_then_file_name(tmp_path):
    folder = tmp_path / "spectra"
    folder.mkdir()
    _write_spec(folder / "a.fits", ids=(1, 50000, 1))  # HDU 2
    _write_spec(folder / "b.fits", ids=(2, 50000, 2), hdu2=False)  # primary header
    _write_spec(folder / "spec-0003-50000-0003.fits", ids=(0, 0, 0), hdu2=False, primary_ids=False)  # name
    _write_spec(folder / "c.fits", hdu2=False, primary_ids=False)  # nothing
    _labels([(1, 50000, 1), (2, 50000, 2), (3, 50000, 3)], tmp_path / "labels.csv")
    report = ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "o.h5", progress=False)
    assert report.n_ok == 3
    assert report.skipped[0][0] == "c.fits" and "no PLATE/MJD/FIBERID" in report.skipped[0][1]
    with Dataset(tmp_path / "o.h5") as ds:
        assert list(ds.ids) == ["0001-50000-0001", "0002-50000-0002", "0003-50000-0003"]
        tab = ds.tabular()
        # Only a.fits has HDU 2; the files without it get NaN / "" in the HDU 2 columns.
        assert sorted(tab.columns) == ["CLASS", "Z"]
        assert tab["CLASS"].tolist() == ["STAR", "", ""]
        assert tab["Z"][0] == pytest.approx(1e-4) and np.isnan(tab["Z"][1:]).all()
        np.testing.assert_array_equal(ds.spectra["mask"][0, :6], [0, 1 << 23, 2 << 23] * 2)


def test_spectra_of_different_ranges_share_one_grid(tmp_path):
    folder = tmp_path / "spectra"
    folder.mkdir()
    _write_spec(folder / "a.fits", pix0=36000, n=50, ids=(1, 1, 1))
    _write_spec(folder / "b.fits", pix0=36020, n=70, ids=(1, 1, 2))
    _labels([(1, 1, 1), (1, 1, 2)], tmp_path / "labels.csv")
    ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "o.h5", progress=False)
    with Dataset(tmp_path / "o.h5") as ds:
        wl = ds.spectra["wavelength"][...]
        np.testing.assert_allclose(np.log10(wl), np.arange(36000, 36090) * 1e-4, rtol=1e-13)
        ivar = ds.spectra["ivar"][...]
        np.testing.assert_array_equal(ivar[0] > 0, np.arange(90) < 50)
        np.testing.assert_array_equal(ivar[1] > 0, np.arange(90) >= 20)


def test_off_grid_file_is_skipped_natively_and_kept_when_resampling(tmp_path):
    folder = tmp_path / "spectra"
    folder.mkdir()
    _write_spec(folder / "a.fits", ids=(1, 1, 1))
    _write_spec(folder / "b.fits", ids=(1, 1, 2), loglam=3.6 + np.arange(60) * 1.3e-4)  # found by the scan
    uneven = (36000 + np.arange(60)) * 1e-4
    uneven[30] += 0.5e-4
    _write_spec(folder / "c.fits", ids=(1, 1, 3), loglam=uneven)  # found when read
    _labels([(1, 1, 1), (1, 1, 2), (1, 1, 3)], tmp_path / "labels.csv")
    native = ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "n.h5", progress=False)
    assert native.n_ok == 1 and [f for f, _ in native.skipped] == ["b.fits", "c.fits"]
    assert all("not on SDSS's global 1e-4 grid" in r and "grid=" in r for _, r in native.skipped)
    assert "pixel 30" in native.skipped[1][1]
    with Dataset(tmp_path / "n.h5") as ds:
        assert ds.spectra["wavelength"].shape == (60,)  # b.fits did not stretch the grid
    # _write_spec's NODATA on every third pixel leaves a third of this grid good: keep them all.
    resampled = ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "r.h5", grid=(3.6, 3.606, 30),
                                    min_good_fraction=0.0, progress=False)
    assert resampled.n_ok == 3


def test_resampling_at_ingest_onto_a_linear_two_segment_grid_in_the_rest_frame(tmp_path):
    """Any WavelengthGrid: the reader's numbers are SpectrumResampler's on the native dataset."""
    from astroreg.preprocess._spectra import SpectrumResampler

    folder = tmp_path / "spectra"
    folder.mkdir()
    for i in range(3):
        _write_spec(folder / f"s{i}.fits", ids=(1, 1, i), n=200, flux=5 + np.sin(np.arange(200) / (7.0 + i)))
    _labels([(1, 1, i) for i in range(3)], tmp_path / "labels.csv")
    grid = [{"scale": "linear", "start": 3985, "stop": 4050, "n": 40, "name": "blue"},
            {"scale": "log", "start": 4040, "stop": 4150, "n": 30, "name": "red"}]
    kw = {"min_good_fraction": 0.0, "progress": False, "split_fractions": None}
    report = ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "g.h5", grid=grid,
                                 rest_frame="RV_ADOP", **kw)
    assert report.resampled and report.n_pixels == 70
    native = ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "n.h5", **kw)
    with Dataset(native.out) as ds:
        nat = ds.read_spectra(slice(None), keys=("flux", "ivar", "mask", "wavelength"))
        rv = ds.target("RV_ADOP")
    expect, expect_ivar = SpectrumResampler(grid, bad_mask_bits=SDSS_BAD_PIXEL_BITS).fit().transform(
        nat["flux"], loglam=np.log10(nat["wavelength"]), ivar=nat["ivar"], mask=nat["mask"], rv_kms=rv,
        return_ivar=True)
    with Dataset(tmp_path / "g.h5") as ds:
        got = ds.read_spectra(slice(None), keys=("flux", "ivar", "mask", "wavelength"))
        info = prepared_spectra_info(ds.spectra.attrs)
    np.testing.assert_allclose(got["wavelength"], parse_grid(grid).wavelength(), rtol=1e-15)
    np.testing.assert_allclose(got["flux"], expect, rtol=1e-6)
    np.testing.assert_allclose(got["ivar"], expect_ivar, rtol=1e-6)
    assert parse_grid(info.grid) == parse_grid(grid) and info.rest_frame == "RV_ADOP"
    assert info.redshift_fallback == "Z" and info.prepared_by == "astroreg.preprocess.SpectrumResampler"
    # The mask: the bits of the nearest native pixel, in the rest frame.
    obs = got["wavelength"][None] * (1 + rv[:, None] / 299792.458)
    nearest = np.abs(np.log10(obs)[:, :, None] - np.log10(nat["wavelength"])[None, None]).argmin(axis=2)
    inside = (obs > nat["wavelength"][0]) & (obs < nat["wavelength"][-1])
    want = np.take_along_axis(nat["mask"], nearest, axis=1)
    np.testing.assert_array_equal(got["mask"][inside], want[inside])
    assert np.all(got["mask"][~inside] == PADDING_MASK)
    settings = json.loads((tmp_path / "g.h5.ingest-report.json").read_text())["settings"]
    assert parse_grid(settings["grid"]) == parse_grid(grid)


def test_duplicate_catalogue_rows_make_the_file_ambiguous(tmp_path):
    folder = tmp_path / "spectra"
    folder.mkdir()
    _write_spec(folder / "a.fits", ids=(1, 1, 1))
    _write_spec(folder / "b.fits", ids=(1, 1, 2))
    _labels([(1, 1, 1), (1, 1, 2), (1, 1, 2)], tmp_path / "labels.csv")
    report = ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "o.h5", progress=False)
    assert report.n_ok == 1 and report.skipped[0][0] == "b.fits"
    assert "2 catalogue rows match id '0001-00001-0002'" in report.skipped[0][1]


def test_fits_and_parquet_catalogues_and_renamed_id_columns(tmp_path):
    from astropy.table import Table

    folder = tmp_path / "spectra"
    folder.mkdir()
    _write_spec(folder / "a.fits", ids=(1, 1, 1))
    frame = pd.DataFrame({"plate": [1], "mjd": [1], "fiber": [1], "TEFF_ADOP": [-9999.0]})
    Table.from_pandas(frame).write(tmp_path / "spp.fits")
    frame.to_parquet(tmp_path / "spp.parquet")
    for cat in ("spp.fits", "spp.parquet"):
        report = ingest_sdss_spectra(folder, tmp_path / cat, tmp_path / f"{cat}.h5",
                                     id_columns=("plate", "mjd", "fiber"), targets={"TEFF_ADOP": "K"}, progress=False)
        assert report.n_ok == 1
        with Dataset(tmp_path / f"{cat}.h5") as ds:
            assert np.isnan(ds.target("TEFF_ADOP")[0])


@pytest.mark.parametrize("kwargs, message", [
    ({"id_columns": ("PLATE", "MJD")}, "id_columns must name 3"),
    ({"id_column": "file", "id_columns": ("P", "M", "F")}, "not both"),
    ({"grid": (3.9, 3.6, 100)}, "grid must be"),
    ({"grid": (3.6, 3.9)}, "grid must be"),
    ({"rest_frame": "RV_ADOP"}, "needs grid="),
    ({"rest_frame": "VHELIO", "grid": (3.6, 3.601, 5)}, "column 'VHELIO' not found"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"n_jobs": 0}, "n_jobs"),
    ({"parallel": "gpu"}, "parallel must be"),
    ({"split_fractions": {"train": 0.5}}, "sum to 1"),
    ({"targets": {"TEFF": "K"}}, "column 'TEFF' not found"),
    ({"id_columns": ("PLATE", "MJD", "FIBER")}, r"column 'FIBER' not found .*did you mean 'FIBERID'"),
    ({"id_column": "file"}, "column 'file' not found"),
    ({"targets": {"NAME": ""}}, "target column 'NAME' .* is not numeric"),
])
def test_bad_arguments_name_the_problem(tmp_path, kwargs, message):
    folder = tmp_path / "spectra"
    folder.mkdir()
    _write_spec(folder / "a.fits", ids=(1, 1, 1))
    _labels([(1, 1, 1)], tmp_path / "labels.csv", NAME=["x"])
    with pytest.raises(ValueError, match=message):
        ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "o.h5", progress=False, **kwargs)
    assert not (tmp_path / "o.h5").exists()


def test_missing_or_empty_folder(tmp_path):
    _labels([(1, 1, 1)], tmp_path / "labels.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ingest_sdss_spectra(tmp_path / "nope", tmp_path / "labels.csv", tmp_path / "o.h5")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.fits.gz").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no \.fits or \.fit files .*1 compressed"):
        ingest_sdss_spectra(tmp_path / "empty", tmp_path / "labels.csv", tmp_path / "o.h5")


def test_nothing_matched_raises_and_still_reports(tmp_path):
    folder = tmp_path / "spectra"
    folder.mkdir()
    _write_spec(folder / "a.fits", ids=(1, 1, 1))
    _labels([(9, 9, 9)], tmp_path / "labels.csv")
    with pytest.raises(NothingIngestedError, match="no usable spectrum in .*no catalogue row"):
        ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "o.h5", progress=False)
    assert not (tmp_path / "o.h5").exists()
    assert json.loads((tmp_path / "o.h5.ingest-report.json").read_text())["n_ok"] == 0


def test_spectra_are_appended_in_chunks(tmp_path, monkeypatch):
    folder = tmp_path / "spectra"
    folder.mkdir()
    for i in range(7):
        _write_spec(folder / f"s{i}.fits", ids=(1, 1, i))
    _labels([(1, 1, i) for i in range(7)], tmp_path / "labels.csv")
    sizes = []
    original = DatasetWriter.append

    def spy(self, ids, **kw):
        sizes.append(len(ids))
        return original(self, ids, **kw)

    monkeypatch.setattr(DatasetWriter, "append", spy)
    ingest_sdss_spectra(folder, tmp_path / "labels.csv", tmp_path / "o.h5", chunk_size=3, progress=False)
    assert sizes == [3, 3, 1]


# -- the dataset's 32-bit mask -------------------------------------------------------------------
def test_spectra_spec_mask_dtype_and_bad_bits(tmp_path):
    spec = SpectraSpec(n_pixels=3, wavelength=(1.0, 2.0, 3.0), with_mask=True, mask_dtype="uint32",
                       mask_bad_bits=1 << 31, mask_bits="test bits")
    with DatasetWriter(tmp_path / "m.h5", targets={}, spectra=spec) as w:
        w.append(["a"], spectra={"flux": np.ones((1, 3)), "ivar": np.ones((1, 3)),
                                 "mask": np.array([[0, 1 << 24, 1 << 31]], np.uint32)})
    with Dataset(tmp_path / "m.h5") as ds:
        m = ds.spectra["mask"]
        assert m.dtype == np.uint32 and m.attrs["bad_bits"] == 1 << 31 and m.attrs["bits"] == "test bits"
        np.testing.assert_array_equal(m[0], [0, 1 << 24, 1 << 31])
    with DatasetWriter(tmp_path / "u8.h5", targets={}, spectra=SpectraSpec(n_pixels=1, with_mask=True)) as w:
        w.append(["a"], spectra={"flux": [[1.0]], "ivar": [[1.0]], "mask": [[1]], "wavelength": [[5000.0]]})
    with Dataset(tmp_path / "u8.h5") as ds:
        assert ds.spectra["mask"].dtype == np.uint8 and ds.spectra["mask"].attrs["bad_bits"] == 255
    with pytest.raises(ValueError, match="mask_dtype is 'int64'"):
        SpectraSpec(n_pixels=1, mask_dtype="int64")
    with pytest.raises(ValueError, match="mask_bad_bits"):
        SpectraSpec(n_pixels=1, mask_bad_bits=256)


# -- CLI -------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astroreg")
    cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_ingest_sdss_spectra(tmp_path, capsys):
    folder = tmp_path / "spectra"
    folder.mkdir()
    for i in range(3):
        _write_spec(folder / f"s{i}.fits", ids=(1, 1, i))
    _labels([(1, 1, i) for i in range(3)], tmp_path / "labels.csv")
    out = tmp_path / "cli.h5"
    base = ["ingest", "sdss-spectra", "--spectra", str(folder), "--catalog", str(tmp_path / "labels.csv")]
    args = _parser().parse_args([*base, "--out", str(out), "--target", "TEFF_ADOP:K", "--target", "RV_ADOP:km/s",
                                 "--jobs", "1", "--no-splits"])
    assert args.func(args) == 0
    assert "ingested 3 of 3 spectrum files" in capsys.readouterr().out
    with Dataset(out) as ds:
        assert ds.target_names == ("RV_ADOP", "TEFF_ADOP") and ds.unit("RV_ADOP") == "km/s"
        assert ds.split_names == ()
    args = _parser().parse_args([*base, "--out", str(tmp_path / "g.h5"), "--grid", "3.6", "3.601", "5", "--quiet",
                                 "--min-good-fraction", "0"])
    assert args.func(args) == 0
    with Dataset(tmp_path / "g.h5") as ds:
        assert ds.spectra["flux"].shape == (3, 5) and sorted(ds.target_names) == sorted(SSPP_TARGETS)
    # --rest-frame: RV_ADOP is -50, -40, -30 km/s; the third star's is missing and comes from Z = 1e-4.
    _labels([(1, 1, i) for i in range(3)], tmp_path / "labels-rv.csv").assign(
        RV_ADOP=[-50.0, -40.0, -9999.0]).to_csv(tmp_path / "labels-rv.csv", index=False)
    args = _parser().parse_args(["ingest", "sdss-spectra", "--spectra", str(folder), "--catalog",
                                 str(tmp_path / "labels-rv.csv"), "--out", str(tmp_path / "r.h5"), "--grid", "3.6",
                                 "3.601", "5", "--rest-frame", "RV_ADOP", "--quiet", "--min-good-fraction", "0"])
    assert args.func(args) == 0
    report = json.loads((tmp_path / "r.h5.ingest-report.json").read_text())
    assert report["rest_frame"] == "RV_ADOP" and report["n_rv_from_redshift"] == 1
    with Dataset(tmp_path / "r.h5") as ds:
        assert ds.spectra.attrs["prepared_rest_frame_column"] == "RV_ADOP"
        assert ds.spectra.attrs["prepared_redshift_fallback"] == "Z"
        shifted = ds.spectra["flux"][...]
    with Dataset(tmp_path / "g.h5") as ds:
        assert ds.spectra.attrs["prepared_rest_frame_column"] == ""
        assert not np.allclose(shifted, ds.spectra["flux"][...])
    args = _parser().parse_args([*base, "--out", str(tmp_path / "x.h5"), "--id-columns", "PLATE", "MJD", "FIBER",
                                 "--quiet"])
    assert args.func(args) == 2
    assert "column 'FIBER' not found" in capsys.readouterr().err
    args = _parser().parse_args([*base, "--out", str(tmp_path / "x.h5"), "--id-column", "PLATE", "--quiet"])
    assert args.func(args) == 1
    assert "no usable spectrum" in capsys.readouterr().err


def test_cli_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["ingest", "sdss-spectra", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "astroreg ingest sdss-spectra --spectra spectra/ --catalog sppParams.fits --out stars.h5" in text
    with pytest.raises(SystemExit):
        _parser().parse_args(["ingest", "sdss-spectra", "--spectra", "d", "--catalog", "c.csv", "--out", "o.h5",
                              "--id-column", "f", "--id-columns", "a", "b", "c"])


def test_hdu2_first_row_read_from_the_header_equals_astropy(tmp_path):
    """The fast HDU 2 read (header + one row's bytes) gives astropy's values; scaled columns fall back."""
    from astroreg.ingest._sdss_fits import (
        _first_row,
        _first_row_astropy,
        _first_row_from_header,
    )

    cols = [fits.Column(name="SPECTROFLUX", format="5E", array=np.ones((2, 5), "f4")),
            fits.Column(name="plate", format="J", array=np.array([412, 1], "i4")),
            fits.Column(name="CLASS", format="6A", array=np.array([b"STAR", b"QSO"])),
            fits.Column(name="Z", format="D", array=np.array([1e-4, 2.0])),
            fits.Column(name="FIBERID", format="I", array=np.array([7, 8], "i2")),
            fits.Column(name="SN_MEDIAN_ALL", format="E", array=np.array([12.5, 3.0], "f4"))]
    path = tmp_path / "t.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path)
    names = ("PLATE", "FIBERID", "CLASS", "Z", "SN_MEDIAN_ALL", "SPECTROFLUX", "MISSING")
    with fits.open(path, memmap=True, lazy_load_hdus=True, character_as_bytes=True) as hdul:
        fast = _first_row_from_header(hdul[1], names, path)
        slow = _first_row_astropy(hdul[1], names)
    assert fast == slow == {"PLATE": 412, "FIBERID": 7, "CLASS": b"STAR", "Z": 1e-4, "SN_MEDIAN_ALL": 12.5}

    cols[1] = fits.Column(name="PLATE", format="J", bzero=2**31, array=np.array([3_000_000_000, 1], "u4"))
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]).writeto(path, overwrite=True)
    with fits.open(path, memmap=True, lazy_load_hdus=True, character_as_bytes=True) as hdul:
        assert _first_row_from_header(hdul[1], names, path) is None  # TZERO: astropy applies it
        assert _first_row(hdul[1], names, path)["PLATE"] == 3_000_000_000
