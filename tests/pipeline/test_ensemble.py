"""training.ensemble: members from their own seeds, one model.pt, predictions their mean."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from conftest import make_tabular_dataset

from astroreg.config import recipe_from_dict
from astroreg.data import Dataset
from astroreg.models import create_model, load_model
from astroreg.models._ensemble import MeanEnsemble, ensemble_of, split_members
from astroreg.pipeline import Run, predict, train_recipe
from astroreg.pipeline._predict import predict_frame


@pytest.fixture(scope="module")
def noisy_dataset(tmp_path_factory):
    """A small, noisy non-linear problem, where one network's start and batch order matter."""
    rng = np.random.default_rng(7)
    n = 900
    x = rng.normal(size=(n, 4))
    y = np.sin(2 * x[:, 0]) * x[:, 1] + 0.5 * x[:, 2] ** 2 + 0.3 * rng.normal(size=n)
    return make_tabular_dataset(tmp_path_factory.mktemp("ens") / "ens.h5", {f"x{i}": x[:, i] for i in range(4)},
                                {"y": y}, splits={"train": 0.5, "val": 0.2, "test": 0.3})


def _recipe(path, **training):
    return recipe_from_dict({
        "name": "ens",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "tabular", "columns": ["x0", "x1", "x2", "x3"]},
        "targets": [{"name": "y"}],
        "model": {"name": "mlp", "params": {"hidden": [64, 64], "dropout": 0.0}},
        "training": {"epochs": 25, "batch_size": 32, "optimizer": {"name": "adam", "lr": 3e-3}, "seed": 0,
                     **training},
        "evaluation": {"baselines": [{"name": "mean_predictor", "kind": "mean"}]},
    })


def test_ensemble_run_predicts_the_mean_of_its_members_and_beats_them(noisy_dataset, tmp_path):
    single = [train_recipe(_recipe(noisy_dataset, seed=s), runs_root=tmp_path / f"s{s}", progress=False)
              for s in (0, 1, 2)]
    ens = train_recipe(_recipe(noisy_dataset, ensemble=3), runs_root=tmp_path / "ens", progress=False)

    # one model.pt holding the three members; each member trained in its own folder
    assert all((ens / "members" / str(k) / "checkpoints").is_dir() for k in range(3))
    net = Run.open(ens).load_network()
    assert isinstance(net.inner, MeanEnsemble) and len(net.inner.members) == 3
    history = pd.read_csv(ens / "history.csv")
    assert sorted(history["member"].unique()) == [0, 1, 2]

    # member k is the single run with seed k: same weights, so the ensemble is their mean
    with Dataset(noisy_dataset) as ds:
        rows = ds.split("test")
        members = [predict_frame(Run.open(r), ds, rows)["y_pred"].to_numpy() for r in single]
        frame = predict_frame(Run.open(ens), ds, rows)
        assert "y_ensemble_std" not in predict_frame(Run.open(single[0]), ds, rows[:5])
    np.testing.assert_allclose(frame["y_pred"], np.mean(members, axis=0), rtol=1e-5, atol=1e-5)
    # each object's spread between the members, beside their mean
    np.testing.assert_allclose(frame["y_ensemble_std"], np.std(members, axis=0, ddof=1), rtol=1e-4, atol=1e-5)
    out = predict(ens, noisy_dataset, tmp_path / "z.parquet", split="test", progress=False)
    units = json.loads(pq.read_schema(out).metadata[b"astroreg"])["units"]
    assert "y_ensemble_std" in units and "y_ensemble_std" in pd.read_parquet(out).columns

    # averaging lowers the error below the members' mean error, by at least 3%
    mse = lambda run: json.loads((run / "metrics.json").read_text())["models"]["mlp"]["y"]["mse"]  # noqa: E731
    singles = [mse(r) for r in single]
    assert mse(ens) < 0.97 * np.mean(singles), (mse(ens), singles)
    report = (ens / "report.md").read_text()
    assert "Ensemble of 3 networks" in report


def test_ensemble_file_loads_into_the_registered_builder(tmp_path):
    from astroreg.models import save_model

    torch.manual_seed(0)
    nets = [create_model("mlp", input_shapes={"p": (5,)}, n_outputs=2, hidden=[8]) for _ in range(2)]
    ens = ensemble_of(nets).eval()
    params = {"model": "mlp", "params": {"hidden": [8]}, "members": 2}
    save_model(tmp_path / "model.pt", ens, "ensemble", params, {"p": (5,)}, {"p": "tabular"}, 2)
    back = load_model(tmp_path / "model.pt", input_shapes={"p": (5,)}, input_kinds={"p": "tabular"}, n_outputs=2)
    x = {"p": torch.randn(4, 5)}
    with torch.no_grad():
        torch.testing.assert_close(back(x), (nets[0](x) + nets[1](x)) / 2)
    assert split_members(back) == 2 and back(x).shape == (4, 4)  # the members side by side
    lone = create_model("ensemble", input_shapes={"p": (5,)}, input_kinds={"p": "tabular"}, n_outputs=2, members=1)
    assert split_members(lone) == 0  # one member has no spread


def test_bad_ensemble_settings_are_refused():
    with pytest.raises(ValueError, match="training.ensemble|greater than or equal to 1"):
        _recipe("x.h5", ensemble=0)
    for members in (0, 10**9):
        with pytest.raises(ValueError, match="ensemble: members must be an integer from 1 to 100"):
            create_model("ensemble", input_shapes={"p": (5,)}, input_kinds={"p": "tabular"}, n_outputs=1,
                         members=members)
    with pytest.raises(ValueError, match="other than 'ensemble'"):
        create_model("ensemble", input_shapes={"p": (5,)}, input_kinds={"p": "tabular"}, n_outputs=1,
                     model="ensemble")
    with pytest.raises(ValueError, match="out_features"):
        MeanEnsemble([torch.nn.ReLU()])
