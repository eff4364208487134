"""Allocator setting for block-wise processing: keep freed memory for the next block (glibc).

Every block of a step allocates the same large arrays again, and the next step much the same
ones.  By default glibc maps every chunk above its mmap threshold (at most 32 MiB) on its own and
unmaps it when freed, and gives each thread (the read-ahead thread of
:func:`~sbts.core.compute.scheduling.run_blocks`) an arena of its own that it trims, so the next
block gets fresh pages and pays a page fault (and the zeroing of the page) for each of them.  On
a virtual machine that hands freed guest memory back to its host (free page reporting, as this
project's CI machines do) a fresh page costs much more again: the host backs it anew, about
1.5 ms per MB against 0.04 ms per MB for memory the process reuses.

So sbts's own processes (the ``sbts`` command and its pool workers, never a library import: this
changes the allocator of the whole process) take every allocation from the one heap of the main
arena and keep what is freed there for reuse.  Measured on ``bench/bench_workflow.py --whole``
(1000 × 1000 px, 60 dates, 230 pairs, 2 cores): 161k page faults and 13–17 s of system time with
glibc's defaults (the 32 MiB threshold only), 66k faults and 10 s with this setting; the wall time
26–27 s against 27.5–32 s, and the peak RSS 2.03 GB against 1.94 GB (the heap keeps the largest
blocks' memory rather than the exact live set).  :func:`release_spare_memory` hands back what a
finished step left free beyond a bound, so a long run does not hold more idle memory than its
budget.  Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import logging

from sbts.core.compute.libc import libc

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes an int: the heap's top is trimmed only beyond 2 GiB
# no chunk of its own mapping (every allocation from the heap, reused when freed); one arena, so
# the read-ahead thread's buffers are reused as the main thread's are; a heap top kept and grown
# 64 MiB at a time
_SETTINGS = ((_M_MMAP_MAX, 0), (_M_ARENA_MAX, 1), (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD), (_M_TOP_PAD, 64 << 20))


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def _libc() -> ctypes.CDLL | None:
    """glibc (:func:`sbts.core.compute.libc.libc`, loaded once); None elsewhere (musl has no mallopt)."""
    lib = libc()
    return lib if lib is not None and hasattr(lib, "mallopt") else None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc so that freed block buffers are reused; True when applied."""
    lib = _libc()
    if lib is None:
        return False
    mallopt = lib.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = all([mallopt(param, value) == 1 for param, value in _SETTINGS])  # every one tried
    logger.debug("malloc keeps freed memory for reuse: %s", applied)
    return applied


def free_heap_bytes() -> int | None:
    """Bytes the heap holds free (glibc's ``mallinfo2().fordblks``); None where unknown."""
    lib = _libc()
    if lib is None or not hasattr(lib, "mallinfo2"):
        return None
    lib.mallinfo2.restype = _MallInfo2
    return int(lib.mallinfo2().fordblks)


def release_spare_memory(keep_bytes: int) -> bool:
    """Hand the heap's free memory back to the system when it exceeds ``keep_bytes``; True if it did.

    Called between the steps of a run, by a pool worker after each item and by the run's process
    before its workers start a step's items: what the next block will allocate again is kept, what
    another process of the run needs within the one budget is not held.  glibc returns every free
    page inside the heap and keeps up to ``keep_bytes`` free at its top, where a freed block's
    memory gathers (every allocation comes from the one heap: :func:`keep_freed_memory`).
    """
    lib, free = _libc(), free_heap_bytes()
    if lib is None or free is None or free <= keep_bytes:
        return False
    lib.malloc_trim.argtypes = (ctypes.c_size_t,)
    lib.malloc_trim(max(0, int(keep_bytes)))
    logger.debug("returned up to %.0f MB of free heap memory to the system", (free - keep_bytes) / 1e6)
    return True


def resident_bytes(pid: int) -> int:
    """Private resident memory of process ``pid`` (its resident pages less those shared with others
    or mapped from files, from ``/proc/PID/statm``); 0 where unknown."""
    import os

    try:
        with open(f"/proc/{pid}/statm") as f:
            fields = f.read().split()
        return max(0, int(fields[1]) - int(fields[2])) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
