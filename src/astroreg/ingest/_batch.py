"""The output side of a chunked ingest: a dataset writer opened on the first kept object.

The survey readers (:mod:`astroreg.ingest._images`, :mod:`astroreg.ingest._sdss`,
:mod:`astroreg.ingest._gaiaxp`) read their files chunk by chunk and learn what the dataset
looks like (image shape, error arrays) only from the first usable chunk, so the writer is
opened then, not before. :class:`LazyWriter` holds it for the run and keeps the atomic-output
guarantee in one place: the dataset is moved into place only when the run ends cleanly; an
error or an interrupt (``KeyboardInterrupt`` included) aborts the writer, leaving no file
under the output path, and the worker pool is shut down either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from types import TracebackType
from typing import Any

from astroreg.data._dataset import DatasetWriter


class LazyWriter:
    """A :class:`~astroreg.data.DatasetWriter` opened on demand, closed or aborted on exit.

    Parameters
    ----------
    pool : concurrent.futures.Executor, optional
        Worker pool of the run, shut down on exit (pending work cancelled), after the writer.
    cleanup : sequence of callable
        Called without arguments on exit, in order, after the pool (e.g. a chunk generator's
        ``close`` and a progress bar's ``close``).

    Attributes
    ----------
    writer : DatasetWriter or None
        The open writer; ``None`` until :meth:`open` was first called.

    Examples
    --------
    >>> with LazyWriter(pool=pool) as batch:  # doctest: +SKIP
    ...     for ids, images in chunks:
    ...         batch.open(DatasetWriter, "out.h5", images=spec, targets={"f": ""}).append(ids, images=images)
    ...     n_ok = batch.n_objects
    """

    def __init__(self, *, pool: Executor | None = None, cleanup: Sequence[Callable[[], Any]] = ()) -> None:
        self.pool = pool
        self.cleanup = tuple(cleanup)
        self.writer: DatasetWriter | None = None

    def open(self, opener: Callable[..., DatasetWriter], *args: Any, **kwargs: Any) -> DatasetWriter:
        """The writer, made by ``opener(*args, **kwargs)`` on the first call (it must return an open writer)."""
        if self.writer is None:
            self.writer = opener(*args, **kwargs)
        return self.writer

    @property
    def n_objects(self) -> int:
        """Objects appended so far (0 before the writer is opened)."""
        return self.writer.n_objects if self.writer is not None else 0

    def __enter__(self) -> LazyWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None,
    ) -> None:
        try:
            if self.writer is not None:
                if exc_type is None:
                    try:
                        self.writer.close()
                    except BaseException:
                        self.writer.abort()
                        raise
                else:
                    self.writer.abort()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
            for close in self.cleanup:
                close()
