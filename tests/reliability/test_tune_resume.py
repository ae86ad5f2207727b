"""astroreg tune under resumes, several processes and bad storages (issue 9, finding 7 and tune --storage).

Every trial must draw new parameters whichever process runs it and however often the study
is resumed, yet a study redone from scratch with the same seed repeats its random trials;
a study refuses to be joined with other data or settings; ``--storage`` never turns a
file that is not a database into one.
"""

import sqlite3

import numpy as np
import optuna
import pytest
import sqlalchemy
import yaml
from optuna.trial import TrialState

from astroreg.cli import main
from astroreg.config import recipe_from_dict
from astroreg.data import DatasetWriter, SpectraSpec
from astroreg.tuning import _tune, suggest, tune_recipe, tuning_base
from astroreg.tuning._storage import SQLITE_HEADER

LOGLAM = np.linspace(3.60, 3.62, 32)
SPACE = {
    "model.params.stem": {"type": "int", "low": 8, "high": 24, "step": 8},
    "training.optimizer.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
}


def _make_data(path, seed=0, n=60):
    rng = np.random.default_rng(seed)
    teff = rng.uniform(4000, 7000, n)
    x = (LOGLAM - 3.61)[None] / 0.01
    flux = 1 + (teff[:, None] - 5500) / 3000 * x + 0.01 * rng.normal(size=(n, LOGLAM.size))
    spec = SpectraSpec(n_pixels=LOGLAM.size, wavelength=tuple(10**LOGLAM), with_ivar=False)
    with DatasetWriter(path, spectra=spec, targets={"teff": "K"}) as w:
        w.append([f"s{i}" for i in range(n)], spectra={"flux": flux}, targets={"teff": teff})
        w.make_splits({"train": 0.6, "val": 0.2, "test": 0.2}, seed=seed)
    return path


@pytest.fixture(scope="module")
def data_path(tmp_path_factory):
    """60 spectra of 32 pixels whose continuum slope follows teff."""
    return _make_data(tmp_path_factory.mktemp("tune-resume") / "spec.h5")


def _recipe_dict(path, **tuning):
    # More startup trials than any test runs: every trial is a random draw, which the seed fixes.
    return {
        "name": "tiny-resume",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "spectra"},
        "targets": [{"name": "teff", "unit": "K"}],
        "preprocess": {"spectra": {"grid": [3.601, 3.619, 16]}},
        "model": {"name": "residual_mlp", "params": {"stem": 8, "blocks": [8], "heads": [[8]], "trunk_dropout": 0.0}},
        "training": {"epochs": 5, "batch_size": 32, "optimizer": {"name": "adam", "lr": 3e-3}},
        "tuning": {"epochs": 1, "startup_trials": 10, "pruner": "none", "space": SPACE, **tuning},
    }


def _recipe(path, **tuning):
    return recipe_from_dict(_recipe_dict(path, **tuning))


def _sets(study):
    """The parameter set of every finished trial, in trial order."""
    done = sorted(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)), key=lambda t: t.number)
    return [tuple(sorted(t.params.items())) for t in done]


def _run(recipe, db, trials, **kw):
    return tune_recipe(recipe, trials=trials, storage=db, out_dir=db.parent / f"{db.stem}-out", progress=False, **kw)


def test_resumed_study_draws_new_parameters_and_matches_a_run_in_one_go(data_path, tmp_path):
    recipe = _recipe(data_path)
    _run(recipe, tmp_path / "resumed.db", 2)
    resumed = _sets(_run(recipe, tmp_path / "resumed.db", 4).study)
    assert len(resumed) == 4
    assert resumed[2] != resumed[0] and resumed[3] != resumed[1]
    assert len(set(resumed)) == 4

    # Seeded by trial number: the same study in one go draws the same four sets.
    in_one_go = _sets(_run(recipe, tmp_path / "one-go.db", 4).study)
    assert in_one_go == resumed
    other_seed = _sets(_run(_recipe(data_path, seed=1), tmp_path / "seed1.db", 2).study)
    assert other_seed[0] != resumed[0]


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_two_processes_on_one_study_draw_different_parameters(data_path, tmp_path):
    """Two study handles with their own samplers, as two `astroreg tune` processes have, alternate trials."""
    base = tuning_base(_recipe(data_path))
    url = _tune.resolve_storage(tmp_path / "shared.db", "unused")
    handles = [_tune.open_study(url, "shared", sampler=_tune.make_sampler("tpe", seed=0, startup_trials=10))
               for _ in range(2)]
    drawn = []
    for _ in range(3):
        for study in handles:
            trial = study.ask()
            drawn.append(tuple(sorted((k, str(suggest(trial, k, d))) for k, d in base.tuning.space.items())))
            study.tell(trial, 1.0)
    assert len(set(drawn)) == len(drawn) == 6


