"""Output guards: a command never deletes or overwrites what it did not make.

Every command that writes checks its outputs here *before* it starts work:

- an existing output is refused unless ``overwrite``; even then only a previous output
  of the same kind is replaced (a run folder is recognised by its files, a dataset by
  its astroreg HDF5 attributes, a predictions file by its Parquet schema, a metrics
  file by its JSON keys); anything else is refused whatever ``overwrite`` says;
- an output that is one of the command's inputs is always refused;
- the file name must have the kind's extension; a folder where a file is wanted is refused;
- the output's folder must be writable (checked with a real probe file) and, where the
  command can estimate its output size, have room for it.

Folder outputs (run folders, ablation folders, mock surveys) are built in
``<name>.partial``, claimed with an atomic ``os.mkdir`` (so two processes can never share
one), and moved to ``<name>`` at the end by :func:`replace_dir`, which sets a replaced
previous output aside under a hidden name before removing it. The claiming process holds
an exclusive ``flock`` on ``<name>.partial/.astroreg-owner`` for as long as it lives, so a
``.partial`` left by a killed process is recognised (its lock is free) and swept by the
next claim of that name, while a live one is never touched. A ``.partial`` that holds
work that can be resumed (:func:`mark_resumable`: a run's training checkpoint) is never
swept: an interrupted build keeps it, a later claim of the name is refused with the command
that resumes it, and :func:`resume_dir` takes it over and finishes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, TypeVar

from astroreg.data._atomic import atomic_write_text

log = logging.getLogger(__name__)
T = TypeVar("T")

PARTIAL = ".partial"
"""Suffix of a folder output under construction."""

OutputKind = Literal["dataset", "predictions", "metrics", "ingest-report", "run", "ablation", "galaxy-images",
                     "sdss-stars"]

_SUFFIXES: dict[str, tuple[str, ...]] = {
    "dataset": (".h5", ".hdf5"),
    "predictions": (".parquet",),
    "metrics": (".json",),
    "ingest-report": (".json",),
}

_LABELS = {
    "dataset": "astroreg dataset",
    "predictions": "predictions file",
    "metrics": "metrics file",
    "ingest-report": "ingest report",
    "run": "run folder",
    "ablation": "ablation folder",
    "galaxy-images": "galaxy-images mock folder",
    "sdss-stars": "sdss-stars mock folder",
}

OWNER_FILE = ".astroreg-owner"
"""File in a ``.partial`` folder whose ``flock`` the claiming process holds while it lives."""

RESUME_FILE = ".astroreg-resume"
"""File in a ``.partial`` folder that marks its work as resumable; it holds the command that resumes it."""

_HELD: dict[str, int] = {}  # claimed .partial (absolute path) -> descriptor holding its owner lock

RUN_FILES = ("config.yaml", "model.pt")
"""Files every run folder has, besides one of :data:`PREPROCESSOR_FILES`."""
PREPROCESSOR_FILES = ("preprocessors.json", "preprocessors.joblib")
"""The fitted preprocessing of a run (``.joblib`` in run folders of older versions)."""


def is_run_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder written by ``astroreg train`` (by its files)."""
    p = Path(path)
    return (p.is_dir() and all((p / f).is_file() for f in RUN_FILES)
            and any((p / f).is_file() for f in PREPROCESSOR_FILES))


def is_ablation_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by ``astroreg ablate`` (by its files)."""
    p = Path(path)
    return p.is_dir() and (p / "ablation.csv").is_file() and (p / "ablation.json").is_file()


def is_dataset_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an astroreg HDF5 dataset (by its ``astroreg_format`` attribute)."""
    import h5py

    from astroreg.data._dataset import FORMAT_NAME

    p = Path(path)
    if not p.is_file():
        return False
    try:
        with h5py.File(p, "r") as f:
            fmt = f.attrs.get("astroreg_format")
    except (OSError, ValueError):
        return False
    if isinstance(fmt, bytes):
        fmt = fmt.decode(errors="replace")
    return fmt == FORMAT_NAME


