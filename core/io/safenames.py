"""Reading only what can be read, and naming outputs only with safe parts.

Two classes of hostile input meet every command:

- *special files* given where a file is expected: a FIFO blocks a reader forever, ``/dev/zero``
  never ends, a folder is not a file.  :func:`require_regular` refuses them by name before any byte
  is read; :func:`read_text` is the way to read a small text file a user named (date lists, pair
  lists, reference-date files).
- *names built from data*: a file name made of an attribute, a template value or an option
  (``PLATFORM = ../../x``) must not leave the output folder.  :func:`safe_part` turns any text into
  one harmless path component.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from pathlib import Path

from sbts.core.errors import InputError

logger = logging.getLogger(__name__)

TEXT_LIMIT = 64 * 1024**2  # a list of dates or pairs is a few kB; a larger "text file" is a mistake
_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-]+")
_DOTS = re.compile(r"\.{2,}")


def require_regular(path: str | os.PathLike, what: str = "file", allow_dir: bool = False) -> Path:
    """``path`` if it is a regular file (or, with ``allow_dir``, a folder); an :class:`InputError`
    naming it otherwise (missing, a folder, a FIFO, a socket or a device)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{what} {path}: not found") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISREG(mode) or (allow_dir and stat.S_ISDIR(mode)):
        return path
    if stat.S_ISDIR(mode):
        raise InputError(f"{what} {path} is a folder; give a file")
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    raise InputError(f"{what} {path} is {kind}; give a regular file")


def read_text(path: str | os.PathLike, what: str = "text file", limit: int = TEXT_LIMIT) -> str:
    """The text of a small regular file a user named (UTF-8, BOM dropped, bad bytes replaced).

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        What the file is, for messages.
    limit : int
        Largest size accepted, bytes.

    Returns
    -------
    str

    Raises
    ------
    InputError
        Absent, special (FIFO, device), too large or unreadable.
    """
    path = require_regular(path, what)
    size = path.stat().st_size
    if size > limit:
        raise InputError(f"{what} {path} is {size / 1024**2:.0f} MB; expected a small text file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="replace")


def safe_part(text: object, what: str = "name", max_length: int = 64) -> str:
    """``text`` as one safe file-name component: letters, digits, ``. _ + -`` only, no leading dot.

    Anything else (``/``, runs of dots, spaces, control characters) becomes ``_``, so a name built
    from an attribute, a template value or an option can never leave the output folder.  A change
    is logged.

    Parameters
    ----------
    text : object
        The name (converted with ``str``).
    what : str
        What it names, for messages.
    max_length : int
        Longest result.

    Returns
    -------
    str

    Raises
    ------
    InputError
        Nothing usable is left.
    """
    raw = str(text)
    safe = _DOTS.sub("_", _UNSAFE.sub("_", raw)).lstrip(".")[:max_length]
    if not safe.strip("_"):
        raise InputError(f"{what} {raw[:40]!r} cannot be part of a file name; give letters or digits")
    if safe != raw:
        logger.warning("%s %r contains characters unsafe in a file name: %r used instead", what, raw[:40], safe)
    return safe


def inside(path: str | os.PathLike, folder: str | os.PathLike, what: str = "output") -> Path:
    """``path`` if it lies inside ``folder`` (after resolving ``..`` and links), else an error."""
    path, folder = Path(path), Path(folder)
    resolved = path.resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise InputError(f"{what} {path} would be written outside {folder}")
    return path


__all__ = ["require_regular", "read_text", "safe_part", "inside", "TEXT_LIMIT"]
