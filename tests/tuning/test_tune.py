"""astroreg tune: best recipe, resume after a kill, list-valued choices, pruning, errors."""

import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest
import sqlalchemy
import torch
import yaml
from optuna.trial import TrialState

from astroreg.cli import main
from astroreg.config import load_recipe, recipe_from_dict
from astroreg.config._recipe import SearchDimension
from astroreg.data import Dataset, DatasetWriter, SpectraSpec
from astroreg.tuning import PruningCallback, suggest, tune_recipe, tuning_base
from astroreg.tuning import _tune

LOGLAM = np.linspace(3.60, 3.62, 64)
HEADS = [[8], [16, 8]]
SPACE = {
    "model.params.stem": {"type": "int", "low": 8, "high": 24, "step": 8},
    "model.params.heads.0": {"type": "categorical", "choices": HEADS},
    "training.optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
}


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    """120 spectra of 64 pixels: the continuum slope follows teff, a line depth follows feh."""
    rng = np.random.default_rng(0)
    n = 120
    teff, feh = rng.uniform(4000, 7000, n), rng.uniform(-2.0, 0.5, n)
    x = (LOGLAM - 3.61)[None] / 0.01
    flux = (1 + (teff[:, None] - 5500) / 3000 * x) * (1 - (0.3 + 0.2 * feh[:, None]) * np.exp(-8 * x**2))
    flux = flux + 0.01 * rng.normal(size=flux.shape)
    path = tmp_path_factory.mktemp("tune") / "spec.h5"
    spec = SpectraSpec(n_pixels=LOGLAM.size, wavelength=tuple(10**LOGLAM), with_ivar=False)
    with DatasetWriter(path, spectra=spec, targets={"teff": "K", "feh": "dex"}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux}, targets={"teff": teff, "feh": feh})
        w.make_splits({"train": 0.6, "val": 0.2, "test": 0.2}, seed=0)
    return path


def _recipe_dict(path, **tuning):
    return {
        "name": "tiny-tune",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "spectra"},
        "targets": [{"name": "teff", "unit": "K"}, {"name": "feh", "unit": "dex"}],
        "preprocess": {"spectra": {"grid": [3.601, 3.619, 32]}},
        "model": {"name": "residual_mlp",
                  "params": {"stem": 16, "blocks": [8], "heads": [[8], [8]], "trunk_dropout": 0.0}},
        "training": {"epochs": 5, "batch_size": 32, "optimizer": {"name": "adam", "lr": 3e-3}},
        "evaluation": {"baselines": [{"name": "mean_predictor", "kind": "mean"}]},
        "tuning": {"epochs": 2, "startup_trials": 2, "space": SPACE, **tuning},
    }


def _recipe(path, **tuning):
    return recipe_from_dict(_recipe_dict(path, **tuning))


def _finished(study):
    return {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))}


def test_three_trials_write_a_trainable_best_recipe(data_path, tmp_path):
    res = tune_recipe(_recipe(data_path), trials=3, storage=tmp_path / "s.db", out_dir=tmp_path / "out",
                      progress=False)
    complete = res.study.get_trials(states=(TrialState.COMPLETE,))
    assert res.n_finished == 3 and complete
    best = min(complete, key=lambda t: t.value)
    assert res.best_value == pytest.approx(best.value)

    tuned = load_recipe(res.best_recipe)  # what `astroreg train` reads
    params = tuned.model.params
    assert params["stem"] == best.params["model.params.stem"] in (8, 16, 24)
    assert params["heads"][0] == best.user_attrs["overrides"]["model.params.heads.0"] in HEADS
    assert params["heads"][1] == [8]  # untouched by the space
    assert tuned.training.optimizer.lr == pytest.approx(best.params["training.optimizer.lr"])
    assert tuned.training.epochs == 5  # full-length training, not tuning.epochs
    assert tuned.dataset.path == str(data_path)

    trials = pd.read_csv(res.trials_csv)
    assert list(trials["number"]) == [0, 1, 2]
    assert set(SPACE) <= set(trials.columns)
    assert all(yaml.safe_load(v) in HEADS for v in trials["model.params.heads.0"])
    assert res.history_plot.stat().st_size > 1000


def test_list_valued_choices_round_trip():
    dim = SearchDimension(**SPACE["model.params.heads.0"])
    for label, value in [("[8]", [8]), ("[16, 8]", [16, 8])]:
        assert suggest(optuna.trial.FixedTrial({"model.params.heads.0": label}), "model.params.heads.0", dim) == value
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []
    for _ in range(8):
        trial = study.ask()
        seen.append(suggest(trial, "model.params.heads.0", dim))
        study.tell(trial, 0.0)
    assert all(v in HEADS for v in seen) and {tuple(v) for v in seen} == {(8,), (16, 8)}