def test_resume_with_other_data_or_settings_is_refused_unless_forced(data_path, tmp_path, capsys):
    db = tmp_path / "study.db"
    _run(_recipe(data_path), db, 1)
    other = _make_data(tmp_path / "other.h5", seed=1)

    with pytest.raises(ValueError, match=r"made with other data: the study ran on .*spec\.h5 \(60 objects.*"
                                         r"this run on .*other\.h5.*--force-resume"):
        _run(_recipe(data_path), db, 2, data=other)
    with pytest.raises(ValueError, match=r"other recipe settings: training\.batch_size: 32 in the study, 16 now"):
        smaller_batches = {"epochs": 5, "batch_size": 16, "optimizer": {"name": "adam", "lr": 3e-3}}
        _run(recipe_from_dict({**_recipe_dict(data_path), "training": smaller_batches}), db, 2)
    with pytest.raises(ValueError, match=r"tuning\.space\.training\.optimizer\.lr\.high: 0\.01 in the study, 0\.1"):
        wider = {**SPACE, "training.optimizer.lr": {**SPACE["training.optimizer.lr"], "high": 0.1}}
        _run(_recipe(data_path, space=wider), db, 2)
    assert len(optuna.load_study(study_name="tiny-resume", storage=f"sqlite:///{db}").trials) == 1

    # Same data and settings: the number of trials, the sampler seed and the study's place may change.
    assert _run(_recipe(data_path, seed=3, trials=7), db, 2).n_finished == 2

    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(yaml.safe_dump(_recipe_dict(data_path)))
    args = ["tune", str(recipe_file), "--storage", str(db), "--data", str(other), "--out", str(tmp_path / "o"),
            "--quiet", "--trials", "3"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force-resume" in err and "other.h5" in err
    assert main(args + ["--force-resume"]) == 0
    assert len(optuna.load_study(study_name="tiny-resume", storage=f"sqlite:///{db}").trials) == 3


def test_a_dataset_changed_in_place_is_refused(data_path, tmp_path):
    path = _make_data(tmp_path / "data.h5", seed=0)
    db = tmp_path / "study.db"
    _run(_recipe(path), db, 1)
    path.unlink()
    _make_data(path, seed=5)  # same name, size and split sizes; other labels and splits
    with pytest.raises(ValueError, match=r"dataset .*data\.h5 changed since the study began"):
        _run(_recipe(path), db, 2)


@pytest.mark.parametrize("content", [b"id,teff\ns1,5000\n", b"SIMPLE  =                    T" + b" " * 50])
def test_storage_that_is_not_a_database_is_refused_and_untouched(data_path, tmp_path, capsys, content):
    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(yaml.safe_dump(_recipe_dict(data_path)))
    target = tmp_path / "catalogue.csv"
    target.write_bytes(content)
    assert main(["tune", str(recipe_file), "--storage", str(target), "--quiet", "--trials", "1",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "catalogue.csv" in err and "is not a SQLite database" in err
    assert target.read_bytes() == content
    assert not (tmp_path / "o").exists()


def test_storage_folder_damaged_database_or_missing_driver_gives_one_line(data_path, tmp_path, capsys):
    recipe_file = tmp_path / "tiny.yaml"
    recipe_file.write_text(yaml.safe_dump(_recipe_dict(data_path)))
    args = ["tune", str(recipe_file), "--quiet", "--trials", "1", "--out", str(tmp_path / "o"), "--storage"]
    assert main(args + [str(tmp_path)]) == 2
    assert "is a folder; name a SQLite file" in capsys.readouterr().err

    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(SQLITE_HEADER + bytes(range(256)) * 8)
    before = damaged.read_bytes()
    assert main(args + [str(damaged)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"tuning storage {damaged}" in err and "damaged" in err
    assert damaged.read_bytes() == before

    # A server URL without its driver (or, with it, without a server): one line, the password hidden.
    assert main(args + ["postgresql://user:secret@127.0.0.1:1/db"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tuning storage postgresql://user:***@127.0.0.1:1/db" in err
    assert "secret" not in err


def test_database_fault_during_tune_names_the_storage(data_path, tmp_path, monkeypatch):
    """A full disk under a running study: SQLite's error, wrapped by SQLAlchemy and Optuna, becomes one line."""
    def full(*args, **kwargs):
        cause = sqlalchemy.exc.OperationalError("INSERT INTO trials", {}, sqlite3.OperationalError(
            "database or disk is full"))
        raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from cause

    monkeypatch.setattr(optuna.study.Study, "optimize", full)
    db = tmp_path / "study.db"
    with pytest.raises(ValueError, match=rf"tuning storage {db}: database or disk is full; check that its folder"):
        _run(_recipe(data_path), db, 1)


def test_a_study_without_fingerprints_gets_them_and_is_checked_from_then_on(tmp_path, caplog):
    """A study made before studies recorded their recipe and data is adopted once, with a warning."""
    from astroreg.tuning._fingerprint import DATASET_ATTR, RECIPE_ATTR, check_study

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'old.db'}", study_name="old")
    study.enqueue_trial({"x": 0.5})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    data = {"path": "d.h5", "n_objects": 10, "splits": {"train": 6}, "sha256": "ab"}
    with caplog.at_level("WARNING"):
        check_study(study, {"training.epochs": 3}, data)
    assert "no recorded recipe or dataset" in caplog.text
    assert study.user_attrs[RECIPE_ATTR] == {"training.epochs": 3} and study.user_attrs[DATASET_ATTR] == data
    with pytest.raises(ValueError, match=r"training\.epochs: 3 in the study, 4 now"):
        check_study(study, {"training.epochs": 4}, data)
