"""A stack appended to in parts: ``ifgramStack.h5`` whose big datasets are HDF5 virtual datasets.

Appending an acquisition adds pairs whose second date is the newest.  A stack keeps its pairs
sorted by (date1, date2), as a fresh load does, so the new pairs do not go at the end: each goes
after the last pair that starts on its first date, near the end of the stack.  Every pair before
the first insertion keeps its place; only the *tail* from there on changes.  So an append writes
the tail (its old pairs copied, its new pairs read) into a new *part*, and a new ``ifgramStack.h5``
whose 3-D datasets are virtual: their leading layers map onto the parts already on disk, the rest
onto the new part.  The stack is never copied, so an append costs its tail, not the stack, in time
and in disk space.  Readers see an ordinary stack (HDF5 resolves the mapping); its values are those
of a fresh load bit for bit.

The parts live in ``<stack>_parts/`` beside the stack, named by the signature of the stack they
were written for, and the virtual datasets name them relative to the stack (``./...``), so the
work directory can be moved or copied whole.  The first append turns the stack that was loaded
whole into the first part with a hard link (no copy).  Nothing is changed in place: the part is
written under a temporary name, and the new stack is written beside the old one and renamed over
it, so a run killed half-way leaves the previous stack as it was.  Parts no longer named by the
stack are removed after the rename; once a stack would need more than :data:`MAX_PARTS` parts, the
loader writes it whole again (a virtual read has a small cost per part).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py

from sbts.core.errors import InputError

logger = logging.getLogger(__name__)

#: most parts a stack is made of; an append that would need more writes the stack whole
MAX_PARTS = 8


@dataclass(frozen=True)
class Piece:
    """Layers ``[dst_start, dst_start + count)`` of the stack are layers ``[src_start, ...)`` of ``file``.

    ``file`` is relative to the stack's folder (``./ifgramStack_parts/<name>.h5``)."""

    file: str
    src_start: int
    dst_start: int
    count: int


def parts_dir(stack: str | os.PathLike) -> Path:
    """The folder of the parts of ``stack`` (``inputs/ifgramStack_parts``)."""
    stack = Path(stack)
    return stack.with_name(f"{stack.stem}_parts")


def relative_name(stack: str | os.PathLike, part: str | os.PathLike) -> str:
    """How a virtual dataset of ``stack`` names ``part``: relative to the stack's folder."""
    return "./" + Path(os.path.relpath(part, Path(stack).parent)).as_posix()


def pieces_of(stack: str | os.PathLike, names: Iterable[str]) -> list[Piece] | None:
    """The layer mapping shared by the 3-D datasets ``names`` of ``stack``.

    A stack written whole is one piece of itself (``file`` = ``"."``).  None when the datasets are
    not all mapped alike, or a mapping is not one of whole-layer runs (not written by this module).
    """
    stack = Path(stack)
    found: list[Piece] | None = None
    with h5py.File(stack, "r", locking=False) as f:
        for name in names:
            runs = mapping_of(f[name])
            if runs is None:
                return None
            pieces = [Piece(file, src_start, dst_start, count) for file, _, src_start, dst_start, count in runs]
            if found is None:
                found = pieces
            elif pieces != found:
                return None
    return found


def truncate(pieces: Sequence[Piece], stop: int) -> list[Piece]:
    """The pieces that hold layers ``[0, stop)``, cut at ``stop``."""
    out = []
    for p in pieces:
        if p.dst_start >= stop:
            break
        out.append(Piece(p.file, p.src_start, p.dst_start, min(p.count, stop - p.dst_start)))
    return out


def part_path(stack: Path, signature: str) -> Path:
    """The part that holds what the stack with ``signature`` wrote: the stack itself once it was
    loaded whole (:func:`link_whole`), or the tail an append wrote for it."""
    return parts_dir(stack) / f"{signature[:24]}.h5"


def link_whole(stack: Path, signature: str) -> str:
    """Make the stack written whole a part of the next stack: a hard link in :func:`parts_dir`
    named by its signature.  Returns the relative name; raises OSError where the file system has no
    hard links (the caller then writes the stack whole)."""
    part = part_path(stack, signature)
    part.parent.mkdir(exist_ok=True)
    if part.exists() and not os.path.samefile(part, stack):
        part.unlink()  # a leftover of another stack of the same name
    if not part.exists():
        os.link(stack, part)
    return relative_name(stack, part)


def virtual_layout(pieces: Sequence[Piece], name: str, shape: tuple[int, ...], dtype) -> h5py.VirtualLayout:
    """The layout of the 3-D dataset ``name`` of a stack made of ``pieces``."""
    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
    for p in pieces:
        src_shape = (p.src_start + p.count,) + tuple(shape[1:])
        source = h5py.VirtualSource(p.file, name, shape=src_shape, dtype=dtype)
        layout[p.dst_start:p.dst_start + p.count] = source[p.src_start:p.src_start + p.count]
    return layout


