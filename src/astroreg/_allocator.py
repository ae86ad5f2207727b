"""Keep freed tensor memory inside the process (glibc), so that CPU training stops page-faulting.

PyTorch's CPU tensors come from the C library's ``malloc``. With glibc's defaults a block
above a threshold that adapts between 128 KiB and 32 MiB is mapped from the kernel and
unmapped when freed, and free memory above 128 KiB-64 MiB at the top of the heap is
handed back to the kernel; every step of a training loop then maps its activations and
gradients afresh and takes a page fault per 4 KiB of them. Paper 004's CNN at batch 16
on the 2-core machines took about 1,900 minor faults and 5-7 ms of kernel time a step
(a step is 25-35 ms), and whether it did depended on the order of earlier allocations.
Fixing both thresholds (``mallopt``, what the ``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` environment variables set at start-up) makes the process
reuse that memory: no faults, and the kernel time gone (``docs/gaia-xp-cnn.md``).
``astroreg predict`` of the same network took 90 faults a spectrum (1.8 million for
20,000) and ran 10-20% faster without them, at the same peak memory.

:func:`~astroreg.training.fit_network` and :func:`~astroreg.pipeline.predict` call
:func:`keep_freed_memory`; the setting then holds for the rest of the process.

The cost is resident memory: up to :data:`TRIM_THRESHOLD` of freed memory may stay with
the process until it allocates again or ends. Nothing is changed where the C library is
not glibc, where the user set either variable or preloads another allocator (jemalloc,
tcmalloc), or where ``ASTROREG_MALLOC_TUNING=0``.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
"""glibc's ``mallopt`` parameter number for the trim threshold (``malloc.h``)."""
M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number for the mmap threshold (``malloc.h``)."""

MMAP_THRESHOLD = 32 * 1024 * 1024
"""Blocks above this (32 MiB, glibc's own upper bound for the adaptive threshold) are still mapped apart."""
TRIM_THRESHOLD = 256 * 1024 * 1024
"""Free memory at the top of the heap is handed back to the kernel only above this (256 MiB)."""

OPT_OUT = "ASTROREG_MALLOC_TUNING"
"""Set this environment variable to ``0`` to leave the C library's settings alone."""

_applied = False


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc, else ``None``."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 -- glibc only
        libc.mallopt
    except (OSError, AttributeError, TypeError):  # TypeError: Windows has no dlopen(NULL)
        return None
    return libc


def why_not_tuned() -> str | None:
    """Why :func:`keep_freed_memory` would leave the allocator alone, or ``None`` if it would tune it."""
    if os.environ.get(OPT_OUT, "1").strip() == "0":
        return f"{OPT_OUT}=0"
    for var in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        if var in os.environ:
            return f"{var} is set"
    preload = os.environ.get("LD_PRELOAD", "")
    if any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        return "another allocator is preloaded"
    if _glibc() is None:
        return "the C library is not glibc"
    return None


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds so that freed tensor memory is reused, once per process.

    Returns
    -------
    bool
        Whether the thresholds are set (now or by an earlier call); ``False`` where
        :func:`why_not_tuned` gives a reason or ``mallopt`` refused a value.

    Examples
    --------
    >>> isinstance(keep_freed_memory(), bool)
    True
    """
    global _applied
    if _applied:
        return True
    reason = why_not_tuned()
    if reason is not None:
        log.debug("allocator left as it is: %s", reason)
        return False
    libc = _glibc()
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _applied = ok
    return ok
