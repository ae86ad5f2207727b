"""Issue 9, finding 4: worker processes die with their command, and stale .part files are swept.

The kill tests start a real ``astroreg`` command with ``--jobs 2`` in its own session, wait
until its worker processes exist, kill the command with SIGKILL by its process id, and
check that none of the workers it had survives it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from astroreg.data import DatasetWriter, ImageSpec, atomic_write_text
from astroreg.data._atomic import remove_stale_parts

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")

CLI = [sys.executable, "-m", "astroreg"]
_PART = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]{8}\.part$")


# -- process helpers ----------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces; the fields after it are fixed.
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (killed, waiting to be reaped) counts as dead."""
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _descendants(pid: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[0] not in ("Z", "X"):
                parents.setdefault(st[1], []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    # Output goes to files, not pipes: orphaned workers would hold a pipe open and hang the test.
    with open(cwd / "stdout.txt", "w") as out, open(cwd / "stderr.txt", "w") as err:
        proc = subprocess.Popen(CLI + args, cwd=cwd, stdout=out, stderr=err, text=True, start_new_session=True)
    proc.stderr_path = cwd / "stderr.txt"
    return proc


def _wait_for_workers(proc: subprocess.Popen, n: int, timeout: float = 60.0) -> set[int]:
    """The command's descendant processes, once at least ``n`` exist."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        kids = _descendants(proc.pid)
        if len(kids) >= n:
            return kids
        if proc.poll() is not None:
            err = proc.stderr_path.read_text()
            pytest.fail(f"the command ended (rc {proc.returncode}) before its workers were seen:\n{err[-2000:]}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {n} worker processes appeared within {timeout} s")


def _survivors(pids: set[int], timeout: float = 5.0) -> set[int]:
    end = time.monotonic() + timeout
    alive = {p for p in pids if _alive(p)}
    while alive and time.monotonic() < end:
        time.sleep(0.05)
        alive = {p for p in alive if _alive(p)}
    return alive


def _kill_9_and_check(proc: subprocess.Popen, workers: set[int]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    left = _survivors(workers)
    for pid in left:  # do not leak the orphans of a failing run into the rest of the test session
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes {sorted(left)} outlived the killed command {proc.pid}"


# -- kill -9 leaves no worker behind ------------------------------------------------------------
def test_kill_9_of_simulate_galaxy_images_kills_its_workers(tmp_path):
    proc = _start(["simulate", "galaxy-images", "--n", "3000", "--out", str(tmp_path / "g.h5"), "--jobs", "2",
                   "--quiet"], tmp_path)
    workers = _wait_for_workers(proc, 2)
    time.sleep(0.5)  # let the workers take their first chunks
    _kill_9_and_check(proc, workers)
    assert not (tmp_path / "g.h5").exists()


def test_kill_9_of_simulate_sdss_stars_kills_its_workers_and_writing_stops(tmp_path):
    out = tmp_path / "stars"
    proc = _start(["simulate", "sdss-stars", "--n", "5000", "--out", str(out), "--jobs", "2", "--quiet"], tmp_path)
    workers = _wait_for_workers(proc, 2)
    _wait_for_spectra(tmp_path, proc)
    _kill_9_and_check(proc, workers)
    written = _files(tmp_path)
    time.sleep(1.0)
    assert _files(tmp_path) == written, "files were written after the command died"
    assert not (out / "sspp-labels.fits").exists()


def _files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file())


def _wait_for_spectra(folder: Path, proc: subprocess.Popen) -> None:
    """Until the first spectrum is written (the command may write into a temporary folder first)."""
    end = time.monotonic() + 60
    while time.monotonic() < end and proc.poll() is None and not any(folder.rglob("spec-*.fits")):
        time.sleep(0.05)


@pytest.fixture(scope="module")
def star_mock(tmp_path_factory) -> Path:
    from astroreg.sim import simulate_sdss_stars

    out = tmp_path_factory.mktemp("stars") / "mock"
    simulate_sdss_stars(120, out, seed=3, n_jobs=1, progress=False)
    return out


def test_kill_9_of_ingest_sdss_spectra_kills_its_workers_and_next_run_sweeps_the_part(star_mock, tmp_path):
    out = tmp_path / "stars.h5"
    args = ["ingest", "sdss-spectra", "--spectra", str(star_mock / "spectra"), "--catalog",
            str(star_mock / "sspp-labels.fits"), "--out", str(out), "--quiet"]
    # one file per task: the workers are busy for the whole run, and the kill lands mid-ingest
    proc = _start(args + ["--jobs", "2", "--chunk-size", "4"], tmp_path)
    workers = _wait_for_workers(proc, 2)
    end = time.monotonic() + 60
    while time.monotonic() < end and not list(tmp_path.rglob(".stars.h5.*.part")) and proc.poll() is None:
        time.sleep(0.01)
    _kill_9_and_check(proc, workers)
    assert not out.exists()
    left = list(tmp_path.rglob(".stars.h5.*.part"))
    if left:  # killed while the dataset was being written: the next run into the folder removes it
        done = subprocess.run(CLI + args + ["--jobs", "1"], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert not any(p.exists() for p in left)
        assert out.is_file()


# -- Ctrl-C: one line, exit 130, no worker left, no worker traceback -----------------------------
def _ctrl_c_and_check(proc: subprocess.Popen, workers: set[int]) -> str:
    """Ctrl-C to the command's process group: exit 130, no traceback, no worker left; its stderr."""
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr_path.read_text()
    left = _survivors(workers)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert not left, f"worker processes {sorted(left)} outlived the interrupted command"
    return err


def test_ctrl_c_of_simulate_sdss_stars_shuts_the_pool_down(tmp_path):
    out = tmp_path / "stars"
    proc = _start(["simulate", "sdss-stars", "--n", "5000", "--out", str(out), "--jobs", "2", "--quiet"], tmp_path)
    workers = _wait_for_workers(proc, 2)
    _wait_for_spectra(tmp_path, proc)
    # A terminal sends Ctrl-C's SIGINT to the whole foreground process group, workers included.
    err = _ctrl_c_and_check(proc, workers)
    assert "astroreg simulate sdss-stars: interrupted" in err
    assert not list(tmp_path.rglob(".*.part")), "an interrupted write left its .part file"


# -- stale .part files ----------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not _alive(child.pid)
    return child.pid


def test_atomic_write_sweeps_the_part_files_of_dead_processes_only(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".report.json.{dead}.k2j9a_x1.part"
    stale_old_style = tmp_path / f".data.h5.{dead}.part"  # DatasetWriter's name before the random part
    live = tmp_path / f".data.h5.{os.getpid()}.abcdefgh.part"
    others = [tmp_path / "notes.part", tmp_path / ".notes.part", tmp_path / f".x.{dead}.TOOLONGXX1.part",
              tmp_path / f"data.h5.{dead}.abcdefgh.part", tmp_path / "important.txt"]
    for p in [stale, stale_old_style, live, *others]:
        p.write_text("x")
    atomic_write_text(tmp_path / "out.txt", "hello")
    assert not stale.exists() and not stale_old_style.exists()
    assert live.exists(), "the temporary file of a live process was removed"
    assert all(p.exists() for p in others), "a file that is not an astroreg temporary file was removed"
    assert (tmp_path / "out.txt").read_text() == "hello"


def test_remove_stale_parts_keeps_a_name_that_could_belong_to_a_live_process(tmp_path):
    # ".a.<live pid>.<8 digits>.part" also reads as file "a.<live pid>" of process <8 digits>;
    # a name is removed only when every process it could belong to is gone.
    ambiguous = tmp_path / f".a.{os.getpid()}.{_dead_pid():08d}.part"
    ambiguous.write_text("x")
    assert remove_stale_parts(tmp_path) == []
    assert ambiguous.exists()


def test_dataset_writer_temp_name_carries_the_pid_and_is_swept_after_a_kill(tmp_path):
    spec = ImageSpec(bands=("i",), height=4, width=4, pixel_scale=0.2)
    with DatasetWriter(tmp_path / "d.h5", images=spec, targets={"f": ""}) as w:
        name = w._tmp.name
        m = _PART.match(name)
        assert m and name.startswith(".d.h5.") and int(m[1]) == os.getpid(), name
        w.append(["a"], images=np.zeros((1, 1, 4, 4)), targets={"f": [1.0]})
    # A writer killed by SIGKILL leaves its .part; the next writer into the folder removes it.
    code = ("import numpy as np, os, sys\n"
            "from astroreg.data import DatasetWriter, ImageSpec\n"
            "w = DatasetWriter(sys.argv[1], images=ImageSpec(bands=('i',), height=4, width=4, pixel_scale=0.2),"
            " targets={'f': ''}).open()\n"
            "print(w._tmp, flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path / "e.h5")], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL
    leftover = Path(killed.stdout.strip())
    assert leftover.exists()
    with DatasetWriter(tmp_path / "f.h5", images=spec, targets={"f": ""}) as w:
        w.append(["a"], images=np.zeros((1, 1, 4, 4)), targets={"f": [1.0]})
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5", "f.h5"]


# -- a parallel ablation: Ctrl-C and kill -9 stop every run, and resume finishes them ---------------
def _ablation_recipe(tmp_path: Path) -> Path:
    from conftest import make_tabular_dataset

    from astroreg.config import recipe_from_dict, recipe_to_yaml

    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3))
    y = np.tanh(x @ np.array([1.0, -0.5, 0.2])) + 0.1 * rng.normal(size=400)
    data = make_tabular_dataset(tmp_path / "abl.h5", {f"x{i}": x[:, i] for i in range(3)}, {"y": y})
    recipe = recipe_from_dict({
        "name": "abl", "dataset": {"path": str(data)},
        "inputs": {"modality": "tabular", "columns": ["x0", "x1", "x2"]}, "targets": [{"name": "y"}],
        "model": {"name": "mlp", "params": {"hidden": [16]}},
        # one step an epoch: quick epochs, and enough of them to be stopped in the middle
        "training": {"batch_size": 512, "epochs": 400},
        "variants": [{"name": "narrow", "overrides": {"model.params.hidden": [8]}}],
    })
    (tmp_path / "abl.yaml").write_text(recipe_to_yaml(recipe))
    return tmp_path / "abl.yaml"


def _start_ablation(tmp_path: Path, out: Path) -> tuple[subprocess.Popen, set[int]]:
    """``astroreg ablate --jobs 2 --seeds 0 1``, once two of its runs have checkpointed an epoch."""
    proc = _start(["ablate", str(_ablation_recipe(tmp_path)), "--out", str(out), "--jobs", "2", "--seeds", "0", "1",
                   "--quiet", "--threads", "2"], tmp_path)
    partial = out.with_name(out.name + ".partial")
    end = time.monotonic() + 180
    while time.monotonic() < end and len(list(partial.glob("**/checkpoints/last.ckpt"))) < 2:
        if proc.poll() is not None:
            pytest.fail(f"the ablation ended (rc {proc.returncode}):\n{proc.stderr_path.read_text()[-2000:]}")
        time.sleep(0.02)
    return proc, _descendants(proc.pid)


def test_ctrl_c_and_kill_9_of_a_parallel_ablation_leave_no_process_and_resume_finishes_it(tmp_path):
    from astroreg.cli import main

    out = tmp_path / "abl-out"
    partial = tmp_path / "abl-out.partial"
    proc, workers = _start_ablation(tmp_path, out)
    assert len(workers) >= 2
    _kill_9_and_check(proc, workers)  # the workers die with the command
    assert (partial / ".astroreg-resume").is_file()

    # Resumed with the same two workers, then stopped by Ctrl-C in the whole process group.
    (tmp_path / "stderr.txt").unlink()
    proc = _start(["resume", str(partial), "--quiet"], tmp_path)
    end = time.monotonic() + 180
    while time.monotonic() < end and len(_descendants(proc.pid)) < 2 and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(2.0)  # the workers load torch and take their runs
    assert "astroreg resume: interrupted" in _ctrl_c_and_check(proc, _descendants(proc.pid))
    assert partial.is_dir() and not out.exists()

    assert main(["resume", str(partial), "--quiet"]) == 0
    table = (out / "ablation.csv").read_text()
    assert "narrow" in table and not partial.exists()
    for run in ("full/seed-0", "full/seed-1", "narrow/seed-0", "narrow/seed-1"):
        assert (out / run / "model.pt").is_file()
