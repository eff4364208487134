"""Exception types that sbts raises on purpose.

Every error a user can cause (bad file, bad key, bad value) is an :class:`SbtsError`; the CLI turns it
into a one-line message and a non-zero exit.  Anything else escaping is a bug in sbts.
"""

from __future__ import annotations

MAX_SHOWN = 80  # characters of a value repeated in a message (a 50 MB value must not be echoed whole)
MAX_MESSAGE = 1000  # characters of a whole one-line error message


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr`` of a value for a message, cut to ``limit`` characters (with the full length said).

    Parameters
    ----------
    value : object
        A value from a file, a template or an option (converted with ``str``).
    limit : int
        Longest text shown.

    Returns
    -------
    str
    """
    text = repr(value) if isinstance(value, str) else repr(str(value))
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}…' ({len(str(value))} characters)"


def shorten(message: str, limit: int = MAX_MESSAGE) -> str:
    """A message cut in its middle to ``limit`` characters: the last safety net, so that no value
    (a 50 MB template line, a huge attribute) is ever echoed whole to the terminal."""
    if len(message) <= limit:
        return message
    head, tail = message[: limit * 2 // 3], message[-(limit // 4):]
    return f"{head} … [{len(message) - len(head) - len(tail)} characters cut] … {tail}"


class SbtsError(Exception):
    """Base class: a message a user can act on (names the file, key or value and what to do)."""


class InputError(SbtsError):
    """An input file is missing, unreadable, or inconsistent with the others."""


class TemplateError(SbtsError):
    """A template key has a value that cannot be used."""


class PluginError(SbtsError):
    """A plugin is missing, broken, or returned something sbts cannot use."""


class DataError(SbtsError):
    """The data cannot give a meaningful result (e.g. no valid pixel, reference pixel is NaN)."""
