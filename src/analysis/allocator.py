"""Two decisions about fresh memory, each measured: freed memory kept for reuse in the commands (Linux with
glibc; elsewhere nothing happens), and numpy's huge pages left off where they do not pay.

glibc serves every allocation above a threshold (at most 32 MiB) with a fresh ``mmap`` and returns it to the
system when freed. The engine and the indicator code make many temporary arrays of 100 MiB and more (a
country's quantiles: 270,000 series x 4-14 years x 15 levels), so each one came as fresh pages that the
kernel had to fault in and zero: a quarter to a third of a projection worker's time was system time
(measured: 6-8 s of 24-27 s per vintage). Served from the heap and kept there when freed, the same memory is
reused: 1.5-2 s of system time once a worker is warm. Threads share that heap (one arena) for the same
reason. The price is that a process keeps its peak heap until
it ends, which the commands measure (``benchmarks/bench_scale.py``) and can afford: they are short-lived and
their peak does not change. Notebooks and the library never call ``keep_freed_memory``: it is a decision for a
process, made by the command line (``python -m analysis``) before it computes.

``without_huge_pages()`` is the other decision about fresh memory. numpy asks the kernel for transparent huge
pages (``madvise``) on every large array. They cost more to fault in (measured on this project's 2-core
machine, on a heap that keeps its memory: a fresh 256 MiB array in 0.88 s with them, 0.18 s without) and
make later passes over the memory faster. A one-pass computation pays the first and gets little of the
second: the country's indicators took 5.8 s with them and 4.4 s without. The projection workers reuse their
memory for minutes and gain: their stage took 105.6 s with huge pages and 124.4 s without. So the
indicator computation turns them off while it runs (``indicators.process``) and everything else keeps
numpy's default.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from contextlib import contextmanager

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
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
    # every thread on the one heap: a thread's own arena cannot serve large arrays without mmap, and gives
    # its memory back when freed, so threads computing columns (parallel.at_once) would fault in fresh pages
    # where the heap had freed ones (measured: the indicators' derived columns, 71,000 -> 45,000 faults)
    _applied = _applied and bool(mallopt(_M_ARENA_MAX, 1))
    global _libc
    _libc = libc if _applied else None
    return _applied


@contextmanager
def without_huge_pages():
    """numpy's request for transparent huge pages off while the block runs, then as it was (a one-pass
    computation: see the module's note). Nothing happens where numpy has no such switch."""
    from numpy._core import multiarray

    getter = getattr(multiarray, "_get_madvise_hugepage", None)  # numpy's own switch (private, so looked up)
    setter = getattr(multiarray, "_set_madvise_hugepage", None)
    if getter is None or setter is None:
        yield
        return
    before = bool(getter())
    setter(False)
    try:
        yield
    finally:
        setter(before)


def release_free_memory() -> None:
    """Give the free memory kept by ``keep_freed_memory`` back to the system (before forking workers: every
    forked process would otherwise hold the parent's free pages too). Nothing happens if it was not kept."""
    if _libc is not None:
        _libc.malloc_trim(0)
