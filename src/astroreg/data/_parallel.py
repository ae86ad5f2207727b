"""Worker pools and ordered, chunked parallel maps for the ingest and simulation pipelines.

Worker processes never outlive the command that started them. On Linux each worker asks
the kernel for SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``), so ``kill -9``
of the command takes its workers with it at once; elsewhere a worker notices the broken
pipe to its dead parent when it asks for its next task and exits then.

Ctrl-C in a terminal sends SIGINT to the whole process group. A worker stops the task it
is running (raising ``KeyboardInterrupt`` inside it, so its ``finally`` blocks remove its
temporary files) but ignores the signal while idle, where it would die with a traceback
of its own; the parent cancels the queued tasks and shuts the pool down.
"""

from __future__ import annotations

import ctypes
import math
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

from astroreg.data._atomic import process_alive


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
            task = (run_task, func) if isinstance(pool, ProcessPoolExecutor) else (func,)
            pending.append((chunk, [pool.submit(*task, chunk[b:b + step], *args) for b in range(0, len(chunk), step)]))
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


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# In a worker process: whether run_task is running a task, and whether Ctrl-C was pressed.
_in_task = False
_interrupted = False


def run_task(func: Callable, *args):
    """Run ``func(*args)`` in a pool worker, marked as interruptible by Ctrl-C.

    Submit tasks to :func:`process_pool` pools through it:
    ``pool.submit(run_task, func, *args)``. After a Ctrl-C, the tasks that were already
    queued to this worker (and can no longer be cancelled) end at once.
    """
    global _in_task
    if _interrupted:
        raise KeyboardInterrupt
    _in_task = True
    try:
        return func(*args)
    finally:
        _in_task = False


def _on_sigint(signum, frame) -> None:
    global _interrupted
    _interrupted = True
    if _in_task:
        raise KeyboardInterrupt


def _die_with_parent(parent_pid: int) -> None:
    """Worker initializer: exit when the process that made the pool is gone.

    Parameters
    ----------
    parent_pid : int
        Process id of the command that created the pool.
    """
    signal.signal(signal.SIGINT, _on_sigint)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)  # this process's own symbols, libc's among them
        # The death signal is tied to the thread that forked this worker: ProcessPoolExecutor forks
        # from the thread that submits, here the command's main thread, which lives as long as it does.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The parent may have died between the fork and the prctl above, too early for the signal
    # (then this worker was re-parented); under forkserver the parent is the server, so ask
    # after the command itself.
    if os.getppid() != parent_pid and not process_alive(parent_pid):
        os._exit(1)


def process_pool(workers: int, *, method: str | None = None) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process and leave Ctrl-C to it.

    Parameters
    ----------
    workers : int
        Number of worker processes.
    method : str, optional
        Start method (``fork``, ``forkserver``, ``spawn``); the platform's default when None.

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
        Shut it down with ``shutdown(wait=True, cancel_futures=True)`` in a ``finally``.
    """
    ctx = multiprocessing.get_context(method)
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_die_with_parent,
                               initargs=(os.getpid(),))


def make_pool(parallel: str, workers: int, *, name: str = "astroreg") -> Executor | None:
    """A started pool of ``workers`` threads or processes (``parallel``), or None for one worker.

    Processes start by ``fork`` where that is safe (Linux, this process single-threaded),
    else ``forkserver`` or ``spawn``; the workers are started before any progress bar.
    Worker processes die with this process (see the module docstring).
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
    pool = process_pool(workers, method=method)
    # Start the workers now, before the progress bars start their monitor thread.
    for f in [pool.submit(int, 0) for _ in range(workers)]:
        f.result()
    return pool
