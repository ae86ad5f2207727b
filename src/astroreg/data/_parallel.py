"""Worker pools and ordered, chunked parallel maps for the ingest and simulation pipelines."""

from __future__ import annotations

import math
import multiprocessing
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor


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


def make_pool(parallel: str, workers: int, *, name: str = "astroreg") -> Executor | None:
    """A started pool of ``workers`` threads or processes (``parallel``), or None for one worker.

    Processes start by ``fork`` where that is safe (Linux, this process single-threaded),
    else ``forkserver`` or ``spawn``; the workers are started before any progress bar.
    """
    if workers <= 1:
        return None
    if parallel == "threads":
        return ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    # fork is fast and, unlike forkserver and spawn, needs no `if __name__ == "__main__":` guard in
    # the caller's script; but forking a process that runs threads can deadlock, so it is used only
    # while this one runs a single thread (and on Linux: macOS system libraries break after a fork).
    single = threading.active_count() == 1 and sys.platform.startswith("linux")
    methods = multiprocessing.get_all_start_methods()
    method = "fork" if single and "fork" in methods else "forkserver" if "forkserver" in methods else "spawn"
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method))
    # Start the workers now, before the progress bars start their monitor thread.
    for f in [pool.submit(int, 0) for _ in range(workers)]:
        f.result()
    return pool
