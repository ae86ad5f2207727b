"""``astroreg resume``: a training run interrupted or killed goes on from its last epoch.

Before, an interrupted run removed its ``.partial`` folder and a killed one left a folder that
the next claim swept: hours of training were lost either way.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time

import lightning as L
import numpy as np
import pandas as pd
import pytest
from conftest import make_tabular_dataset

import astroreg.pipeline._fit as fit_mod
import astroreg.pipeline._train as train_mod
from astroreg.cli import main
from astroreg.config import recipe_from_dict, recipe_to_yaml
from astroreg.data import build_dir, check_output_dir, claim_dir, mark_resumable, resume_command
from astroreg.data._outputs import OWNER_FILE
from astroreg.pipeline import resume_run, train_recipe

CLI = [sys.executable, "-m", "astroreg"]


def _dataset(path, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 3))
    y = np.tanh(x @ np.array([1.0, -0.5, 0.2])) + 0.1 * rng.normal(size=400)
    return make_tabular_dataset(path, {f"x{i}": x[:, i] for i in range(3)}, {"y": y})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _dataset(tmp_path_factory.mktemp("resume") / "resume.h5", seed=5)


def _recipe(path, **training):
    # Dropout, the moving average and the weighted refit of the output layer are on: their
    # state (and the random draws) must survive the interruption too.
    return recipe_from_dict({
        "name": "resume",
        "dataset": {"path": str(path)},
        "inputs": {"modality": "tabular", "columns": ["x0", "x1", "x2"]},
        "targets": [{"name": "y"}],
        "model": {"name": "mlp", "params": {"hidden": [16], "dropout": 0.2}},
        "training": {"batch_size": 32, "epochs": 6, "optimizer": {"name": "adam", "lr": 3e-3}, "ema_decay": 0.9,
                     "scheduler": {"name": "plateau", "patience": 1},
                     "sample_weights": {"kind": "lds", "stage": "head"}, **training},
        "evaluation": {"baselines": [{"name": "mean_predictor", "kind": "mean"}]},
    })


class _CtrlC(L.Callback):
    """Ctrl-C in the middle of epoch ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == 2:
            raise KeyboardInterrupt


def _interrupt_training(monkeypatch, epoch: int, where: str = "") -> None:
    """Ctrl-C in epoch ``epoch`` of the fits whose folder ends with ``where`` (every fit by default)."""
    fit = fit_mod.fit_network

    def interrupted(*args, **kwargs):
        hit = str(args[4]).endswith(where)  # fit_network's run_dir
        return fit(*args, **{**kwargs, "callbacks": [_CtrlC(epoch)] if hit else kwargs.get("callbacks")})

    monkeypatch.setattr(fit_mod, "fit_network", interrupted)


def _history(run):
    h = pd.read_csv(run / "history.csv")
    return h.drop(columns=["epoch_time_s", "train_objects_per_s"])


def test_resumed_run_ends_exactly_as_the_uninterrupted_one(data, tmp_path, monkeypatch):
    recipe = _recipe(data)
    whole = train_recipe(recipe, run_dir=tmp_path / "whole", progress=False)
    with monkeypatch.context() as m:
        _interrupt_training(m, epoch=3)
        with pytest.raises(KeyboardInterrupt):
            train_recipe(recipe, run_dir=tmp_path / "cut", progress=False)
    partial = tmp_path / "cut.partial"
    assert (partial / "checkpoints" / "last.ckpt").is_file() and not (tmp_path / "cut").exists()

    final = resume_run(partial, progress=False)
    assert final == tmp_path / "cut" and not partial.exists()
    # A finished run is not resumable, and the whole training state is dropped (best.ckpt stays).
    assert not any((final / f).exists() for f in (".astroreg-owner", ".astroreg-resume", "checkpoints/last.ckpt"))
    assert (final / "checkpoints" / "best.ckpt").is_file()
    # Same epochs, losses, learning rates and per-bin errors, epoch for epoch, and the same network.
    pd.testing.assert_frame_equal(_history(final), _history(whole))
    assert len(pd.read_csv(final / "history.csv")["epoch_time_s"].dropna()) == 6  # every epoch's time kept
    a, b = pd.read_parquet(whole / "predictions.parquet"), pd.read_parquet(final / "predictions.parquet")
    np.testing.assert_array_equal(a["y_pred"].to_numpy(), b["y_pred"].to_numpy())
    assert "ended by the epoch limit" in (final / "report.md").read_text()


