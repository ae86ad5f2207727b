"""Per-layer search dimensions: one draw per existing layer, counts first, lists in the best recipe."""

import json

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from torch import nn

from astroreg.config import load_recipe, recipe_from_dict
from astroreg.config._recipe import SearchDimension
from astroreg.data import DatasetWriter
from astroreg.models import _registry as model_registry
from astroreg.models import register_model
from astroreg.tuning import (
    _tune,
    best_recipe,
    sample_space,
    trials_frame,
    tune_recipe,
    tuning_base,
)

COLUMNS = ("a", "b", "c")
# The paper-004 style space, written with the per-layer keys before their counts.
SPACE = {
    "model.params.dense_units": {"type": "categorical", "choices": [4, 8, 16], "per_layer": "model.params.n_dense"},
    "model.params.n_dense": {"type": "int", "low": 1, "high": 3},
    "model.params.activation": {"type": "categorical", "choices": ["relu", "tanh"]},
    "model.params.kernels": {"type": "int", "low": 2, "high": 7, "per_layer": "model.params.n_dense"},
    "training.loss": {"type": "categorical", "choices": ["mse", "mae", "huber"]},
    "training.optimizer.name": {"type": "categorical", "choices": ["adam", "adamax", "sgd", "adamw"]},
}


def _layered_mlp(*, input_shape, n_outputs, n_dense: int = 1, dense_units=(8,), kernels=(3,),
                 activation: str = "relu") -> nn.Module:
    """Dense layers whose widths are a per-layer list; refuses a list of another length."""
    if len(dense_units) != n_dense or len(kernels) != n_dense:
        raise ValueError(f"n_dense {n_dense} but dense_units {list(dense_units)}, kernels {list(kernels)}")
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}[activation]
    layers, width = [], input_shape[0]
    for units in dense_units:
        layers += [nn.Linear(width, units), act()]
        width = units
    return nn.Sequential(*layers, nn.Linear(width, n_outputs))


@pytest.fixture
def layered_model():
    register_model("test_layered_mlp", input_kinds=("tabular",))(_layered_mlp)
    yield "test_layered_mlp"
    model_registry._BUILDERS.pop("test_layered_mlp", None)


def _space(raw=SPACE):
    return {k: SearchDimension(**v) for k, v in raw.items()}


def _recipe_dict(path, space=SPACE, **tuning):
    return {
        "name": "layers",
        "dataset": {"path": str(path)},
        "inputs": {"features": {"kind": "tabular", "columns": list(COLUMNS)}},
        "targets": [{"name": "y"}],
        "model": {"name": "test_layered_mlp", "params": {}},
        "training": {"epochs": 1, "batch_size": 32, "threads": 1},
        "tuning": {"startup_trials": 3, "pruner": "none", "space": space, **tuning},
    }


def test_only_the_layers_a_trial_has_are_drawn_as_lists_of_that_length():
    space = _space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    counts = set()
    for _ in range(30):
        trial = study.ask()
        values = sample_space(trial, space)
        n = values["model.params.n_dense"]
        counts.add(n)
        assert list(values) == list(SPACE)  # the recipe's order, whatever the drawing order
        for key in ("model.params.dense_units", "model.params.kernels"):
            assert len(values[key]) == n
            assert values[key] == [trial.params[f"{key}.{i}"] for i in range(n)]
            assert f"{key}.{n}" not in trial.params  # no draw for a layer that does not exist
        assert all(v in (4, 8, 16) for v in values["model.params.dense_units"])
        assert all(2 <= v <= 7 for v in values["model.params.kernels"])
        assert "model.params.dense_units" not in trial.params  # only the per-layer names
        study.tell(trial, 0.0)
    assert counts == {1, 2, 3}


def test_the_count_is_drawn_first_whatever_the_yaml_order():
    fixed = {"model.params.n_dense": 2, "model.params.dense_units.0": 16, "model.params.dense_units.1": 4,
             "model.params.kernels.0": 5, "model.params.kernels.1": 2, "model.params.activation": "tanh",
             "training.loss": "mae", "training.optimizer.name": "sgd"}
    forward = sample_space(optuna.trial.FixedTrial(fixed), _space())
    backward = sample_space(optuna.trial.FixedTrial(fixed), _space(dict(reversed(list(SPACE.items())))))
    assert forward == backward
    assert forward["model.params.dense_units"] == [16, 4] and forward["model.params.kernels"] == [5, 2]

    class Recording(optuna.trial.FixedTrial):
        def __init__(self, params):
            super().__init__(params)
            self.order = []

        def suggest_int(self, name, *args, **kw):
            self.order.append(name)
            return super().suggest_int(name, *args, **kw)

        def suggest_categorical(self, name, choices):
            self.order.append(name)
            return super().suggest_categorical(name, choices)

    trial = Recording(fixed)
    sample_space(trial, _space(dict(reversed(list(SPACE.items())))))
    assert trial.order[0] == "model.params.n_dense"
    assert trial.order.index("model.params.kernels.1") > trial.order.index("training.loss")


