"""Per-spectrum standardisation folded into the first layer: the same predictions, from the raw flux."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from astroreg.config import recipe_from_dict
from astroreg.data import Dataset, DatasetWriter, SpectraSpec
from astroreg.data._prepared import (
    PREPARED_BAD_BITS,
    PREPARED_BAD_PIXELS,
    PREPARED_BY,
    PREPARED_GRID,
    PREPARED_REDSHIFT,
    PREPARED_REST_FRAME,
)
from astroreg.ingest import SDSS_BAD_PIXEL_BITS
from astroreg.models import create_model
from astroreg.models import _fast as fast_mod
from astroreg.models._registry import unwrap_single
from astroreg.models._fast import StandardizedLinear, fold_standardization, optimize_for_inference
from astroreg.pipeline import Run, predict, train_recipe
from astroreg.preprocess import LogLamResampler
from astroreg.preprocess._spectra import standardize_rows_

GRID = (3.60, 3.70, 200)


def _tensor_net(name, *, input_shape, **kw):
    """The single-input network ``name`` as a plain tensor module (what predict folds and traces)."""
    return unwrap_single(create_model(name, input_shapes={"flux": input_shape}, **kw))[1]


def _rows(rng, n_pix: int) -> np.ndarray:
    """Spectrum-like rows with offsets |mean| / std from 0 to 1e4, and the exceptional rows."""
    base = np.cumsum(rng.normal(0, 1, (12, n_pix)), axis=1)
    base = (base - base.mean(1, keepdims=True)) / base.std(1, keepdims=True)
    offsets = np.array([0.0, 0.5, 2, 3, 5, 7, 7.9, -6, 20, -50, 1e3, 1e4])
    scales = np.array([1e-3, 1, 30, 1e4, 2, 1e-17, 5, 1, 1, 3, 1, 1])
    x = (base + offsets[:, None]) * scales[:, None]
    special = np.zeros((4, n_pix))
    special[1] = 42.0                 # constant: zero spread
    special[2] = x[3]
    special[2, 17] = np.nan           # a non-finite pixel: the standardiser's own path
    special[3] = x[4]
    special[3, 5] = np.inf
    return np.concatenate([x, special]).astype(np.float32)


def _reference(net: nn.Module, x: np.ndarray) -> torch.Tensor:
    with torch.inference_mode():
        return net(torch.from_numpy(standardize_rows_(x.copy())))


def test_folded_network_equals_the_network_on_standardised_spectra_and_sends_only_exceptional_rows_aside():
    torch.manual_seed(0)
    net = _tensor_net("residual_mlp", input_shape=(300,), n_outputs=3, stem=32, blocks=[16], heads=[8]).eval()
    x = _rows(np.random.default_rng(1), 300)
    aside = []

    def spy(a):
        aside.append(a.copy())
        return standardize_rows_(a)

    folded = fold_standardization(net, spy, max_offset=8.0)
    assert isinstance(folded.stem[0], StandardizedLinear) and isinstance(net.stem[0], nn.Linear)  # a copy
    with torch.inference_mode():
        got = folded(torch.from_numpy(x))
    want = _reference(net, x)
    assert torch.isfinite(got).all()
    scale = want.abs().max()
    err = ((got - want).abs() / scale).max(dim=1).values
    assert err.max() < 1e-5, err
    # Rows with |mean| > 8 std (the offsets 20, -50, 1e3, 1e4), the zero and constant rows and
    # the rows with NaN or inf went through the reference standardiser; no other row did.
    assert len(aside) == 1
    np.testing.assert_array_equal(aside[0], x[[8, 9, 10, 11, 12, 13, 14, 15]])
    # Zero-spread rows give the output of an all-zero standardised row.
    with torch.inference_mode():
        zero = net(torch.zeros(1, 300))
    torch.testing.assert_close(got[12:14], zero.expand(2, -1), rtol=0, atol=1e-6 * float(scale))


def test_fold_large_offsets_lose_digits_so_they_are_kept_off_the_folded_path():
    """The guard matters: with no limit on the offset, rows far from zero lose accuracy."""
    torch.manual_seed(0)
    net = _tensor_net("residual_mlp", input_shape=(300,), n_outputs=3, stem=32, blocks=[16], heads=[8]).eval()
    x = _rows(np.random.default_rng(1), 300)[10:12]  # |mean| / std = 1e3 and 1e4
    want = _reference(net, x)
    with torch.inference_mode():
        guarded = fold_standardization(net, standardize_rows_)(torch.from_numpy(x))
        unguarded = fold_standardization(net, standardize_rows_, max_offset=np.inf)(torch.from_numpy(x))
    scale = want.abs().max()
    assert ((guarded - want).abs().max() / scale) < 1e-6
    assert ((unguarded - want).abs().max() / scale) > 1e-3


def test_fold_covers_per_target_networks_and_refuses_networks_that_use_the_input_elsewhere():
    torch.manual_seed(0)
    x = _rows(np.random.default_rng(2), 120)[:12]
    dnn = _tensor_net("dnn_li2017", input_shape=(120,), n_outputs=2, hidden=[16, 8]).eval()
    folded = fold_standardization(dnn, standardize_rows_)
    assert sum(isinstance(m, StandardizedLinear) for m in folded.modules()) == 2
    with torch.inference_mode():
        torch.testing.assert_close(folded(torch.from_numpy(x)), _reference(dnn, x), rtol=1e-5, atol=1e-5)

    assert fold_standardization(_tensor_net("starnet_cnn", input_shape=(120,), n_outputs=2),
                                standardize_rows_) is None

    class InputSkip(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(120, 120)

        def forward(self, v):
            return self.lin(v) + v  # the input also bypasses the layer: no fold

    assert fold_standardization(InputSkip(), standardize_rows_) is None


def test_folded_network_runs_through_optimize_for_inference_on_any_batch():
    torch.manual_seed(0)
    net = _tensor_net("residual_mlp", input_shape=(64,), n_outputs=2, stem=16, blocks=[8], heads=[4]).eval()
    x = _rows(np.random.default_rng(3), 64)
    fast = optimize_for_inference(fold_standardization(net, standardize_rows_), torch.from_numpy(x[:5]))
    got = fast(torch.from_numpy(x))
    assert got.shape == (16, 2)
    torch.testing.assert_close(got, _reference(net, x), rtol=1e-5, atol=1e-5)


# -- through astroreg predict ----------------------------------------------------------------------

def _prepared_dataset(path, n: int = 90, seed: int = 0):
    """Spectra stored on the recipe's grid as ``ingest sdss-spectra --grid`` marks them (no rest-frame shift).

    The flux has a positive continuum whose slope and line depths follow the targets, a
    large offset on a few rows (|mean| > 8 std: the reference path) and a NaN on one.
    """
    rng = np.random.default_rng(seed)
    res = LogLamResampler(loglam_min=GRID[0], loglam_max=GRID[1], n_pixels=GRID[2]).fit()
    t = np.linspace(0, 1, GRID[2])
    teff, logg = rng.uniform(4000, 9000, n), rng.uniform(1, 5, n)
    slope = (teff - 6500) / 2500
    flux = 10 + slope[:, None] * t + (logg[:, None] / 5) * np.exp(-0.5 * ((t - 0.4) / 0.02) ** 2)
    flux += rng.normal(0, 0.1, flux.shape)
    flux[::15] += 500.0
    flux[7, 11] = np.nan
    attrs = {PREPARED_GRID: np.asarray(GRID, np.float64), PREPARED_REST_FRAME: "", PREPARED_REDSHIFT: "Z",
             PREPARED_BAD_PIXELS: "interpolate", PREPARED_BAD_BITS: np.uint32(SDSS_BAD_PIXEL_BITS),
             PREPARED_BY: "test"}
    spec = SpectraSpec(n_pixels=GRID[2], wavelength=tuple(res.wavelength_), with_ivar=True, with_mask=True,
                       mask_dtype="uint32", mask_bad_bits=SDSS_BAD_PIXEL_BITS, attrs=attrs)
    with DatasetWriter(path, targets={"TEFF_ADOP": "K", "LOGG_ADOP": "dex"}, spectra=spec) as w:
        w.append([f"p{i}" for i in range(n)],
                 spectra={"flux": flux.astype("f4"), "ivar": np.ones((n, GRID[2]), "f4"),
                          "mask": np.zeros((n, GRID[2]), np.uint32)},
                 targets={"TEFF_ADOP": teff, "LOGG_ADOP": logg})
        w.make_splits({"train": 0.6, "val": 0.2, "test": 0.2}, seed=seed)
    return path


@pytest.fixture(scope="module")
def prepared_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fold")
    data = _prepared_dataset(root / "prepared.h5")
    recipe = recipe_from_dict({
        "name": "fold",
        "dataset": {"path": str(data)},
        "inputs": {"modality": "spectra"},
        "targets": [{"name": "teff", "column": "TEFF_ADOP", "unit": "K"},
                    {"name": "logg", "column": "LOGG_ADOP", "unit": "dex"}],
        "preprocess": {"spectra": {"grid": list(GRID)}},
        "model": {"name": "residual_mlp", "params": {"stem": 16, "blocks": [16], "heads": [8]}},
        "training": {"epochs": 2, "batch_size": 16, "augment": {"copies": 0}},
        "evaluation": {"baselines": [], "reference": None, "compare_to": []},
    })
    return train_recipe(recipe, runs_root=root / "runs", progress=False), data


def test_predict_folds_the_standardisation_on_prepared_spectra_with_the_same_predictions(
        prepared_run, tmp_path, monkeypatch):
    run, data = prepared_run
    with Dataset(data) as ds:
        assert Run.open(run).load_preprocessor().single.prepared(ds)
    built = []
    original = fast_mod.fold_standardization

    def spy(*a, **k):
        built.append(original(*a, **k))
        return built[-1]

    monkeypatch.setattr(fast_mod, "fold_standardization", spy)  # the spectra input's predict reader folds
    views = []
    row_view = Dataset.row_view

    def view_spy(self, name, rows):
        views.append(row_view(self, name, rows))
        return views[-1]

    monkeypatch.setattr(Dataset, "row_view", view_spy)
    tables = {}
    for fold in (False, True):
        for chunk in (7, 64):
            out = predict(run, data, tmp_path / f"{fold}-{chunk}.parquet", chunk_size=chunk, fold=fold,
                          progress=False)
            tables[fold, chunk] = pd.read_parquet(out)
    assert len(built) == 2 and all(isinstance(b.stem[0], StandardizedLinear) for b in built)
    # folded, the flux is mapped from the file (one flush: contiguous), not copied
    assert len(views) == 13 + 2 and all(v is not None and not v.flags.writeable for v in views)
    ref = tables[False, 64]
    assert len(ref) == 90 and ref["id"].tolist() == [f"p{i}" for i in range(90)]
    assert np.isfinite(ref[["teff_pred", "logg_pred"]].to_numpy()).all()
    for key, table in tables.items():
        assert table["id"].tolist() == ref["id"].tolist(), key
        for t in ("teff", "logg"):
            np.testing.assert_array_equal(table[f"{t}_true"], ref[f"{t}_true"])
            scale = np.abs(ref[f"{t}_pred"]).max()
            assert np.abs(table[f"{t}_pred"] - ref[f"{t}_pred"]).max() < 1e-5 * scale, (key, t)
    # One split (rows read by index) goes the same way.
    test = pd.read_parquet(predict(run, data, tmp_path / "test.parquet", split="test", chunk_size=5, progress=False))
    merged = test.merge(ref, on="id", suffixes=("", "_all"))
    assert len(merged) == len(test) == 18
    np.testing.assert_allclose(merged["teff_pred"], merged["teff_pred_all"], rtol=1e-5)


def test_raw_targets_name_the_bad_objects_though_ids_are_read_only_for_a_message(tmp_path, monkeypatch):
    import h5py

    from astroreg.modalities import raw_targets

    path = _prepared_dataset(tmp_path / "p.h5", n=20)
    with h5py.File(path, "r+") as f:
        f["targets/LOGG_ADOP"][9] = -1.0
    recipe = recipe_from_dict({
        "name": "log", "dataset": {"path": str(path)}, "inputs": {"modality": "spectra"},
        "targets": [{"name": "logteff", "column": "TEFF_ADOP", "transform": "log10"},
                    {"name": "loglogg", "column": "LOGG_ADOP", "transform": "log10"}],
        "preprocess": {"spectra": {"grid": list(GRID)}},
        "model": {"name": "residual_mlp"},
    })
    reads = []
    ids = Dataset.ids
    monkeypatch.setattr(Dataset, "ids", property(lambda self: reads.append(1) or ids.fget(self)))
    with Dataset(path) as ds:
        good = raw_targets(recipe, ds, np.arange(0, 8))
        assert not reads  # no id decoded for valid targets
        with pytest.raises(ValueError, match=r"'loglogg': 1 value\(s\) <= 0 .*\['p9'\]"):
            raw_targets(recipe, ds, np.arange(5, 12))
        with pytest.raises(ValueError, match=r"\['p9'\]"):
            raw_targets(recipe, ds)
    np.testing.assert_allclose(good[:, 0], np.log10(_teff(path)[:8]))


def _teff(path):
    with Dataset(path) as ds:
        return ds.target("TEFF_ADOP")
