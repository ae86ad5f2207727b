"""Issue 9, finding 6: bad images and targets are named by object id and target, before training.

A NaN image is reported by its id (also when the rows are a slice, as ``predict``'s chunks
are), an infinite target by the target's name and the objects' ids before scikit-learn
sees it, and a constant target is refused when the preprocessing is fitted, which
``train`` does before the network trains.
"""

from __future__ import annotations

import numpy as np
import pytest

from astroreg.config import load_recipe
from astroreg.data import Dataset, DatasetWriter, ImageSpec
from astroreg.pipeline import train_recipe
from astroreg.modalities import RecipePreprocessor, raw_targets
from astroreg.preprocess import TargetScaler, apply_target_transform


def _images(path, *, flux=None, bad_image=None, n=40, size=8, seed=0):
    """``n`` small one-band images with ids ``obj-000`` ...; ``bad_image`` gets a NaN pixel."""
    rng = np.random.default_rng(seed)
    flux = rng.uniform(100, 1000, n) if flux is None else np.asarray(flux, float)
    level = np.where(np.isfinite(flux), flux, 0.0) / 100  # a bad label must not make a bad image
    img = rng.normal(0, 1, (n, 1, size, size)).astype("f4") + level[:, None, None, None].astype("f4")
    if bad_image is not None:
        img[bad_image, 0, 3, 4] = np.nan
    spec = ImageSpec(bands=("i",), height=size, width=size, pixel_scale=0.2)
    with DatasetWriter(path, images=spec, targets={"total_flux": "ADU"}) as w:
        w.append([f"obj-{i:03d}" for i in range(n)], images=img, targets={"total_flux": flux})
        w.make_splits({"train": 0.6, "val": 0.15, "test": 0.25}, seed=seed)
    return path


def _recipe(path, **overrides):
    return load_recipe("galaxy-flux", {"dataset.path": str(path), "inputs.crop": 8, "training.epochs": 1,
                                       "evaluation.baselines": [], "evaluation.reference": None, **overrides})


def _split(path, name):
    with Dataset(path) as ds:
        return ds.split(name)


# -- NaN images ---------------------------------------------------------------------------
def test_nan_image_in_a_predicted_chunk_is_named_by_id(tmp_path):
    clean = _images(tmp_path / "clean.h5")
    with Dataset(clean) as ds:
        pre = RecipePreprocessor.fit(_recipe(clean), ds, ds.split("train"))
    bad = _images(tmp_path / "bad.h5", bad_image=23)
    with Dataset(bad) as ds:
        # predict reads chunks as slices; the message must name the object, not its place in the chunk
        with pytest.raises(ValueError, match=r"1 image\(s\) contain NaN or inf pixels \(first: \['obj-023'\]\)"):
            pre.single.transform(ds, slice(20, 30))
        with pytest.raises(ValueError, match=r"first: \['obj-023'\]"):
            pre.single.transform(ds, np.array([23, 5]))
        assert pre.single.transform(ds, slice(0, 20)).shape == (20, 1, 8, 8)  # the clean rows still work


def test_nan_image_in_the_training_sample_is_named_by_id(tmp_path):
    first_train = int(_split(_images(tmp_path / "probe.h5"), "train")[3])
    path = _images(tmp_path / "bad.h5", bad_image=first_train)
    with Dataset(path) as ds, pytest.raises(ValueError, match=rf"first: \['obj-{first_train:03d}'\]"):
        RecipePreprocessor.fit(_recipe(path), ds, ds.split("train"))


def test_nan_feature_is_named_by_id(tmp_path):
    n = 30
    rng = np.random.default_rng(0)
    mag = rng.uniform(18, 24, n)
    mag[17] = np.nan
    path = tmp_path / "tab.h5"
    with DatasetWriter(path, targets={"z": ""}, tabular={"mag": "mag", "colour": "mag"}) as w:
        w.append([f"obj-{i:03d}" for i in range(n)], targets={"z": rng.uniform(0, 2, n)},
                 tabular={"mag": mag, "colour": rng.normal(0, 1, n)})
    recipe = load_recipe("galaxy-flux").with_overrides({
        "dataset.path": str(path), "inputs": {"modality": "tabular", "columns": ["mag", "colour"]},
        "targets": [{"name": "z"}], "model": {"name": "mlp", "params": {}}})
    with Dataset(path) as ds:
        pattern = r"NaN or inf in columns \['mag'\] for 1 object\(s\) \(first: \['obj-017'\]\)"
        with pytest.raises(ValueError, match=pattern):
            RecipePreprocessor.fit(recipe, ds, np.arange(n))
        pre = RecipePreprocessor.fit(recipe, ds, np.arange(10))
        with pytest.raises(ValueError, match=r"first: \['obj-017'\]"):
            pre.single.transform(ds, slice(10, 30))


