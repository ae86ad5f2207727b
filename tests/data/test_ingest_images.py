"""Ingest of a FITS-stamp folder plus catalogue, and the ``astroreg ingest images`` CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from astroreg.cli import _ingest as cli
from astroreg.data._dataset import Dataset, DatasetWriter
from astroreg.ingest import IngestReport, NothingIngestedError, ingest_image_folder
from astroreg.ingest import _images as ingest_mod

SIZE = 20
CROP = 16
TARGETS = {"total_flux": "ADU", "log_total_flux": "dex"}


def _stamp(i: int, size: int = SIZE) -> np.ndarray:
    """Every pixel unique: value = 1000 * i + 100 * row + column."""
    yy, xx = np.mgrid[:size, :size]
    return (1000.0 * i + 100.0 * yy + xx).astype("f4")


def _write_stamp(path, data, pixscale: float | None = 0.168) -> None:
    hdu = fits.PrimaryHDU(data)
    if pixscale is not None:
        hdu.header["PIXSCALE"] = pixscale
    hdu.writeto(path, overwrite=True)


@pytest.fixture
def folder(tmp_path):
    """12 stamps (0003 garbage, 0007 truncated) and a 13-row catalogue (0012 has no file)."""
    rng = np.random.default_rng(0)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    rows = []
    for i in range(13):
        name = f"{i:04d}.fits"
        if i < 12:
            _write_stamp(stamps / name, _stamp(i))
        flux = float(rng.uniform(500, 20000))
        rows.append({"img_number": i, "file_name": name, "total_flux": flux, "log_total_flux": np.log10(flux),
                     "R_e": float(rng.uniform(0.1, 2)), "field": f"F{i % 2}"})
    (stamps / "0003.fits").write_bytes(rng.bytes(5000))
    good = (stamps / "0007.fits").read_bytes()
    (stamps / "0007.fits").write_bytes(good[: 2880 + 700])
    catalog = pd.DataFrame(rows)
    catalog.to_csv(tmp_path / "gal_morph_test.csv", index=False)
    return tmp_path / "gal_morph_test.csv", stamps, catalog


OK = [0, 1, 2, 4, 5, 6, 8, 9, 10, 11]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ingest_skips_bad_files_and_keeps_the_rest(folder, tmp_path, n_jobs, capsys):
    csv, stamps, catalog = folder
    out = tmp_path / "out" / "galaxies.h5"
    report = ingest_image_folder(csv, stamps, out, targets=TARGETS, crop=CROP, n_jobs=n_jobs, chunk_size=4,
                                 seed=3, progress=True)

    assert isinstance(report, IngestReport)
    assert (report.n_rows, report.n_ok, report.n_skipped) == (13, 10, 3)
    reasons = dict(report.skipped)
    assert list(reasons) == ["0003.fits", "0007.fits", "0012.fits"]
    assert "not a readable FITS file" in reasons["0003.fits"]
    assert "truncated or corrupt" in reasons["0007.fits"]
    assert "file not found" in reasons["0012.fits"] and "0012.fits" in reasons["0012.fits"]
    printed = capsys.readouterr().out
    assert "ingested 10 of 13" in printed and "skipped 3" in printed
    assert all(f"{name}:" in printed for name in reasons)

    with Dataset(out) as ds:
        np.testing.assert_array_equal(ds.ids, [f"{i:04d}" for i in OK])
        for name, unit in TARGETS.items():
            np.testing.assert_allclose(ds.target(name), catalog[name].to_numpy()[OK])
            assert ds.unit(name) == unit
        spec = ds.image_spec
        assert (spec.bands, spec.height, spec.width, spec.pixel_scale, spec.unit) == (("i",), CROP, CROP, 0.168, "ADU")
        images = ds.read_images(slice(None))
        assert images.shape == (10, 1, CROP, CROP)
        # Centre crop of 20 -> 16 starts at row/column 2: pixel (0, 0) is the original (2, 2).
        for k, i in enumerate(OK):
            np.testing.assert_array_equal(images[k, 0], _stamp(i)[2:18, 2:18])
        assert images[0, 0, 0, 0] == 202.0 and images[1, 0, -1, -1] == 1000 + 1717.0
        # Default tabular: every other numeric column (not the file name, not the string column).
        assert set(ds.tabular_columns) == {"img_number", "R_e"}
        np.testing.assert_array_equal(ds.tabular(["img_number"])["img_number"], OK)
        assert sorted(np.concatenate([ds.split(s) for s in ds.split_names]).tolist()) == list(range(10))
        assert ds.split_seed == 3
        assert len(ds.split("train")) == 6

    written = json.loads(report.report_path.read_text())
    assert report.report_path == out.with_name("galaxies.h5.ingest-report.json")
    assert (written["n_ok"], written["n_skipped"]) == (10, 3)
    assert [s["file"] for s in written["skipped"]] == ["0003.fits", "0007.fits", "0012.fits"]
    assert written["settings"]["crop"] == CROP
    assert sorted(p.name for p in out.parent.iterdir()) == ["galaxies.h5", "galaxies.h5.ingest-report.json"]


def test_serial_and_threaded_ingest_agree(folder, tmp_path):
    csv, stamps, _ = folder
    paths = []
    for n_jobs, chunk in [(1, 256), (3, 2)]:
        out = tmp_path / f"j{n_jobs}.h5"
        ingest_image_folder(csv, stamps, out, targets=TARGETS, crop=CROP, n_jobs=n_jobs, chunk_size=chunk,
                            progress=False)
        paths.append(out)
    with Dataset(paths[0]) as a, Dataset(paths[1]) as b:
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.images[...], b.images[...])
        np.testing.assert_array_equal(a.split("test"), b.split("test"))


def test_stamps_are_appended_in_chunks(folder, tmp_path, monkeypatch):
    csv, stamps, _ = folder
    sizes = []
    original = DatasetWriter.append

    def spy(self, ids, **kw):
        sizes.append(len(ids))
        return original(self, ids, **kw)

    monkeypatch.setattr(DatasetWriter, "append", spy)
    ingest_image_folder(csv, stamps, tmp_path / "d.h5", targets=TARGETS, crop=CROP, chunk_size=3, progress=False)
    assert len(sizes) > 1 and max(sizes) <= 3 and sum(sizes) == 10


def _catalog_for(tmp_path, names, **extra) -> pd.DataFrame:
    frame = pd.DataFrame({"file_name": names, "total_flux": np.arange(1.0, len(names) + 1),
                          "log_total_flux": np.log10(np.arange(1.0, len(names) + 1)), **extra})
    frame.to_csv(tmp_path / "cat.csv", index=False)
    return frame


def _bad_stamp(kind: str, path) -> str:
    """Write one kind of bad stamp and return a phrase its reason must contain."""
    if kind == "nan":
        _write_stamp(path, np.full((SIZE, SIZE), np.nan, "f4"))
        return "no finite pixel"
    if kind == "inf_in_crop":
        data = _stamp(1)
        data[2:18, 2:18] = np.inf
        _write_stamp(path, data)
        return "no finite pixel"
    if kind == "1d":
        _write_stamp(path, np.arange(SIZE, dtype="f4"))
        return "1 dimension(s)"
    if kind == "cube":
        _write_stamp(path, np.ones((3, SIZE, SIZE), "f4"))
        return "3 dimension(s)"
    if kind == "table_only":
        table = fits.BinTableHDU.from_columns([fits.Column(name="X", format="E", array=np.ones(3))])
        fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
        return "no image data"
    if kind == "too_small":
        _write_stamp(path, _stamp(1, size=10))
        return "10x10 pixels, smaller than the 16x16 crop"
    if kind == "empty_file":
        path.write_bytes(b"")
        return "not a readable FITS file"
    if kind == "header_only":
        path.write_bytes(fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 2, "NAXIS1": SIZE,
                                      "NAXIS2": SIZE}).tostring().encode())
        return "truncated or corrupt"
    raise AssertionError(kind)


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")
@pytest.mark.parametrize("kind", ["nan", "inf_in_crop", "1d", "cube", "table_only", "too_small", "empty_file",
                                  "header_only"])
def test_each_kind_of_bad_stamp_is_reported(tmp_path, kind):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    _write_stamp(stamps / "good.fits", _stamp(0))
    phrase = _bad_stamp(kind, stamps / "bad.fits")
    _catalog_for(tmp_path, ["good.fits", "bad.fits"])
    report = ingest_image_folder(tmp_path / "cat.csv", stamps, tmp_path / "d.h5", targets=TARGETS, crop=CROP,
                                 progress=False)
    assert report.n_ok == 1
    assert report.skipped[0][0] == "bad.fits"
    assert phrase in report.skipped[0][1]


def test_image_in_an_extension_and_singleton_axes(tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    hdu = fits.ImageHDU(_stamp(0).astype(">f8"), name="SCI")
    hdu.header["PIXSCALE"] = 0.2
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(stamps / "ext.fits")
    _write_stamp(stamps / "cube.fits", _stamp(1)[None], pixscale=0.2)
    fits.PrimaryHDU(np.arange(SIZE * SIZE, dtype=">i2").reshape(SIZE, SIZE)).writeto(stamps / "int.fits")
    _catalog_for(tmp_path, ["ext.fits", "cube.fits", "int.fits"])
    report = ingest_image_folder(tmp_path / "cat.csv", stamps, tmp_path / "d.h5", targets=TARGETS, crop=None,
                                 progress=False)
    assert report.n_ok == 3 and report.pixel_scale == 0.2 and report.image_shape == (1, SIZE, SIZE)
    with Dataset(tmp_path / "d.h5") as ds:
        np.testing.assert_array_equal(ds.images[0, 0], _stamp(0))
        np.testing.assert_array_equal(ds.images[1, 0], _stamp(1))
        np.testing.assert_array_equal(ds.images[2, 0].ravel(), np.arange(SIZE * SIZE))


def test_crop_none_skips_stamps_of_another_shape(tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    _write_stamp(stamps / "a.fits", _stamp(0))
    _write_stamp(stamps / "b.fits", _stamp(1, size=24))
    _write_stamp(stamps / "c.fits", _stamp(2))
    _catalog_for(tmp_path, ["a.fits", "b.fits", "c.fits"])
    report = ingest_image_folder(tmp_path / "cat.csv", stamps, tmp_path / "d.h5", targets=TARGETS, crop=None,
                                 progress=False)
    assert report.n_ok == 2
    assert report.skipped[0][0] == "b.fits"
    assert "24x24 pixels but the first stamp is 20x20" in report.skipped[0][1]


def test_odd_crop_offsets(tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    _write_stamp(stamps / "a.fits", _stamp(0, size=21))
    _catalog_for(tmp_path, ["a.fits"])
    ingest_image_folder(tmp_path / "cat.csv", stamps, tmp_path / "d.h5", targets=TARGETS, crop=15,
                        split_fractions=None, progress=False)
    with Dataset(tmp_path / "d.h5") as ds:
        # (21 - 15) // 2 = 3: the crop keeps rows and columns 3..17, centred on pixel 10.
        np.testing.assert_array_equal(ds.images[0, 0], _stamp(0, size=21)[3:18, 3:18])
        assert ds.images[0, 0, 7, 7] == 1010.0
        assert ds.split_names == ()


def test_nan_targets_duplicates_and_empty_file_names_are_skipped(tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    for i in range(4):
        _write_stamp(stamps / f"{i}.fits", _stamp(i))
    frame = pd.DataFrame({"file_name": ["0.fits", "1.fits", "2.fits", "0.fits", None, "3.fits"],
                          "total_flux": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0],
                          "log_total_flux": [0.0, 0.1, np.nan, 0.3, 0.4, 0.5]})
    report = ingest_image_folder(frame, stamps, tmp_path / "d.h5", targets=TARGETS, crop=CROP, progress=False)
    assert report.n_ok == 2
    reasons = report.skipped
    assert reasons[0] == ("1.fits", "target 'total_flux' is NaN")
    assert reasons[1] == ("2.fits", "target 'log_total_flux' is NaN")
    assert reasons[2][0] == "0.fits" and "duplicate id '0'" in reasons[2][1]
    assert reasons[3][0] == "row 4" and "no file name" in reasons[3][1]
    with Dataset(tmp_path / "d.h5") as ds:
        np.testing.assert_array_equal(ds.ids, ["0", "3"])


def test_fits_catalogue_with_id_column_and_explicit_tabular(folder, tmp_path):
    _, stamps, catalog = folder
    table = Table.from_pandas(catalog)
    table["R_e"].unit = "arcsec"
    table["name"] = [f"gal-{i}" for i in range(len(catalog))]
    table.write(tmp_path / "cat.fits")
    report = ingest_image_folder(tmp_path / "cat.fits", stamps, tmp_path / "d.h5", targets=["total_flux"],
                                 tabular=["R_e", "field"], id_column="name", crop=CROP, progress=False)
    assert report.n_ok == 10
    with Dataset(tmp_path / "d.h5") as ds:
        assert ds.ids[0] == "gal-0"
        assert ds.target_names == ("total_flux",)
        assert ds.unit("R_e") == "arcsec"
        assert list(ds.tabular(["field"])["field"][:3]) == ["F0", "F1", "F0"]


def test_parquet_catalogue(folder, tmp_path):
    _, stamps, catalog = folder
    catalog.to_parquet(tmp_path / "cat.parquet")
    report = ingest_image_folder(tmp_path / "cat.parquet", stamps, tmp_path / "d.h5", targets=TARGETS,
                                 tabular=[], crop=CROP, progress=False)
    assert report.n_ok == 10
    with Dataset(tmp_path / "d.h5") as ds:
        assert ds.modalities == ("images",)


def test_pixel_scale_from_wcs_parameter_or_error(tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    hdu = fits.PrimaryHDU(_stamp(0))
    hdu.header.update({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0,
                       "CRPIX1": 10.0, "CRPIX2": 10.0, "CD1_1": -0.2 / 3600, "CD1_2": 0.0, "CD2_1": 0.0,
                       "CD2_2": 0.2 / 3600})
    hdu.writeto(stamps / "wcs.fits")
    _catalog_for(tmp_path, ["wcs.fits"])
    kw = dict(targets=TARGETS, crop=CROP, progress=False)
    report = ingest_image_folder(tmp_path / "cat.csv", stamps, tmp_path / "a.h5", **kw)
    assert report.pixel_scale == pytest.approx(0.2)
    with pytest.warns(UserWarning, match="header says 0.2"):
        report = ingest_image_folder(tmp_path / "cat.csv", stamps, tmp_path / "b.h5", pixel_scale=0.168, **kw)
    assert report.pixel_scale == 0.168

    _write_stamp(stamps / "wcs.fits", _stamp(0), pixscale=None)
    with pytest.raises(ValueError, match="no pixel scale in wcs.fits.*pass pixel_scale="):
        ingest_image_folder(tmp_path / "cat.csv", stamps, tmp_path / "c.h5", **kw)
    assert not (tmp_path / "c.h5").exists()
    report = ingest_image_folder(tmp_path / "cat.csv", stamps, tmp_path / "c.h5", pixel_scale=0.168, **kw)
    assert report.pixel_scale == 0.168


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"file_column": "fname"}, r"column 'fname' not found in .*gal_morph_test.csv; columns are: img_number, "
                                   r"file_name, .*pass file_column="),
        ({"targets": {"total_flx": "ADU"}}, r"column 'total_flx' not found in .*gal_morph_test.csv "
                                            r"\(did you mean 'total_flux'\?\)"),
        ({"targets": ["field"]}, r"target column 'field' .* is not numeric"),
        ({"tabular": ["R_e", "nope"]}, r"column 'nope' not found"),
        ({"tabular": ["total_flux"]}, r"both a target and a tabular input"),
        ({"id_column": "ID"}, r"column 'ID' not found"),
        ({"targets": {}}, r"no targets given"),
        ({"crop": 0}, r"crop must be a positive number"),
        ({"chunk_size": 0}, r"chunk_size must be a positive integer"),
        ({"n_jobs": 0}, r"n_jobs must be"),
        ({"pixel_scale": -1.0}, r"pixel_scale must be a positive number of arcsec/pixel"),
        ({"split_fractions": {"train": 0.5}}, r"sum to 1"),
    ],
)
def test_bad_arguments_name_the_problem(folder, tmp_path, kwargs, message):
    csv, stamps, _ = folder
    kw = {"targets": TARGETS, "crop": CROP, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        ingest_image_folder(csv, stamps, tmp_path / "d.h5", **kw)
    assert not (tmp_path / "d.h5").exists()


def test_missing_catalogue_or_folder(folder, tmp_path):
    csv, stamps, _ = folder
    with pytest.raises(FileNotFoundError, match="catalogue .* does not exist"):
        ingest_image_folder(tmp_path / "nope.csv", stamps, tmp_path / "d.h5", targets=TARGETS, progress=False)
    with pytest.raises(FileNotFoundError, match="image folder .*nowhere does not exist"):
        ingest_image_folder(csv, tmp_path / "nowhere", tmp_path / "d.h5", targets=TARGETS, progress=False)


def test_every_file_bad_names_the_folder(folder, tmp_path):
    csv, _, _ = folder
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    out = tmp_path / "d.h5"
    with pytest.raises(NothingIngestedError, match=r"no usable image in .*empty_dir: all 13 rows .*0000.fits"):
        ingest_image_folder(csv, empty, out, targets=TARGETS, crop=CROP, progress=False)
    assert not out.exists()
    written = json.loads((tmp_path / "d.h5.ingest-report.json").read_text())
    assert written["n_ok"] == 0 and written["n_skipped"] == 13


def test_interrupted_ingest_leaves_no_dataset(folder, tmp_path, monkeypatch):
    csv, stamps, _ = folder
    calls = []
    original = ingest_mod._read_stamp

    def flaky(path, crop):
        calls.append(path)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return original(path, crop)

    monkeypatch.setattr(ingest_mod, "_read_stamp", flaky)
    with pytest.raises(KeyboardInterrupt):
        ingest_image_folder(csv, stamps, tmp_path / "out" / "d.h5", targets=TARGETS, crop=CROP, chunk_size=2,
                            n_jobs=1, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


# -- the CLI ---------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astroreg")
    cli.register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_ingest_images(folder, tmp_path, capsys):
    csv, stamps, catalog = folder
    out = tmp_path / "cli.h5"
    args = _parser().parse_args([
        "ingest", "images", "--catalog", str(csv), "--images", str(stamps), "--out", str(out),
        "--target", "total_flux:ADU", "--target", "log_total_flux:dex", "--crop", str(CROP),
        "--jobs", "2", "--no-tabular", "--splits", "train=0.8,test=0.2", "--seed", "5",
    ])
    assert args.func(args) == 0
    assert "ingested 10 of 13" in capsys.readouterr().out
    with Dataset(out) as ds:
        assert len(ds) == 10 and ds.unit("log_total_flux") == "dex" and ds.tabular_columns == ()
        assert set(ds.split_names) == {"train", "test"} and ds.split_seed == 5
        assert ds.images.shape == (10, 1, CROP, CROP)


def test_cli_exit_status_when_nothing_or_wrong_columns(folder, tmp_path, capsys):
    csv, _, _ = folder
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    base = ["ingest", "images", "--catalog", str(csv), "--out", str(tmp_path / "x.h5"), "--quiet"]
    args = _parser().parse_args([*base, "--images", str(empty), "--target", "total_flux:ADU"])
    assert args.func(args) == 1
    assert "no usable image in" in capsys.readouterr().err
    args = _parser().parse_args([*base, "--images", str(empty), "--target", "flux:ADU"])
    assert args.func(args) == 2
    assert "column 'flux' not found" in capsys.readouterr().err


def test_cli_help_has_an_example_and_validates(capsys):
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["ingest", "images", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "astroreg ingest images --catalog gal_morph.csv" in text and "--target total_flux:ADU" in text
    for bad in (["--crop", "zero"], ["--splits", "train:0.8"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(["ingest", "images", "--catalog", "c.csv", "--images", "d", "--out", "o.h5",
                                  "--target", "y", *bad])
    args = _parser().parse_args(["ingest", "images", "--catalog", "c.csv", "--images", "d", "--out", "o.h5",
                                 "--target", "y", "--crop", "none", "--no-splits"])
    assert args.crop is None and args.targets == [("y", "")] and args.no_splits


# -- the real galaxy-flux catalogue from ../shared (skipped when absent) -------------------
def test_real_gal_morph_catalogue(shared_dir, tmp_path):
    catalog = shared_dir / "data" / "galaxyflux" / "gal_morph_test.csv"
    head = pd.read_csv(catalog, nrows=20)
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    for i, name in enumerate(head["file_name"]):
        _write_stamp(stamps / name, _stamp(i, size=24))
    report = ingest_image_folder(catalog, stamps, tmp_path / "gal.h5", targets=TARGETS, tabular=["R_e", "bt"],
                                 crop=CROP, progress=False)
    assert report.n_ok == 20 and report.n_skipped == 10_000 - 20
    assert all("file not found" in reason for _, reason in report.skipped)
    with Dataset(tmp_path / "gal.h5") as ds:
        np.testing.assert_array_equal(ds.ids, [n.removesuffix(".fits") for n in head["file_name"]])
        np.testing.assert_allclose(ds.target("log_total_flux"), head["log_total_flux"])
        assert ds.unit("total_flux") == "ADU"
