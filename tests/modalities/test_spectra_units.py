"""A spectra input refuses data in another flux unit, or prepared on another grid, than it was trained on."""

from __future__ import annotations

import importlib.util

import h5py
import pytest

from astroreg.config import recipe_from_dict
from astroreg.config._inputs import SpectraInput
from astroreg.data import Dataset
from astroreg.modalities import RecipePreprocessor
from astroreg.modalities._base import create_input
from astroreg.preprocess._wavelength import GridSegment

if importlib.util.find_spec("gaiaxpy") is None:  # not importorskip: importing GaiaXPy turns on text.usetex
    pytest.skip("GaiaXPy is not installed", allow_module_level=True)
from astroreg.sim._gaiaxp_output import write_gaiaxp_dataset  # noqa: E402


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    return write_gaiaxp_dataset(60, tmp_path_factory.mktemp("xp") / "xp.h5", seed=0, progress=False)


def _xp(**settings):
    return create_input("xp", SpectraInput(grid="gaia-xp", resample=False, standardize=False, **settings))


def test_other_flux_unit_is_refused_naming_both(mock, tmp_path):
    with Dataset(mock) as ds:
        inp = _xp(scaling="minmax").fit(ds, ds.split("train"))
        unit = ds.spectra.attrs["flux_unit"]
    assert inp.flux_unit_ == (unit.decode() if isinstance(unit, bytes) else unit)
    other = tmp_path / "other.h5"
    other.write_bytes(mock.read_bytes())
    with h5py.File(other, "r+") as f:
        f["spectra"].attrs["flux_unit"] = "electron/s"
    with Dataset(other) as ds, pytest.raises(ValueError, match=r"electron/s.*same --flux"):
        inp.check_dataset(ds)
    with h5py.File(other, "r+") as f:
        del f["spectra"].attrs["flux_unit"]  # a dataset that records no unit is taken as it is
    with Dataset(other) as ds:
        inp.check_dataset(ds)


def test_flux_unit_survives_the_run_file(mock, tmp_path):
    recipe = recipe_from_dict({
        "name": "units", "dataset": {"path": str(mock)},
        "inputs": {"xp": {"kind": "spectra", "grid": "gaia-xp", "resample": False, "standardize": False}},
        "targets": [{"name": "z", "kind": "redshift"}], "model": {"name": "mlp"}})
    with Dataset(mock) as ds:
        pre = RecipePreprocessor.fit(recipe, ds, ds.split("train"))
    path = pre.save(tmp_path / "preprocessors.json")
    assert RecipePreprocessor.load(path).inputs["xp"].flux_unit_ == pre.inputs["xp"].flux_unit_ is not None


def test_resample_false_on_another_prepared_grid_names_both_grids(mock):
    wave = [3700.0 + 10 * i for i in range(186)]
    grid = [GridSegment.tabulated(wave, "other").to_dict()]
    inp = create_input("xp", SpectraInput(grid=grid, resample=False, standardize=False))
    with Dataset(mock) as ds, pytest.raises(ValueError, match=r"resample: false.*tabulated.*--truncation"):
        inp.fit(ds, ds.split("train"))