def test_pruning_callback_prunes_a_bad_trial():
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    for epoch in range(3):
        PruningCallback(good).on_validation_end(
            SimpleNamespace(sanity_checking=False, current_epoch=epoch,
                            callback_metrics={"val_loss": torch.tensor(1.0)}), None)
    study.tell(good, 1.0)
    bad = study.ask()
    trainer = SimpleNamespace(sanity_checking=False, current_epoch=0, callback_metrics={"val_loss": torch.tensor(9.0)})
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 0"):
        PruningCallback(bad).on_validation_end(trainer, None)
    assert bad.storage.get_trial(bad._trial_id).intermediate_values == {0: 9.0}


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial):
        return True


def test_pruned_trial_leaves_lightning_and_is_marked_pruned(data_path):
    base = tuning_base(_recipe(data_path))
    study = optuna.create_study(pruner=_AlwaysPrune())
    with Dataset(data_path) as ds:
        study.optimize(_tune.make_objective(base, ds), n_trials=1)
    (trial,) = study.trials
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0]  # stopped after the first epoch of 2


def _peek(db):
    """Finished trials in the SQLite file, read without creating tables (the tuner is still setting it up)."""
    if not db.exists():
        return {}
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{db}", skip_table_creation=True,
                                             skip_compatibility_check=True)
        return _finished(optuna.load_study(study_name="tiny-tune", storage=storage))
    except (KeyError, sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):
        # Tables or study not created yet (optuna wraps some SQLAlchemy errors as StorageInternalError).
        return {}


def test_resume_after_kill(data_path, tmp_path, monkeypatch):
    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(yaml.safe_dump(_recipe_dict(data_path)))
    db = tmp_path / "study.db"
    args = ["tune", str(recipe_file), "--storage", str(db), "--out", str(tmp_path / "out"), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from astroreg.cli import main; sys.exit(main())",
                             *args, "--trials", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = {}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.5)
            first = _peek(db)
            if first:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert first, f"no trial finished (exit status {proc.returncode}); stderr:\n{err.decode()[-2000:]}"
    first = _finished(optuna.load_study(study_name="tiny-tune", storage=f"sqlite:///{db}"))
    target = len(first) + 2

    # Short heartbeats, so that a trial left RUNNING by the killed process goes stale quickly.
    monkeypatch.setattr(_tune, "HEARTBEAT_S", 1)
    monkeypatch.setattr(_tune, "GRACE_S", 3)
    assert main(args + ["--trials", str(target)]) == 0
    study = _tune.open_study(_tune.resolve_storage(db, "tiny-tune"), "tiny-tune")
    after = _finished(study)
    assert len(after) == target
    assert {n: after[n] for n in first} == first  # nothing lost, nothing redone
    assert main(args + ["--trials", str(target)]) == 0  # already there: runs nothing
    assert len(study.trials) == len(optuna.load_study(study_name="tiny-tune", storage=f"sqlite:///{db}").trials)

    deadline = time.monotonic() + 60
    while study.get_trials(states=(TrialState.RUNNING,)) and time.monotonic() < deadline:
        time.sleep(0.5)
        optuna.storages.fail_stale_trials(study)
    assert not study.get_trials(states=(TrialState.RUNNING,))  # the killed trial, if any, is now FAIL
    assert load_recipe(tmp_path / "out" / "best-recipe.yaml").name == "tiny-tune"


def test_clear_errors(data_path, tmp_path, capsys):
    d = _recipe_dict(data_path)
    del d["tuning"]
    with pytest.raises(ValueError, match="no 'tuning' section; add tuning.space"):
        tuning_base(recipe_from_dict(d))
    with pytest.raises(ValueError, match="empty 'tuning.space'"):
        tuning_base(_recipe(data_path, space={}))
    bad = {"model.params.nope.x": {"type": "int", "low": 1, "high": 3}}
    with pytest.raises(ValueError, match=r"tuning.space key 'model.params.nope.x'.*no section 'nope'"):
        tuning_base(_recipe(data_path, space=bad))
    bad = {"model.params.nope": {"type": "int", "low": 1, "high": 3}}
    with pytest.raises(ValueError, match=r"'model.params.nope': model 'residual_mlp' has no parameter 'nope'"):
        tuning_base(_recipe(data_path, space=bad))
    half = SearchDimension(type="int", low=8, high=24, step=0.5)
    with pytest.raises(ValueError, match="whole low, high and step"):
        suggest(optuna.create_study().ask(), "model.params.stem", half)
    with pytest.raises(ValueError, match="unknown sampler"):
        _tune.make_sampler("cmaes", seed=0, startup_trials=1)

    recipe_file = tmp_path / "no-tuning.yaml"
    recipe_file.write_text(yaml.safe_dump(d))
    assert main(["tune", str(recipe_file), "--storage", str(tmp_path / "x.db")]) == 2
    assert "add tuning.space" in capsys.readouterr().err
