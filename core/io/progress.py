"""Progress of long loops: a bar on a terminal, log lines otherwise (batch jobs, CI, log files)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

logger = logging.getLogger("sbts.progress")
T = TypeVar("T")
_ENABLED = True


def set_enabled(enabled: bool) -> None:
    global _ENABLED
    _ENABLED = enabled


def _fmt(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"


def progress(items: Iterable[T], desc: str = "", unit: str = "item", total: int | None = None,
             stream=None) -> Iterator[T]:
    """Yield ``items``, reporting how many are done and the time left.

    A bar on a terminal; otherwise a log line (``sbts.progress``) at most every 10 s and at the end.

    Parameters
    ----------
    items : Iterable
        What to go through (an iterator of results works: give ``total``).
    desc : str
        What is done, for the bar or the log line.
    unit : str
        The name of one item (``block``).
    total : int, optional
        How many items (default: ``len(items)`` when it has one).
    stream : file, optional
        Where the bar goes (default ``sys.stderr``).

    Yields
    ------
    object
        Each item, unchanged.
    """
    if total is None and isinstance(items, Sized):
        total = len(items)
    stream = stream or sys.stderr
    tty = _ENABLED and hasattr(stream, "isatty") and stream.isatty()
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        elapsed = now - start
        left = elapsed / done * (total - done) if total else 0.0
        if tty:
            frac = done / total if total else 0
            bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
            text = f"\r{desc} [{bar}] {done}/{total or '?'} {unit}s, {_fmt(elapsed)} elapsed, {_fmt(left)} left"
            stream.write(text + ("\n" if total and done == total else ""))
            stream.flush()
        elif total and total > 1 and (now - last > 10 or done == total):
            last = now
            logger.info("%s: %d/%d %ss done, %s elapsed, %s left", desc, done, total, unit, _fmt(elapsed), _fmt(left))
