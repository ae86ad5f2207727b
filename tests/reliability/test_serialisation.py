"""Issue 9, finding 3 and the file faults of finding 5: opening a run folder runs no code.

The fitted preprocessing is plain JSON (``preprocessors.json``); an old pickled
``preprocessors.joblib`` and a ``.json`` holding pickle bytes are refused unread; a
truncated or doctored ``preprocessors.json`` or ``model.pt`` is a one-line error naming
the file. The run folders here are built by hand (fit, save, an untrained network), so no
test trains.
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from astroreg.cli import main
from astroreg.config import load_recipe, recipe_from_dict, recipe_to_yaml
from astroreg.data import Dataset, DatasetWriter, SpectraSpec
from astroreg.models import create_model
from astroreg.pipeline import Run, evaluate_run, load_model, predict, save_model
from astroreg.modalities import RecipePreprocessor


class _Payload:
    """Unpickling it creates ``path``: the proof that a file's code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _make_run(recipe, dataset, folder):
    """A complete run folder: config, fitted preprocessor, an untrained network, splits."""
    folder.mkdir()
    (folder / "config.yaml").write_text(recipe_to_yaml(recipe))
    with Dataset(dataset) as ds:
        pre = RecipePreprocessor.fit(recipe, ds, ds.split("train"))
        np.savez(folder / "splits.npz", **{s: ds.split(s) for s in ("train", "val", "test")})
    pre.save(folder / "preprocessors.json")
    torch.manual_seed(0)
    net = create_model(recipe.model.name, input_shapes=pre.input_shapes, input_kinds=pre.input_kinds,
                       n_outputs=len(recipe.targets), **recipe.model.params)
    save_model(folder / "model.pt", net, recipe.model.name, dict(recipe.model.params), pre.input_shapes,
               pre.input_kinds, len(recipe.targets))
    return folder


@pytest.fixture
def image_recipe(blob_dataset):
    return load_recipe("galaxy-flux", {"dataset.path": str(blob_dataset), "inputs.crop": 32})


@pytest.fixture
def run_dir(image_recipe, blob_dataset, tmp_path):
    return _make_run(image_recipe, blob_dataset, tmp_path / "run")


def _cli(capsys, *argv):
    """Exit status and stderr of ``astroreg ARGV``."""
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def _assert_one_line_error(rc, err, *names):
    assert rc == 2
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for name in names:
        assert name in err


def _roundtrip_inputs(recipe, dataset, tmp_path, rows):
    with Dataset(dataset) as ds:
        pre = RecipePreprocessor.fit(recipe, ds, ds.split("train"))
        path = pre.save(tmp_path / "preprocessors.json")
        doc = json.loads(path.read_text(encoding="utf-8"))  # plain JSON, not a pickle
        assert (doc["format"], doc["version"]) == ("astroreg-preprocessor", 2)
        back = RecipePreprocessor.load(path)
        before, after = pre.single.transform(ds, rows), back.single.transform(ds, rows)
    assert before.dtype == after.dtype and np.array_equal(before, after)  # bit for bit
    y = np.random.default_rng(0).normal(size=(7, len(pre.target_names)))
    assert np.array_equal(pre.unscale_targets(y), back.unscale_targets(y))
    assert np.array_equal(pre.scale_targets(y), back.scale_targets(y))
    assert (back.input_kinds, back.target_names, back.input_shapes) == (pre.input_kinds, pre.target_names,
                                                                         pre.input_shapes)
    # Saving the loaded one again gives the same file: every field and fitted array came back.
    assert back.save(tmp_path / "again.json").read_text() == path.read_text()
    return pre, back


# -- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("targets", ["standard", "robust", "none"])
def test_image_preprocessor_round_trips_bit_for_bit(image_recipe, blob_dataset, tmp_path, targets):
    recipe = image_recipe.with_overrides({"preprocess.targets": targets, "preprocess.images.stretch": "asinh"})
    _roundtrip_inputs(recipe, blob_dataset, tmp_path, slice(0, 64))


@pytest.mark.parametrize("features", ["standard", "robust"])
def test_tabular_preprocessor_round_trips_bit_for_bit(blob_dataset, tmp_path, features):
    recipe = recipe_from_dict({
        "name": "tab", "dataset": {"path": str(blob_dataset)},
        "inputs": {"modality": "tabular", "columns": ["R_e", "bt"]},
        "targets": [{"name": "log_total_flux", "column": "total_flux", "transform": "log10"}],
        "preprocess": {"features": features, "targets": "robust"},
        "model": {"name": "mlp"},
    })
    pre, back = _roundtrip_inputs(recipe, blob_dataset, tmp_path, np.arange(0, 600, 3))
    assert type(back.single.features.scaler_) is type(pre.single.features.scaler_)


