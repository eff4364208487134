"""The load record beside a stack: what it was loaded from and, after an append, what is new.

``ifgramStack_load.json`` (:data:`LOAD_RECORD`) is written by the loader
(:mod:`sbts.core.steps.load`) after the stack takes its name: the source files (name, size,
modification time), the load options and, when the load appended acquisitions, the new pairs and
dates and the signature of the stack it appended to.  The steps that update instead of recomputing
(the inversion's store, the network and overview stores, the run summary) read it here, through
one reader: a record counts only when it names the signature the stack carries
(:data:`SIGNATURE_ATTR`), so a record left by another stack, or a load killed between the stack and
its record, is never taken for the stack's own.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sbts.core.errors import SbtsError
from sbts.core.io.h5 import read_attrs

#: root attribute of every file the loader writes: the content key of its source files and options
SIGNATURE_ATTR = "SBTS_INPUT_SIGNATURE"
#: the record's name, beside ``ifgramStack.h5``
LOAD_RECORD = "ifgramStack_load.json"


def record_path(stack_file: str | os.PathLike) -> Path:
    """The load record beside a stack (:data:`LOAD_RECORD`)."""
    return Path(stack_file).with_name(LOAD_RECORD)


def read_record(stack_file: str | os.PathLike) -> dict:
    """The record beside ``stack_file`` as written (``{}`` when missing or unreadable)."""
    try:
        data = json.loads(record_path(stack_file).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def stack_signature(stack_file: str | os.PathLike) -> str:
    """The loader's signature the stack carries ("" when none, or unreadable)."""
    try:
        return str(read_attrs(Path(stack_file)).get(SIGNATURE_ATTR, ""))
    except SbtsError:
        return ""


def read_update_record(stack_file: str | os.PathLike) -> dict | None:
    """What the last load appended to ``stack_file``: ``{"new_pairs", "new_dates", "old_pairs",
    "old_signature", "old_reference", "old_keep"}``, or None when the stack was loaded whole (or
    its record does not belong to it)."""
    record = read_record(stack_file)
    current = stack_signature(stack_file)
    if not record or not current or record.get("signature") != current:
        return None
    update = record.get("update")
    return update if isinstance(update, dict) else None


def why_not_same_or_appended(stack_file: str | os.PathLike, stored: str) -> str:
    """Why ``stack_file`` is neither the stack whose signature a store kept (``stored``) nor one a
    load appended to it ("" when it is one of them): what every update store checks first."""
    current = stack_signature(stack_file)
    if not current:  # another file under the same name would look the same
        return "the stack carries no load signature (not written by sbts load)"
    if current != stored:
        update = read_update_record(stack_file)
        if update is None or update.get("old_signature") != stored:
            return "the stack was reloaded (not appended to) since the store was written"
    return ""