def same_layout(f: h5py.File, source: str) -> h5py.VirtualLayout | None:
    """A layout for a new dataset of ``f`` that holds the values of its 3-D dataset ``source``
    without copying them: for a stored ``source``, a mapping onto it in the same file (HDF5's
    ``"."``); for a virtual one (a stack appended in parts), the very mapping ``source`` has (the
    same parts, datasets and layers).  None when ``source`` maps other than by whole-layer runs."""
    ds = f[source]
    runs = mapping_of(ds)
    if runs is None:
        return None
    layout = h5py.VirtualLayout(shape=ds.shape, dtype=ds.dtype)
    for file, dataset, src_start, dst_start, count in runs:
        src = h5py.VirtualSource(file, dataset, shape=(src_start + count,) + tuple(ds.shape[1:]), dtype=ds.dtype)
        layout[dst_start:dst_start + count] = src[src_start:src_start + count]
    return layout


def mapping_of(ds: h5py.Dataset) -> list[tuple[str, str, int, int, int]] | None:
    """What a dataset holds, as (file, dataset, first source layer, first layer, layers) runs: a
    stored one is itself (``"."``); None for a mapping other than by whole-layer runs.  Two datasets
    with the same mapping hold the same values."""
    if not ds.is_virtual:
        return [(".", ds.name.lstrip("/"), 0, 0, int(ds.shape[0]))]
    runs = []
    for vmap in ds.virtual_sources():
        (d0, *drest), (d1, *_), (s0, *srest), (s1, *_) = _map_bounds(vmap)
        if any(drest) or any(srest) or d1 - d0 != s1 - s0:
            return None
        runs.append((vmap.file_name, vmap.dset_name.lstrip("/"), int(s0), int(d0), int(d1 - d0 + 1)))
    return sorted(runs, key=lambda r: r[3])


def _map_bounds(vmap) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(first, last) index of a virtual mapping's destination, then of its source.  A whole-space
    selection has no bounds to ask HDF5 for: the destination's extent, and for the source (whose
    extent a whole-source mapping does not record) the destination's run from 0."""
    def bounds(space) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if space.get_select_type() == h5py.h5s.SEL_ALL:
            return tuple(0 for _ in space.shape), tuple(n - 1 for n in space.shape)
        return space.get_select_bounds()

    d_lo, d_hi = bounds(vmap.vspace)
    if vmap.src_space.get_select_type() == h5py.h5s.SEL_ALL:
        return d_lo, d_hi, tuple(0 for _ in d_lo), tuple(h - lo for lo, h in zip(d_lo, d_hi))
    s_lo, s_hi = bounds(vmap.src_space)
    return d_lo, d_hi, s_lo, s_hi


def _source_names(ds: h5py.Dataset) -> list[str]:
    """The files a dataset maps onto, as it names them (none unless it is virtual)."""
    return [v.file_name for v in ds.virtual_sources()] if ds.is_virtual else []


def check_sources(path: Path, ds: h5py.Dataset) -> None:
    """Refuse a dataset of ``path`` that maps onto a part that is not there: HDF5 would read its
    layers as fill values without a word."""
    for name in _source_names(ds):
        if name != "." and not (path.parent / name).is_file():
            raise InputError(f"{path}: dataset {ds.name.lstrip('/')} is made of parts, and its part "
                             f"{name} is missing; copy the folder {path.parent} whole (with "
                             f"{parts_dir(path).name}/), or load the stack again with `sbts load --force`")


def referenced(stack: Path) -> set[Path] | None:
    """The part files the stack's virtual datasets name (resolved); None when the stack cannot be read."""
    out: set[Path] = set()
    try:
        with h5py.File(stack, "r", locking=False) as f:
            for obj in f.values():
                if isinstance(obj, h5py.Dataset):
                    out.update((stack.parent / name).resolve() for name in _source_names(obj))
    except OSError as exc:
        logger.debug("cannot read %s (%s): its parts are left as they are", stack, exc)
        return None
    return out


def remove_unused(stack: Path) -> None:
    """Remove the parts the stack no longer names (all of them after a whole load); nothing when the
    stack cannot be read (never a part it may need)."""
    folder = parts_dir(stack)
    if not folder.is_dir():
        return
    keep = referenced(stack)
    if keep is None:
        return
    if not keep:  # written whole: no part is needed, nor any partial one
        shutil.rmtree(folder, ignore_errors=True)
        return
    for part in folder.iterdir():
        if part.suffix == ".h5" and part.resolve() not in keep:
            with contextlib.suppress(OSError):
                part.unlink()
                logger.debug("removed the unused part %s", part)
