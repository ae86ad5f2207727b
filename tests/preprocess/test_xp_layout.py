"""Gaia XP sampling layout (paper 004) and tabulated grid segments."""

import numpy as np
import pytest

from astroreg.config._inputs import SpectraInput
from astroreg.preprocess._wavelength import GridSegment, parse_grid
from astroreg.preprocess._xp_layout import (
    PAPER_TRUNCATION,
    XP_SAMPLES,
    XpTruncation,
    kept_wavelengths,
    pseudo_wavelengths,
    sample_wavelengths,
    xp_grid,
)


def test_paper_layout_keeps_80_bp_and_106_rp_samples_from_366_to_996_nm():
    kept = kept_wavelengths(PAPER_TRUNCATION)
    assert (kept["BP"].size, kept["RP"].size) == (80, 106)
    assert PAPER_TRUNCATION.n_kept == 186
    assert kept["BP"][0] == pytest.approx(366, abs=1.0)
    assert kept["RP"][-1] == pytest.approx(996, abs=1.0)
    for band in ("BP", "RP"):
        w = sample_wavelengths(band)
        assert w.size == XP_SAMPLES and np.all(np.diff(w) > 0)
    # BP's pseudo-wavelength falls with wavelength, RP's rises; both equidistant
    assert np.all(np.diff(pseudo_wavelengths("BP")) < 0) and np.all(np.diff(pseudo_wavelengths("RP")) > 0)
    assert np.allclose(np.diff(pseudo_wavelengths("RP")), np.diff(pseudo_wavelengths("RP"))[0])


def test_grid_is_two_named_tabulated_segments_and_round_trips():
    g = xp_grid()
    assert [s.name for s in g.segments] == ["BP", "RP"] and g.n_pixels == 186
    assert np.allclose(g.wavelength()[:80] / 10, kept_wavelengths()["BP"])
    assert parse_grid(g.to_dict()) == g
    assert parse_grid("gaia-xp") == g
    assert SpectraInput(grid="gaia-xp", resample=False).grid == "gaia-xp"


def test_truncation_parsing_and_limits():
    t = XpTruncation.parse("0, 0, 10, 10")
    assert t.n_kept == 120 + 100 and t.kept("rp") == slice(10, 110)
    with pytest.raises(ValueError, match="BP_FIRST,BP_LAST,RP_FIRST,RP_LAST"):
        XpTruncation.parse("34,6,4")
    with pytest.raises(ValueError, match="must leave at least 2"):
        XpTruncation(100, 19, 0, 0)


def test_table_segments_from_a_recipe_in_nm_and_their_errors():
    g = parse_grid([{"scale": "table", "wavelength": [366, 370, 380], "unit": "nm", "name": "BP"}])
    assert np.allclose(g.segments[0].wavelength(), [3660.0, 3700.0, 3800.0], rtol=1e-12)
    with pytest.raises(ValueError, match="strictly increasing"):
        parse_grid({"scale": "table", "wavelength": [3700, 3660]})
    with pytest.raises(ValueError, match="takes its ends and size from 'wavelength'"):
        parse_grid({"scale": "table", "wavelength": [3660, 3700], "n": 2})
    with pytest.raises(ValueError, match="go with scale 'table'"):
        GridSegment(3660.0, 3700.0, 2, "linear", None, (3660.0, 3700.0))


def test_gaiaxpy_import_leaves_matplotlib_settings_alone():
    import matplotlib

    from astroreg.preprocess._xp_layout import import_gaiaxpy

    before = matplotlib.rcParams["text.usetex"]
    import_gaiaxpy("gaiaxpy")
    assert matplotlib.rcParams["text.usetex"] == before
