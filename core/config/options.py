"""Pieces shared by the typed options of the steps (``XxxOptions.from_template``).

Every step parses its template keys once, into a frozen dataclass, before anything runs: ``sbts
run`` parses the options of every selected step at its start, so a bad value is reported before
an hour of work.  Files named in a template are kept as names (:class:`FileOption`) and resolved
when the step runs: some are written by earlier steps of the same run (``exclude_date.txt``,
``maskTempCoh.h5``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class FileOption:
    """A file named by a template key, resolved when the step runs.

    Attributes
    ----------
    key : str
        The template key.
    value : str or None
        The file name as given (``None`` for no).
    explicit : bool
        The user set it: a missing file is then an error; a default (``auto``) is used only if
        it exists.
    """

    key: str
    value: str | None
    explicit: bool = False

    @classmethod
    def from_template(cls, template: Any, key: str) -> FileOption:
        """The file ``key`` names in ``template`` (its default when unset)."""
        value = template.get(key)
        return cls(key, value, template.is_set(key) and value is not None)

    def path(self, work_dir: str | os.PathLike) -> Path | None:
        """The file (relative names in ``work_dir``, ``~`` expanded); ``None`` for no."""
        if self.value is None:
            return None
        path = Path(os.path.expanduser(self.value))
        return path if path.is_absolute() else Path(work_dir) / path

    @property
    def label(self) -> str:
        """The name as given, or ``no``: for logs and provenance."""
        return self.value if self.value is not None else "no"


__all__ = ["FileOption"]