def test_per_layer_that_names_an_unknown_or_non_int_key_is_a_recipe_error(tmp_path):
    bad = dict(SPACE)
    bad["model.params.dense_units"] = {**SPACE["model.params.dense_units"], "per_layer": "model.params.n_layers"}
    with pytest.raises(ValueError, match=r"model.params.dense_units: per_layer 'model.params.n_layers' is not a key"):
        recipe_from_dict(_recipe_dict(tmp_path / "x.h5", bad))
    bad = dict(SPACE)
    bad["model.params.kernels"] = {**SPACE["model.params.kernels"], "per_layer": "model.params.activation"}
    with pytest.raises(ValueError, match=r"model.params.kernels: per_layer 'model.params.activation' must be a "
                                         r"plain int dimension.*got type categorical"):
        recipe_from_dict(_recipe_dict(tmp_path / "x.h5", bad))
    bad = dict(SPACE)
    bad["model.params.kernels"] = {**SPACE["model.params.kernels"], "per_layer": "model.params.dense_units"}
    with pytest.raises(ValueError, match=r"per_layer 'model.params.dense_units' must be a plain int dimension"):
        recipe_from_dict(_recipe_dict(tmp_path / "x.h5", bad))


def _dataset(path, n=160, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(COLUMNS)))
    y = x @ np.array([1.0, -0.5, 0.25]) + 0.1 * rng.normal(size=n)
    with DatasetWriter(path, targets={"y": ""}, tabular={c: "" for c in COLUMNS}) as w:
        w.append([f"o{i}" for i in range(n)], targets={"y": y}, tabular={c: x[:, j] for j, c in enumerate(COLUMNS)})
        w.make_splits({"train": 0.6, "val": 0.25, "test": 0.15}, seed=seed)
    return path


def test_a_study_over_layers_writes_lists_in_the_trials_and_the_best_recipe(layered_model, tmp_path):
    recipe = recipe_from_dict(_recipe_dict(_dataset(tmp_path / "d.h5")))
    assert tuning_base(recipe).model.name == layered_model  # the per-layer keys probe as lists
    res = tune_recipe(recipe, trials=3, storage=tmp_path / "s.db", out_dir=tmp_path / "out", progress=False)
    complete = res.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 3

    tuned = load_recipe(res.best_recipe)
    best = res.study.best_trial
    n = best.params["model.params.n_dense"]
    assert tuned.model.params["n_dense"] == n
    assert tuned.model.params["dense_units"] == [best.params[f"model.params.dense_units.{i}"] for i in range(n)]
    assert len(tuned.model.params["kernels"]) == n
    assert tuned.training.loss == best.params["training.loss"]
    assert tuned.training.optimizer.name == best.params["training.optimizer.name"]

    trials = pd.read_csv(res.trials_csv)
    assert {"model.params.dense_units", "model.params.kernels", "model.params.n_dense"} <= set(trials.columns)
    assert res.importance_plot is not None and res.importance_plot.stat().st_size > 1000
    for _, row in trials.iterrows():
        assert len(json.loads(row["model.params.dense_units"])) == row["model.params.n_dense"]
    assert list(trials["objective"].unique()) == ["val_loss"]

    # A trial written without the overrides attribute maps its per-layer params back to lists.
    t = res.study.best_trial
    attrs = {k: v for k, v in t.user_attrs.items() if k != _tune.OVERRIDES_ATTR}
    bare = optuna.create_study()
    bare.add_trial(optuna.trial.create_trial(params=t.params, distributions=t.distributions, value=t.value,
                                             user_attrs=attrs))
    _, overrides = best_recipe(recipe, bare)
    assert overrides["model.params.dense_units"] == tuned.model.params["dense_units"]
    assert len(trials_frame(bare)) == 1
