"""Ordered, chunked parallel maps for the ingest pipelines."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future


def map_chunks(func: Callable, items: list, args: tuple, chunk_size: int, pool: Executor | None,
               workers: int) -> Iterator[tuple[list, list]]:
    """Yield ``(chunk, func(chunk, *args))`` in order, computing one chunk ahead on ``pool``.

    Each chunk of ``chunk_size`` items is cut into about ``2 * workers`` batches so that
    every worker stays busy; at most two chunks are in flight, which bounds memory.
    ``pool=None`` runs serially.
    """
    starts = range(0, len(items), chunk_size)
    if pool is None:
        for s in starts:
            yield items[s:s + chunk_size], func(items[s:s + chunk_size], *args)
        return
    pending: deque[tuple[list, list[Future]]] = deque()
    try:
        for s in starts:
            chunk = items[s:s + chunk_size]
            step = max(1, math.ceil(len(chunk) / (2 * workers)))
            pending.append((chunk, [pool.submit(func, chunk[b:b + step], *args) for b in range(0, len(chunk), step)]))
            if len(pending) > 1:
                done, futures = pending.popleft()
                yield done, [r for f in futures for r in f.result()]
        while pending:
            done, futures = pending.popleft()
            yield done, [r for f in futures for r in f.result()]
    finally:
        for _, futures in pending:
            for f in futures:
                f.cancel()
