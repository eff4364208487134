"""Exception types that sbts raises on purpose.

Every error a user can cause (bad file, bad key, bad value) is an :class:`SbtsError`; the CLI turns it
into a one-line message and a non-zero exit.  Anything else escaping is a bug in sbts.
"""

from __future__ import annotations


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
