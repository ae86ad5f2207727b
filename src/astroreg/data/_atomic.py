"""Atomic file output: a file appears under its final name only when complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str = ".part") -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it on success.

    The temporary file lives in the same folder (so the final ``os.replace`` is
    atomic on POSIX file systems) and is removed if the block raises, so an
    interrupted run never leaves a half-written file under the final name.

    Parameters
    ----------
    path : path-like
        Final destination.
    suffix : str
        Suffix of the temporary name; ``.part`` marks it as incomplete.

    Examples
    --------
    >>> with atomic_path("predictions.parquet") as tmp:  # doctest: +SKIP
    ...     frame.to_parquet(tmp)
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file private (0600); give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