LOGLAM = np.linspace(3.60, 3.66, 128)


def _spectra_dataset(path, n=80, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.05, 0.6, n)
    line = np.exp(-0.5 * ((LOGLAM - 3.63) / 0.0015) ** 2)
    flux = (1 - depth[:, None] * line[None]) * rng.uniform(5, 50, (n, 1))
    flux += 0.01 * rng.normal(size=flux.shape)
    spec = SpectraSpec(n_pixels=LOGLAM.size, wavelength=tuple(10**LOGLAM), with_mask=False)
    with DatasetWriter(path, spectra=spec, targets={"a": "K"}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux, "ivar": np.ones_like(flux)},
                 targets={"a": 5000 + 3000 * depth})
        w.make_splits({"train": 0.6, "val": 0.15, "test": 0.25}, seed=0)
    return path


@pytest.mark.parametrize("standardize", [True, False])
def test_spectra_preprocessor_round_trips_bit_for_bit(tmp_path, standardize):
    path = _spectra_dataset(tmp_path / "spec.h5")
    recipe = recipe_from_dict({
        "name": "spec", "dataset": {"path": str(path)}, "inputs": {"modality": "spectra"},
        "targets": [{"name": "a", "unit": "K"}],
        "preprocess": {"spectra": {"grid": [3.601, 3.659, 96], "standardize": standardize}},
        "model": {"name": "residual_mlp", "params": {"stem": 8, "blocks": [8], "heads": [4]}},
    })
    pre, back = _roundtrip_inputs(recipe, path, tmp_path, np.arange(80))
    assert np.array_equal(pre.single.spectra.wavelength_grid_.wavelength(), back.single.spectra.wavelength_grid_.wavelength())


# -- code in a run folder is never run ----------------------------------------------------------
def test_old_pickled_run_folder_is_refused_without_unpickling(run_dir, blob_dataset, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    (run_dir / "preprocessors.json").unlink()
    (run_dir / "preprocessors.joblib").write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ValueError, match=r"preprocessors\.joblib is from an old, pickle-based .*could run code"
                                         r"|preprocessors\.joblib is from an old, pickle-based .*can run code"):
        Run.open(run_dir)
    with pytest.raises(ValueError, match="old, pickle-based"):
        RecipePreprocessor.load(run_dir / "preprocessors.joblib")
    rc, err = _cli(capsys, "predict", run_dir, "--data", blob_dataset, "--out", tmp_path / "p.parquet")
    _assert_one_line_error(rc, err, "preprocessors.joblib", "train the recipe again")
    rc, err = _cli(capsys, "evaluate", run_dir)
    _assert_one_line_error(rc, err, "preprocessors.joblib")
    assert not marker.exists()
    assert not (tmp_path / "p.parquet").exists()


def test_pickle_bytes_in_preprocessors_json_are_refused_unread(run_dir, blob_dataset, tmp_path, capsys):
    marker = tmp_path / "code-ran"
    (run_dir / "preprocessors.json").write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(ValueError, match=r"preprocessors\.json holds pickle data.*never unpickles"):
        RecipePreprocessor.load(run_dir / "preprocessors.json")
    with pytest.raises(ValueError, match=r"preprocessors\.json holds pickle data"):
        Run.open(run_dir)  # refused on opening, before any work
    with pytest.raises(ValueError, match=r"preprocessors\.json"):
        predict(run_dir, blob_dataset, tmp_path / "p.parquet", progress=False)
    with pytest.raises(ValueError, match=r"preprocessors\.json"):
        evaluate_run(run_dir, progress=False)
    rc, err = _cli(capsys, "predict", run_dir, "--data", blob_dataset, "--out", tmp_path / "p.parquet")
    _assert_one_line_error(rc, err, "preprocessors.json")
    assert not marker.exists()


# -- truncated and doctored files ----------------------------------------------------------------
def test_truncated_preprocessors_json_is_a_one_line_error(run_dir, blob_dataset, tmp_path, capsys):
    path = run_dir / "preprocessors.json"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"preprocessors\.json is truncated or not an astroreg preprocessor file"
                                         r".*train the run again"):
        RecipePreprocessor.load(path)
    with pytest.raises(ValueError, match=r"preprocessors\.json is truncated"):
        Run.open(run_dir)
    rc, err = _cli(capsys, "predict", run_dir, "--data", blob_dataset, "--out", tmp_path / "p.parquet")
    _assert_one_line_error(rc, err, str(path), "truncated")


