"""How each product was made, and the content versions update mode compares.

Every HDF5 file sbts writes (through :class:`~sbts.core.io.h5.H5Writer`) while a step runs carries
two root attributes that MintPy ignores (it copies unknown attributes along, which is harmless):

``SBTS_PROVENANCE``
    JSON: the sbts version, the step, its parsed options and the content versions of the inputs
    it read (``{"inputs/ifgramStack.h5": {"content": "…", "dropIfgram": "…"}}``), plus the later
    in-place edits of the file (re-referencing in time).
``SBTS_VERSIONS``
    JSON ``{part: [version, step]}``: the content versions of the parts of this file and the step
    that wrote each.  A new product has one part, ``content``, with a fresh version; the
    interferogram stack also has ``dropIfgram``, ``reference`` and one part per corrected dataset
    (written by :class:`~sbts.core.io.stack_editor.StackEditor`); a re-referenced time series gets
    ``refdate``.

The step that runs sets the record with :func:`recording`; the writers pick it up from there, so a
correction plugin's output carries it without the plugin doing anything.

:func:`file_versions` reads the versions of any file: the recorded parts, the parts computed from
content where that is cheap and exact (the drop list, the reference point), and for files sbts did
not write (a MintPy product, a processor file) the modification time and size of the file.
Update mode compares, for each input of a step, the parts written by steps before it in the plan:
an edit made later in the plan (the reference date of a time series the step read, a corrected
dataset in the stack it read) is not a change of that step's input.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVENANCE_ATTR = "SBTS_PROVENANCE"
VERSIONS_ATTR = "SBTS_VERSIONS"
PROVENANCE_KEYS = (PROVENANCE_ATTR, VERSIONS_ATTR)  # never copied from an input's attributes to an output
_TEXT_HASH_LIMIT = 1 << 20  # text inputs (date lists, pair lists) are versioned by content up to 1 MB

Versions = dict[str, tuple[str, "str | None"]]  # part -> (version, step that wrote it; None = unknown)


def sbts_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("sbts")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown"


@dataclass(frozen=True)
class Provenance:
    """What a step passes to the files it writes: its name, options and the versions of its inputs."""

    step: str
    options: Any = None
    inputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {"sbts": sbts_version(), "step": self.step, "options": _jsonable(self.options),
                "options_digest": options_digest(self.options),
                "inputs": {k: dict(v) for k, v in self.inputs.items()}}


_current: contextvars.ContextVar[Provenance | None] = contextvars.ContextVar("sbts_provenance", default=None)


@contextlib.contextmanager
def recording(provenance: Provenance) -> Iterator[Provenance]:
    """Files written inside this block carry ``provenance``."""
    token = _current.set(provenance)
    try:
        yield provenance
    finally:
        _current.reset(token)


def current() -> Provenance | None:
    """The provenance of the step running now (``None`` outside ``sbts run`` and the commands)."""
    return _current.get()


def current_step(default: str | None = None) -> str | None:
    p = _current.get()
    return p.step if p is not None else default


def new_version() -> str:
    return uuid.uuid4().hex[:16]


def new_file_attrs(provenance: Provenance | None = None) -> dict[str, str]:
    """Root attributes of a new product written under ``provenance`` (default: the current one)."""
    p = provenance if provenance is not None else _current.get()
    if p is None:
        return {}
    return {PROVENANCE_ATTR: json.dumps(p.record(), sort_keys=True),
            VERSIONS_ATTR: json.dumps({"content": [new_version(), p.step]}, sort_keys=True)}


def edited_file_attrs(attrs: Mapping[str, Any], part: str, version: str, edit: Mapping[str, Any] | None = None
                      ) -> dict[str, str]:
    """The provenance attributes of a file rewritten as an edit of the file with ``attrs``: its parts
    kept, ``part`` set to ``version`` by the current step, the edit appended to its history."""
    step = current_step()
    versions = _parse(attrs.get(VERSIONS_ATTR)) or {}
    versions[part] = [version, step]
    record = _parse(attrs.get(PROVENANCE_ATTR)) or {}
    p = _current.get()
    entry = {"step": step, "part": part, "version": version, **(dict(edit) if edit else {})}
    if p is not None:
        entry["options"] = _jsonable(p.options)
    record.setdefault("edits", []).append(entry)
    return {PROVENANCE_ATTR: json.dumps(record, sort_keys=True), VERSIONS_ATTR: json.dumps(versions, sort_keys=True)}


def read_provenance(path: str | os.PathLike) -> dict[str, Any] | None:
    """The ``SBTS_PROVENANCE`` record of an HDF5 file (``None`` when it has none)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _parse(f.attrs.get(PROVENANCE_ATTR))
    except OSError:
        return None