# -- infinite targets -----------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("transform", ["log10", "none"])
def test_infinite_target_names_the_target_and_objects_before_sklearn(tmp_path, value, transform):
    probe = _images(tmp_path / "probe.h5")
    rows = _split(probe, "train")[[2, 5]]
    flux = np.random.default_rng(0).uniform(100, 1000, 40)
    flux[rows] = value
    path = _images(tmp_path / "inf.h5", flux=flux)
    recipe = _recipe(path).with_overrides({"targets": [{"name": "flux", "column": "total_flux",
                                                        "transform": transform}]})
    ids = sorted(f"obj-{r:03d}" for r in rows)
    pattern = (rf"target 'flux': 2 value\(s\) are infinite \(objects \['{ids[0]}', '{ids[1]}'\]\)"
               r".*NaN where it is missing")
    with Dataset(path) as ds:
        with pytest.raises(ValueError, match=pattern):
            RecipePreprocessor.fit(recipe, ds, np.sort(ds.split("train")))
        with pytest.raises(ValueError, match=pattern):
            raw_targets(recipe, ds)


def test_apply_target_transform_rejects_inf_but_keeps_nan_as_missing():
    out = apply_target_transform(np.array([1.0, np.nan, 100.0]), "log10", name="flux")
    np.testing.assert_array_equal(out, [0.0, np.nan, 2.0])
    with pytest.raises(ValueError, match=r"target 'flux': 1 value\(s\) are infinite \(objects \['b'\]\)"):
        apply_target_transform(np.array([1.0, np.inf]), "asinh", name="flux", ids=["a", "b"])
    with pytest.raises(ValueError, match=r"targets in columns \[1\] are infinite"):
        TargetScaler().fit(np.array([[1.0, 2.0], [3.0, -np.inf]]))


# -- constant targets -----------------------------------------------------------------------
def test_constant_target_is_refused_at_fit(tmp_path):
    path = _images(tmp_path / "const.h5", flux=np.full(40, 500.0))
    with Dataset(path) as ds, pytest.raises(
            ValueError, match=r"target 'log_total_flux' has the same value \(2\.69897\) for all 24 labelled objects "
                              r"of the training split of .*const\.h5.*drop it from the recipe's targets "
                              r"or fix the data"):
        RecipePreprocessor.fit(_recipe(path), ds, ds.split("train"))


def test_constant_on_the_training_split_only_is_refused(tmp_path):
    train = _split(_images(tmp_path / "probe.h5"), "train")
    flux = np.random.default_rng(0).uniform(100, 1000, 40)
    flux[train] = 300.0
    flux[train[:3]] = np.nan  # missing labels do not count as spread
    path = _images(tmp_path / "const.h5", flux=flux)
    with Dataset(path) as ds, pytest.raises(ValueError, match=r"same value .* for all 21 labelled objects"):
        RecipePreprocessor.fit(_recipe(path), ds, ds.split("train"))


def test_unlabelled_training_target_is_refused(tmp_path):
    train = _split(_images(tmp_path / "probe.h5"), "train")
    flux = np.random.default_rng(0).uniform(100, 1000, 40)
    flux[train] = np.nan
    path = _images(tmp_path / "nolabel.h5", flux=flux)
    with Dataset(path) as ds, pytest.raises(ValueError, match=r"'log_total_flux' has no labelled value \(all NaN\)"):
        RecipePreprocessor.fit(_recipe(path), ds, ds.split("train"))


def test_train_refuses_a_constant_target_before_training(tmp_path):
    path = _images(tmp_path / "const.h5", flux=np.full(40, 500.0))
    runs = tmp_path / "runs"
    with pytest.raises(ValueError, match=r"target 'log_total_flux' has the same value"):
        train_recipe(_recipe(path), runs_root=runs, progress=False)
    assert not list(runs.rglob("model.pt")) and not list(runs.rglob("history.csv"))
