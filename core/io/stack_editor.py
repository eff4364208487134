"""StackEditor: the only in-place writer of ``inputs/ifgramStack.h5``.

load_data writes the stack once (:class:`~sbts.core.io.products.StackWriter`); three later steps
change parts of it in place, as MintPy does: modify_network the drop list (``dropIfgram``),
reference_point the reference pixel (``REF_Y``/``REF_X``/``REF_LAT``/``REF_LON``) and the
unwrapping-error correction a corrected phase (``unwrapPhase_bridging`` ...).  They all go through
this class, which

- takes the stack's output lock and refuses to start when the disk is (nearly) full
  (:func:`~sbts.core.io.h5.edit_in_place`);
- writes a corrected dataset once, into its own part file beside the stack
  (``ifgramStack_parts/<name>.h5``, see :mod:`sbts.core.io.stack_parts`), which the stack names as
  a virtual dataset: readers, MintPy's included, see an ordinary dataset; a rerun renames a new part
  over the old one, so the stack never grows, and while the dataset is switched it carries the
  ``SBTS_INCOMPLETE`` marker every reader refuses, so it is never left half-written unnoticed;
- records in the root attribute ``SBTS_VERSIONS`` which step wrote each part and, for datasets, a
  new content version (the drop list and the reference point are versioned by their content: see
  :func:`sbts.core.io.provenance.file_versions`).  Update mode compares, for each step, only the
  parts written before it in the plan, so an edit never makes an earlier step look out of date.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from sbts.core.errors import DataError, InputError
from sbts.core.io import stack_parts
from sbts.core.io.h5 import INCOMPLETE_ATTR, H5Writer, check_free_space, edit_in_place, open_h5
from sbts.core.io.lock import output_lock
from sbts.core.io.provenance import VERSIONS_ATTR, current_step, new_version

logger = logging.getLogger(__name__)

REFERENCE_ATTRS = ("REF_Y", "REF_X", "REF_LAT", "REF_LON")
_TMP_SUFFIX = "__sbts_tmp"
_OLD_SUFFIX = "__sbts_old"


class StackEditor:
    """In-place edits of one interferogram stack, each recorded with the step that made it.

    Parameters
    ----------
    path : str or os.PathLike
        The ``ifgramStack.h5`` to edit.
    step : str, optional
        The step to record when none is running (a command outside ``sbts run``); inside a run
        the running step is recorded.
    """

    def __init__(self, path: str | os.PathLike, step: str | None = None) -> None:
        self.path = Path(path)
        self.step = current_step(step)

    # ---------------------------------------------------------------- drop list
    def set_drop(self, keep: np.ndarray) -> bool:
        """Write ``dropIfgram`` (True = kept) in place; return True if it changed.

        An unchanged drop list leaves the file untouched (downstream steps need not re-run)."""
        keep = np.asarray(keep, bool)
        with open_h5(self.path) as f:
            old = f["dropIfgram"][()] if "dropIfgram" in f else None
        if old is not None and old.shape == keep.shape and np.array_equal(old.astype(bool), keep):
            return False
        try:
            with edit_in_place(self.path) as f:
                if "dropIfgram" in f and f["dropIfgram"].shape == keep.shape and f["dropIfgram"].dtype == bool:
                    f["dropIfgram"][...] = keep
                else:
                    if "dropIfgram" in f:
                        del f["dropIfgram"]
                    f.create_dataset("dropIfgram", data=keep)
                f["dropIfgram"].attrs["MODIFICATION_TIME"] = str(time.time())
                self._stamp(f, "dropIfgram")
        except InputError as exc:
            raise InputError(f"cannot update dropIfgram in {self.path}: {exc}") from None
        return True

    # ---------------------------------------------------------------- reference point
    def set_reference(self, y: int, x: int, lat: float | None = None, lon: float | None = None) -> bool:
        """Store REF_Y/REF_X (and REF_LAT/REF_LON) as root attributes; return True if they changed.

        Data is not rewritten; the file is not touched when the same point is already stored
        (MintPy's skip rule)."""
        with open_h5(self.path) as f:
            length, width = (int(v) for v in (_text(f.attrs.get("LENGTH", 0)), _text(f.attrs.get("WIDTH", 0))))
            old = {k: _text(v) for k, v in f.attrs.items() if k in REFERENCE_ATTRS}
        if not (0 <= y < length and 0 <= x < width):
            raise DataError(f"reference pixel y/x = {y}, {x} is outside the {length}×{width} image")
        new = {"REF_Y": str(int(y)), "REF_X": str(int(x))}
        if lat is not None and lon is not None:
            new.update(REF_LAT=repr(float(lat)), REF_LON=repr(float(lon)))
        if old == new:
            logger.info("%s already references y/x = %d, %d", self.path.name, y, x)
            return False
        with edit_in_place(self.path) as f:
            for key in ("REF_LAT", "REF_LON"):
                if key in f.attrs and key not in new:
                    del f.attrs[key]  # stale from an earlier reference point
            for key, value in new.items():
                f.attrs[key] = value
            self._stamp(f, "reference")
        logger.info("%s: REF_Y/REF_X = %d, %d written", self.path.name, y, x)
        return True

    # ---------------------------------------------------------------- corrected datasets
    def write_dataset(self, name: str, fill: Callable[[h5py.Dataset], None], like: str = "unwrapPhase",
                      attrs: Mapping[str, Any] | None = None, root_attrs: Mapping[str, Any] | None = None) -> None:
        """Add or replace the 3-D dataset ``name`` (shaped like ``like``), never half-written unnoticed.

        ``fill(ds)`` writes the data block by block into a dataset of a scratch file (written like
        any output: :class:`~sbts.core.io.h5.H5Writer`) in the stack's parts folder; only when it
        returns is the stack touched, under its lock: the stack's ``name`` is marked
        :data:`~sbts.core.io.h5.INCOMPLETE_ATTR` (and loses ``attrs``, which may say it is up to
        date), the scratch file is renamed to the part ``<name>.h5``, the stack's ``name`` becomes
        (or stays) a virtual dataset over it, and the marker goes.  The data is written once
        (copying it into the stack wrote it twice), and the stack does not grow on a rerun.
        """
        part = stack_parts.parts_dir(self.path) / f"{name}.h5"
        scratch = part.with_name(f".{name}.h5")
        with output_lock(self.path):
            with h5py.File(self.path, "r") as f:
                src = f[like]
                shape, chunks = src.shape, src.chunks
            nbytes = int(np.prod(shape)) * 4
            check_free_space(self.path.parent, nbytes, f"{name} of {self.path}")
            try:
                part.parent.mkdir(exist_ok=True)
                with H5Writer(scratch, {}) as w:  # the part carries the running step's provenance
                    ds = w.create(name, shape=shape, dtype=np.float32, chunks=chunks or True)
                    fill(ds)
                    w.flush()  # while `ds` is open: a failed write is reported here, not lost in a destructor
                    del ds
                source = stack_parts.relative_name(self.path, part)
                with edit_in_place(self.path) as f:
                    _remove_leftovers(f, name)
                    current = f.get(name)
                    if isinstance(current, h5py.Dataset):
                        current.attrs[INCOMPLETE_ATTR] = "being replaced by an unwrapping-error correction"
                        for key in attrs or {}:
                            if key in current.attrs:
                                del current.attrs[key]
                        f.flush()  # the marker is on disk before the data under it changes
                    os.replace(scratch, part)
                    mapped = (isinstance(current, h5py.Dataset) and current.is_virtual and current.shape == shape
                              and [(v.file_name, v.dset_name) for v in current.virtual_sources()] == [(source, name)])
                    if not mapped:
                        if name in f:  # an earlier sbts wrote it into the stack itself
                            del f[name]
                        layout = stack_parts.virtual_layout([stack_parts.Piece(source, 0, 0, shape[0])], name,
                                                            shape, np.float32)
                        f.create_virtual_dataset(name, layout, fillvalue=np.nan)
                    dst = f[name]
                    dst.attrs["MODIFICATION_TIME"] = str(time.time())
                    dst.attrs["UNIT"] = "radian"
                    for key, value in (attrs or {}).items():
                        dst.attrs[key] = value
                    for key, value in (root_attrs or {}).items():
                        f.attrs[key] = value
                    self._stamp(f, f"data:{name}", new_version())
                    if INCOMPLETE_ATTR in dst.attrs:
                        del dst.attrs[INCOMPLETE_ATTR]
            finally:
                with contextlib.suppress(FileNotFoundError):
                    scratch.unlink()

    # ---------------------------------------------------------------- versions
    def _stamp(self, f: h5py.File, part: str, version: str = "") -> None:
        """Record that the current step wrote ``part`` (content-versioned parts keep ``version`` empty)."""
        versions = read_versions(f)
        versions[part] = [version, self.step]
        f.attrs[VERSIONS_ATTR] = json.dumps(versions, sort_keys=True)


def read_versions(f: h5py.File) -> dict[str, list]:
    """The ``SBTS_VERSIONS`` record of an open file (``{}`` when absent or unreadable)."""
    value = f.attrs.get(VERSIONS_ATTR)
    if value is None:
        return {}
    try:
        data = json.loads(_text(value))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _remove_leftovers(f: h5py.File, name: str) -> None:
    """Names a killed run left: the temporary copy goes; an old copy is restored if the new one is missing."""
    if name + _TMP_SUFFIX in f:
        del f[name + _TMP_SUFFIX]
    if name + _OLD_SUFFIX in f:
        if name not in f:  # crashed between the two moves: the old one is the last complete copy
            f.move(name + _OLD_SUFFIX, name)
        else:
            del f[name + _OLD_SUFFIX]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    return str(value)


__all__ = ["StackEditor", "read_versions", "REFERENCE_ATTRS"]
