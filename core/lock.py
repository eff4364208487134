"""One writer per work directory: a lock file held for the duration of a run."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from .errors import SbtsError

LOCK_NAME = ".sbts.lock"


@contextlib.contextmanager
def work_dir_lock(work_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``<work_dir>/.sbts.lock``; a second holder is refused with the first one's process id.

    ``flock`` is released by the kernel when the process dies, so a killed run never leaves a
    stale lock behind.
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise SbtsError(f"{work_dir} is in use by {holder} (lock {path}); wait for it to finish "
                        "or use another work directory") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"sbts process {os.getpid()} on {socket.gethostname()}".encode(), 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
