"""The C library of this process, loaded once (Linux; None elsewhere).

By its soname first: :func:`ctypes.util.find_library` runs ``ldconfig`` in a subprocess (~5 ms, and
interruptible), and both users load it at the start of every ``sbts`` process and pool worker:
:mod:`sbts.core.compute.heap` (``mallopt``, ``malloc_trim``, ``mallinfo2``) and
:mod:`sbts.core.compute.procs` (``prctl``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library (``errno`` kept for ``ctypes.get_errno``), or None where it cannot be loaded."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        name = ctypes.util.find_library("c")
        if name is None:
            return None
        try:
            return ctypes.CDLL(name, use_errno=True)
        except OSError:
            return None


__all__ = ["libc"]