def is_predictions_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a Parquet file of astroreg predictions (an ``id`` and ``<target>_pred`` columns)."""
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.is_file():
        return False
    try:
        schema = pq.read_schema(p)
    except Exception:  # noqa: BLE001 - pyarrow raises several types for a file that is not Parquet
        return False
    names = set(schema.names)
    ours = b"astroreg" in (schema.metadata or {})
    return "id" in names and (ours or any(n.endswith("_pred") for n in names))


def _json_object_with(path: str | os.PathLike, keys: set[str]) -> bool:
    """Whether ``path`` is a file holding a JSON object with at least ``keys``."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(obj, dict) and keys <= set(obj)


def is_metrics_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a metrics JSON written by astroreg (keys ``split`` and ``models``)."""
    return _json_object_with(path, {"split", "models"})


def is_ingest_report(path: str | os.PathLike) -> bool:
    """Whether ``path`` is the JSON report of ``astroreg ingest`` (keys ``out`` and ``n_ok``)."""
    return _json_object_with(path, {"out", "n_ok"})


def is_galaxy_mock_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by ``astroreg simulate galaxy-images`` (it holds ``gal_morph.csv``)."""
    return Path(path).is_dir() and (Path(path) / "gal_morph.csv").is_file()


def is_stars_mock_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder written by ``astroreg simulate sdss-stars`` (labels and ``spectra/``)."""
    p = Path(path)
    return p.is_dir() and (p / "sspp-labels.fits").is_file() and (p / "spectra").is_dir()


_RECOGNISERS: dict[str, Callable[[Path], bool]] = {
    "dataset": is_dataset_file,
    "predictions": is_predictions_file,
    "metrics": is_metrics_file,
    "ingest-report": is_ingest_report,
    "run": is_run_folder,
    "ablation": is_ablation_folder,
    "galaxy-images": is_galaxy_mock_folder,
    "sdss-stars": is_stars_mock_folder,
}

_WHAT_MAKES = {
    "dataset": "an HDF5 file with astroreg_format = 'astroreg-dataset'",
    "predictions": "a Parquet file with an 'id' and '<target>_pred' columns",
    "metrics": "a JSON object with 'split' and 'models'",
    "ingest-report": "a JSON object with 'out' and 'n_ok'",
    "run": "a folder with config.yaml, model.pt and preprocessors.json",
    "ablation": "a folder with ablation.csv and ablation.json",
    "galaxy-images": "a folder with gal_morph.csv",
    "sdss-stars": "a folder with sspp-labels.fits and spectra/",
}


def _label(kind: str) -> str:
    return _LABELS[kind]


def _article(kind: str) -> str:
    return "an" if _LABELS[kind][0] in "aeiou" else "a"


def _is_empty_dir(p: Path) -> bool:
    try:
        return p.is_dir() and not any(os.scandir(p))
    except OSError:
        return False


def _same(a: Path, b: Path) -> bool:
    """Whether two paths name the same file or folder (hard and symbolic links included)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_not_input(path: str | os.PathLike, inputs: Sequence[str | os.PathLike | None]) -> None:
    """Refuse an output that is one of the command's inputs, or a folder holding one.

    Parameters
    ----------
    path : path-like
        The output.
    inputs : sequence of path-like
        The files and folders the command reads (None entries are ignored).

    Raises
    ------
    ValueError
        If ``path`` exists and is an input, a file in an input folder, or a folder that
        contains an input.
    """
    out = Path(path)
    if not (out.exists() or out.is_symlink()):
        return  # a new file cannot be an input
    for item in inputs:
        if item is None:
            continue
        src = Path(item)
        if not src.exists():
            continue
        inside = src.is_dir() and out.resolve().is_relative_to(src.resolve())
        if _same(out, src) or inside:
            what = f"({src})" if not inside or _same(out, src) else f"(a file in the input folder {src})"
            raise ValueError(
                f"output {out} is one of this command's inputs {what}; astroreg never writes over its "
                "inputs, even with --overwrite: choose another output path"
            )
        if out.is_dir() and src.resolve().is_relative_to(out.resolve()):
            raise ValueError(
                f"output {out} contains this command's input {src}; astroreg never replaces its inputs, "
                "even with --overwrite: choose another output path"
            )


