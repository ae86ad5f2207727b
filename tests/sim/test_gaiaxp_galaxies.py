"""Mock Gaia XP galaxy spectra (``astroreg simulate gaia-xp-galaxies``, seed paper 004)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from astroreg.sim._gaiaxp_galaxies import (
    LINES,
    TEMPLATES,
    GalaxyParameters,
    draw_redshifts,
    observe,
    simulate_gaiaxp_galaxies,
    template_weights,
    xp_instrument,
)
from astroreg.sim._gaiaxp_output import FLUX_KIND, FLUX_KIND_ATTR, write_gaiaxp_dataset


def _params(z, type_index, g_mag, ebv=0.0, ew_scale=1.0):
    from astroreg.sim._gaiaxp_galaxies import LINE_EW

    z = np.atleast_1d(np.asarray(z, dtype=np.float64))
    n = z.size
    t = np.broadcast_to(np.asarray(type_index, dtype=np.float64), (n,)).copy()
    base = template_weights(t) @ np.asarray(list(LINE_EW.values())).T
    return GalaxyParameters(z=z, type_index=t, ebv=np.full(n, float(ebv)),
                            g_mag=np.broadcast_to(np.asarray(g_mag, dtype=np.float64), (n,)).copy(),
                            line_ew=base * ew_scale)


def test_redshift_moments_match_paper_004():
    z = draw_redshifts(100_000, np.random.default_rng(0))
    assert z.min() >= 0.0 and z.max() <= 0.6
    # paper 004, section 3.2: mean 0.142, median 0.126, std 0.079, skewness 1.094
    assert z.mean() == pytest.approx(0.142, abs=0.004)
    assert np.median(z) == pytest.approx(0.126, abs=0.004)
    assert z.std() == pytest.approx(0.079, abs=0.004)
    assert stats.skew(z) == pytest.approx(1.094, abs=0.1)
    assert np.quantile(z, 0.99) == pytest.approx(0.37, abs=0.03)  # "99 % of the galaxies have z <= 0.37"


def test_instrument_layout_and_resolution():
    ins = xp_instrument()
    assert ins.wavelength_nm.shape == (186,) and ins.n_bp == 80
    assert 365 < ins.wavelength_nm[0] < 367 and 996 < ins.wavelength_nm[-1] < 997
    r = ins.resolving_power
    bp, rp = r[:80], r[80:]
    assert bp[0] > bp[-1] and rp[0] > rp[-1]  # resolution highest at each band's blue end
    assert 10 < r.min() and r.max() < 110
    assert np.allclose(ins.lsf.sum(axis=0), 1.0)


def test_emission_line_moves_with_redshift():
    ins = xp_instrument()
    lam = ins.wavelength_nm
    # a line-dominated Im galaxy, bright: H-alpha (656.3 nm rest) stands out where (1+z) 656.3 falls
    for z in (0.05, 0.2, 0.35):
        p = _params([z], 3.0, 16.0, ew_scale=5.0)
        flux = observe(p, None, instrument=ins)["flux"][0]
        where = (1 + z) * LINES["Halpha"]
        k = int(np.argmin(np.abs(lam - where)))
        assert k >= 80  # in RP at these redshifts
        # brighter than the samples one line-spread FWHM away on either side
        step = np.abs(lam[80:] - lam[k]) > ins.fwhm_nm[k]
        left = np.flatnonzero(step & (lam[80:] < lam[k]))[-1] + 80
        right = np.flatnonzero(step & (lam[80:] > lam[k]))[0] + 80
        assert flux[k] > 1.2 * max(flux[left], flux[right])
    # an elliptical at the same redshift has no such peak
    p = _params([0.2], 0.0, 16.0)
    flux = observe(p, None, instrument=ins)["flux"][0]
    k = int(np.argmin(np.abs(lam - 1.2 * LINES["Halpha"])))
    assert flux[k] < 1.05 * max(flux[k - 6], flux[k + 6])


def test_noise_grows_with_g_and_flux_scales():
    p = _params([0.1, 0.1, 0.1], 1.5, [17.0, 19.0, 21.0])
    out = observe(p, np.random.default_rng(0))
    snr = out["snr_median"]
    assert snr[0] > snr[1] > snr[2]
    assert snr[0] > 20 and snr[2] < 10
    # 2 mag fainter: 10^0.8 = 6.3 times less flux, same shape
    ratio = out["flux_true"][0] / out["flux_true"][1]
    assert np.allclose(ratio, 10**0.8, rtol=1e-6)
    resid = (out["flux"] - out["flux_true"]) / out["flux_error"]
    assert 0.8 < resid.std() < 1.2


def test_seeds_reproduce_and_prefixes_agree():
    a = list(simulate_gaiaxp_galaxies(30, seed=5))
    b = list(simulate_gaiaxp_galaxies(30, seed=5))
    c = list(simulate_gaiaxp_galaxies(30, seed=6))
    assert np.array_equal(a[0][0]["flux"], b[0][0]["flux"])
    assert not np.allclose(a[0][0]["flux"], c[0][0]["flux"], rtol=1e-3, atol=0.0)
    short = list(simulate_gaiaxp_galaxies(10, seed=5))
    assert np.array_equal(short[0][1]["z"].to_numpy(), a[0][1]["z"].to_numpy()[:10])
    table = a[0][1]
    assert {"z", "g_mag", "ebv", "ew_Halpha", *(f"w_{t}" for t in TEMPLATES)} <= set(table.columns)
    assert np.allclose(table[[f"w_{t}" for t in TEMPLATES]].sum(axis=1), 1.0)


@pytest.mark.parametrize(("n", "g_range", "match"), [
    (0, (17, 21), "positive whole number"),
    (10, (21, 17), "G range"),
    (10, (5, 21), "G range"),
])
def test_bad_arguments_one_clear_line(n, g_range, match):
    with pytest.raises(ValueError, match=match) as err:
        next(simulate_gaiaxp_galaxies(n, g_range=g_range))
    assert "\n" not in str(err.value)


def test_dataset_reads_through_spectra_input(tmp_path):
    from astroreg.config import SpectraInput
    from astroreg.data import Dataset
    from astroreg.modalities import create_input
    from astroreg.preprocess._spectra import parse_grid

    path = write_gaiaxp_dataset(200, tmp_path / "xp.h5", seed=3)
    with Dataset(path) as ds:
        assert len(ds) == 200
        attrs = ds.spectra.attrs
        assert attrs[FLUX_KIND_ATTR] == FLUX_KIND and "W m-2 nm-1" in attrs["flux_unit"]
        assert attrs["xp_truncation"] == "34,6,4,10"
        assert np.allclose(ds.spectra["wavelength"][:], parse_grid("gaia-xp").wavelength())
        splits = {k: ds.split(k) for k in ds.split_names}
        assert sorted(len(v) for v in splits.values()) == [20, 54, 126]  # paper 004's 63/27/10
        z = ds.target("z")
        assert 0 <= z.min() and z.max() <= 0.6
        assert {"g_mag", "ebv", "ew_Halpha"} <= set(ds.tabular_columns)
        assert np.all(ds.spectra["ivar"][:] > 0) and np.all(np.isfinite(ds.spectra["ivar"][:]))
        xp = create_input("xp", SpectraInput(grid="gaia-xp", resample=False, standardize=False))
        xp.fit(ds, splits["train"])
        assert xp.prepared(ds)  # read as stored, not resampled
        x = xp.transform(ds, np.arange(10))
        assert x.shape == (10, 186) and x.dtype == np.float32
        assert np.array_equal(x, ds.spectra["flux"][:10])


def test_flux_kind_attribute_is_the_ingest_one():
    ingest = pytest.importorskip("astroreg.ingest._gaiaxp")
    assert FLUX_KIND_ATTR == ingest.XP_FLUX_KIND
    assert FLUX_KIND in ingest.XP_FLUX_UNITS
    # a run trained on the mock predicts ingested calibrated spectra only if the units agree
    from astroreg.sim._gaiaxp_galaxies import FLUX_UNIT

    assert ingest.XP_FLUX_UNITS[FLUX_KIND] == FLUX_UNIT


def test_cli_writes_refuses_and_reports_bad_range(tmp_path, capsys):
    from astroreg.cli._main import main
    from astroreg.data import Dataset

    out = tmp_path / "xp.h5"
    argv = ["simulate", "gaia-xp-galaxies", "--n", "40", "--out", str(out), "--seed", "2", "--quiet"]
    assert main(argv) == 0
    with Dataset(out) as ds:
        first = ds.spectra["flux"][:]
        assert len(ds) == 40 and ds.target_names == ("z",)
    assert main(argv) == 2  # exists: refused without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite", "--seed", "3"]) == 0
    with Dataset(out) as ds:
        assert not np.array_equal(ds.spectra["flux"][:], first)
    capsys.readouterr()
    assert main(["simulate", "gaia-xp-galaxies", "--n", "5", "--out", str(tmp_path / "b.h5"),
                 "--g-range", "21", "17"]) == 2
    err = capsys.readouterr().err.strip()
    assert "G range" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "b.h5").exists()


@pytest.mark.slow  # ~15 s: a whole run (train, evaluate, report)
def test_tiny_train_on_the_mock(tmp_path):
    from astroreg.config import recipe_from_dict
    from astroreg.pipeline import train_recipe

    data = write_gaiaxp_dataset(200, tmp_path / "xp.h5", seed=4, g_range=(17.0, 18.0))
    recipe = recipe_from_dict({
        "name": "xp-mock",
        "dataset": {"path": str(data)},
        "inputs": {"xp": {"kind": "spectra", "grid": "gaia-xp", "resample": False, "standardize": False}},
        "targets": [{"name": "z", "column": "z", "kind": "redshift"}],
        "model": {"name": "mlp", "params": {"hidden": [16]}},
        "training": {"epochs": 1, "batch_size": 16, "augment": {"copies": 0}},
        "evaluation": {"baselines": [], "reference": None, "compare_to": []},
    })
    run = train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)
    assert (run / "model.pt").is_file() and (run / "preprocessors.json").is_file()
