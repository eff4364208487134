"""Large arrays a pool worker returns travel through shared memory, not through the pool's pipe.

A process pool sends a result back pickled through a pipe: the worker serialises the array, the
kernel copies it through the pipe in small pieces, the parent assembles the bytes and unpickles them
into a fresh array — four copies and two fresh buffers.  Measured on a 2-core VM: 0.5 GB of time-series
blocks cost 1.6–2.0 s this way and 0.45 s through shared memory, and the parent, which writes every
step's output, was the bottleneck of every block-wise step that returns time series (deramp, DEM
error, RMS, reference date, geocode: all slower with 2 workers than with 1 before this module).

So a worker writes each large array (:data:`MIN_BYTES` or more) of its result into a file of its
own in ``/dev/shm`` (memory, not disk) and returns its name, shape and dtype (:class:`SharedArray`);
the parent maps the file, unlinks it at once, and hands the caller an ordinary writable array over
the mapping: the memory is released when the array is.  Files are named
``sbts-<parent pid>-<pool token>-<worker pid>-<n>``: when the pool ends, for whatever reason (an
error, Ctrl-C), the parent removes the files of its own pool that nobody took (results in flight),
and a new pool removes those of parents that no longer exist (a run killed with SIGKILL).  Where
``/dev/shm`` is missing or too full, the array is returned through the pipe as before.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import mmap
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SHM_DIR = Path("/dev/shm")
#: arrays below this size go through the pipe (a file and a mapping cost more than copying them)
MIN_BYTES = 1 << 20
#: free space left in /dev/shm after a file (other programs use it too)
RESERVE_BYTES = 256 << 20
_PREFIX = "sbts-"
_NAME = re.compile(r"^sbts-(\d+)-([0-9a-f]+)-\d+-\d+$")
_counter = itertools.count()
_pool: tuple[int, str] | None = None  # (parent pid, pool token) of this worker


@dataclass(frozen=True)
class SharedArray:
    """An array a worker left in ``/dev/shm`` for the parent (name, shape, dtype)."""

    path: str
    shape: tuple[int, ...]
    dtype: str


def new_token() -> str:
    """A token naming one pool's files."""
    return secrets.token_hex(4)


def set_pool(parent: int, token: str) -> None:
    """Called in a worker at start: the parent and the pool whose results it writes."""
    global _pool
    _pool = (int(parent), token)


def to_shared(result: Any) -> Any:
    """``result`` with its large arrays (also inside tuples, lists and dicts) moved to ``/dev/shm``."""
    if _pool is None or not SHM_DIR.is_dir():
        return result
    return _convert(result)


def _convert(obj: Any) -> Any:
    return _walk(obj, lambda v: _share(v) if type(v) is np.ndarray and v.nbytes >= MIN_BYTES
                 and not v.dtype.hasobject else v)


def _walk(obj: Any, leaf: Callable[[Any], Any]) -> Any:
    """``obj`` with ``leaf`` applied to everything that is not a tuple, list or dict inside it."""
    if type(obj) is tuple:
        return tuple(_walk(v, leaf) for v in obj)
    if type(obj) is list:
        return [_walk(v, leaf) for v in obj]
    if type(obj) is dict:
        return {k: _walk(v, leaf) for k, v in obj.items()}
    return leaf(obj)


def _share(array: np.ndarray) -> np.ndarray | SharedArray:
    assert _pool is not None
    try:
        stat = os.statvfs(SHM_DIR)
        if stat.f_bavail * stat.f_frsize < array.nbytes + RESERVE_BYTES:
            return array
    except OSError:
        return array
    path = SHM_DIR / f"{_PREFIX}{_pool[0]}-{_pool[1]}-{os.getpid()}-{next(_counter)}"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return array
    try:
        try:
            os.posix_fallocate(fd, 0, array.nbytes)  # ENOSPC now, not SIGBUS when the pages are written
            with mmap.mmap(fd, array.nbytes) as mm:
                np.ndarray(array.shape, array.dtype, buffer=mm)[...] = array
        finally:
            os.close(fd)
    except (OSError, ValueError, BufferError):
        with contextlib.suppress(OSError):
            path.unlink()
        return array
    return SharedArray(str(path), tuple(array.shape), array.dtype.str)


def from_shared(result: Any) -> Any:
    """``result`` with every :class:`SharedArray` mapped back (and its file unlinked)."""
    return _walk(result, lambda v: _attach(v) if isinstance(v, SharedArray) else v)


def _attach(shared: SharedArray) -> np.ndarray:
    dtype = np.dtype(shared.dtype)
    size = int(np.prod(shared.shape, dtype=np.int64)) * dtype.itemsize
    fd = os.open(shared.path, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, size)
    finally:
        os.close(fd)
        os.unlink(shared.path)  # the mapping keeps the memory until the array is released
    return np.ndarray(shared.shape, dtype, buffer=mm)


def remove_files(parent: int | None = None, token: str | None = None, keep: frozenset[str] = frozenset()) -> int:
    """Remove result files nobody will take; returns how many were removed.

    ``parent`` and ``token``: those of that pool (it ended); ``parent`` alone: those of that
    process's pools other than ``keep`` (pools that ended while their last results were still being
    written); neither: those of parents that no longer run (a run killed with SIGKILL)."""
    if not SHM_DIR.is_dir():
        return 0
    removed = 0
    try:
        names = [p.name for p in SHM_DIR.iterdir() if p.name.startswith(_PREFIX)]
    except OSError:
        return 0
    for name in names:
        m = _NAME.match(name)
        if m is None:
            continue
        pid, tok = int(m.group(1)), m.group(2)
        if parent is not None:
            if pid != parent or (token is not None and tok != token) or tok in keep:
                continue
        elif _alive(pid):
            continue
        with contextlib.suppress(OSError):
            (SHM_DIR / name).unlink()
            removed += 1
    if removed and parent is None:
        logger.info("removed %d result file(s) left in %s by runs that were killed", removed, SHM_DIR)
    return removed


_at_exit: set[int] = set()


def clean_at_exit() -> None:
    """Remove this process's leftover result files when it exits (registered once per process)."""
    pid = os.getpid()
    if pid not in _at_exit:
        _at_exit.add(pid)
        atexit.register(remove_files, pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["SharedArray", "to_shared", "from_shared", "remove_files", "new_token", "set_pool", "clean_at_exit",
           "MIN_BYTES"]
