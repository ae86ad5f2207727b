"""The prepared-spectra attributes of a dataset, and the package boundary of astroreg.data."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from astroreg.data import (
    Dataset,
    DatasetWriter,
    PreparedSpectra,
    SpectraSpec,
    prepared_spectra_info,
    write_prepared_attrs,
)
from astroreg.data._prepared import (
    PREPARED_BAD_BITS,
    PREPARED_GRID,
    PREPARED_REST_FRAME,
)

GRID = {"segments": [
    {"scale": "linear", "start": 3300.0, "stop": 6800.0, "n": 8, "unit": "Angstrom", "name": "BP"},
    {"scale": "linear", "start": 6400.0, "stop": 10500.0, "n": 6, "unit": "Angstrom", "name": "RP"}]}


def _write(path, attrs, n_pixels=14):
    spec = SpectraSpec(n_pixels=n_pixels, wavelength=tuple(np.linspace(3300.0, 10500.0, n_pixels)),
                       with_ivar=True, attrs=attrs)
    with DatasetWriter(path, spectra=spec, targets={"t": ""}) as w:
        w.append(["a", "b"], spectra={"flux": np.ones((2, n_pixels), "f4"), "ivar": np.ones((2, n_pixels), "f4")},
                 targets={"t": np.array([1.0, 2.0])})
    return path


def test_prepared_attributes_round_trip_through_a_dataset(tmp_path):
    attrs: dict = {}
    write_prepared_attrs(attrs, grid=GRID, rest_frame="RV_ADOP", redshift_fallback="Z", bad_pixels="mask",
                         bad_mask_bits=(1 << 18) | (1 << 31), min_good_fraction=0.25, prepared_by="a reader")
    assert json.loads(attrs[PREPARED_GRID]) == GRID
    with Dataset(_write(tmp_path / "p.h5", attrs)) as ds:
        info = prepared_spectra_info(ds.spectra.attrs)
    assert info == PreparedSpectra(grid=GRID, rest_frame="RV_ADOP", redshift_fallback="Z", bad_pixels="mask",
                                   bad_mask_bits=(1 << 18) | (1 << 31), min_good_fraction=0.25,
                                   prepared_by="a reader")


def test_a_wavelength_grid_object_is_stored_as_its_dict_and_parses_back(tmp_path):
    from astroreg.preprocess._spectra import parse_grid

    grid = parse_grid([3.5754, 3.9670, 4000])
    attrs: dict = {}
    write_prepared_attrs(attrs, grid=grid, rest_frame=None, redshift_fallback=None, bad_pixels="interpolate",
                         bad_mask_bits=None, min_good_fraction=0.5, prepared_by="x")
    assert PREPARED_BAD_BITS not in attrs and attrs[PREPARED_REST_FRAME] == ""
    with Dataset(_write(tmp_path / "p.h5", attrs)) as ds:
        info = prepared_spectra_info(ds.spectra.attrs)
    assert parse_grid(info.grid) == grid  # bit for bit: the JSON of a float is its shortest repr
    assert info.rest_frame is None and info.redshift_fallback is None and info.bad_mask_bits is None


def test_datasets_written_before_generic_grids_read_as_a_log_grid(tmp_path):
    from astroreg.preprocess._spectra import parse_grid

    old = {PREPARED_GRID: np.asarray([3.6, 3.606, 30], np.float64), PREPARED_REST_FRAME: "",
           "prepared_redshift_fallback": "", "prepared_bad_pixels": "interpolate",
           PREPARED_BAD_BITS: np.uint32(2198077455), "prepared_by": "astroreg.preprocess.LogLamResampler",
           "prepared_min_good_fraction": 0.5}
    with Dataset(_write(tmp_path / "old.h5", old, n_pixels=30)) as ds:
        info = prepared_spectra_info(ds.spectra.attrs)
    assert info.grid == (3.6, 3.606, 30) and info.bad_mask_bits == 2198077455 and info.rest_frame is None
    assert parse_grid(info.grid) == parse_grid([3.6, 3.606, 30])
    assert prepared_spectra_info({}) is None


@pytest.mark.parametrize("value, message", [
    ("not json", "not the JSON of a wavelength grid"),
    ('{"scale": "log"}', "not the JSON of a wavelength grid"),
    (np.asarray([3.6, 3.7]), r"not \[loglam_min, loglam_max, n_pixels\]"),
])
def test_damaged_grid_attribute_is_named(value, message):
    with pytest.raises(ValueError, match=message):
        prepared_spectra_info({PREPARED_GRID: value})


def test_write_prepared_attrs_checks_its_values():
    with pytest.raises(ValueError, match="grid must be a WavelengthGrid"):
        write_prepared_attrs({}, grid=[3.6, 3.7, 10], rest_frame=None, redshift_fallback=None,
                             bad_pixels="interpolate", bad_mask_bits=None, min_good_fraction=0.5, prepared_by="x")
    with pytest.raises(ValueError, match="bad_pixels is 'drop'"):
        write_prepared_attrs({}, grid=GRID, rest_frame=None, redshift_fallback=None, bad_pixels="drop",
                             bad_mask_bits=None, min_good_fraction=0.5, prepared_by="x")


def test_importing_data_loads_neither_preprocess_nor_the_readers():
    """astroreg.data is the bottom layer: the survey readers (astroreg.ingest) import it, never the reverse."""
    code = ("import sys, astroreg.data; "
            "print(sorted(m for m in sys.modules if m.startswith(('astroreg.preprocess', 'astroreg.ingest', "
            "'astroreg.config', 'astroreg.modalities'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # The readers are imported from astroreg.ingest only: astroreg.data has no hidden link to them.
    import astroreg.data

    assert not hasattr(astroreg.data, "ingest_sdss_spectra")

