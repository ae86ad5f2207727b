"""Issue 9: fuzz the readers with truncated, bit-flipped and empty files.

Every reader either returns valid data or fails the way it declares: ``read_catalog`` and
``Dataset`` raise ``ValueError`` naming the file; the spectrum and stamp readers of the
ingest return ``(None, reason)`` for a file they skip. Never another exception type, never
a crash. Hypothesis runs a fixed, derandomised budget of examples per reader, so the test
is deterministic and takes well under a minute.
"""

from __future__ import annotations

import atexit
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from astroreg.data import Dataset, DatasetWriter, ImageSpec, read_catalog  # noqa: E402
from astroreg.ingest._images import _read_stamp  # noqa: E402
from astroreg.ingest._sdss_fits import read_spectrum_file, scan_spectrum_file  # noqa: E402

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Hypothesis calls the test body many times per test: one scratch folder, not tmp_path (function-scoped).
_WORK = Path(tempfile.mkdtemp(prefix="astroreg-fuzz-"))
atexit.register(shutil.rmtree, _WORK, ignore_errors=True)


# -- valid files, made once --------------------------------------------------------------------
def _fits_bytes(hdul: fits.HDUList) -> bytes:
    buf = io.BytesIO()
    hdul.writeto(buf)
    return buf.getvalue()


def _spectrum() -> bytes:
    n = 200
    loglam = 3.6 + 1e-4 * np.arange(n)
    rng = np.random.default_rng(0)
    coadd = fits.BinTableHDU.from_columns([
        fits.Column("flux", "E", array=rng.normal(10, 1, n)),
        fits.Column("loglam", "E", array=loglam),
        fits.Column("ivar", "E", array=np.ones(n)),
        fits.Column("and_mask", "J", array=np.zeros(n, int)),
    ])
    specobj = fits.BinTableHDU.from_columns([
        fits.Column("PLATE", "J", array=[266]), fits.Column("MJD", "J", array=[51602]),
        fits.Column("FIBERID", "J", array=[1]), fits.Column("Z", "E", array=[0.0001]),
    ])
    primary = fits.PrimaryHDU()
    primary.header.update(PLATEID=266, MJD=51602, FIBERID=1)
    return _fits_bytes(fits.HDUList([primary, coadd, specobj]))


def _stamp() -> bytes:
    hdu = fits.PrimaryHDU(np.random.default_rng(1).normal(0, 1, (24, 24)).astype("f4"))
    hdu.header["PIXSCALE"] = 0.168
    return _fits_bytes(fits.HDUList([hdu]))


def _catalog_frame() -> pd.DataFrame:
    rng = np.random.default_rng(2)
    return pd.DataFrame({"file_name": [f"{i}.fits" for i in range(30)], "total_flux": rng.uniform(1, 9, 30),
                         "name": [f"galaxy é{i}" for i in range(30)]})


def _fits_table() -> bytes:
    frame = _catalog_frame()
    cols = [fits.Column("file_name", "20A", array=frame["file_name"].to_numpy()),
            fits.Column("total_flux", "D", array=frame["total_flux"].to_numpy())]
    return _fits_bytes(fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(cols)]))


def _parquet() -> bytes:
    buf = io.BytesIO()
    _catalog_frame().to_parquet(buf)
    return buf.getvalue()


def _csv(encoding: str) -> bytes:
    return _catalog_frame().to_csv(index=False).encode(encoding)


def _dataset() -> bytes:
    path = _WORK / "valid.h5"
    with DatasetWriter(path, images=ImageSpec(bands=("i",), height=8, width=8, pixel_scale=0.2),
                       targets={"f": "ADU"}, tabular={"r": "arcsec"}) as w:
        rng = np.random.default_rng(3)
        w.append([f"g{i}" for i in range(20)], images=rng.normal(0, 1, (20, 1, 8, 8)),
                 targets={"f": rng.uniform(1, 2, 20)}, tabular={"r": rng.uniform(0, 1, 20)})
        w.make_splits({"train": 0.5, "test": 0.5}, seed=0)
    return path.read_bytes()


