"""Prepared spectra: resampled and shifted to the rest frame at ingest, only standardised at predict time."""

import numpy as np
import pandas as pd
import pytest
import torch

from astroreg.config import recipe_from_dict
from astroreg.data import Dataset
from astroreg.ingest import ingest_sdss_spectra
from astroreg.pipeline import Run, predict, train_recipe
from astroreg.modalities import RecipePreprocessor
from astroreg.modalities.spectra import radial_velocity
from astroreg.data import prepared_spectra_info
from astroreg.preprocess._spectra import SpectrumResampler, parse_grid
from astroreg.sim import simulate_sdss_stars

pytestmark = pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyWarning")

GRID = (3.60, 3.70, 300)
TARGETS = {"TEFF_ADOP": "K", "FEH_ADOP": "dex", "LOGG_ADOP": "dex", "RV_ADOP": "km/s"}


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    """24 mock SDSS stars, three without RV_ADOP (-9999: the velocity comes from HDU 2's Z)."""
    root = tmp_path_factory.mktemp("prepared")
    stars = simulate_sdss_stars(24, root / "sim", seed=3, n_jobs=1, progress=False)
    labels = stars.labels.copy()
    labels.loc[[1, 7, 15], "RV_ADOP"] = -9999.0
    labels.to_csv(root / "labels.csv", index=False)
    kw = dict(targets=TARGETS, n_jobs=1, progress=False, split_fractions={"train": 0.75, "val": 0.25})
    native = ingest_sdss_spectra(stars.spectra_dir, root / "labels.csv", root / "native.h5", **kw)
    prepared = ingest_sdss_spectra(stars.spectra_dir, root / "labels.csv", root / "prepared.h5", grid=GRID,
                                   rest_frame="RV_ADOP", **kw)
    observed = ingest_sdss_spectra(stars.spectra_dir, root / "labels.csv", root / "observed.h5", grid=GRID, **kw)
    assert native.n_ok == prepared.n_ok == observed.n_ok == 24
    missing = int(((labels["RV_ADOP"] == -9999.0) | labels["RV_ADOP"].isna()).sum())
    assert missing >= 3 and prepared.rest_frame == "RV_ADOP" and prepared.n_rv_from_redshift == missing
    return root, labels


def _recipe(root, **spectra):
    return recipe_from_dict({
        "name": "prepared",
        "dataset": {"path": str(root / "native.h5")},
        "inputs": {"modality": "spectra"},
        "targets": [{"name": "teff", "column": "TEFF_ADOP", "unit": "K"},
                    {"name": "logg", "column": "LOGG_ADOP", "unit": "dex"}],
        "preprocess": {"spectra": {"grid": list(GRID), "rest_frame_column": "RV_ADOP", **spectra}},
        "model": {"name": "residual_mlp", "params": {"stem": 16, "blocks": [16], "heads": [8]}},
        "training": {"epochs": 1, "batch_size": 8, "augment": {"copies": 0}},
        "evaluation": {"baselines": [], "reference": None, "compare_to": []},
    })


@pytest.fixture(scope="module")
def run(survey, tmp_path_factory):
    root, _ = survey
    return train_recipe(_recipe(root), runs_root=tmp_path_factory.mktemp("runs"), progress=False)


def test_prepared_spectra_equal_the_recipe_resampling_of_the_native_ones(survey, run):
    root, labels = survey
    pre = Run.open(run).load_preprocessor()
    with Dataset(root / "native.h5") as nat, Dataset(root / "prepared.h5") as prep:
        assert list(nat.ids) == list(prep.ids)
        attrs = prep.spectra.attrs
        assert parse_grid(prepared_spectra_info(attrs).grid) == parse_grid(list(GRID))
        assert attrs["prepared_rest_frame_column"] == "RV_ADOP" and attrs["prepared_redshift_fallback"] == "Z"
        assert attrs["prepared_bad_pixels"] == "interpolate"
        rows = np.arange(len(nat))
        arrays = nat.read_spectra(rows, keys=("flux", "ivar", "mask", "wavelength"))
        rv = radial_velocity(nat, "RV_ADOP", rows, fallback_redshift="Z")
        assert np.isnan(nat.target("RV_ADOP")).sum() >= 3  # the Z fallback was needed
        expect, expect_ivar = pre.single.spectra.transform(arrays["flux"], loglam=np.log10(arrays["wavelength"]),
                                                    ivar=arrays["ivar"], mask=arrays["mask"], rv_kms=rv,
                                                           return_ivar=True)
        got = prep.read_spectra(rows, keys=("flux", "ivar"))
        np.testing.assert_allclose(got["flux"], expect, rtol=1e-6, atol=1e-6 * np.abs(expect).max())
        # the ingest wrote the flux's chunks back to back: predict maps them instead of copying
        mapped = prep.row_view("spectra/flux", slice(0, len(prep)))
        assert mapped is not None
        np.testing.assert_array_equal(mapped, got["flux"])
        np.testing.assert_allclose(got["ivar"], expect_ivar, rtol=1e-5, atol=1e-6 * expect_ivar.max())
        # A shift of a few hundred km/s moves lines by about a pixel: the frames really differ.
        observed, _ = pre.single.spectra.transform(arrays["flux"], loglam=np.log10(arrays["wavelength"]),
                                            ivar=arrays["ivar"], mask=arrays["mask"])
        assert np.abs(observed - expect).max() > 100 * np.abs(got["flux"] - expect).max()