def _doctor(doc, how):
    pre = doc["preprocessor"]
    image = pre["inputs"]["image"]["fields"]
    if how == "unknown class":
        pre["targets"]["__class__"] = "Popen"
    elif how == "unknown kind":
        pre["inputs"]["image"]["__input__"] = "os.system"
    elif how == "foreign settings":
        image["settings"] = {"kind": "images", "crop": "rm -rf ~"}
    elif how == "missing field":
        del image["shape"]
    elif how == "unknown field":
        pre["run_this"] = "os.system('rm -rf ~')"
    elif how == "wrong type":
        image["shape"] = ["1", 32, 32]
    elif how == "short array":
        image["images"]["fitted"]["scale_"]["__ndarray__"]["data"] = []
    elif how == "array of the wrong length":
        pre["targets"]["fitted"]["scaler_"]["fitted"]["mean_"]["__ndarray__"].update(shape=[2], data=[1.0, 2.0])
    elif how == "missing fitted array":
        del image["images"]["fitted"]["scale_"]
    elif how == "not an object":
        doc["preprocessor"] = [1, 2]
    return doc


@pytest.mark.parametrize("how", ["unknown class", "unknown kind", "foreign settings", "missing field", "unknown field",
                                 "wrong type", "short array",
                                 "array of the wrong length", "missing fitted array", "not an object"])
def test_doctored_preprocessors_json_is_refused(run_dir, how):
    path = run_dir / "preprocessors.json"
    path.write_text(json.dumps(_doctor(json.loads(path.read_text()), how)))
    with pytest.raises(ValueError, match=r"preprocessors\.json is truncated or not an astroreg preprocessor file"):
        RecipePreprocessor.load(path)


@pytest.mark.parametrize("version, fmt", [(3, "astroreg-preprocessor"), (2, "something-else")])
def test_other_format_or_version_is_refused(run_dir, version, fmt):
    path = run_dir / "preprocessors.json"
    doc = json.loads(path.read_text())
    doc.update(version=version, format=fmt)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=r"preprocessors\.json .*(format version 3|'format' is not)"):
        RecipePreprocessor.load(path)


@pytest.mark.parametrize("cut", [0, 100, "half", -20])
def test_truncated_model_pt_is_a_one_line_error(run_dir, blob_dataset, tmp_path, capsys, cut):
    path = run_dir / "model.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if cut == "half" else data[:cut])
    with pytest.raises(ValueError, match=r"model\.pt is truncated or not an astroreg model file.*train the run again"):
        load_model(path)
    rc, err = _cli(capsys, "predict", run_dir, "--data", blob_dataset, "--out", tmp_path / "p.parquet")
    _assert_one_line_error(rc, err, str(path))
    assert not (tmp_path / "p.parquet").exists()


def test_model_pt_holding_pickled_code_is_refused_unread(run_dir, tmp_path):
    marker = tmp_path / "code-ran"
    (run_dir / "model.pt").write_bytes(pickle.dumps({"model": _Payload(str(marker))}))
    with pytest.raises(ValueError, match=r"model\.pt is truncated or not an astroreg model file"):
        Run.open(run_dir).load_network()
    assert not marker.exists()


@pytest.mark.parametrize("change, message", [
    ({"model": "no_such_net"}, r"model 'no_such_net' is not one of"),
    ({"input_shapes": {"image": (1, 64, 64)}}, r"input 'image' has shape \(1, 64, 64\), which differs from the "
                                              r"preprocessor's \(1, 32, 32\)"),
    ({"input_shapes": {"image": (1, -3, 32)}}, r"not a shape of positive integers"),
    ({"n_outputs": 3}, r"n_outputs 3 differs"),
    ({"params": {"dropout": 0.2, "no_such_param": 1}}, r"weights do not fit network 'paper_cnn'"),
    ({"state_dict": "weights"}, r"state_dict is not a dict of named tensors"),
    ("shrink", r"weights do not fit network 'paper_cnn'"),
    ("not a dict", r"not the keys"),
])
def test_doctored_model_payload_is_refused(run_dir, change, message):
    path = run_dir / "model.pt"
    payload = torch.load(path, weights_only=True)
    if change == "shrink":
        key = next(iter(payload["state_dict"]))
        payload["state_dict"][key] = payload["state_dict"][key][:1]
    elif change == "not a dict":
        payload = [1, 2, 3]
    else:
        payload.update(change)
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"model\.pt is truncated or not an astroreg model file \(.*" + message):
        Run.open(run_dir).load_network()


def test_a_complete_run_folder_still_predicts(run_dir, blob_dataset, tmp_path, capsys):
    rc, err = _cli(capsys, "predict", run_dir, "--data", blob_dataset, "--out", tmp_path / "p.parquet",
                   "--quiet", "--backend", "eager")
    assert rc == 0, err
    assert os.path.getsize(tmp_path / "p.parquet") > 0