def check_writable_folder(folder: str | os.PathLike) -> Path:
    """Check that files can be created in ``folder`` (or, if absent, in its nearest existing parent).

    A real probe file is created and removed: ``os.access`` alone is wrong on read-only
    mounts and for root.

    Returns
    -------
    pathlib.Path
        The existing folder that was probed.

    Raises
    ------
    ValueError
        If a part of the path is a file, or the folder cannot be written.
    """
    p = Path(folder) if str(folder) else Path(".")
    while not p.exists():
        if p.is_symlink():
            raise ValueError(f"{p} is a broken symbolic link; give an output folder that exists or can be made")
        parent = p.parent
        if parent == p:
            break
        p = parent
    if not p.is_dir():
        raise ValueError(f"{p} is a file, not a folder; give an output path in a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write in folder {p} (permission denied); choose a writable folder")
    try:
        with tempfile.TemporaryFile(dir=p, prefix=".astroreg-probe-"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write in folder {p} ({err.strerror or err}); choose a writable folder") from None
    return p


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_free_space(folder: str | os.PathLike, needed_bytes: float) -> None:
    """Refuse to start when ``folder``'s file system has less free space than ``needed_bytes``.

    Parameters
    ----------
    folder : path-like
        An existing folder (see :func:`check_writable_folder`).
    needed_bytes : float
        Estimated size of the output, bytes.

    Raises
    ------
    ValueError
        Naming the folder, the free and the needed bytes.
    """
    free = shutil.disk_usage(folder).free
    if needed_bytes > free:
        raise ValueError(
            f"not enough disk space in {folder}: {_bytes(free)} free, about {_bytes(needed_bytes)} needed; "
            "free some space or write elsewhere"
        )


def _check_existing(p: Path, kind: str, overwrite: bool) -> None:
    label = _label(kind)
    # `--run-dir runs` typed for `--runs runs`: say so whether or not --overwrite was given
    holds_runs = kind == "run" and p.is_dir() and any(is_run_folder(c) for c in _children(p))
    hint = f"it holds run folders: use --runs {p} to add a run beside them, or choose another path"
    if not overwrite:
        todo = hint if holds_runs else f"pass --overwrite to replace a previous {label}, or choose another path"
        raise ValueError(f"{p} exists; {todo}")
    if not _RECOGNISERS[kind](p):
        todo = hint if holds_runs else "choose another path"
        raise ValueError(
            f"{p} exists and is not a previous {label} ({_WHAT_MAKES[kind]}); astroreg replaces only its "
            f"own outputs, even with --overwrite: {todo}"
        )


def _children(p: Path, limit: int = 1000) -> list[Path]:
    out = []
    with contextlib.suppress(OSError), os.scandir(p) as it:
        for entry in it:
            if len(out) >= limit:
                break
            if entry.is_dir(follow_symlinks=False):
                out.append(Path(entry.path))
    return out


def check_output_file(
    path: str | os.PathLike,
    *,
    kind: Literal["dataset", "predictions", "metrics", "ingest-report"],
    inputs: Sequence[str | os.PathLike | None] = (),
    overwrite: bool = False,
    needed_bytes: float | None = None,
) -> Path:
    """Check an output file before any work: extension, inputs, existing file, folder, space.

    Parameters
    ----------
    path : path-like
        The file the command will write.
    kind : {"dataset", "predictions", "metrics", "ingest-report"}
        What it is: ``.h5``/``.hdf5`` dataset, ``.parquet`` predictions, ``.json`` metrics
        or ingest report.
    inputs : sequence of path-like
        Files and folders the command reads; the output may not be one of them.
    overwrite : bool
        Allow replacing an existing file, if it is a previous output of the same kind.
    needed_bytes : float, optional
        Estimated output size; checked against the free space of the folder.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        With one line naming the path, what was found and what to do.

    Examples
    --------
    >>> check_output_file("pred.parquet", kind="predictions", inputs=["new.h5"])  # doctest: +SKIP
    PosixPath('pred.parquet')
    """
    p = Path(path)
    check_not_input(p, inputs)
    allowed = _SUFFIXES[kind]
    if p.is_dir():
        raise ValueError(f"output {p} is a folder; give a file path ending in {allowed[0]}, "
                         f"e.g. {p / ('out' + allowed[0])}")
    if p.suffix.lower() not in allowed:
        raise ValueError(
            f"output {p} should end in {' or '.join(allowed)} (for {_article(kind)} {_label(kind)}); got "
            f"{p.suffix or 'no extension'}: give a path such as {p.with_suffix(allowed[0]).name}"
        )
    if p.exists() or p.is_symlink():
        _check_existing(p, kind, overwrite)
    folder = check_writable_folder(p.parent)
    if needed_bytes:
        check_free_space(folder, needed_bytes)
    return p


def check_output_dir(
    path: str | os.PathLike,
    *,
    kind: Literal["run", "ablation", "galaxy-images", "sdss-stars"],
    inputs: Sequence[str | os.PathLike | None] = (),
    overwrite: bool = False,
    needed_bytes: float | None = None,
) -> Path:
    """Check an output folder before any work (see :func:`check_output_file`).

    An absent or empty folder is fine. An existing ``<path>.partial`` whose process is
    running (or that astroreg did not make) is refused and left alone, and so is one that
    can be resumed (:func:`mark_resumable`), with the command that resumes it; any other
    left by a killed process is swept by :func:`claim_dir`.

    Raises
    ------
    ValueError
        If the folder exists and may not be replaced, is an input, is a file, its
        ``.partial`` exists, or its parent is not writable or lacks space.
    """
    p = Path(path)
    if p.name in ("", ".", ".."):
        raise ValueError(f"output folder {str(path)!r} must be named; give a new folder path")
    check_not_input(p, inputs)
    if p.exists() and not p.is_dir():
        raise ValueError(f"output {p} is a file; give a folder path for the {_label(kind)}")
    if p.is_dir() and not _is_empty_dir(p):
        _check_existing(p, kind, overwrite)
    partial = partial_name(p)
    if (partial.exists() or partial.is_symlink()) and (not is_stale_partial(partial)
                                                         or resume_command(partial) is not None):
        raise ValueError(_busy_message(partial, p))
    folder = check_writable_folder(p.parent)
    if needed_bytes:
        check_free_space(folder, needed_bytes)
    return p


def _take(partial: Path) -> None:
    """Hold the owner lock of a ``.partial`` this process has just created."""
    fd = os.open(partial / OWNER_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh file: nobody else can hold it
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[str(partial.absolute())] = fd


def _release(partial: Path) -> None:
    """Drop the owner lock (and file) of a ``.partial`` this process claimed."""
    fd = _HELD.pop(str(partial.absolute()), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            (partial / OWNER_FILE).unlink()
        os.close(fd)


@contextlib.contextmanager
def _dead_owner(partial: Path):
    """Yield True while holding the owner lock of ``partial`` when its claiming process has died.

    False when the owner is alive, or when there is no owner file (a folder astroreg did
    not claim, or one being claimed right now): such a folder is never removed.
    """
    try:
        fd = os.open(partial / OWNER_FILE, os.O_RDWR)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield False
            return
        # The lock must be on the file that is there now, not on one swept away meanwhile.
        try:
            same = os.fstat(fd).st_ino == os.stat(partial / OWNER_FILE).st_ino
        except OSError:
            same = False
        yield same
    finally:
        os.close(fd)


def is_stale_partial(partial: str | os.PathLike) -> bool:
    """Whether ``partial`` was claimed by an astroreg process that is no longer running."""
    with _dead_owner(Path(partial)) as dead:
        return dead


def mark_resumable(partial: str | os.PathLike, command: str) -> None:
    """Mark a claimed ``.partial`` as resumable by ``command``: kept when interrupted or failed, never swept.

    Parameters
    ----------
    partial : path-like
        A folder this process claimed with :func:`claim_dir`.
    command : str
        The command that resumes the work (shown to the user), e.g.
        ``astroreg resume runs/x.partial``.
    """
    atomic_write_text(Path(partial) / RESUME_FILE, command + "\n")


def unmark_resumable(partial: str | os.PathLike) -> None:
    """Undo :func:`mark_resumable`: the folder is removed on failure and swept when stale, as any other."""
    with contextlib.suppress(FileNotFoundError):
        (Path(partial) / RESUME_FILE).unlink()


def resume_command(partial: str | os.PathLike) -> str | None:
    """The command that resumes ``partial`` (:func:`mark_resumable`), or None for a folder not marked so."""
    try:
        return (Path(partial) / RESUME_FILE).read_text().strip() or None
    except OSError:
        return None


def _sweep(partial: Path) -> bool:
    """Remove ``partial`` if its claiming process died and it holds nothing resumable; whether it was removed."""
    if resume_command(partial) is not None:
        return False
    with _dead_owner(partial) as dead:
        if not dead:
            return False
        aside = Path(tempfile.mkdtemp(prefix=f".{partial.name}.stale-", dir=partial.parent))
        try:
            os.replace(partial, aside)  # atomic: the name is free for a new claim at once
        except OSError:
            os.rmdir(aside)
            return False
    shutil.rmtree(aside, ignore_errors=True)
    return True


def claim_dir(path: str | os.PathLike, *, unique: bool = False) -> Path:
    """Create ``<path>.partial`` atomically and return it: this process now owns it.

    The process holds a lock on the folder's ``.astroreg-owner`` file until
    :func:`replace_dir` or :func:`remove_claimed`; a ``.partial`` whose owner died
    (killed, crashed) is swept first, one whose owner lives is never touched.

    Parameters
    ----------
    path : path-like
        The final folder name.
    unique : bool
        If ``<path>`` or its ``.partial`` is taken, try ``<path>-2``, ``<path>-3``, ...
        (each claimed with ``os.mkdir``, so two processes never get the same name).
        Otherwise a taken name is an error.

    Returns
    -------
    pathlib.Path
        The new ``<final>.partial`` folder; its final name is :func:`final_name` of it.

    Raises
    ------
    ValueError
        If ``unique`` is False and ``<path>.partial`` is held by a running process, or is
        a folder that astroreg did not claim.
    """
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while True:
        final = base if k == 1 else base.with_name(f"{base.name}-{k}")
        partial = partial_name(final)
        try:
            os.mkdir(partial)
        except FileExistsError:
            if _sweep(partial):
                continue
            if not unique:
                raise ValueError(_busy_message(partial, final)) from None
            k += 1
            continue
        if unique and (final.exists() or final.is_symlink()):
            # A finished output took this name; ours is still empty, so it is safe to drop.
            os.rmdir(partial)
            k += 1
            continue
        _take(partial)
        return partial


def _busy_message(partial: Path, final: Path) -> str:
    command = resume_command(partial)
    if command is not None and is_stale_partial(partial):
        return (f"{partial} holds interrupted work for {final} that can be resumed: `{command}`; or remove "
                "that folder to start again, or choose another path")
    if (partial / OWNER_FILE).exists():
        return (f"{partial} exists: another astroreg command is writing {final}; wait for it to finish "
                "or choose another path")
    return (f"{partial} exists and was not made by a running astroreg command; remove it yourself if it "
            "holds nothing you need, or choose another path")


def partial_name(final: str | os.PathLike) -> Path:
    """``<name>.partial``, the folder in which the output ``<name>`` is built."""
    p = Path(final)
    return p.with_name(p.name + PARTIAL)


def final_name(partial: str | os.PathLike) -> Path:
    """``<name>`` of a ``<name>.partial`` folder."""
    p = Path(partial)
    if not p.name.endswith(PARTIAL):
        raise ValueError(f"{p} is not a {PARTIAL} folder")
    return p.with_name(p.name.removesuffix(PARTIAL))


def replace_dir(partial: str | os.PathLike, *, kind: str, overwrite: bool = False) -> Path:
    """Move a finished ``<name>.partial`` to ``<name>``, replacing only a previous output of ``kind``.

    A previous output (allowed by ``overwrite`` and recognised by its files) is first
    renamed aside to a hidden folder created here, then the new one is moved in, then
    the aside copy is removed; if the move fails, the previous output is put back.
    An empty folder at ``<name>`` is replaced. Anything else at ``<name>`` (it appeared
    while the command ran) is left alone and the finished output stays in ``partial``.

    Returns
    -------
    pathlib.Path
        The final folder.

    Raises
    ------
    ValueError
        If ``<name>`` holds something that may not be replaced.
    """
    partial = Path(partial)
    final = final_name(partial)
    _release(partial)  # the output is complete: no owner file in the final folder
    if _is_empty_dir(final):
        os.rmdir(final)
    if not (final.exists() or final.is_symlink()):
        os.replace(partial, final)
        return final
    if not (overwrite and _RECOGNISERS[kind](final)):
        raise ValueError(
            f"{final} appeared while this command ran and is not a previous {_label(kind)} it may replace; "
            f"the finished output is in {partial}: move it where you want it"
        )
    aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.replaced-", dir=final.parent))
    # Renaming a folder onto the empty folder we just made is atomic on POSIX.
    os.replace(final, aside)
    try:
        os.replace(partial, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.replace(aside, final)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return final


def remove_claimed(partial: str | os.PathLike) -> None:
    """Remove a ``.partial`` folder this process claimed with :func:`claim_dir` (after a failure)."""
    p = Path(partial)
    _release(p)
    if p.name.endswith(PARTIAL) and p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)


def build_dir(path: str | os.PathLike, build: Callable[[Path], T], *, kind: str, overwrite: bool = False,
              unique: bool = False) -> tuple[Path, T]:
    """Build a folder output in ``<path>.partial`` and move it to its final name when complete.

    :func:`claim_dir`, then ``build(partial)``, then :func:`replace_dir`. If ``build``
    fails or is interrupted, the claimed folder (this process's own) is removed, with a
    logged warning naming it, and the error goes on; nothing else is touched.

    Parameters
    ----------
    path : path-like
        The final folder name (with ``unique``, the first free ``<path>-2``, ... instead).
    build : callable
        Writes the output into the folder it is given; its result is returned.
    kind : str
        What the output is (``run``, ``ablation``, ``galaxy-images``, ``sdss-stars``).
    overwrite : bool
        Replace a previous output of ``kind`` at the final name.
    unique : bool
        See :func:`claim_dir`.

    Returns
    -------
    final : pathlib.Path
        The finished folder.
    result
        What ``build`` returned.
    """
    return _finish(claim_dir(path, unique=unique), build, kind=kind, overwrite=overwrite)


def resume_dir(partial: str | os.PathLike, build: Callable[[Path], T], *, kind: str,
               overwrite: bool = False) -> tuple[Path, T]:
    """Take over a resumable ``.partial`` left by an interrupted or killed command and finish it.

    The folder's owner lock is taken (refused while its process lives), then
    ``build(partial)`` and :func:`replace_dir`, with the interruption rules of
    :func:`build_dir`.

    Parameters
    ----------
    partial : path-like
        A ``<name>.partial`` folder marked by :func:`mark_resumable`.
    build : callable
        Goes on with the work in the folder it is given; its result is returned.
    kind : str
        What the output is.
    overwrite : bool
        Replace a previous output of ``kind`` at the final name.

    Raises
    ------
    ValueError
        If ``partial`` is not a resumable ``.partial`` folder or its process still runs.
    """
    p = Path(partial)
    if not p.name.endswith(PARTIAL) or not p.is_dir() or resume_command(p) is None:
        raise ValueError(
            f"{p} is not an interrupted astroreg {_label(kind)} that can be resumed (a folder ending in "
            f"{PARTIAL} with {RESUME_FILE}); give the .partial folder that the interrupted command left"
        )
    try:
        fd = os.open(p / OWNER_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as err:
        raise ValueError(f"cannot take over {p}: {err.strerror}; check that the folder is writable") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ValueError(f"{p} is being written by a running astroreg command; wait for it to finish") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _HELD[str(p.absolute())] = fd
    return _finish(p, build, kind=kind, overwrite=overwrite)


def _finish(partial: Path, build: Callable[[Path], T], *, kind: str, overwrite: bool) -> tuple[Path, T]:
    """``build(partial)``, then :func:`replace_dir`; on failure remove ``partial``, unless it can be resumed.

    A build interrupted (Ctrl-C, or ``SIGTERM`` turned into ``KeyboardInterrupt``) or failed
    once its folder was marked resumable keeps it, with a warning naming the command that
    resumes it: hours of training are not thrown away for a full disk or a stopped job.
    """
    try:
        result = build(partial)
    except BaseException as err:
        why = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        command = resume_command(partial)
        if command is not None:
            os.close(_HELD.pop(str(partial.absolute())))  # unlocked, owner file kept: a stale, resumable folder
            log.warning("%s %s: kept %s; resume it with `%s` (after fixing the cause of a failure), or remove "
                        "that folder", _label(kind), why, partial, command)
            raise
        remove_claimed(partial)
        log.warning("%s %s: removed its unfinished folder %s", _label(kind), why, partial)
        raise
    unmark_resumable(partial)  # finished: nothing to resume
    return replace_dir(partial, kind=kind, overwrite=overwrite), result
