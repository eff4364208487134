"""StackEditor: the only in-place writer of ``inputs/ifgramStack.h5``.

load_data writes the stack once (:class:`~sbts.core.io.products.StackWriter`); three later steps
change parts of it in place, as MintPy does: modify_network the drop list (``dropIfgram``),
reference_point the reference pixel (``REF_Y``/``REF_X``/``REF_LAT``/``REF_LON``) and the
unwrapping-error correction a corrected phase (``unwrapPhase_bridging`` ...).  They all go through
this class, which

- takes the stack's output lock and refuses to start when the disk is (nearly) full
  (:func:`~sbts.core.io.h5.edit_in_place`);
- writes a corrected dataset so that it is never left half-written unnoticed: computed into a
  scratch file first, then rewritten in place (so the file does not grow on a rerun) under the
  ``SBTS_INCOMPLETE`` marker every reader refuses, or copied in under a temporary name and renamed;
  a correction that changed nothing is a virtual dataset mapping onto its input (no copy);
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
from sbts.core.io.h5 import INCOMPLETE_ATTR, H5Writer, check_free_space, edit_in_place, open_h5
from sbts.core.io.lock import output_lock
from sbts.core.io.provenance import VERSIONS_ATTR, current_step, new_version
from sbts.core.io.stack_parts import mapping_of, same_layout

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
        any output: :class:`~sbts.core.io.h5.H5Writer`); only when it returns is the stack touched,
        under its lock.  A dataset that exists with the same shape is rewritten in place, so a
        rerun does not grow the file (HDF5 never reuses the space of a deleted dataset); while it
        is rewritten it carries :data:`~sbts.core.io.h5.INCOMPLETE_ATTR`, which every reader
        refuses and the next run repairs, and none of ``attrs`` (they may say it is up to date).
        A new dataset is copied in under a temporary name and renamed.
        """
        scratch = self.path.with_name(f".{self.path.name}.{name}.h5")
        with output_lock(self.path):
            with h5py.File(self.path, "r") as f:
                src = f[like]
                shape, chunks = src.shape, src.chunks
                current = f.get(name)
                in_place = _rewritable(current, shape)
            nbytes = int(np.prod(shape)) * 4
            check_free_space(self.path.parent, nbytes * (1 if in_place else 2), f"{name} of {self.path}")
            try:
                _fill_scratch(scratch, name, shape, chunks or True, fill)
                with h5py.File(scratch, "r") as t, edit_in_place(self.path) as f:
                    _remove_leftovers(f, name)
                    if in_place:
                        dst = _mark_incomplete(f, name, attrs)
                        _copy_layers(t[name], dst)
                    else:
                        t.copy(t[name], f, name=name + _TMP_SUFFIX)
                        dst = _rename_into_place(f, name)
                    self._finish(f, dst, name, attrs, root_attrs)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    scratch.unlink()

    def write_corrected_copy(self, name: str, source: str, layers: np.ndarray,
                             fill: Callable[[h5py.Dataset], None], attrs: Mapping[str, Any] | None = None,
                             root_attrs: Mapping[str, Any] | None = None) -> None:
        """Add or replace ``name`` as a copy of the float32 3-D dataset ``source`` in which only the
        ``layers`` (indices, increasing) differ, never half-written unnoticed.

        A correction that changes a few pairs (phase closure: often none) would otherwise write the
        whole dataset twice, into a scratch file and then into the stack, and every gigabyte of new
        file costs ~2 s on a VM that faults in its page cache.  Here ``fill(ds)`` writes only the
        changed layers, ``ds[i]`` for ``layers[i]``, into a scratch file (none when ``layers`` is
        empty); then, under the stack's lock, a new dataset is copied from ``source`` inside the
        stack (HDF5 copies the stored chunks as they are) under a temporary name, the changed layers
        are written over it and it is renamed.  An existing dataset of the same shape is rewritten in
        place, as :meth:`write_dataset` does (no growth on a rerun), carrying
        :data:`~sbts.core.io.h5.INCOMPLETE_ATTR` meanwhile.  When no layer changed (and no stored
        dataset is there to rewrite), the new dataset is a virtual one with the values of ``source``
        (:meth:`_map_onto`; ``source`` may then be virtual itself, a stack appended in parts): the
        same values for every reader, no copy.
        """
        layers = np.asarray(layers, np.int64)
        scratch = self.path.with_name(f".{self.path.name}.{name}.h5")
        with output_lock(self.path):
            with h5py.File(self.path, "r") as f:
                src = f[source]
                shape = src.shape
                current = f.get(name)
                in_place = _rewritable(current, shape)
                mapped = (not len(layers) and not in_place and src.ndim == 3 and src.dtype == np.float32
                          and mapping_of(src) is not None)
                if src.ndim != 3 or src.dtype != np.float32 or (src.is_virtual and not (mapped or in_place)):
                    # a virtual source would be copied as its mapping: the corrected layers would be
                    # written into the files it maps (the loaded parts); read into a stored dataset
                    # (in place) it is as any other
                    raise ValueError(f"{source}: a float32 3-D dataset stored in the stack is needed, "
                                     f"not {src.dtype} {src.shape}{' (virtual)' if src.is_virtual else ''}")
                layer_chunks = tuple(src.chunks[1:]) if src.chunks else tuple(shape[1:])
            if mapped:
                self._map_onto(name, source, attrs, root_attrs)
                return
            layer_bytes = int(np.prod(shape[1:])) * 4
            check_free_space(self.path.parent, layer_bytes * (len(layers) + (0 if in_place else shape[0])),
                             f"{name} of {self.path}")
            try:
                if len(layers):
                    _fill_scratch(scratch, name, (len(layers),) + tuple(shape[1:]), (1,) + layer_chunks, fill)
                with contextlib.ExitStack() as stack:
                    t = stack.enter_context(h5py.File(scratch, "r")) if len(layers) else None
                    f = stack.enter_context(edit_in_place(self.path))
                    _remove_leftovers(f, name)
                    if in_place:
                        dst = _mark_incomplete(f, name, attrs)
                        _copy_layers(f[source], dst)
                    else:
                        f.copy(f[source], f, name=name + _TMP_SUFFIX)
                        dst = f[name + _TMP_SUFFIX]
                        for key in list(dst.attrs):  # the source's attributes came along
                            del dst.attrs[key]
                    if t is not None:
                        for i, k in enumerate(layers.tolist()):
                            dst[k] = t[name][i]
                    dst.flush()
                    if not in_place:
                        dst = _rename_into_place(f, name)
                    self._finish(f, dst, name, attrs, root_attrs)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    scratch.unlink()

    def _map_onto(self, name: str, source: str, attrs: Mapping[str, Any] | None,
                  root_attrs: Mapping[str, Any] | None) -> None:
        """``name``, a correction that changed no layer, as a virtual dataset with the values of
        ``source`` (:func:`~sbts.core.io.stack_parts.same_layout`: a mapping onto it in the same
        file, HDF5's ``"."``, or, for a stack appended in parts, the mapping ``source`` has): every
        reader, MintPy's included, reads the source's values, and nothing is copied (a copy of a
        1000² × 230-pair phase is ~1 GB and 1–2 s).  It has attributes of its own; written under a
        temporary name and renamed, as a copy is.  (It is never rewritten in place: :func:`_rewritable`.)"""
        with edit_in_place(self.path) as f:
            _remove_leftovers(f, name)
            layout = same_layout(f, source)
            assert layout is not None  # checked by the caller under the same lock
            f.create_virtual_dataset(name + _TMP_SUFFIX, layout)
            dst = _rename_into_place(f, name)
            self._finish(f, dst, name, attrs, root_attrs)
        logger.info("%s: no layer of %s changed: %s holds its values (an HDF5 virtual dataset, no copy)",
                    self.path.name, source, name)

    def _finish(self, f: h5py.File, dst: h5py.Dataset, name: str, attrs: Mapping[str, Any] | None,
                root_attrs: Mapping[str, Any] | None) -> None:
        """A corrected dataset written: its attributes, the stack's, its version, and (last) the
        incomplete mark of an in-place rewrite removed."""
        dst.attrs["MODIFICATION_TIME"] = str(time.time())
        dst.attrs["UNIT"] = "radian"
        for key, value in (attrs or {}).items():
            dst.attrs[key] = value
        for key, value in (root_attrs or {}).items():
            f.attrs[key] = value
        self._stamp(f, f"data:{name}", new_version())
        if INCOMPLETE_ATTR in dst.attrs:
            del dst.attrs[INCOMPLETE_ATTR]

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


