"""Where a study lives: checking a SQLite storage path, and database faults as one-line errors.

Optuna opens whatever file it is given as a SQLite database and writes its tables into it;
a typo in ``--storage`` must not turn a catalogue into a study. Faults of the file system
under a running study (read-only, full, damaged) reach the caller wrapped in SQLAlchemy
and Optuna exceptions; :func:`storage_errors` turns them into a ``ValueError`` naming the
storage and the database's own cause.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy

_SQLITE = "sqlite:///"
# The first 16 bytes of every SQLite 3 database file (sqlite.org/fileformat.html).
SQLITE_HEADER = b"SQLite format 3\x00"
# SQLite's words for a storage the file system refuses (read-only, full, missing, damaged).
_FILE_FAULTS = ("unable to open database file", "disk i/o error", "readonly database", "database or disk is full",
                "file is not a database", "malformed")


def resolve_storage(storage: str | os.PathLike | None, recipe_name: str, runs_root: str | os.PathLike = "runs") -> str:
    """An Optuna storage URL: a URL as given, a file path as ``sqlite:///<absolute path>``.

    The default is ``<runs_root>/<recipe name>-tuning.db``; the folder of a SQLite file is
    created. A SQLite file (given as a path or a ``sqlite:///`` URL) is checked before
    Optuna opens it, which would otherwise write its tables into any file it is given.

    Raises
    ------
    ValueError
        If the SQLite path is a folder, an existing file that is not a SQLite database
        (left untouched), or a place where the file cannot be read or created.
    """
    if storage is None:
        storage = Path(runs_root) / f"{recipe_name}-tuning.db"
    text = str(storage)
    if "://" in text:
        if text.startswith(_SQLITE):
            file = text[len(_SQLITE):].split("?", 1)[0]
            if file and file != ":memory:":
                _check_sqlite_file(Path(file).expanduser(), text)
        return text
    path = Path(text).expanduser().resolve()
    _check_sqlite_file(path, text)
    return f"{_SQLITE}{path}"


def _check_sqlite_file(path: Path, given: str) -> None:
    """Refuse a SQLite storage path that is not a database or a place for one; create its folder."""
    where = f"--storage/tuning.storage {given!r}"
    if path.is_dir():
        raise ValueError(f"{where} is a folder; name a SQLite file, e.g. {str(path / 'study.db')!r}")
    if path.exists():
        try:
            with open(path, "rb") as f:
                head = f.read(len(SQLITE_HEADER))
        except OSError as err:
            raise ValueError(f"{where} cannot be read ({err.strerror or err}); "
                             "fix its permissions or name another file") from None
        # SQLite itself treats an empty file as an empty database (and one being created by
        # another process joining the study is empty for a moment).
        if head and head != SQLITE_HEADER:
            raise ValueError(f"{where} is not a SQLite database (it starts with {head!r}); it was left untouched: "
                             "name a new file or an existing study database (e.g. runs/NAME-tuning.db)")
        return
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ValueError(f"{where}: {str(blocker)!r} is a file, not a folder; name a SQLite file in a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{where}: cannot create the folder {str(path.parent)!r} ({err.strerror or err}); "
                         "name a SQLite file in a writable folder") from None
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ValueError(f"{where}: the folder {str(path.parent)!r} is not writable; "
                         "name a SQLite file in a writable folder")


def _db_cause(err: BaseException) -> str | None:
    """The database driver's own message in the chain of ``err`` (Optuna and SQLAlchemy wrap it), if any."""
    seen = set()
    e: BaseException | None = err
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, sqlalchemy.exc.DBAPIError):
            return str(e.orig)
        if isinstance(e, sqlite3.Error):
            return str(e)
        e = e.__cause__ or e.__context__
    return None


def is_file_fault(err: BaseException) -> bool:
    """Whether ``err`` comes from a database file the file system refuses: retrying will not help."""
    cause = _db_cause(err)
    return cause is not None and any(f in cause.lower() for f in _FILE_FAULTS)


def storage_error(err: BaseException, url: str) -> ValueError | None:
    """A one-line ValueError naming the storage and the database's cause, if ``err`` comes from the database."""
    cause = _db_cause(err)
    if cause is None:
        return None
    shown = storage_name(url)
    if any(f in cause.lower() for f in ("file is not a database", "malformed")):
        advice = "the file is damaged (left as it is); name another --storage"
    else:
        advice = "check that its folder is writable and its disk has space, or name another --storage"
    first = cause.strip().splitlines()[0] if cause.strip() else type(err).__name__
    return ValueError(f"tuning storage {shown}: {first}; {advice}")


def storage_name(url: str) -> str:
    """The storage as a user would name it: the file of a SQLite URL, other URLs without their password."""
    if url.startswith(_SQLITE):
        return url[len(_SQLITE):]
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


@contextlib.contextmanager
def storage_errors(url: str) -> Iterator[None]:
    """Turn database errors raised by Optuna or SQLAlchemy inside the block into a one-line ValueError."""
    try:
        yield
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, sqlite3.Error) as err:
        converted = storage_error(err, url)
        if converted is None:
            raise
        raise converted from err