def test_resuming_a_fit_that_had_stopped_trains_no_further(data, tmp_path, monkeypatch):
    # No epoch improves by min_delta: early stopping ends the fit after its second epoch; the
    # run is then interrupted while it evaluates.
    recipe = _recipe(data, epochs=50, early_stopping={"patience": 1, "min_delta": 1e6})

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(train_mod, "predict_frame", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            train_recipe(recipe, run_dir=tmp_path / "run", progress=False)
    final = resume_run(tmp_path / "run.partial", progress=False)
    assert len(pd.read_csv(final / "history.csv")) == 2
    assert "ended by early stopping;" in (final / "report.md").read_text()


@pytest.mark.skipif(os.name != "posix", reason="signals are POSIX")
def test_killed_train_is_not_swept_and_resumes_from_the_command_line(data, tmp_path, capsys):
    recipe = _recipe(data, epochs=150, batch_size=512)  # one step an epoch: quick epochs
    (tmp_path / "recipe.yaml").write_text(recipe_to_yaml(recipe))
    args = ["train", str(tmp_path / "recipe.yaml"), "--run-dir", str(tmp_path / "run"), "--quiet", "--threads", "1"]
    partial = tmp_path / "run.partial"
    with open(tmp_path / "stderr.txt", "w") as err_file:
        proc = subprocess.Popen(CLI + args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err_file,
                                start_new_session=True)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and proc.poll() is None and not (partial / "checkpoints" / "last.ckpt").exists():
            time.sleep(0.02)
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        os.kill(proc.pid, signal.SIGKILL)  # no clean-up runs: as a batch system's hard limit or the OOM killer
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert partial.is_dir()
    # Training the same run again neither sweeps the folder nor starts over: it names the command.
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"astroreg resume {partial}" in err and partial.is_dir()

    final = tmp_path / "run"
    assert main(["resume", str(final), "--quiet"]) == 0  # the run's name finds its .partial
    history = pd.read_csv(final / "history.csv")
    assert history["epoch"].tolist() == list(range(150))
    assert np.isfinite(history["val_loss"]).all() and np.isfinite(history["train_loss"]).all()
    assert (final / "model.pt").is_file() and not partial.exists()


def test_resume_refuses_what_it_cannot_go_on_with(data, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="not an interrupted training run"):
        resume_run(tmp_path, progress=False)
    recipe = _recipe(data)
    with monkeypatch.context() as m:
        _interrupt_training(m, epoch=1)
        with pytest.raises(KeyboardInterrupt):
            train_recipe(recipe, run_dir=tmp_path / "run", progress=False)
    partial = tmp_path / "run.partial"

    # Another dataset (300 objects, not 400) gives other splits.
    with pytest.raises(ValueError, match="other train/val/test rows"):
        resume_run(partial, data=_small(tmp_path), progress=False)

    # A folder that a running process holds.
    fd = os.open(partial / OWNER_FILE, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(ValueError, match="being written by a running astroreg command"):
            resume_run(partial, progress=False)
    finally:
        os.close(fd)

    # A damaged checkpoint is named; the folder is kept (the user removes it).
    (partial / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="last.ckpt"):
        resume_run(partial, progress=False)
    assert partial.is_dir()


def _small(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    return make_tabular_dataset(tmp_path / "small.h5", {f"x{i}": x[:, i] for i in range(3)}, {"y": x[:, 0]})


def test_a_resumable_folder_is_kept_when_interrupted_or_failed_and_is_never_swept(tmp_path):
    def fail(partial):
        mark_resumable(partial, "astroreg resume x")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        build_dir(tmp_path / "failed", fail, kind="run")
    assert resume_command(tmp_path / "failed.partial") == "astroreg resume x"  # kept: fix the cause and resume

    def fail_early(partial):
        raise ValueError("boom before any checkpoint")

    with pytest.raises(ValueError, match="boom before"):
        build_dir(tmp_path / "early", fail_early, kind="run")
    assert not (tmp_path / "early.partial").exists()  # nothing to resume: removed

    def ctrl_c(partial):
        mark_resumable(partial, f"astroreg resume {partial}")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_dir(tmp_path / "cut", ctrl_c, kind="run")
    partial = tmp_path / "cut.partial"
    assert resume_command(partial) == f"astroreg resume {partial}"
    for check in (lambda: claim_dir(tmp_path / "cut"), lambda: check_output_dir(tmp_path / "cut", kind="run")):
        with pytest.raises(ValueError, match="can be resumed: `astroreg resume"):
            check()
    assert partial.is_dir()


def test_an_ensemble_resumes_with_the_member_that_was_interrupted(data, tmp_path, monkeypatch):
    recipe = _recipe(data, epochs=4, ensemble=2)
    whole = train_recipe(recipe, run_dir=tmp_path / "whole", progress=False)
    with monkeypatch.context() as m:
        _interrupt_training(m, epoch=2, where="members/1")
        with pytest.raises(KeyboardInterrupt):
            train_recipe(recipe, run_dir=tmp_path / "cut", progress=False)
    final = resume_run(tmp_path / "cut.partial", progress=False)
    # The first member had finished: it trains no further; the second goes on from its epoch 2.
    pd.testing.assert_frame_equal(_history(final), _history(whole))
    a, b = pd.read_parquet(whole / "predictions.parquet"), pd.read_parquet(final / "predictions.parquet")
    np.testing.assert_array_equal(a["y_pred"].to_numpy(), b["y_pred"].to_numpy())


def test_an_interrupted_ablation_keeps_its_finished_runs_and_resumes_the_rest(data, tmp_path, monkeypatch):
    import astroreg.pipeline._ablate as ablate_mod
    from astroreg.pipeline import ablate_recipe

    recipe = _recipe(data, epochs=4).with_overrides(
        {"variants": [{"name": "narrow", "overrides": {"model.params.hidden": [8]}},
                      {"name": "no_weights", "overrides": {"training.sample_weights.kind": "none"}}]})
    whole = ablate_recipe(recipe, out=tmp_path / "whole", progress=False)
    with monkeypatch.context() as m:
        _interrupt_training(m, epoch=2, where="narrow.partial")
        with pytest.raises(KeyboardInterrupt):
            ablate_recipe(recipe, out=tmp_path / "cut", progress=False)
    partial = tmp_path / "cut.partial"
    assert (partial / "full" / "model.pt").is_file() and (partial / "narrow.partial" / "checkpoints").is_dir()
    full_model = (partial / "full" / "model.pt").read_bytes()

    trained = []
    with monkeypatch.context() as m:
        m.setattr(ablate_mod, "train_recipe", lambda *a, **k: trained.append(k["run_dir"].name) or train_recipe(*a, **k))
        assert main(["resume", str(partial), "--quiet"]) == 0
    final = tmp_path / "cut"
    assert trained == ["no_weights"]  # full kept as it was, narrow resumed, no_weights trained
    assert (final / "full" / "model.pt").read_bytes() == full_model
    pd.testing.assert_frame_equal(_history(final / "narrow"), _history(whole / "narrow"))
    a, b = pd.read_csv(whole / "ablation.csv"), pd.read_csv(final / "ablation.csv")
    timed = [c for c in a if "per_s" in c or "time" in c]  # prediction speed, measured anew
    pd.testing.assert_frame_equal(a.drop(columns=timed), b.drop(columns=timed))
    assert not partial.exists() and not (final / ".astroreg-resume").exists()


def test_an_interrupted_ablation_over_seeds_resumes_with_its_seeds(data, tmp_path, monkeypatch):
    import astroreg.pipeline._ablate as ablate_mod
    from astroreg.pipeline import ablate_recipe

    recipe = _recipe(data, epochs=3).with_overrides(
        {"variants": [{"name": "narrow", "overrides": {"model.params.hidden": [8]}}]})
    with monkeypatch.context() as m:
        _interrupt_training(m, epoch=1, where="seed-1.partial")
        with pytest.raises(KeyboardInterrupt):
            ablate_recipe(recipe, out=tmp_path / "cut", progress=False, seeds=[0, 1])
    partial = tmp_path / "cut.partial"
    assert (partial / "full" / "seed-0" / "model.pt").is_file()
    assert (partial / "full" / "seed-1.partial" / "checkpoints").is_dir()
    trained = []
    with monkeypatch.context() as m:
        m.setattr(ablate_mod, "train_recipe",
                  lambda *a, **k: trained.append(k["run_dir"].relative_to(partial).as_posix()) or train_recipe(*a, **k))
        assert main(["resume", str(partial), "--quiet"]) == 0
    # The seeds come back from the folder: the full model's second seed resumed, the variant's two trained.
    assert trained == ["narrow/seed-0", "narrow/seed-1"]
    table = pd.read_csv(tmp_path / "cut" / "ablation.csv")
    assert table["variant"].tolist() == ["full", "narrow"] and np.isfinite(table["MAE y sd"]).all()