def file_versions(path: str | os.PathLike) -> Versions:
    """The content versions of the parts of ``path`` (see the module doc); ``{}`` if it is missing."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return {}
    if path.suffix.lower() in (".h5", ".he5", ".hdf5"):
        try:
            return _h5_versions(path)
        except OSError:
            pass
    if st.st_size <= _TEXT_HASH_LIMIT and path.is_file():
        try:
            return {"file": (hashlib.sha1(path.read_bytes()).hexdigest()[:16], None)}
        except OSError:
            pass
    return {"file": (f"{st.st_mtime_ns}:{st.st_size}", None)}


def _h5_versions(path: Path) -> Versions:
    import h5py
    import numpy as np

    st = path.stat()
    with h5py.File(path, "r") as f:
        recorded = _parse(f.attrs.get(VERSIONS_ATTR)) or {}
        out: Versions = {k: (str(v[0]), v[1]) for k, v in recorded.items()
                         if isinstance(v, (list, tuple)) and len(v) == 2}
        stack = _text(f.attrs.get("FILE_TYPE")) == "ifgramStack" or "dropIfgram" in f
        if stack:
            # parts whose content is cheap to read are versioned by it: a rewrite with the same
            # drop list or reference point is no change
            if "dropIfgram" in f:
                drop = np.asarray(f["dropIfgram"][()], bool)
                out["dropIfgram"] = (hashlib.sha1(drop.tobytes()).hexdigest()[:16], out.get("dropIfgram", ("", None))[1])
            ref = ",".join(_text(f.attrs.get(k)) for k in ("REF_Y", "REF_X", "REF_LAT", "REF_LON"))
            out["reference"] = (hashlib.sha1(ref.encode()).hexdigest()[:16], out.get("reference", ("", None))[1])
            if "content" not in out:  # written by another program: its datasets' own time stamps
                for name, obj in f.items():
                    if isinstance(obj, h5py.Dataset) and obj.ndim == 3 and f"data:{name}" not in out:
                        out[f"data:{name}"] = (f"{_text(obj.attrs.get('MODIFICATION_TIME'))}:{obj.shape}", None)
        elif not out:
            out["file"] = (f"{st.st_mtime_ns}:{st.st_size}", None)
    return out


def relevant(versions: Versions, earlier: set[str] | None, step: str | None = None) -> dict[str, str]:
    """The parts of ``versions`` a step depends on: those written by ``earlier`` steps (or by no
    known step), not by the step itself nor by later steps of the plan."""
    out = {}
    for part, (version, by) in sorted(versions.items()):
        if by is not None and (by == step or (earlier is not None and by not in earlier)):
            continue
        out[part] = version
    return out


def _parse(value: Any) -> dict | None:
    if value is None:
        return None
    try:
        data = json.loads(_text(value))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _jsonable(value: Any) -> Any:
    """Options as JSON: dataclasses as dicts, paths and dates as strings, tuples as lists."""
    import dataclasses
    import datetime as dt

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_") and f.metadata.get("digest", True)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return str(value)


def options_digest(options: Any) -> str:
    """A short hash of parsed options (what update mode compares)."""
    return hashlib.sha256(json.dumps(_jsonable(options), sort_keys=True, default=str).encode()).hexdigest()[:16]


__all__ = ["Provenance", "recording", "current", "current_step", "new_file_attrs", "edited_file_attrs",
           "file_versions", "relevant", "read_provenance", "options_digest", "sbts_version",
           "PROVENANCE_ATTR", "VERSIONS_ATTR", "PROVENANCE_KEYS"]
