"""Issue 9, finding 5: faults and bad arguments end with one line, an exit status, and no .part file.

A write that fails mid-way is made real, not mocked: the command runs in a child process
whose file-size limit (``ulimit -f``, RLIMIT_FSIZE) is smaller than its output, so the
kernel refuses the write with EFBIG exactly where a full disk gives ENOSPC. A read-only
folder is a folder with mode 0555, or, for root (whom permissions do not stop), ``/sys``.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from astroreg.cli import main
from astroreg.cli._main import describe_os_error

CLI = [sys.executable, "-m", "astroreg"]
TINY_TRAIN = ["--quiet", "--set", "inputs.crop=32", "--set", "training.epochs=1",
              "--set", "evaluation.baselines=[]", "--set", "evaluation.reference=null"]
posix = pytest.mark.skipif(os.name != "posix", reason="file-size limits and signals are POSIX")


def _one_line_error(err: str, command: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"astroreg {command}: error: "), err
    return lines[0]


def _parts(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*.part")] if folder.is_dir() else []


def _run_limited(args: list[str], cwd: Path, max_file_bytes: int, timeout: float = 300):
    """Run ``astroreg ARGS`` with a file-size limit, as a shell's ``ulimit -f`` would."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
        # Without this the kernel kills the process (SIGXFSZ) instead of failing the write.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return subprocess.run(CLI + args, cwd=cwd, capture_output=True, text=True, preexec_fn=limit, timeout=timeout)


@pytest.fixture
def stamps(tmp_path) -> Path:
    """40 FITS stamps of 48x48 pixels and their catalogue (about 400 kB of output)."""
    folder = tmp_path / "stamps"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        fits.PrimaryHDU(rng.normal(0, 1, (48, 48)).astype("f4")).writeto(folder / f"{i}.fits")
    pd.DataFrame({"file_name": [f"{i}.fits" for i in range(40)], "total_flux": rng.uniform(1, 2, 40)}).to_csv(
        folder / "cat.csv", index=False)
    return folder


def _ingest_args(stamps: Path, out: Path) -> list[str]:
    return ["ingest", "images", "--catalog", str(stamps / "cat.csv"), "--images", str(stamps), "--out", str(out),
            "--target", "total_flux:ADU", "--crop", "none", "--pixel-scale", "0.2", "--quiet"]


@pytest.fixture(scope="module")
def tiny_run(blob_dataset, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "galaxy-flux", "--data", str(blob_dataset), "--run-dir", str(run), *TINY_TRAIN]) == 0
    return run


def _read_only_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    sys_folder = Path("/sys")
    try:
        (sys_folder / "astroreg-probe").touch()
    except OSError:
        return sys_folder
    pytest.skip("running as root and /sys is writable: no read-only folder to test with")


# -- arguments --------------------------------------------------------------------------------
def test_set_with_broken_yaml_is_one_line_naming_key_and_value(capsys):
    assert main(["train", "galaxy-flux", "--set", "training.epochs=[1"]) == 2
    line = _one_line_error(capsys.readouterr().err, "train")
    assert "training.epochs" in line and "'[1'" in line and "not valid YAML" in line


@pytest.mark.parametrize("argv, option", [
    (["predict", "run", "--data", "d.h5", "--out", "p.parquet", "--chunk-size", "0"], "--chunk-size"),
    (["predict", "run", "--data", "d.h5", "--out", "p.parquet", "--batch-size", "-3"], "--batch-size"),
    (["simulate", "sdss-stars", "--n", "0", "--out", "x"], "--n"),
    (["simulate", "galaxy-images", "--n", "10", "--out", "x.h5", "--jobs", "0"], "--jobs"),
    (["ingest", "images", "--catalog", "c.csv", "--images", "i", "--out", "o.h5", "--target", "f",
      "--chunk-size", "0"], "--chunk-size"),
    (["ingest", "sdss-spectra", "--spectra", "s", "--catalog", "c.fits", "--out", "o.h5", "--jobs", "0"], "--jobs"),
])
def test_zero_or_negative_counts_are_usage_errors(argv, option, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: expected a whole number >= 1" in err


def test_debug_flag_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="training.epochs"):
        main(["--debug", "train", "galaxy-flux", "--set", "training.epochs=[1"])


def test_describe_os_error_reads_h5py_messages():
    h5 = OSError("Unable to synchronously create file (unable to open file: name = '/x/y.h5', errno = 13, "
                 "error message = 'Permission denied', flags = 13, o_flags = 242)")
    assert describe_os_error(h5).startswith("/x/y.h5: Permission denied (")
    full = OSError(errno.ENOSPC, "No space left on device", "out.h5")
    assert describe_os_error(full) == "out.h5: No space left on device (the disk is full: free some space or " \
                                      "write to another disk)"
    assert describe_os_error(FileNotFoundError("catalogue x.csv does not exist")) == "catalogue x.csv does not exist"


