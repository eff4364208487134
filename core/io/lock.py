"""Who may write what: a lock per work directory (``sbts run``) and a lock per output file.

Both are POSIX record locks (``fcntl`` ``F_SETLK``) on a small lock file, for three reasons:

- the kernel drops them when the holding process dies, so a killed run never leaves a lock that
  refuses the rerun ("in use by" a dead process);
- unlike ``flock``, they are not inherited by forked children: pool workers of a killed run can
  never keep the lock alive after their parent;
- they work over NFS (lockd), where ``flock`` is local or emulated.

A POSIX lock belongs to the process and is dropped when *any* descriptor of the file is closed in
that process, so this module keeps one descriptor per lock and a registry of the locks the process
holds: taking an output lock the process already holds only counts (re-entrant within a thread;
another thread is refused); the work-directory lock is not re-entrant (two runs, even in one
process, are refused).  Output lock files (``.<name>.lock`` beside the output) are removed when
released; a taker checks that the file it locked is still the one under that name, so a lock file
removed in between is never "held" by two processes.

Temporary names are private to a process (:func:`private_name`: ``<name>.<pid>.part``); the owner
recorded in the name lets the next writer of the same output recognise a dead process's leftovers
(:func:`orphans`) and adopt or remove them while it holds the output's lock.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from sbts.core.errors import SbtsError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: locks are only this process's own
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)
# file systems that refuse POSIX locks (some Lustre/NFS mounts): writing goes on, said once
_UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
_warned: set[int] = set()

LOCK_NAME = ".sbts.lock"
PART_SUFFIX = ".part"


class LockBusy(SbtsError):
    """Another process (or thread) is writing the same file or running in the same folder."""


class _Held:
    __slots__ = ("fd", "count", "thread", "remove")

    def __init__(self, fd: int, thread: int, remove: bool) -> None:
        self.fd, self.count, self.thread, self.remove = fd, 1, thread, remove


_registry: dict[str, _Held] = {}
_registry_lock = threading.Lock()


def _forget_in_child() -> None:
    """A forked child does not hold its parent's POSIX locks: it must not believe it does."""
    global _registry_lock
    _registry.clear()
    _registry_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _holder_text() -> str:
    return f"sbts process {os.getpid()} on {socket.gethostname()}"


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _try_lock(fd: int, lock_path: Path) -> bool:
    if fcntl is None:
        return True
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return False
        if exc.errno in _UNSUPPORTED:
            dev = os.fstat(fd).st_dev
            if dev not in _warned:
                _warned.add(dev)
                logger.warning("the file system of %s does not support locks (%s): two sbts commands writing "
                               "the same files at once will not be detected there", lock_path.parent,
                               exc.strerror or exc)
            return True
        raise


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _acquire(lock_path: Path, busy: str, remove: bool, reentrant: bool) -> None:
    """Take the lock at ``lock_path`` for this process; ``busy`` is the message when it is held,
    with ``{holder}`` replaced by the holder's own description.  A ``reentrant`` lock already held
    by this thread is only counted."""
    key = os.path.abspath(lock_path)
    me = threading.get_ident()
    with _registry_lock:
        held = _registry.get(key)
        if held is not None:
            if held.thread != me:
                raise LockBusy(busy.format(holder=f"another thread of {_holder_text()}"))
            if not reentrant:
                raise LockBusy(busy.format(holder=_holder_text()))
            held.count += 1
            return
        for _attempt in range(20):
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise SbtsError(f"cannot create the lock file {lock_path}: {exc.strerror or exc}") from None
            try:
                got = _try_lock(fd, lock_path)
            except OSError as exc:
                os.close(fd)
                raise SbtsError(f"cannot lock {lock_path}: {exc.strerror or exc}") from None
            if not got:
                holder = _read_holder(fd) or "another process"
                os.close(fd)
                raise LockBusy(busy.format(holder=holder))
            if _same_file(fd, lock_path):
                break
            os.close(fd)  # the previous holder removed the file after we opened it: take the new one
        else:  # pragma: no cover - only under a storm of concurrent takers
            raise LockBusy(busy.format(holder="other processes"))
        with contextlib.suppress(OSError):  # a full disk must not stop the lock: the text is a courtesy
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text().encode(), 0)
        _registry[key] = _Held(fd, me, remove)


