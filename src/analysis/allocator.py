"""Keep freed memory for reuse in the long-running commands (Linux with glibc; elsewhere nothing happens).

glibc serves every allocation above a threshold (at most 32 MiB) with a fresh ``mmap`` and returns it to the
system when freed. The engine and the indicator code make many temporary arrays of 100 MiB and more (a
country's quantiles: 270,000 series x 4-14 years x 15 levels), so each one came as fresh pages that the
kernel had to fault in and zero: a quarter to a third of a projection worker's time was system time
(measured: 6-8 s of 24-27 s per vintage). Served from the heap and kept there when freed, the same memory is
reused: 1.5-2 s of system time once a worker is warm. The price is that a process keeps its peak heap until
it ends, which the commands measure (``benchmarks/bench_scale.py``) and can afford: they are short-lived and
their peak does not change. Notebooks and the library never call this: it is a decision for a process, made
by the command line (``python -m analysis``) before it computes.

The same call turns off numpy's request for transparent huge pages on large arrays (``madvise``). On a heap
that keeps its memory the request does not pay: measured on this project's 2-core machine, faulting in a
fresh 256 MiB array took 0.88 s with it and 0.18 s without, and the country's indicator computation went from
5.8 s to 4.4 s (its Wilson intervals alone from 0.51 s to 0.14 s).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_MAX = -4
_KEEP = 2**31 - 1  # the largest value mallopt takes: free space at the heap's top is kept up to 2 GiB

_applied = False
_libc = None


def keep_freed_memory() -> bool:
    """Serve large allocations from the heap and keep freed memory there; True if it took effect."""
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): the default behaviour stays
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP))
    global _libc
    _libc = libc if _applied else None
    if _applied:
        _no_huge_pages_for_numpy()
    return _applied


def _no_huge_pages_for_numpy() -> None:
    from numpy._core import multiarray

    setter = getattr(multiarray, "_set_madvise_hugepage", None)  # numpy's own switch (private, so looked up)
    if setter is not None:
        setter(False)


def release_free_memory() -> None:
    """Give the free memory kept by ``keep_freed_memory`` back to the system (before forking workers: every
    forked process would otherwise hold the parent's free pages too). Nothing happens if it was not kept."""
    if _libc is not None:
        _libc.malloc_trim(0)