# -- a write that fails half-way ---------------------------------------------------------------
@posix
def test_write_failure_during_ingest_is_one_line_and_leaves_no_part(stamps, tmp_path):
    out = tmp_path / "out" / "data.h5"
    out.parent.mkdir()
    done = _run_limited(_ingest_args(stamps, out), tmp_path, max_file_bytes=100_000)
    # Before: a traceback, then HDF5 crashed the interpreter at exit (exit 139) and left the .part.
    assert done.returncode == 2, done.stderr[-3000:]
    line = _one_line_error(done.stderr, "ingest images")
    assert str(out) in line and "File too large" in line
    assert not out.exists() and _parts(out.parent) == []


@posix
def test_write_failure_during_simulate_dataset_is_one_line(tmp_path):
    out = tmp_path / "g.h5"
    done = _run_limited(["simulate", "galaxy-images", "--n", "40", "--out", str(out), "--jobs", "1", "--quiet",
                         "--stamp-size", "48"], tmp_path, max_file_bytes=100_000)
    assert done.returncode == 2, done.stderr[-3000:]
    line = _one_line_error(done.stderr, "simulate galaxy-images")
    assert str(out) in line and "File too large" in line
    assert not out.exists() and _parts(tmp_path) == []


@posix
def test_write_failure_during_predict_is_one_line(tiny_run, blob_dataset, tmp_path):
    out = tmp_path / "p.parquet"
    done = _run_limited(["predict", str(tiny_run), "--data", str(blob_dataset), "--out", str(out), "--quiet"],
                        tmp_path, max_file_bytes=2_000)
    assert done.returncode == 2, done.stderr[-3000:]
    line = _one_line_error(done.stderr, "predict")
    assert "File too large" in line
    assert not out.exists() and _parts(tmp_path) == []


@posix
def test_write_failure_during_train_is_one_line(blob_dataset, tmp_path):
    runs = tmp_path / "runs"
    done = _run_limited(["train", "galaxy-flux", "--data", str(blob_dataset), "--runs", str(runs), *TINY_TRAIN],
                        tmp_path, max_file_bytes=100_000)
    assert done.returncode == 2, done.stderr[-3000:]
    line = _one_line_error("\n".join(x for x in done.stderr.splitlines() if not x.startswith("WARNING")), "train")
    assert str(runs) in line and "File too large" in line
    assert _parts(tmp_path) == []


# -- read-only folders, a folder where a file is wanted ---------------------------------------
def test_read_only_output_folder_for_ingest_is_one_line(stamps, tmp_path, capsys):
    folder = _read_only_folder(tmp_path)
    out = folder / "data.h5"
    assert main(_ingest_args(stamps, out)) == 2
    line = _one_line_error(capsys.readouterr().err, "ingest images")
    assert str(folder) in line
    assert not out.exists()


def test_read_only_output_folder_for_simulate_is_one_line(tmp_path, capsys):
    folder = _read_only_folder(tmp_path)
    assert main(["simulate", "sdss-stars", "--n", "4", "--out", str(folder / "stars"), "--jobs", "1",
                 "--quiet"]) == 2
    line = _one_line_error(capsys.readouterr().err, "simulate sdss-stars")
    assert str(folder) in line


def test_read_only_output_for_predict_and_train_is_one_line(tiny_run, blob_dataset, tmp_path, capsys):
    folder = _read_only_folder(tmp_path)
    assert main(["predict", str(tiny_run), "--data", str(blob_dataset), "--out", str(folder / "p.parquet"),
                 "--quiet"]) == 2
    line = _one_line_error(capsys.readouterr().err, "predict")
    assert str(folder) in line
    assert main(["train", "galaxy-flux", "--data", str(blob_dataset), "--runs", str(folder), *TINY_TRAIN]) == 2
    line = _one_line_error(capsys.readouterr().err, "train")
    assert str(folder) in line


def test_out_that_is_a_folder_is_one_line_and_leaves_no_part(stamps, tmp_path, capsys):
    out = tmp_path / "a-folder.h5"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(_ingest_args(stamps, out)) == 2
    line = _one_line_error(capsys.readouterr().err, "ingest images")
    assert str(out) in line
    assert (out / "keep.txt").read_text() == "mine"
    assert _parts(tmp_path) == []


# -- Ctrl-C during training --------------------------------------------------------------------
@posix
def test_ctrl_c_during_train_exits_130_with_one_line(blob_dataset, tmp_path):
    runs = tmp_path / "runs"
    args = ["train", "galaxy-flux", "--data", str(blob_dataset), "--runs", str(runs), "--quiet",
            "--set", "inputs.crop=32", "--set", "training.epochs=500", "--set", "evaluation.baselines=[]",
            "--set", "evaluation.reference=null"]
    with open(tmp_path / "stderr.txt", "w") as err_file:
        proc = subprocess.Popen(CLI + args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err_file,
                                start_new_session=True)
    try:
        # The best checkpoint appears after the first validation: Lightning's fit loop is running.
        end = time.monotonic() + 120
        while time.monotonic() < end and proc.poll() is None and not list(runs.rglob("*.ckpt")):
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        assert list(runs.rglob("*.ckpt")), "training did not start within 120 s"
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = (tmp_path / "stderr.txt").read_text()
    # Before: Lightning swallowed the interrupt and exited 1 without a word.
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    assert "astroreg train: interrupted" in err
