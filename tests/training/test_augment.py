"""Gaussian-noise augmentation of the training spectra (training.augment): sizes, noise level, splits."""

import numpy as np
import pytest

from astroreg.config import recipe_from_dict
from astroreg.data import Dataset, DatasetWriter, SpectraSpec
from astroreg.modalities import RecipePreprocessor, raw_targets
from astroreg.training import fit_network
from astroreg.preprocess import add_noisy_copies
from astroreg.training._data import BatchSource

LOGLAM = np.linspace(3.60, 3.66, 128)
LOW, HIGH = 0.02, 0.06


@pytest.fixture(scope="module")
def spectra(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 300
    d = rng.uniform(0.1, 0.6, (n, 2))
    flux = (1 + 0.5 * np.sin(2 * np.pi * (LOGLAM - 3.6) / 0.02))[None] * (
        1 - d[:, :1] * np.exp(-0.5 * ((LOGLAM - 3.62) / 0.002) ** 2)
        - d[:, 1:] * np.exp(-0.5 * ((LOGLAM - 3.645) / 0.002) ** 2))
    path = tmp_path_factory.mktemp("aug") / "spec.h5"
    spec = SpectraSpec(n_pixels=LOGLAM.size, wavelength=tuple(10**LOGLAM), with_mask=False)
    with DatasetWriter(path, spectra=spec, targets={"a": "", "b": ""}, tabular={"w": ""}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux, "ivar": np.ones_like(flux)},
                 targets={"a": d[:, 0], "b": d[:, 0] * d[:, 1]}, tabular={"w": rng.uniform(0.5, 2, n)})
        w.make_splits({"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    recipe = recipe_from_dict({
        "name": "aug", "dataset": {"path": str(path)}, "inputs": {"modality": "spectra"},
        "targets": [{"name": "a"}, {"name": "b"}],
        "preprocess": {"spectra": {"grid": [3.601, 3.659, 120]}},
        "model": {"name": "residual_mlp", "params": {"stem": 8, "blocks": [8], "heads": [4]}},
        "training": {"epochs": 1, "batch_size": 64, "seed": 3, "weight_column": "w",
                     "augment": {"copies": 2, "noise_fraction": [LOW, HIGH]}},
    })
    with Dataset(path) as ds:
        pre = RecipePreprocessor.fit(recipe, ds, ds.split("train"))
        yield recipe, ds, pre


def _source(recipe, ds, pre, rows, *, in_memory, copies=2, seed=3):
    y = pre.scale_targets(raw_targets(recipe, ds, rows))
    w = ds.tabular(["w"], rows)["w"].to_numpy()
    return BatchSource(ds.path, rows, pre, y, w, in_memory=in_memory, copies=copies,
                       noise_fraction=(LOW, HIGH), seed=seed)


def _relative_noise(src, n):
    x = np.asarray(src[np.arange(len(src))][0]["flux"])  # batches are {input name: tensor}
    orig = x[:n]
    ratios = [np.std(x[c * n:(c + 1) * n] - orig, axis=1) / np.std(orig, axis=1) for c in (1, 2)]
    return x, np.concatenate(ratios)


@pytest.mark.parametrize("in_memory", [True, False])
def test_copies_triple_the_training_set_with_noise_of_the_requested_size(spectra, in_memory):
    recipe, ds, pre = spectra
    train = ds.split("train")
    n = len(train)
    src = _source(recipe, ds, pre, train, in_memory=in_memory)
    assert len(src) == 3 * n
    x, ratio = _relative_noise(src, n)
    np.testing.assert_allclose(x[:n], pre.single.transform(ds, train), atol=1e-6)  # originals first, unchanged
    # 120 pixels: the measured std of the noise scatters ~7% around the drawn level.
    assert ratio.min() > 0.75 * LOW and ratio.max() < 1.25 * HIGH
    assert np.median(ratio) == pytest.approx((LOW + HIGH) / 2, rel=0.2)
    assert not np.allclose(x[n:2 * n], x[2 * n:])  # the two copies differ
    _, y, w = src[np.arange(len(src))]
    for c in (1, 2):
        np.testing.assert_array_equal(y[c * n:(c + 1) * n], y[:n])
        np.testing.assert_array_equal(w[c * n:(c + 1) * n], w[:n])


def test_in_memory_copies_are_seeded(spectra):
    recipe, ds, pre = spectra
    rows = ds.split("train")[:40]
    a = _source(recipe, ds, pre, rows, in_memory=True)._x["flux"]
    b = _source(recipe, ds, pre, rows, in_memory=True)._x["flux"]
    c = _source(recipe, ds, pre, rows, in_memory=True, seed=4)._x["flux"]
    assert np.array_equal(a, b) and not np.array_equal(a[40:], c[40:])


def test_fit_augments_train_only_and_counts_copies_in_steps(spectra, tmp_path, monkeypatch):
    import astroreg.training._fit as fit_mod

    recipe, ds, pre = spectra
    made, seen = [], {}
    orig_init, module_cls = BatchSource.__init__, fit_mod.RegressionModule

    def spy_source(self, *args, **kw):
        orig_init(self, *args, **kw)
        made.append(self)

    def spy_module(*args, **kw):
        seen["total_steps"] = kw["total_steps"]
        return module_cls(*args, **kw)

    monkeypatch.setattr(BatchSource, "__init__", spy_source)
    monkeypatch.setattr(fit_mod, "RegressionModule", spy_module)
    splits = {k: ds.split(k) for k in ("train", "val")}
    fit = fit_network(recipe.with_overrides({"training.epochs": 2}), ds, splits, pre, tmp_path, progress=False)
    train, val = made
    assert len(train) == 3 * len(splits["train"]) and train.copies == 2
    assert len(val) == len(splits["val"]) and val.copies == 0
    np.testing.assert_allclose(np.asarray(val[np.arange(len(val))][0]["flux"]), pre.single.transform(ds, splits["val"]), atol=1e-6)
    # The warm-up/cosine schedule and the throughput count the noisy copies.
    assert seen["total_steps"] == 2 * int(np.ceil(3 * len(splits["train"]) / 64))
    assert fit.history["train_objects_per_s"].iloc[0] == pytest.approx(
        3 * len(splits["train"]) / fit.history["epoch_time_s"].iloc[0])


def test_copies_for_images_is_an_error(blob_dataset, tmp_path):
    from astroreg.config import load_recipe
    from astroreg.pipeline import resolve_splits

    recipe = load_recipe("galaxy-flux", {"dataset.path": str(blob_dataset), "inputs.crop": 16,
                                         "training.augment.copies": 1, "evaluation.baselines": [],
                                         "evaluation.reference": None})
    with Dataset(blob_dataset) as ds:
        splits = resolve_splits(recipe, ds)
        pre = RecipePreprocessor.fit(recipe, ds, splits["train"])
        with pytest.raises(ValueError, match=r"training.augment.copies is 1 but input 'image' is kind 'images', which has no noise augmentation"):
            fit_network(recipe, ds, splits, pre, tmp_path, progress=False)


def test_add_noisy_copies_checks_shape():
    with pytest.raises(ValueError, match=r"shape \(30, n_pixels\)"):
        add_noisy_copies(np.zeros((20, 5), np.float32), 10, 2, (0.01, 0.05), 0)
