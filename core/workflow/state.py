"""Update mode of ``sbts run``: what each step did last time, and whether it must run again.

``.sbts_run.json`` in the work directory keeps, per step, the digest of its parsed options, its
outputs and the content versions of its inputs (:func:`sbts.core.io.provenance.file_versions`)
when it last finished.  A step is up to date when its options and the relevant versions of its
inputs are the same and its outputs exist.  Relevant: the parts of an input written by steps
before it in the plan (or by no step of the plan); an edit made later in the plan (the drop list
and reference point modify_network and reference_point store in the stack, a corrected dataset,
the reference date of a time series) never makes an earlier step look out of date, and no step
has to patch another step's record.

Without a record (a lost state file) the provenance of the step's HDF5 outputs can vouch for it:
same step, same options, same input versions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sbts.core.io.provenance import file_versions, options_digest, read_provenance, relevant

logger = logging.getLogger(__name__)

STATE_FILE = ".sbts_run.json"


def load_state(work_dir: Path) -> dict:
    try:
        data = json.loads((work_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_state(work_dir: Path, state: dict) -> None:
    from sbts.core.io.h5 import atomic_write_text

    atomic_write_text(work_dir / STATE_FILE, json.dumps(state, indent=1, sort_keys=True))


def key_of(path: Path, work_dir: Path) -> str:
    """How an input is named in records: relative to the work directory when inside it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(work_dir)))
    except ValueError:
        return str(path)


def input_versions(paths: Sequence[Path], work_dir: Path, earlier: set[str] | None,
                   step: str) -> dict[str, dict[str, str]]:
    """The relevant content versions of each input (``{}`` for a missing one)."""
    return {key_of(p, work_dir): relevant(file_versions(p), earlier, step) for p in paths}


def digest(options: Any) -> str:
    return options_digest(options)


def record(options: Any, outputs: Sequence[Path], inputs: dict[str, dict[str, str]]) -> dict:
    return {"options": digest(options), "outputs": [str(p) for p in outputs], "inputs": inputs,
            "finished": time.time()}


def failure(exc: BaseException) -> dict:
    """A failed (or interrupted) step never counts as done, whatever ran before."""
    return {"failed": time.time(), "error": f"{type(exc).__name__}: {exc}"[:500]}


def check(options: Any, outputs: Sequence[Path], inputs: dict[str, dict[str, str]],
          rec: dict | None) -> tuple[bool, str]:
    """Whether a step with ``options`` and inputs at ``inputs`` versions is as ``rec`` left it."""
    if rec is None:
        return False, "never ran here"
    if "failed" in rec:
        return False, "it failed last time"
    if rec.get("options") != digest(options):
        return False, "its options changed"
    recorded_outputs = [Path(p) for p in rec.get("outputs", [])] or list(outputs)
    missing = [p for p in recorded_outputs if not p.exists()]
    if missing:
        return False, f"{missing[0].name} is missing"
    recorded = rec.get("inputs", {})
    for name, versions in inputs.items():
        if name not in recorded or not same_versions(versions, recorded[name]):
            return False, f"{Path(name).name} changed"
    return True, ""


def same_versions(current: dict[str, str], recorded: dict[str, str]) -> bool:
    """The parts of an input the step depends on now are as recorded.  A recorded part missing now
    was written since by a later step (the reference point set after modify_network read the stack):
    not this step's input any more.  A missing file (no parts) is a change."""
    if not current:
        return not recorded
    return all(recorded.get(part) == version for part, version in current.items())


def vouched_by_provenance(step: str, options: Any, outputs: Sequence[Path],
                          inputs: dict[str, dict[str, str]]) -> bool:
    """True when every output is an HDF5 file whose provenance says this step made it with these
    options from inputs at these versions (the record of a lost state file, rebuilt from the files)."""
    outputs = list(outputs)
    if not outputs or any(p.suffix != ".h5" or not p.exists() for p in outputs):
        return False
    want = digest(options)
    for path in outputs:
        prov = read_provenance(path)
        if not prov or prov.get("step") != step or prov.get("options_digest") != want:
            return False
        recorded = prov.get("inputs") or {}
        if any(name not in recorded or not same_versions(v, recorded[name]) for name, v in inputs.items()):
            return False
    return True


def save_quietly(work_dir: Path, state: dict) -> None:
    with contextlib.suppress(Exception):
        save_state(work_dir, state)


__all__ = ["STATE_FILE", "load_state", "save_state", "input_versions", "record", "failure", "check",
           "vouched_by_provenance", "digest", "key_of"]