def _mark_incomplete(f: h5py.File, name: str, attrs: Mapping[str, Any] | None) -> h5py.Dataset:
    """Dataset ``name``, about to be rewritten in place: marked incomplete (every reader refuses it),
    without the ``attrs`` that may say it is up to date, the mark flushed before any data changes."""
    dst = f[name]
    dst.attrs[INCOMPLETE_ATTR] = "rewritten in place by an unwrapping-error correction"
    for key in attrs or {}:
        if key in dst.attrs:
            del dst.attrs[key]
    f.flush()
    return dst


def _rewritable(current: Any, shape: tuple[int, ...]) -> bool:
    """Whether an existing dataset can be rewritten in place with a new ``shape`` float32 content:
    stored in the file with that shape.  Never a virtual one: writing into it would write into the
    dataset it maps onto (the loaded phase)."""
    return (isinstance(current, h5py.Dataset) and not current.is_virtual and current.shape == shape
            and current.dtype == np.float32)


def _rename_into_place(f: h5py.File, name: str) -> h5py.Dataset:
    """The complete ``name`` + temporary suffix renamed to ``name`` (an older one removed)."""
    f.flush()
    if name in f:
        f.move(name, name + _OLD_SUFFIX)
    f.move(name + _TMP_SUFFIX, name)
    if name + _OLD_SUFFIX in f:
        del f[name + _OLD_SUFFIX]
    return f[name]


def _copy_layers(src: h5py.Dataset, dst: h5py.Dataset, max_bytes: int = 64 << 20) -> None:
    """Copy a 3-D dataset layer by layer groups (bounded memory)."""
    per_layer = max(1, int(np.prod(src.shape[1:])) * src.dtype.itemsize)
    step = max(1, max_bytes // per_layer)
    for k in range(0, src.shape[0], step):
        dst[k:k + step] = src[k:k + step]
    dst.flush()


def _fill_scratch(scratch: Path, name: str, shape: tuple[int, ...], chunks: Any,
                  fill: Callable[[h5py.Dataset], None]) -> None:
    """A float32 dataset ``name`` of ``shape`` in the new file ``scratch``, written by ``fill(ds)``."""
    with H5Writer(scratch, {}, provenance={}) as w:
        ds = w.create(name, shape=shape, dtype=np.float32, chunks=chunks)
        fill(ds)
        w.flush()  # while `ds` is open: a failed write is reported here, not lost in a destructor
        del ds


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