def test_preprocessor_skips_resampling_only_on_a_matching_prepared_dataset(survey, run, monkeypatch):
    root, _ = survey
    pre = Run.open(run).load_preprocessor()
    with Dataset(root / "native.h5") as nat, Dataset(root / "prepared.h5") as prep, \
            Dataset(root / "observed.h5") as obs:
        want = pre.single.transform(nat, np.arange(len(nat)))
        assert not pre.single.prepared(nat) and not pre.single.prepared(obs)
        assert pre.single.prepared(prep)

        def fail(*a, **k):
            raise AssertionError("resampled a prepared dataset")

        with monkeypatch.context() as m:
            m.setattr(SpectrumResampler, "transform", fail)
            # Flux only: reading ivar or mask would fail here.
            m.setattr(Dataset, "read_spectra", fail)
            got = pre.single.transform(prep, slice(0, len(prep)))
            out = np.full((40, GRID[2]), np.nan, np.float32)
            into = pre.single.transform(prep, slice(3, 20), out=out)
            by_rows = pre.single.transform(prep, np.array([5, 2, 9]))
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert into.base is out and np.array_equal(into, got[3:20])
        np.testing.assert_array_equal(by_rows, got[[5, 2, 9]])
        # The observed-frame dataset on the same grid is resampled again, with the shift.
        calls = []
        original = SpectrumResampler.transform

        def spy(self, *a, **k):
            calls.append(k.get("rv_kms"))
            return original(self, *a, **k)

        monkeypatch.setattr(SpectrumResampler, "transform", spy)
        pre.single.transform(obs, np.arange(len(obs)))
        assert len(calls) == 1 and calls[0] is not None and np.all(np.isfinite(calls[0]))

        other_grid = RecipePreprocessor.fit(_recipe(root, grid=[3.60, 3.70, 299]), nat, np.arange(18))
        assert not other_grid.single.prepared(prep)
        masked = RecipePreprocessor.fit(_recipe(root, bad_pixels="mask"), nat, np.arange(18))
        assert not masked.single.prepared(prep)
        no_shift = RecipePreprocessor.fit(_recipe(root, rest_frame_column=None), nat, np.arange(18))
        assert no_shift.single.prepared(obs)
        with pytest.raises(ValueError, match="shifted to the rest frame of 'RV_ADOP' at ingest"):
            no_shift.single.transform(prep, np.arange(3))
        # Another grid: the prepared (rest-frame) spectra are resampled without a second shift.
        calls.clear()
        assert other_grid.single.transform(prep, np.arange(len(prep))).shape == (24, 299)
        assert calls == [None]


def test_predictions_from_native_and_prepared_datasets_agree(survey, run, tmp_path):
    root, _ = survey
    threads = torch.get_num_threads()
    a = pd.read_parquet(predict(run, root / "native.h5", tmp_path / "a.parquet", chunk_size=7, progress=False))
    b = pd.read_parquet(predict(run, root / "prepared.h5", tmp_path / "b.parquet", chunk_size=7, progress=False))
    c = pd.read_parquet(predict(run, root / "prepared.h5", tmp_path / "c.parquet", chunk_size=100, progress=False))
    assert torch.get_num_threads() == threads
    assert list(a["id"]) == list(b["id"]) == list(c["id"]) and len(a) == 24
    for t, scale in (("teff", 1000.0), ("logg", 1.0)):
        np.testing.assert_array_equal(a[f"{t}_true"], b[f"{t}_true"])
        assert np.abs(a[f"{t}_pred"] - b[f"{t}_pred"]).max() < 1e-4 * scale
        np.testing.assert_allclose(b[f"{t}_pred"], c[f"{t}_pred"], rtol=1e-6, atol=1e-6 * scale)


def test_thread_tuner_gives_torch_one_thread_fewer_while_other_processes_load_the_machine(monkeypatch):
    from astroreg._threads import LoadSample
    from astroreg.pipeline import _predict

    threads = 3
    monkeypatch.setattr(torch, "set_num_threads", lambda n: used.append(n))
    monkeypatch.setattr(torch, "get_num_threads", lambda: used[-1] if used else threads)
    used: list[int] = []
    # (wall, machine CPU, own CPU) seconds: per 0.1 s, this process uses 0.2 s of CPU and others 0.15 (1.5 cores)
    state = {"t": 0.0, "machine": 0.0, "own": 0.0, "others": 1.5}

    def sample():
        return LoadSample(state["t"], state["machine"], state["own"])

    monkeypatch.setattr(_predict, "machine_load_sample", sample)
    tuner = _predict._ThreadTuner([2, 1], window=0.25)
    x = np.arange(10.0).reshape(5, 2)
    chosen = []
    for k in range(12):
        if k == 6:
            state["others"] = 0.1  # the other job ended
        np.testing.assert_array_equal(tuner.forward(lambda a: a * 2, x, k), x * 2)
        chosen.append(torch.get_num_threads())
        state["t"] += 0.1
        state["own"] += 0.2
        state["machine"] += 0.2 + 0.1 * state["others"]
    # Windows of >= 0.25 s end at chunks 3, 6, 9: busy (1.5 cores), busy, then quiet.
    assert chosen == [2, 2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2]
    assert tuner.others == pytest.approx(0.1)
