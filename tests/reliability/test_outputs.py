"""Issue 9, findings 1, 2 and 6: outputs never delete or overwrite, and validation comes before work.

Each test fails on the code before the fix: ``train --run-dir`` and ``ablate --out`` removed
an existing folder, two trains deleted each other's ``.partial``, ``ingest``/``predict``/
``evaluate``/``simulate --out`` replaced any file, and recipe errors surfaced after training
(or left an empty ``.partial``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from astroreg.cli import main
from astroreg.config import load_recipe
from astroreg.data import (
    DatasetWriter,
    ImageSpec,
    check_output_dir,
    claim_dir,
    is_run_folder,
    is_stale_partial,
    remove_claimed,
    replace_dir,
)

TINY = ["--set", "inputs.crop=32", "--set", "training.epochs=1", "--set", "evaluation.baselines=[]",
        "--set", "evaluation.reference=null", "--set", "evaluation.compare_to=[]"]


def _train_args(data: Path, *extra: str) -> list[str]:
    return ["train", "galaxy-flux", "--data", str(data), "--quiet", *TINY, *extra]


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    assert "Traceback" not in err
    for needle in needles:
        assert needle in last, (needle, last)
    return last


def _no_training(monkeypatch):
    """Make any network training fail loudly: the checks under test must come before it."""
    import astroreg.pipeline._fit as train_mod  # the one place a run is fitted

    def refuse(*args, **kwargs):
        raise AssertionError("the network started training before the inputs were checked")

    monkeypatch.setattr(train_mod, "fit_network", refuse)


@pytest.fixture(scope="module")
def tiny_run(blob_dataset, tmp_path_factory) -> Path:
    """A 1-epoch run folder made through the CLI."""
    run_dir = tmp_path_factory.mktemp("runs") / "run"
    assert main(_train_args(blob_dataset, "--run-dir", str(run_dir))) == 0
    return run_dir


def _unlabelled_dataset(path: Path, *, n: int = 40, splits: dict | None = None, nan_rows=()) -> Path:
    rng = np.random.default_rng(1)
    spec = ImageSpec(bands=("i",), height=32, width=32, pixel_scale=0.168)
    flux = rng.uniform(200, 3000, n)
    flux[list(nan_rows)] = np.nan
    with DatasetWriter(path, images=spec, targets={"total_flux": "ADU"}, tabular={"R_e": "arcsec"}) as w:
        w.append([f"o{i}" for i in range(n)], images=rng.normal(1, 0.1, (n, 1, 32, 32)).astype("f4"),
                 targets={"total_flux": flux}, tabular={"R_e": rng.uniform(0.1, 1, n)})
        if splits is not None:
            w.make_splits(splits, seed=0)
    return path


# -- finding 1: folders deleted --------------------------------------------------------------


def test_run_dir_with_foreign_files_is_refused_and_kept(blob_dataset, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "important.txt").write_text("do not lose me")
    assert main(_train_args(blob_dataset, "--run-dir", str(folder))) == 2
    _one_line_error(capsys, str(folder), "exists", "--overwrite")
    assert main(_train_args(blob_dataset, "--run-dir", str(folder), "--overwrite")) == 2
    _one_line_error(capsys, "not a previous run folder", "even with --overwrite")
    assert (folder / "important.txt").read_text() == "do not lose me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no .partial, nothing set aside


def test_run_dir_typed_for_runs_is_refused(blob_dataset, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    runs = tmp_path / "runs"
    earlier = runs / "galaxy-flux-20260101-000000"
    earlier.mkdir(parents=True)
    for name in ("config.yaml", "model.pt", "preprocessors.json"):
        (earlier / name).write_text("x")
    assert main(_train_args(blob_dataset, "--run-dir", str(runs))) == 2
    _one_line_error(capsys, str(runs), f"exists; it holds run folders: use --runs {runs} to add a run")
    assert main(_train_args(blob_dataset, "--run-dir", str(runs), "--overwrite")) == 2
    _one_line_error(capsys, str(runs), f"use --runs {runs} to add a run")
    assert is_run_folder(earlier) and sorted(p.name for p in runs.iterdir()) == [earlier.name]


def test_overwrite_replaces_only_a_previous_run(blob_dataset, tiny_run, tmp_path, capsys):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    (run_dir / "marker.txt").write_text("old run")
    assert main(_train_args(blob_dataset, "--run-dir", str(run_dir))) == 2
    _one_line_error(capsys, "exists", "--overwrite")
    assert (run_dir / "marker.txt").exists()
    assert main(_train_args(blob_dataset, "--run-dir", str(run_dir), "--overwrite")) == 0
    assert is_run_folder(run_dir) and not (run_dir / "marker.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the aside copy is gone, no .partial


def test_second_train_into_the_same_run_dir_is_refused(blob_dataset, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    run_dir = tmp_path / "run"
    busy = claim_dir(run_dir)  # what a first, still running train holds
    (busy / "model.ckpt").write_text("first train's checkpoint")
    try:
        assert main(_train_args(blob_dataset, "--run-dir", str(run_dir))) == 2
        _one_line_error(capsys, str(busy), "another astroreg command is writing")
        assert main(_train_args(blob_dataset, "--run-dir", str(run_dir), "--overwrite")) == 2
        _one_line_error(capsys, str(busy), "another astroreg command is writing")
        assert (busy / "model.ckpt").read_text() == "first train's checkpoint"
    finally:
        remove_claimed(busy)
    # A .partial that astroreg did not claim is not swept either.
    foreign = tmp_path / "other.partial"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("keep")
    assert main(_train_args(blob_dataset, "--run-dir", str(tmp_path / "other"))) == 2
    _one_line_error(capsys, "not made by a running astroreg command")
    assert (foreign / "keep.txt").read_text() == "keep"
    assert not run_dir.exists()


def test_partial_of_a_killed_process_is_swept_by_the_next_claim(tmp_path):
    import subprocess
    import sys

    target = tmp_path / "run"
    code = ("import os; from astroreg.data import claim_dir; p = claim_dir(%r); "
            "(p / 'half.txt').write_text('x'); os._exit(9)" % str(target))
    subprocess.run([sys.executable, "-c", code], check=False)
    stale = tmp_path / "run.partial"
    assert (stale / "half.txt").exists() and is_stale_partial(stale)
    check_output_dir(target, kind="run")  # a dead owner's .partial does not block
    partial = claim_dir(target)
    assert partial == stale and not (partial / "half.txt").exists()
    assert not is_stale_partial(partial)  # ours now, alive
    remove_claimed(partial)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_finishing_a_run_never_removes_an_unrelated_folder(tmp_path):
    final = tmp_path / "run"
    final.mkdir()
    (final / "important.txt").write_text("keep")
    partial = tmp_path / "run.partial"
    partial.mkdir()
    (partial / "config.yaml").write_text("new")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="finished output is in"):
            replace_dir(partial, kind="run", overwrite=overwrite)
    assert (final / "important.txt").read_text() == "keep"
    assert (partial / "config.yaml").read_text() == "new"


def test_run_names_are_claimed_atomically(tmp_path):
    first = claim_dir(tmp_path / "r", unique=True)
    second = claim_dir(tmp_path / "r", unique=True)
    assert (first.name, second.name) == ("r.partial", "r-2.partial")
    with pytest.raises(ValueError, match="another astroreg command"):
        claim_dir(tmp_path / "r")
    assert replace_dir(first, kind="run").name == "r"
    # A finished run holds the name: the next claim moves on without touching it.
    assert claim_dir(tmp_path / "r", unique=True).name == "r-3.partial"
    assert (tmp_path / "r").is_dir() and (tmp_path / "r-2.partial").is_dir()


def _ablate_args(data: Path, *extra: str) -> list[str]:
    return ["ablate", "galaxy-flux", "--data", str(data), "--quiet", *TINY,
            "--set", "variants=[{name: wide, overrides: {training.batch_size: 64}}]", *extra]


def test_ablate_out_is_refused_when_foreign_or_busy(blob_dataset, tmp_path, capsys, monkeypatch):
    _no_training(monkeypatch)
    out = tmp_path / "abl"
    out.mkdir()
    (out / "important.txt").write_text("keep")
    assert main(_ablate_args(blob_dataset, "--out", str(out))) == 2
    _one_line_error(capsys, str(out), "exists; pass --overwrite")
    assert main(_ablate_args(blob_dataset, "--out", str(out), "--overwrite")) == 2
    _one_line_error(capsys, "not a previous ablation folder")
    assert (out / "important.txt").read_text() == "keep"
    busy = claim_dir(tmp_path / "new")
    (busy / "full").mkdir()
    try:
        assert main(_ablate_args(blob_dataset, "--out", str(tmp_path / "new"))) == 2
        _one_line_error(capsys, str(busy), "another astroreg command is writing")
        assert (busy / "full").is_dir()
    finally:
        remove_claimed(busy)


# -- finding 2: files replaced ---------------------------------------------------------------


@pytest.fixture()
def stamps(tmp_path) -> tuple[Path, Path]:
    """Three FITS stamps and their catalogue."""
    from astropy.io import fits

    folder = tmp_path / "stamps"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        fits.PrimaryHDU(rng.normal(size=(16, 16)).astype("f4")).writeto(folder / f"{i}.fits")
    catalog = tmp_path / "cat.csv"
    pd.DataFrame({"file_name": [f"{i}.fits" for i in range(3)], "flux": [1.0, 2.0, 3.0]}).to_csv(catalog, index=False)
    return catalog, folder


def _ingest(catalog: Path, folder: Path, out: Path, *extra: str) -> int:
    return main(["ingest", "images", "--catalog", str(catalog), "--images", str(folder), "--out", str(out),
                 "--target", "flux:ADU", "--crop", "none", "--pixel-scale", "0.2", "--no-splits", "--quiet",
                 *extra])


def test_ingest_out_refuses_inputs_foreign_files_folders_and_extensions(stamps, tmp_path, capsys):
    catalog, folder = stamps
    foreign = tmp_path / "notes.h5"
    foreign.write_bytes(b"my notes, not HDF5")
    cases = [
        (catalog, ["one of this command's inputs"]),
        (folder / "0.fits", ["one of this command's inputs"]),
        (foreign, ["exists", "--overwrite"]),
        (folder, ["one of this command's inputs"]),
        (tmp_path / "data.txt", ["should end in .h5 or .hdf5"]),
    ]
    before = {p: p.read_bytes() for p in [catalog, foreign, *folder.iterdir()]}
    for out, needles in cases:
        assert _ingest(catalog, folder, out) == 2, out
        _one_line_error(capsys, str(out), *needles)
    assert _ingest(catalog, folder, foreign, "--overwrite") == 2
    _one_line_error(capsys, "not a previous astroreg dataset")
    empty_dir = tmp_path / "a_folder.h5"
    empty_dir.mkdir()
    assert _ingest(catalog, folder, empty_dir) == 2
    _one_line_error(capsys, "is a folder")
    assert {p: p.read_bytes() for p in before} == before
    assert not (tmp_path / "data.txt").exists()


def test_ingest_overwrite_replaces_a_previous_dataset(stamps, tmp_path, capsys):
    catalog, folder = stamps
    out = tmp_path / "d.h5"
    assert _ingest(catalog, folder, out) == 0
    assert _ingest(catalog, folder, out) == 2
    _one_line_error(capsys, "exists; pass --overwrite to replace a previous astroreg dataset")
    assert _ingest(catalog, folder, out, "--overwrite") == 0


def test_ingest_checks_free_space_before_work(stamps, tmp_path, capsys, monkeypatch):
    import shutil
    from collections import namedtuple

    import astroreg.data._outputs as outputs

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 100, 100))
    catalog, folder = stamps
    assert _ingest(catalog, folder, tmp_path / "d.h5") == 2
    _one_line_error(capsys, "not enough disk space", str(tmp_path), "100 B free")
    assert not (tmp_path / "d.h5").exists()
    assert shutil is not None


def test_read_only_output_folder_is_refused_before_work(stamps, tmp_path, capsys, monkeypatch):
    import errno

    import astroreg.data._outputs as outputs

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    # A real read-only mount cannot be made in a test (and root may write anywhere): the probe file fails.
    monkeypatch.setattr(outputs.tempfile, "TemporaryFile", read_only)
    catalog, folder = stamps
    assert _ingest(catalog, folder, tmp_path / "d.h5") == 2
    _one_line_error(capsys, f"cannot write in folder {tmp_path} (Read-only file system)")
    assert not list(tmp_path.glob("*d.h5*"))


def test_predict_out_refuses_its_data_and_foreign_files(tiny_run, blob_dataset, tmp_path, capsys):
    before = blob_dataset.read_bytes()
    args = ["predict", str(tiny_run), "--data", str(blob_dataset), "--quiet", "--out"]
    for extra in ([], ["--overwrite"]):
        assert main([*args, str(blob_dataset), *extra]) == 2
        _one_line_error(capsys, "one of this command's inputs")
    assert blob_dataset.read_bytes() == before
    foreign = tmp_path / "table.parquet"
    pd.DataFrame({"ra": [1.0, 2.0]}).to_parquet(foreign)
    foreign_bytes = foreign.read_bytes()
    assert main([*args, str(foreign)]) == 2
    _one_line_error(capsys, "exists; pass --overwrite")
    assert main([*args, str(foreign), "--overwrite"]) == 2
    _one_line_error(capsys, "not a previous predictions file")
    assert foreign.read_bytes() == foreign_bytes
    assert main([*args, str(tmp_path)]) == 2
    _one_line_error(capsys, f"output {tmp_path} is a folder")
    (tmp_path / "dir.parquet").mkdir()
    assert main([*args, str(tmp_path / "dir.parquet")]) == 2
    _one_line_error(capsys, "is a folder")
    assert main([*args, str(tmp_path / "pred.csv")]) == 2
    _one_line_error(capsys, "should end in .parquet")
    out = tmp_path / "pred.parquet"
    assert main([*args, str(out)]) == 0
    assert main([*args, str(out)]) == 2
    _one_line_error(capsys, "exists; pass --overwrite")
    assert main([*args, str(out), "--overwrite"]) == 0


def test_evaluate_out_refuses_foreign_files(tiny_run, tmp_path, capsys):
    foreign = tmp_path / "settings.json"
    foreign.write_text('{"theme": "dark"}')
    args = ["evaluate", str(tiny_run), "--quiet", "--out", str(foreign)]
    assert main(args) == 2
    _one_line_error(capsys, "exists; pass --overwrite")
    assert main([*args, "--overwrite"]) == 2
    _one_line_error(capsys, "not a previous metrics file")
    assert foreign.read_text() == '{"theme": "dark"}'
    assert main(["evaluate", str(tiny_run), "--quiet", "--out", str(tmp_path / "m.txt")]) == 2
    _one_line_error(capsys, "should end in .json")


def test_simulate_out_refuses_foreign_files(tmp_path, capsys):
    foreign = tmp_path / "survey.h5"
    foreign.write_bytes(b"not a dataset")
    args = ["simulate", "galaxy-images", "--n", "2", "--stamp-size", "16", "--out", str(foreign), "--quiet",
            "--jobs", "1"]
    assert main(args) == 2
    _one_line_error(capsys, "exists; pass --overwrite")
    assert main([*args, "--overwrite"]) == 2
    _one_line_error(capsys, "not a previous astroreg dataset")
    assert foreign.read_bytes() == b"not a dataset"
    folder = tmp_path / "mock"
    folder.mkdir()
    (folder / "important.txt").write_text("keep")
    assert main(["simulate", "sdss-stars", "--n", "2", "--out", str(folder), "--quiet", "--jobs", "1"]) == 2
    _one_line_error(capsys, "exists; pass --overwrite")
    assert (folder / "important.txt").read_text() == "keep"


def test_output_under_a_file_is_refused_before_work(stamps, tmp_path, capsys):
    catalog, folder = stamps
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _ingest(catalog, folder, blocker / "d.h5") == 2
    _one_line_error(capsys, f"{blocker} is a file, not a folder")
    assert blocker.read_text() == "x"


# -- finding 6: errors that come too late ----------------------------------------------------


def test_bad_baseline_feature_fails_before_training(blob_dataset, tmp_path, monkeypatch):
    from astroreg.pipeline import train_recipe

    _no_training(monkeypatch)
    recipe = load_recipe("galaxy-flux", {
        "dataset.path": str(blob_dataset), "inputs.crop": 32, "evaluation.reference": None,
        "evaluation.compare_to": [],
        "evaluation.baselines": [{"name": "lr", "kind": "linear_regression", "features": {"include": ["nope"]}}],
    })
    with pytest.raises(ValueError, match=r"baseline 'lr': feature column\(s\) \['nope'\]"):
        train_recipe(recipe, runs_root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_recipe_errors_leave_no_partial(blob_dataset, tmp_path, monkeypatch):
    from astroreg.pipeline import train_recipe

    recipe = load_recipe("galaxy-flux", {"dataset.path": str(blob_dataset), "inputs.crop": 32})
    with pytest.raises(ValueError, match="TEFF_ADOP"):
        train_recipe(recipe.with_overrides({"targets": [{"name": "teff", "column": "TEFF_ADOP"}]}),
                     runs_root=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    # A failure during training removes the .partial this train made, and only that.
    import astroreg.pipeline._fit as train_mod  # the one place a run is fitted

    def fail(*args, **kwargs):
        raise ValueError("boom in training")

    monkeypatch.setattr(train_mod, "fit_network", fail)
    (tmp_path / "other.partial").mkdir()
    with pytest.raises(ValueError, match="boom in training"):
        train_recipe(recipe, runs_root=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["other.partial"]


def test_interrupted_train_removes_only_its_partial(blob_dataset, tmp_path, monkeypatch):
    import astroreg.pipeline._fit as train_mod  # the one place a run is fitted
    from astroreg.pipeline import train_recipe

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "fit_network", ctrl_c)
    recipe = load_recipe("galaxy-flux", {"dataset.path": str(blob_dataset), "inputs.crop": 32})
    (tmp_path / "earlier").mkdir()
    with pytest.raises(KeyboardInterrupt):
        train_recipe(recipe, run_dir=tmp_path / "run", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["earlier"]


def test_failed_ablation_removes_only_its_partial(blob_dataset, tmp_path, monkeypatch):
    import astroreg.pipeline._ablate as ablate_mod
    from astroreg.pipeline import ablate_recipe

    def fail(*args, **kwargs):
        raise ValueError("boom in a variant")

    monkeypatch.setattr(ablate_mod, "train_recipe", fail)
    recipe = load_recipe("galaxy-flux", {
        "dataset.path": str(blob_dataset), "inputs.crop": 32,
        "variants": [{"name": "wide", "overrides": {"training.batch_size": 64}}],
    })
    (tmp_path / "keep.partial").mkdir()
    with pytest.raises(ValueError, match="boom in a variant"):
        ablate_recipe(recipe, out=tmp_path / "abl", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.partial"]


def test_zero_test_fraction_fails_before_training(tmp_path, monkeypatch):
    from astroreg.pipeline import train_recipe

    _no_training(monkeypatch)
    data = _unlabelled_dataset(tmp_path / "d.h5", n=300)
    recipe = load_recipe("galaxy-flux", {
        "dataset.path": str(data), "inputs.crop": 32, "evaluation.baselines": [], "evaluation.reference": None,
        "evaluation.compare_to": [], "dataset.splits.train": 0.7, "dataset.splits.val": 0.3,
        "dataset.splits.test": 0.0,
    })
    with pytest.raises(ValueError, match=r"dataset.splits.test is 0"):
        train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_empty_stored_test_split_fails_before_training(tmp_path, monkeypatch):
    from astroreg.pipeline import train_recipe

    _no_training(monkeypatch)
    data = _unlabelled_dataset(tmp_path / "d.h5", splits={"train": 0.7, "val": 0.3, "test": 0.0})
    recipe = load_recipe("galaxy-flux", {"dataset.path": str(data), "inputs.crop": 32})
    with pytest.raises(ValueError, match=r"stored 'test' split of .*d.h5 is empty"):
        train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)


def test_unlabelled_evaluation_split_fails_before_training(tmp_path, monkeypatch):
    from astroreg.data import Dataset
    from astroreg.pipeline import train_recipe

    _no_training(monkeypatch)
    probe = _unlabelled_dataset(tmp_path / "probe.h5", splits={"train": 0.5, "val": 0.25, "test": 0.25})
    with Dataset(probe) as ds:
        test_rows = ds.split("test")
    data = _unlabelled_dataset(tmp_path / "d.h5", splits={"train": 0.5, "val": 0.25, "test": 0.25},
                               nan_rows=test_rows)
    recipe = load_recipe("galaxy-flux", {"dataset.path": str(data), "inputs.crop": 32})
    with pytest.raises(ValueError, match=r"no object of the 'test' split .* has a known 'total_flux'"):
        train_recipe(recipe, runs_root=tmp_path / "runs", progress=False)
