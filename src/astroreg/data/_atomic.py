"""Atomic file output: a file appears under its final name only when complete.

A file being written lives beside its final name as ``.{name}.{pid}.{random}.part``, where
``pid`` is the writing process. A process killed before it finishes (``kill -9``, a power
cut) leaves that file behind; the next atomic write into the same folder removes such
files whose process is gone (:func:`remove_stale_parts`). Nothing else is ever removed,
and the temporary file of a live process is left alone. Process ids are this machine's:
two machines writing into one network folder at the same time should not share it.
On Windows nothing is swept (there is no harmless way to ask whether a process exists).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

PART_SUFFIX = ".part"
# mkstemp's random part: 8 characters of [a-z0-9_]. The second form is the one DatasetWriter
# used before the random part was added, so files left by older versions are cleaned too.
_PART_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.part$")
_OLD_PART_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)\.part$")

_swept: set[tuple[int, str]] = set()  # (pid, folder): each process sweeps a folder once
_swept_lock = threading.Lock()


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists here (a zombie or another user's counts as alive)."""
    if pid <= 0 or os.name == "nt":
        # Not a process id we wrote; and on Windows os.kill(pid, 0) would terminate the process.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def part_pids(name: str) -> list[int]:
    """Process ids a temporary name could carry (empty when it is not an astroreg ``.part`` name).

    Both readings of an ambiguous name are returned, so that a file is removed only when
    every process it could belong to is gone.
    """
    pids = [int(m["pid"]) for m in (_PART_NAME.match(name), _OLD_PART_NAME.match(name)) if m]
    return pids


def remove_stale_parts(folder: str | os.PathLike, *, once: bool = False) -> list[Path]:
    """Remove the ``.{name}.{pid}.{random}.part`` files of dead processes from ``folder``.

    Parameters
    ----------
    folder : path-like
        Folder to sweep (not recursive). A missing or unreadable folder is skipped.
    once : bool
        Sweep each folder at most once per process (the atomic writers call this before
        every file, and a folder of 50,000 spectra should be listed once, not 50,000 times).

    Returns
    -------
    list of pathlib.Path
        The files removed.

    Examples
    --------
    >>> remove_stale_parts("data/")  # doctest: +SKIP
    [PosixPath('data/.galaxies.h5.48213.k2j9a_x1.part')]
    """
    folder = Path(folder)
    if once:
        key = (os.getpid(), os.path.abspath(folder))
        with _swept_lock:
            if key in _swept:
                return []
            _swept.add(key)
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(PART_SUFFIX)):
            continue
        pids = part_pids(entry.name)
        if not pids or any(process_alive(pid) for pid in pids):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
        except OSError:
            continue  # gone already (another process swept it) or not ours to remove
        removed.append(Path(entry.path))
    return removed


def part_path(path: str | os.PathLike, *, suffix: str = PART_SUFFIX, always_sweep: bool = False) -> Path:
    """Create and return an empty temporary file for ``path``, named after this process.

    The caller writes it and moves it into place with ``os.replace``, or removes it.
    Stale temporary files of dead processes in the same folder are removed first: the
    first time this process writes there, or every time with ``always_sweep`` (for
    writers of few, large files).
    """
    final = Path(path)
    remove_stale_parts(final.parent, once=not always_sweep)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    return Path(tmp_name)


def publish(tmp: str | os.PathLike, final: str | os.PathLike) -> None:
    """Move a finished temporary file (from :func:`part_path`) to ``final``, with the usual permissions.

    mkstemp creates the file private (0600); the published file gets ``0666`` less the
    umask, like any file the user creates, so that a dataset or a predictions table can
    be shared with the group.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = PART_SUFFIX) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it on success.

    The temporary file lives in the same folder (so the final ``os.replace`` is
    atomic on POSIX file systems) and is removed if the block raises, so an
    interrupted run never leaves a half-written file under the final name.
    Its name, ``.{name}.{pid}.{random}.part``, carries this process's id, so that a
    later run can tell the leftovers of a killed process from files being written.

    Parameters
    ----------
    path : path-like
        Final destination.
    suffix : str
        Suffix of the temporary name; ``.part`` marks it as incomplete (only ``.part``
        files are recognised as stale later).

    Examples
    --------
    >>> with atomic_path("predictions.parquet") as tmp:  # doctest: +SKIP
    ...     frame.to_parquet(tmp)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = part_path(final, suffix=suffix)
    try:
        yield tmp
        publish(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
