"""Catalogue readers: CSV (sniffed delimiter), FITS tables, Parquet, and their errors."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from astroreg.data._catalog import SUPPORTED_EXTENSIONS, read_catalog, require_columns


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 25
    return pd.DataFrame({
        "file_name": [f"{i:04d}.fits" for i in range(n)],
        "total_flux": rng.lognormal(8, 1, n),
        "log_total_flux": rng.normal(3.5, 0.2, n),
        "num_components": rng.integers(1, 3, n),
        "field": [f"COSMOS-{i % 4}" for i in range(n)],
    })


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for c in want.columns:
        if pd.api.types.is_float_dtype(want[c]):
            np.testing.assert_allclose(got[c].to_numpy(float), want[c].to_numpy(float), rtol=1e-12)
        else:
            assert [str(v) for v in got[c]] == [str(v) for v in want[c]], c


@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_csv_round_trip_sniffs_the_delimiter(tmp_path, frame, sep, suffix):
    path = tmp_path / f"cat{suffix}"
    frame.to_csv(path, sep=sep, index=False)
    got = read_catalog(path)
    _assert_same(got, frame)
    assert got["num_components"].dtype.kind == "i"


def test_whitespace_table_with_comments(tmp_path, frame):
    path = tmp_path / "cat.txt"
    body = frame.to_string(index=False, float_format="{:.17g}".format)
    path.write_text("# made by a survey pipeline\n# version 2\n" + body + "\n")
    _assert_same(read_catalog(path), frame)


def test_semicolon_csv_with_decimal_commas_in_a_text_column(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text('name;z;note\n"a";0.1;"blue, compact"\n"b";0.2;"red, extended"\n')
    got = read_catalog(path)
    assert list(got.columns) == ["name", "z", "note"]
    assert list(got["note"]) == ["blue, compact", "red, extended"]


def test_commented_header_above_numeric_rows(tmp_path):
    # The ANNz photo-z tables: "#"-commented ';'-header above comma-separated numbers.
    path = tmp_path / "boss.csv"
    path.write_text("#F:MAG_U;F:MAG_G;D:Z\n22.7,21.5,0.66\n21.8,20.1,0.25\n")
    got = read_catalog(path)
    assert list(got.columns) == ["F:MAG_U", "F:MAG_G", "D:Z"]
    np.testing.assert_allclose(got["D:Z"], [0.66, 0.25])


def test_columns_selects_and_orders(tmp_path, frame):
    path = tmp_path / "cat.csv"
    frame.to_csv(path, index=False)
    got = read_catalog(path, columns=["total_flux", "file_name"])
    assert list(got.columns) == ["total_flux", "file_name"]


@pytest.mark.parametrize("suffix", [".fits", ".fit", ".fits.gz"])
def test_fits_table_round_trip(tmp_path, frame, suffix):
    t = Table.from_pandas(frame)
    t["total_flux"].unit = "adu"
    # Multidimensional column: dropped with a warning.
    t["sersicfit"] = np.zeros((len(frame), 8))
    path = tmp_path / f"cat{suffix}"
    t.write(path)
    with pytest.warns(UserWarning, match=r"dropped multidimensional columns sersicfit \(8,\)"):
        got = read_catalog(path)
    _assert_same(got, frame)
    assert got["field"].map(type).eq(str).all()
    assert all(got[c].to_numpy().dtype.isnative for c in ["total_flux", "num_components"])
    assert got.attrs["units"]["total_flux"] == "adu"


def test_fits_big_endian_bytes_and_chosen_hdu(tmp_path):
    n = 6
    cols = [
        fits.Column(name="ID", format="J", array=np.arange(n, dtype=">i4")),
        fits.Column(name="Z", format="D", array=np.linspace(0, 1, n).astype(">f8")),
        fits.Column(name="CLASS", format="6A", array=np.array([b"GALAXY", b"QSO", b"STAR"] * 2)),
    ]
    other = fits.BinTableHDU.from_columns([fits.Column(name="X", format="E", array=np.ones(3, ">f4"))], name="OTHER")
    hdul = fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols, name="SPECOBJ"), other])
    path = tmp_path / "spec.fits"
    hdul.writeto(path)

    got = read_catalog(path)
    assert list(got.columns) == ["ID", "Z", "CLASS"]
    assert got["Z"].to_numpy().dtype == np.dtype("float64")  # native, not >f8
    assert got["ID"].to_numpy().dtype.isnative
    assert list(got["CLASS"]) == ["GALAXY", "QSO", "STAR"] * 2
    assert (got["Z"] * 2).iloc[-1] == pytest.approx(2.0)

    assert list(read_catalog(path, hdu="OTHER").columns) == ["X"]
    assert len(read_catalog(path, hdu=2)) == 3
    with pytest.raises(ValueError, match="HDU 0 of .* is a PrimaryHDU, not a table; table HDUs are at indices"):
        read_catalog(path, hdu=0)
    with pytest.raises(ValueError, match="has no HDU 'NOPE'"):
        read_catalog(path, hdu="NOPE")


def test_fits_without_a_table(tmp_path):
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((4, 4))).writeto(path)
    with pytest.raises(ValueError, match="has no table HDU"):
        read_catalog(path)


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_round_trip(tmp_path, frame, suffix):
    path = tmp_path / f"cat{suffix}"
    frame.to_parquet(path, index=False)
    _assert_same(read_catalog(path), frame)
    assert list(read_catalog(path, columns=["field"]).columns) == ["field"]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="catalogue .*nope.csv does not exist"):
        read_catalog(tmp_path / "nope.csv")


@pytest.mark.parametrize("name", ["empty.csv", "empty.fits", "empty.parquet"])
def test_empty_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        read_catalog(path)


def test_header_only_csv_is_empty(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text("file_name,total_flux\n")
    with pytest.raises(ValueError, match="is empty.*no rows"):
        read_catalog(path)


@pytest.mark.parametrize("name", ["cat.xlsx", "cat.h5", "cat.gz", "catalog"])
def test_unknown_extension_lists_the_supported_ones(tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="unknown extension; supported are " + " ".join(SUPPORTED_EXTENSIONS)):
        read_catalog(path)


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")
@pytest.mark.parametrize("name", ["bad.fits", "bad.fits.gz", "bad.parquet"])
def test_corrupt_binary_catalogues(tmp_path, name):
    path = tmp_path / name
    data = np.random.default_rng(0).bytes(4000)
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(ValueError, match="could not read catalogue"):
        read_catalog(path)


def test_ragged_csv(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text("a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(ValueError, match="could not parse catalogue"):
        read_catalog(path)


@pytest.mark.parametrize("suffix", [".csv", ".fits", ".parquet"])
def test_columns_argument_names_the_missing_column(tmp_path, frame, suffix):
    path = tmp_path / f"cat{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".fits":
        Table.from_pandas(frame).write(path)
    else:
        frame.to_parquet(path)
    with pytest.raises(ValueError, match=rf"column 'TEFF' not found in .*cat{suffix}; columns are: file_name, "):
        read_catalog(path, columns=["file_name", "TEFF"])


def test_require_columns_message(frame):
    require_columns(frame, ["file_name", "total_flux"], "gal_morph.csv")
    with pytest.raises(ValueError) as info:
        require_columns(frame, ["total_flx"], "gal_morph.csv", hint="set --target")
    msg = str(info.value)
    assert msg.startswith("column 'total_flx' not found in gal_morph.csv")
    assert "did you mean 'total_flux'" in msg
    assert "columns are: file_name, total_flux, log_total_flux, num_components, field" in msg
    assert msg.endswith("; set --target")
    with pytest.raises(ValueError, match="columns 'a', 'b' not found in x.fits.*check the spelling"):
        require_columns(frame, ["a", "b", "field"], "x.fits")


def test_require_columns_shortens_long_lists():
    wide = pd.DataFrame(columns=[f"c{i}" for i in range(100)])
    with pytest.raises(ValueError, match=r"c39, \.\.\. \(60 more\)"):
        require_columns(wide, ["zz"], "wide.fits")


# -- real survey files from ../shared (skipped when absent) ------------------------------
def test_shared_galaxy_flux_table(shared_dir):
    path = shared_dir / "data" / "galaxyflux" / "gal_morph_test.csv"
    cat = read_catalog(path, columns=["file_name", "total_flux", "log_total_flux"])
    assert len(cat) == 10_000
    assert cat["file_name"].str.endswith(".fits").all()
    np.testing.assert_allclose(np.log10(cat["total_flux"]), cat["log_total_flux"], atol=1e-6)


def test_shared_photoz_commented_header(shared_dir):
    cat = read_catalog(shared_dir / "data" / "photoz" / "boss_dr10_0.csv")
    assert "D:Z" in cat.columns and "F:MAG_U" in cat.columns
    assert len(cat) == 6000
    assert cat["D:Z"].between(-0.01, 8).all()  # spectroscopic z can be slightly negative


def test_shared_cosmos_fits_tables(shared_dir):
    folder = shared_dir / "data" / "cosmos"
    with pytest.warns(UserWarning, match="sersicfit"):
        fits_cat = read_catalog(folder / "real_galaxy_catalog_23.5_example_fits.fits")
    assert len(fits_cat) == 100 and "sersicfit" not in fits_cat.columns and "zphot" in fits_cat.columns
    cat = read_catalog(folder / "real_galaxy_catalog_23.5_example.fits")
    assert (cat["BAND"] == "F814W").all()
    assert cat["GAL_FILENAME"].map(type).eq(str).all()


def test_shared_sdss_specobj_hdu(shared_dir):
    path = shared_dir / "data" / "sdss" / "spectra" / "spec-4500-55543-0331.fits"
    with pytest.warns(UserWarning, match="multidimensional"):
        row = read_catalog(path, hdu=2)
    assert len(row) == 1
    assert row["Z"].iloc[0] == pytest.approx(0.224, abs=0.005)
