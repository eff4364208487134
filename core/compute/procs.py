"""Child processes that end with their parent.

A pool worker whose parent was killed (``kill -9``, out-of-memory killer) would otherwise live on:
it keeps computing blocks nobody collects, holds inherited descriptors of the partial outputs, and
makes the folder look busy to the rerun.  :func:`die_with_parent` is called at the start of every
worker: on Linux the kernel sends the worker ``SIGKILL`` the moment its parent ends
(``prctl(PR_SET_PDEATHSIG)``); everywhere a watchdog thread also checks a few times a second that
the parent is still the same process, and ends the worker when it is not.

dask's LocalCluster workers need nothing more: dask ends its worker processes when the process
that started them closes (tests/reliability/test_runs.py kills both kinds and counts survivors).
"""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

from sbts.core.compute.libc import libc

_PR_SET_PDEATHSIG = 1
WATCH_INTERVAL = 0.1  # seconds between two checks of the parent


def _set_pdeathsig(sig: int) -> bool:
    lib = libc()
    if lib is None:
        return False
    try:
        prctl = lib.prctl
    except AttributeError:
        return False
    prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
    prctl.restype = ctypes.c_int
    return prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0


def _watch(parent: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL)
        if os.getppid() != parent:
            os._exit(1)


def die_with_parent(parent: int | None = None) -> None:
    """End this (child) process as soon as ``parent`` (default: the current parent) ends."""
    parent = os.getppid() if parent is None else parent
    _set_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="sbts-parent-watch", daemon=True).start()
