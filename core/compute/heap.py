"""Allocator setting for block-wise processing: keep freed memory for the next block (glibc).

Every block of a step allocates the same large arrays again.  By default glibc hands freed
chunks above its adaptive mmap threshold back to the kernel, and trims the top of the heap, so
the next block gets fresh pages and pays a page fault for each of them.  Measured on
``bench/bench_invert.py`` (1 Mpx, 230 pairs, 2 workers): about 250k faults and 0.5 s of a 4 s run.
With a fixed threshold at glibc's maximum (32 MiB) and a high trim threshold, freed memory stays
in the heap and is reused: about 70k faults.  Peak memory is unchanged (it is what the blocks
need); the process just does not shrink between blocks.

Only sbts's own processes call this (the ``sbts`` command and its pool workers), never a library
import, since it changes the allocator of the whole process.  Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_SETTINGS = ((_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 1 << 30), (_M_TOP_PAD, 64 << 20))


def keep_freed_memory() -> bool:
    """Tune glibc's malloc so that freed block buffers are reused; True when applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = all(mallopt(param, value) == 1 for param, value in _SETTINGS)
    logger.debug("malloc keeps freed memory for reuse: %s", applied)
    return applied