def _release(lock_path: Path) -> None:
    key = os.path.abspath(lock_path)
    with _registry_lock:
        held = _registry.get(key)
        if held is None:
            return
        held.count -= 1
        if held.count > 0:
            return
        del _registry[key]
        if held.remove:
            with contextlib.suppress(OSError):
                os.unlink(lock_path)  # before unlocking: a taker that opened it sees a stale inode
        else:
            with contextlib.suppress(OSError):
                os.ftruncate(held.fd, 0)
        os.close(held.fd)  # closing drops the POSIX lock


def lock_path_for(path: str | os.PathLike) -> Path:
    """The lock file of output ``path``: ``.<name>.lock`` in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold the write lock of output ``path`` (re-entrant within a thread).

    Parameters
    ----------
    path : str or os.PathLike
        The output; the lock is ``.<name>.lock`` beside it, released when the block ends (or the
        process dies).

    Yields
    ------
    pathlib.Path
        ``path``.

    Raises
    ------
    LockBusy
        Another process writes it (an :class:`SbtsError` naming the holder).
    """
    path = Path(path)
    lp = lock_path_for(path)
    _acquire(lp, f"{path} is being written by {{holder}} (lock {lp}); wait for it to finish, "
                 "or write elsewhere", remove=True, reentrant=True)
    try:
        yield path
    finally:
        _release(lp)


@contextlib.contextmanager
def output_locks(paths: Iterable[str | os.PathLike]) -> Iterator[list[Path]]:
    """Hold the locks of several outputs, all or none (taken in the order given: callers writing
    the same set name it in the same order, and a refusal names the first, main, output)."""
    unique = list(dict.fromkeys(Path(p) for p in paths))
    with contextlib.ExitStack() as stack:
        for p in unique:
            stack.enter_context(output_lock(p))
        yield unique


@contextlib.contextmanager
def work_dir_lock(work_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``<work_dir>/.sbts.lock``; a second holder is refused with the first one's process id."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / LOCK_NAME
    _acquire(path, f"{work_dir} is in use by {{holder}} (lock {path}); wait for it to finish "
                   "or use another work directory", remove=True, reentrant=False)
    try:
        yield path
    finally:
        _release(path)


# --------------------------------------------------------------------------- private names
def private_name(path: str | os.PathLike, suffix: str = PART_SUFFIX, pid: int | None = None) -> Path:
    """``<name>.<pid><suffix>``: the temporary name of ``path`` owned by this process."""
    path = Path(path)
    return path.with_name(f"{path.name}.{pid or os.getpid()}{suffix}")


def owner_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a dead owner's files may be adopted)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def orphans(path: str | os.PathLike, suffix: str = PART_SUFFIX) -> list[tuple[Path, int | None]]:
    """Temporary files of ``path`` left by processes that are gone (or by this one), oldest first.

    Returns ``(file, owner pid)``; the unowned legacy name ``<name><suffix>`` has owner ``None``.
    Call while holding :func:`output_lock` of ``path``: no live sbts process writes them then.
    """
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"(?:\.(\d+))?" + re.escape(suffix) + r"$")
    found = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return []
    for entry in entries:
        m = pattern.match(entry.name)
        if not m:
            continue
        pid = int(m.group(1)) if m.group(1) else None
        if pid is not None and pid != os.getpid() and owner_alive(pid):
            continue
        try:
            mtime = entry.stat().st_mtime_ns
        except OSError:
            continue
        found.append((mtime, Path(entry.path), pid))
    return [(p, pid) for _m, p, pid in sorted(found)]


def remove_orphans(path: str | os.PathLike, suffix: str = PART_SUFFIX) -> None:
    """Delete the temporary files of ``path`` left by dead processes (hold the output lock)."""
    for p, _pid in orphans(path, suffix):
        with contextlib.suppress(OSError):
            p.unlink()
