"""How many threads torch should use: the cores this process may use, less those other work keeps busy.

An OpenMP team larger than the free cores waits at every parallel region for its
descheduled threads: on a 2-core machine with one core held by another process, a small
MLP trains at 500-1,050 rows/s with 2 threads and at 6,300-7,800 rows/s with 1. So the
default thread count is measured, not taken from ``os.cpu_count()``.

The load of the machine is read from ``/proc/stat`` (Linux): the CPU time all processes
spent, less this process's own (:func:`os.times`), over a short window. Where that cannot
be read, or where ``/proc/stat`` counts other CPUs than this process may run on (a
container pinned to some of the host's cores), the usable cores are taken as free.

This module imports torch only inside :func:`set_threads`, so that the command line can
use it before it decides to load the training stack.
"""

from __future__ import annotations

import math
import numbers
import os
import time
from typing import NamedTuple

BUSY_FRACTION = 0.5
"""A core counts as busy when other processes use more than this fraction of it."""

DEFAULT_WINDOW = 0.2
"""Seconds over which :func:`default_threads` measures the load."""


class LoadSample(NamedTuple):
    """One reading of the machine's CPU time; two readings give the load between them.

    Attributes
    ----------
    wall : float
        :func:`time.perf_counter` at the reading, s.
    busy : float
        CPU time of the whole machine spent outside idle and I/O wait, summed over its
        CPUs, s.
    own : float
        CPU time of this process (user + system, all threads), s.
    """

    wall: float
    busy: float
    own: float


def usable_cores() -> int:
    """The number of cores this process may run on (its affinity mask), at least 1.

    Examples
    --------
    >>> usable_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def machine_load_sample(stat_path: str = "/proc/stat") -> LoadSample | None:
    """Read the machine's busy CPU time and this process's own, now.

    Parameters
    ----------
    stat_path : str
        The kernel's CPU statistics (``/proc/stat``); another path serves tests.

    Returns
    -------
    LoadSample or None
        None where the file cannot be read or parsed (not Linux), or where it counts
        another number of CPUs than :func:`usable_cores` (then the machine-wide time says
        nothing about the cores this process may use).

    Examples
    --------
    >>> a = machine_load_sample()
    >>> b = machine_load_sample()
    >>> None in (a, b) or other_cores_busy(a, b) >= 0
    True
    """
    try:
        with open(stat_path) as fh:
            lines = fh.read().splitlines()
        n_cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
        if n_cpus != usable_cores():
            return None
        # user nice system idle iowait irq softirq steal (jiffies, summed over the CPUs)
        v = [int(f) for f in lines[0].split()[1:9]]
        if len(v) < 5:
            return None
        busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    t = os.times()
    return LoadSample(time.perf_counter(), busy, t.user + t.system)


def other_cores_busy(before: LoadSample, after: LoadSample) -> float:
    """Cores' worth of CPU time that other processes used between two readings.

    Parameters
    ----------
    before, after : LoadSample
        Two readings of :func:`machine_load_sample`, ``after`` the later one.

    Returns
    -------
    float
        Average number of cores kept busy by other processes, >= 0 (0 when the readings
        are at the same instant).

    Examples
    --------
    >>> other_cores_busy(LoadSample(0.0, 10.0, 1.0), LoadSample(1.0, 11.5, 1.25))
    1.25
    """
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0
    return max(0.0, ((after.busy - before.busy) - (after.own - before.own)) / wall)


def free_cores(usable: int, others: float, busy: float = BUSY_FRACTION) -> int:
    """The usable cores less those other work keeps busy, at least 1.

    Parameters
    ----------
    usable : int
        Cores this process may run on.
    others : float
        Cores' worth of CPU time used by other processes (:func:`other_cores_busy`).
    busy : float
        A core counts as busy when more than this fraction of it is used.

    Examples
    --------
    >>> free_cores(2, 0.9), free_cores(2, 0.3), free_cores(8, 2.6), free_cores(2, 5.0)
    (1, 2, 5, 1)
    """
    taken = max(0, math.ceil(others - busy))
    return max(1, usable - taken)


def default_threads(window: float = DEFAULT_WINDOW, *, stat_path: str = "/proc/stat") -> int:
    """Threads for torch's intra-op pool: the usable cores not kept busy by other processes.

    Measures the load over ``window`` seconds (it sleeps that long). Falls back to
    :func:`usable_cores` where the load cannot be read (see :func:`machine_load_sample`).

    Parameters
    ----------
    window : float
        Seconds to measure the load over (default 0.2).
    stat_path : str
        The kernel's CPU statistics; another path serves tests.

    Returns
    -------
    int
        Between 1 and :func:`usable_cores`.

    Examples
    --------
    >>> 1 <= default_threads() <= usable_cores()
    True
    """
    usable = usable_cores()
    before = machine_load_sample(stat_path)
    if before is None:
        return usable
    time.sleep(window)
    after = machine_load_sample(stat_path)
    if after is None:
        return usable
    return free_cores(usable, other_cores_busy(before, after))


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count (``torch.set_num_threads``).

    Parameters
    ----------
    n : int, optional
        Threads to use (``--threads``, ``training.threads``), at least 1. None: the
        environment's ``OMP_NUM_THREADS`` where it is a whole number >= 1 (a choice made
        for this job, e.g. by a batch scheduler), else :func:`default_threads`.

    Returns
    -------
    int
        The number of threads set.

    Raises
    ------
    ValueError
        If ``n`` is not a whole number >= 1.

    Examples
    --------
    >>> set_threads(1)
    1
    """
    if n is None:
        n = _env_threads() or default_threads()
    elif isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"threads must be a whole number >= 1 (or None for the free cores), got {n!r}; "
                         "give e.g. --threads 1 or training.threads: 2")
    import torch  # here, not at the top: the command line checks its input before loading torch

    n = int(n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def _env_threads() -> int | None:
    """``OMP_NUM_THREADS`` as a thread count, or None where it is unset or not a whole number >= 1."""
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(text) if text.isdigit() and int(text) >= 1 else None
