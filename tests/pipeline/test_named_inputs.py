"""Named inputs end to end: a kind registered from the test suite, and two-input fusion recipes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pytest
from torch import nn

from astroreg.config import InputSettings, recipe_from_dict
from astroreg.data import DatasetWriter, ImageSpec
from astroreg.modalities import LazyIds, Modality, RecipePreprocessor, register_modality
from astroreg.modalities import _base as modality_registry
from astroreg.models import register_model
from astroreg.models import _registry as model_registry
from astroreg.pipeline import Run, predict, train_recipe
from astroreg.preprocess import FeatureScaler

BANDS = ("u", "g", "r", "i", "z")


def _two_input_dataset(path, n: int = 900, size: int = 16, seed: int = 0):
    """Blobs whose brightness is one half of the target and a catalogue colour the other half.

    target = log10(flux) + 2 colour: the image alone cannot give the colour, the catalogue
    alone cannot give the flux.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    spec = ImageSpec(bands=("i",), height=size, width=size, pixel_scale=0.2)
    flux = 10 ** rng.uniform(2.5, 4.0, n)
    colour = rng.uniform(-0.5, 0.5, n)
    mags = 22 - 2.5 * np.log10(flux)[:, None] + np.outer(colour, np.linspace(1, -1, len(BANDS)))
    mags += rng.normal(0, 0.02, mags.shape)
    sigma = 2.0
    img = flux[:, None, None] * np.exp(-(xx**2 + yy**2)[None] / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    img = img + rng.normal(0, 2.0, img.shape)
    target = np.log10(flux) + 2 * colour
    with DatasetWriter(path, images=spec, targets={"y": "dex"}, tabular={b: "mag" for b in BANDS}) as w:
        w.append([f"o{i}" for i in range(n)], images=img[:, None].astype("f4"), targets={"y": target},
                 tabular={b: mags[:, j] for j, b in enumerate(BANDS)})
        w.make_splits({"train": 0.7, "val": 0.1, "test": 0.2}, seed=seed)
    return path


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    return _two_input_dataset(tmp_path_factory.mktemp("fusion") / "two.h5")


def _recipe(path, model: dict, inputs: dict, epochs: int = 12, **extra) -> object:
    return recipe_from_dict({
        "name": "two-inputs",
        "dataset": {"path": str(path)},
        "inputs": inputs,
        "targets": [{"name": "y", "unit": "dex"}],
        "model": model,
        "training": {"epochs": epochs, "batch_size": 32, "optimizer": {"name": "adam", "lr": 2e-3}, "seed": 0,
                     "threads": 1},
        "evaluation": {"baselines": [{"name": "mean", "kind": "mean"}]},
        **extra,
    }, source="test")


FUSION_INPUTS = {"image": {"kind": "images"}, "photometry": {"kind": "tabular", "columns": list(BANDS)}}


@pytest.mark.parametrize("model", [
    {"name": "fusion_early", "params": {"backbones": {"image": {"name": "paper_cnn", "params": {"dropout": 0.0}}},
                                        "head": [32]}},
    {"name": "fusion_late", "params": {"backbones": {"image": {"name": "paper_cnn", "params": {"dropout": 0.0}}}}},
], ids=["early", "late"])
def test_fusion_recipe_beats_the_mean_through_the_engine(two_inputs, tmp_path, model):
    recipe = _recipe(two_inputs, model, FUSION_INPUTS)
    run = train_recipe(recipe, runs_root=tmp_path, progress=False)
    metrics = Run.open(run).metrics["models"]
    fused, mean = metrics[model["name"]]["y"]["mse"], metrics["mean"]["y"]["mse"]
    # The target's variance is ~0.5 dex^2; the fused network must take most of it.
    assert fused < 0.3 * mean, (fused, mean)
    # Predict reads both named inputs chunk by chunk (chunks smaller than the test split).
    out = predict(run, two_inputs, tmp_path / "pred.parquet", split="test", chunk_size=50, progress=False)
    frame = pd.read_parquet(out)
    saved = pd.read_parquet(run / "predictions.parquet")
    np.testing.assert_allclose(frame["y_pred"], saved["y_pred"], rtol=1e-5, atol=1e-5)


def test_a_single_input_model_refuses_a_second_input_naming_it(two_inputs, tmp_path):
    recipe = _recipe(two_inputs, {"name": "paper_cnn"}, FUSION_INPUTS)
    with pytest.raises(ValueError, match="photometry|single-input|one input"):
        train_recipe(recipe, runs_root=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # refused before a run folder was claimed


def test_a_model_refuses_an_input_of_a_kind_it_does_not_take(two_inputs, tmp_path):
    recipe = _recipe(two_inputs, {"name": "paper_cnn"}, {"photometry": {"kind": "tabular"}})
    with pytest.raises(ValueError, match="photometry"):
        train_recipe(recipe, runs_root=tmp_path, progress=False)


# -- a new kind, registered from here, without touching the package ----------------------------
class ColoursSettings(InputSettings):
    """Adjacent-band colours of catalogue magnitudes."""

    kind: Literal["test_colours"] = "test_colours"
    bands: list[str]


@dataclass(eq=False)
class Colours(Modality):
    """A toy kind: colours m_k - m_{k+1} from ``/tabular`` magnitudes, standardised on training."""

    kind: ClassVar[str] = "test_colours"
    Settings: ClassVar[type[InputSettings]] = ColoursSettings
    group: ClassVar[str] = "tabular"

    scaler: FeatureScaler | None = None

    def _colours(self, dataset, rows) -> np.ndarray:
        idx = np.arange(len(dataset))[rows] if isinstance(rows, slice) else np.asarray(rows)
        mags = dataset.tabular(self.settings.bands, idx).to_numpy(dtype=np.float64)
        return mags[:, :-1] - mags[:, 1:]

    def fit(self, dataset, rows, *, seed=0):
        self.check_dataset(dataset)
        self.scaler = FeatureScaler(kind="standard", columns=tuple(self.settings.bands[:-1]))
        self.scaler.fit(self._colours(dataset, rows), ids=LazyIds(dataset, rows))
        self.shape = (len(self.settings.bands) - 1,)
        return self

    def transform(self, dataset, rows, *, out=None):
        return self.scaler.transform(self._colours(dataset, rows), ids=LazyIds(dataset, rows))

    @classmethod
    def shape_from_settings(cls, settings, dataset):
        return (len(settings.bands) - 1,)


def _colour_net(*, input_shape, n_outputs, width: int = 32) -> nn.Module:
    """A small dense net on the colours (``n_outputs=0``: its features)."""
    body = nn.Sequential(nn.Linear(input_shape[0], width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
    if n_outputs == 0:
        body.out_features = width
        return body
    return nn.Sequential(body, nn.Linear(width, n_outputs))


@pytest.fixture
def toy_kind():
    """Register the toy kind and a model for it; leave the registries as they were afterwards."""
    from astroreg.config import _inputs as settings_registry

    register_modality(Colours)
    register_model("test_colour_net", input_kinds=("test_colours",))(_colour_net)
    yield
    modality_registry._MODALITIES.pop("test_colours", None)
    settings_registry._SETTINGS.pop("test_colours", None)
    model_registry._BUILDERS.pop("test_colour_net", None)


def _colour_dataset(path, n: int = 800, seed: int = 1):
    rng = np.random.default_rng(seed)
    mags = rng.uniform(18, 22, (n, len(BANDS)))
    colours = mags[:, :-1] - mags[:, 1:]
    y = colours @ np.array([0.5, -1.0, 0.3, 0.8]) + 0.3 * np.sin(3 * colours[:, 0])
    with DatasetWriter(path, targets={"y": ""}, tabular={b: "mag" for b in BANDS}) as w:
        w.append([f"s{i}" for i in range(n)], targets={"y": y}, tabular={b: mags[:, j] for j, b in enumerate(BANDS)})
        w.make_splits({"train": 0.7, "val": 0.1, "test": 0.2}, seed=seed)
    return path


def test_a_kind_registered_in_the_test_suite_trains_predicts_and_reloads(toy_kind, tmp_path):
    data = _colour_dataset(tmp_path / "colours.h5")
    recipe = _recipe(data, {"name": "test_colour_net"},
                     {"colours": {"kind": "test_colours", "bands": list(BANDS)}}, epochs=20)
    assert recipe.input_kinds == {"colours": "test_colours"}
    run = train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)
    metrics = Run.open(run).metrics["models"]
    assert metrics["test_colour_net"]["y"]["mse"] < 0.2 * metrics["mean"]["y"]["mse"]
    # The fitted kind is stored as plain data and read back into the registered class.
    pre = RecipePreprocessor.load(run / "preprocessors.json")
    assert isinstance(pre.inputs["colours"], Colours) and pre.input_shapes == {"colours": (4,)}
    out = predict(run, data, tmp_path / "pred.parquet", progress=False)
    assert len(pd.read_parquet(out)) == 800


def test_an_unregistered_kind_in_a_run_folder_is_refused_by_name(toy_kind, tmp_path):
    data = _colour_dataset(tmp_path / "colours.h5", n=300)
    recipe = _recipe(data, {"name": "test_colour_net"}, {"colours": {"kind": "test_colours", "bands": list(BANDS)}},
                     epochs=1)
    run = train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)
    modality_registry._MODALITIES.pop("test_colours")
    with pytest.raises(ValueError, match="test_colours"):
        RecipePreprocessor.load(run / "preprocessors.json")
    register_modality(Colours)


def test_the_old_single_input_form_is_one_named_input():
    old = recipe_from_dict({
        "name": "old", "dataset": {"path": "x.h5"}, "inputs": {"modality": "spectra"},
        "preprocess": {"spectra": {"grid": [3.6, 3.7, 100], "standardize": False}, "targets": "robust"},
        "targets": [{"name": "t"}], "model": {"name": "mlp"},
    })
    assert list(old.inputs) == ["flux"] and old.inputs["flux"].grid == (3.6, 3.7, 100)
    assert old.inputs["flux"].standardize is False and old.preprocess.targets == "robust"
    # --set with the old keys reaches the named input
    assert old.with_overrides({"preprocess.spectra.standardize": True}).inputs["flux"].standardize is True
    with pytest.raises(ValueError, match="move it to inputs"):
        recipe_from_dict({"name": "mixed", "dataset": {"path": "x.h5"}, "inputs": {"flux": {"kind": "spectra"}},
                          "preprocess": {"spectra": {"standardize": False}}, "targets": [{"name": "t"}],
                          "model": {"name": "mlp"}})
    with pytest.raises(ValueError, match=r"inputs\.flux\.kind 'spectrum' is not one of the registered kinds"):
        recipe_from_dict({"name": "bad", "dataset": {"path": "x.h5"}, "inputs": {"flux": {"kind": "spectrum"}},
                          "targets": [{"name": "t"}], "model": {"name": "mlp"}})
    with pytest.raises(ValueError, match=r"inputs\.flux.*grdi"):
        recipe_from_dict({"name": "bad", "dataset": {"path": "x.h5"},
                          "inputs": {"flux": {"kind": "spectra", "grdi": [3.6, 3.7, 10]}},
                          "targets": [{"name": "t"}], "model": {"name": "mlp"}})
