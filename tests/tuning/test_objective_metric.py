"""tuning.objective: a named metric of the validation predictions, checked early, recorded, not mixed on resume."""

from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest
import torch
from optuna.trial import TrialState

from astroreg.config import recipe_from_dict
from astroreg.data import Dataset, DatasetWriter
from astroreg.pipeline import _predict
from astroreg.tuning import (
    PruningCallback,
    _tune,
    metric_names,
    resolve_objective,
    tune_recipe,
)

COLUMNS = ("a", "b", "c")
SPACE = {"training.optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
         "model.params.dropout": {"type": "float", "low": 0.0, "high": 0.2}}


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    """Redshifts in 0-0.6 that follow three catalogue columns."""
    rng = np.random.default_rng(0)
    n = 160
    x = rng.normal(size=(n, len(COLUMNS)))
    z = np.clip(0.3 + 0.1 * x @ np.array([1.0, -0.5, 0.25]) + 0.01 * rng.normal(size=n), 0.0, 0.6)
    path = tmp_path_factory.mktemp("objective") / "d.h5"
    with DatasetWriter(path, targets={"z": ""}, tabular={c: "" for c in COLUMNS}) as w:
        w.append([f"o{i}" for i in range(n)], targets={"z": z}, tabular={c: x[:, j] for j, c in enumerate(COLUMNS)})
        w.make_splits({"train": 0.6, "val": 0.25, "test": 0.15}, seed=0)
    return path


def _recipe(path, objective="val_loss", kind="redshift"):
    return recipe_from_dict({
        "name": "objective",
        "dataset": {"path": str(path)},
        "inputs": {"features": {"kind": "tabular", "columns": list(COLUMNS)}},
        "targets": [{"name": "z", "kind": kind}],
        "model": {"name": "mlp", "params": {"hidden": [16]}},
        "training": {"epochs": 2, "batch_size": 32, "threads": 1},
        "tuning": {"startup_trials": 2, "pruner": "none", "objective": objective, "space": SPACE},
    })


def test_trial_values_are_the_mae_of_their_validation_predictions(data_path, tmp_path, monkeypatch):
    frames = []
    real = _predict.predict_frame

    def spy(run, dataset, rows=None, **kw):
        frames.append(real(run, dataset, rows, **kw))
        return frames[-1]

    monkeypatch.setattr(_predict, "predict_frame", spy)
    res = tune_recipe(_recipe(data_path, {"metric": "mae"}), trials=2, storage=tmp_path / "s.db",
                      out_dir=tmp_path / "out", progress=False)
    trials = res.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == len(frames) == 2
    with Dataset(data_path) as ds:
        val = ds.split("val")
        z_val = ds.target("z")[val]
        ids = np.asarray(ds.ids)[val]
    for trial, frame in zip(trials, frames):
        assert list(frame["id"]) == list(ids)  # the validation split, in physical units
        np.testing.assert_allclose(frame["z_true"], z_val)
        assert trial.value == pytest.approx(np.mean(np.abs(frame["z_pred"] - frame["z_true"])), rel=1e-9)
        assert trial.value != pytest.approx(trial.user_attrs["best_val_loss"])  # not the scaled loss
    assert res.study.direction == optuna.study.StudyDirection.MINIMIZE
    assert res.objective.description == "mae of z on the validation split (minimize)"
    assert res.study.user_attrs["objective"] == {"metric": "mae", "target": "z", "direction": "minimize"}
    table = pd.read_csv(res.trials_csv)
    assert list(table["objective"]) == ["val_mae_z"] * 2
    assert "mae of z on the validation split" in res.best_recipe.read_text().splitlines()[0]


def test_valid_names_come_from_the_evaluation_and_unknown_ones_are_refused_early(data_path, tmp_path):
    redshift = metric_names(_recipe(data_path), "z")
    assert {"mae", "rmse", "sigma_nmad_ez", "catastrophic_rate"} <= set(redshift)
    assert "sigma_nmad_ez" not in metric_names(_recipe(data_path, kind="value"), "z")
    assert resolve_objective(_recipe(data_path, {"metric": "sigma_nmad_ez"})).label == "val_sigma_nmad_ez_z"
    assert resolve_objective(_recipe(data_path, "sigma_nmad_ez")).label == "val_sigma_nmad_ez_z"  # shorthand
    assert resolve_objective(_recipe(data_path)).is_val_loss
    assert resolve_objective(_recipe(data_path, {"metric": "r2"})).direction == "maximize"
    assert resolve_objective(_recipe(data_path, {"metric": "r2", "direction": "minimize"})).direction == "minimize"

    db = tmp_path / "s.db"
    with pytest.raises(ValueError, match=r"tuning.objective.metric 'sigma_nmad' is not a metric of target 'z'; "
                                         r"valid names: \[.*'sigma_nmad_ez'"):
        tune_recipe(_recipe(data_path, {"metric": "sigma_nmad"}), trials=1, storage=db, progress=False)
    with pytest.raises(ValueError, match="'catastrophic_rate' is not a metric of target 'z'"):
        tune_recipe(_recipe(data_path, {"metric": "catastrophic_rate"}, kind="value"), trials=1, storage=db,
                    progress=False)
    assert not db.exists()  # refused before the study was made
    with pytest.raises(ValueError, match="tuning.objective.target 'redshift' is not a target; choose one of"):
        _recipe(data_path, {"metric": "mae", "target": "redshift"})


def test_a_study_is_not_resumed_with_another_objective(data_path, tmp_path, monkeypatch):
    # The trials themselves are not what is checked here: draw and score every trial without training.
    def quick(base, ds, **kw):
        def run_trial(trial):
            trial.set_user_attr(_tune.OVERRIDES_ATTR, _tune.sample_space(trial, base.tuning.space))
            return 1.0
        return run_trial

    monkeypatch.setattr(_tune, "make_objective", quick)
    db = tmp_path / "s.db"
    kw = {"storage": db, "out_dir": tmp_path / "out", "progress": False}
    tune_recipe(_recipe(data_path), trials=1, **kw)
    with pytest.raises(ValueError, match=r"other recipe settings: tuning.objective: unset in the study, "
                                         r"\"mae of z \(minimize\)\" now;"):
        tune_recipe(_recipe(data_path, {"metric": "mae"}), trials=2, **kw)
    with pytest.raises(ValueError, match="made to minimize, but tuning.objective val_r2_z asks to maximize"):
        tune_recipe(_recipe(data_path, {"metric": "r2"}), trials=2, force_resume=True, **kw)
    assert tune_recipe(_recipe(data_path), trials=2, **kw).n_finished == 2  # the same objective resumes


def test_a_maximised_metric_still_prunes_the_trials_with_a_high_loss():
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))

    def epoch(trial, loss, n=0):
        metrics = {"val_loss": torch.tensor(loss)}
        trainer = SimpleNamespace(sanity_checking=False, current_epoch=n, callback_metrics=metrics)
        PruningCallback(trial, negate=True).on_validation_end(trainer, None)

    good = study.ask()
    for n in range(3):
        epoch(good, 1.0, n)
    study.tell(good, 0.9)
    low = study.ask()
    epoch(low, 0.5)  # lower loss than the median: goes on
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 0"):
        epoch(study.ask(), 9.0)