VALID = {
    "spectrum": _spectrum(), "stamp": _stamp(), "fits_table": _fits_table(), "parquet": _parquet(),
    "csv": _csv("utf-8"), "csv_latin1": _csv("latin-1"), "dataset": _dataset(),
}


# -- damage ------------------------------------------------------------------------------------
@st.composite
def damaged(draw, kind: str) -> bytes:
    """The valid file of ``kind``: truncated, with bits flipped, or empty."""
    data = VALID[kind]
    how = draw(st.sampled_from(["truncate", "flip", "flip", "empty"]))
    if how == "empty":
        return b""
    if how == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    out = bytearray(data)
    for pos in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
        out[pos] ^= 1 << draw(st.integers(0, 7))
    return bytes(out)


def _write(name: str, data: bytes) -> Path:
    path = _WORK / name
    path.write_bytes(data)
    return path


def _expect_value_error_naming(path: Path, read):
    """``read()``'s result, or None after a ValueError that names the file."""
    try:
        return read()
    except ValueError as err:
        assert path.name in str(err), f"the error does not name {path.name}: {err}"
        return None


# -- the readers ---------------------------------------------------------------------------------
@FUZZ
@given(damaged("spectrum"))
def test_sdss_spectrum_reader_skips_damaged_files_with_a_reason(data):
    path = _write("spec-0266-51602-0001.fits", data)
    spec = scan_spectrum_file(0, path, path.name)
    if spec.reason is not None:
        assert isinstance(spec.reason, str) and spec.reason
        return
    arrays, reason = read_spectrum_file(spec, None)
    if arrays is None:
        assert isinstance(reason, str) and reason
        return
    pix0, flux, ivar, mask = arrays
    assert flux.shape == ivar.shape == mask.shape == (spec.n_pixels,)


@FUZZ
@given(damaged("stamp"))
def test_stamp_reader_skips_damaged_files_with_a_reason(data):
    image, reason = _read_stamp(_write("0.fits", data), None)
    if image is None:
        assert isinstance(reason, str) and reason
    else:
        assert image.ndim == 2 and image.dtype == np.float32 and np.isfinite(image).any()


@pytest.mark.parametrize(("kinds", "name"), [(["fits_table"], "cat.fits"), (["parquet"], "cat.parquet"),
                                             (["csv", "csv_latin1"], "cat.csv")])
@FUZZ
@given(draw=st.data())
def test_catalogue_reader(kinds, name, draw):
    """FITS tables, Parquet and CSV (UTF-8 and Latin-1) catalogues, damaged: a table or a ValueError naming the file."""
    path = _write(name, draw.draw(st.sampled_from(kinds).flatmap(lambda kind: damaged(kind))))
    frame = _expect_value_error_naming(path, lambda: read_catalog(path))
    assert frame is None or isinstance(frame, pd.DataFrame) and len(frame) > 0


def test_non_utf8_csv_catalogue_is_refused_by_name_and_encoding():
    path = _write("latin1.csv", VALID["csv_latin1"])
    with pytest.raises(ValueError, match=r"latin1\.csv is not UTF-8 text .*save it as UTF-8"):
        read_catalog(path)


@FUZZ
@given(damaged("dataset"))
def test_dataset_reader(data):
    path = _write("data.h5", data)

    def read():
        with Dataset(path) as ds:
            ids = ds.ids
            targets = {t: ds.target(t) for t in ds.target_names}
            tab = ds.tabular()
            images = ds.read_images(slice(0, len(ds)))
            splits = {s: ds.split(s) for s in ds.split_names}
        return ids, targets, tab, images, splits

    result = _expect_value_error_naming(path, read)
    if result is not None:
        ids, targets, tab, images, splits = result
        # (a flipped bit in a group's name hides the group: then it reads as having no columns)
        assert images.shape[0] == len(ids) and all(len(v) == len(ids) for v in targets.values())
        assert tab.shape[1] == 0 or len(tab) == len(ids)
