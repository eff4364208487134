"""HDF5 reading and crash-safe writing.

Writes go to ``<name>.<pid>.part`` beside the final file (a name private to the process, under the
output's lock: :mod:`sbts.core.io.lock`) and are renamed on success, so a file under its final name is
always complete.  A writer created with a ``signature`` (a hash of its inputs and options) records
finished blocks in the partial file: an interrupted run re-run with the same signature adopts the
dead run's partial file and skips the blocks already written.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from sbts.core.errors import InputError, SbtsError
from sbts.core.io.blocks import Block
from sbts.core.io.lock import orphans, output_lock, private_name, remove_orphans
from sbts.core.io.replace import replace_file
from sbts.core.model.metadata import Metadata

if TYPE_CHECKING:
    from sbts.core.io.chunk_codec import EncodedChunk

logger = logging.getLogger(__name__)

_OWNER_ATTR = "SBTS_OWNER"
# on a dataset rewritten in place (see plugins/corrections/unwrap_error.py): present only while
# the rewrite runs, so a dataset that carries it was left half-written; readers refuse it
INCOMPLETE_ATTR = "SBTS_INCOMPLETE"
_DONE_ATTR = "SBTS_DONE_BLOCKS"
_SIG_ATTR = "SBTS_SIGNATURE"
CHUNK_BYTES = 1 << 20


def default_chunks(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...] | None:
    """About 1 MiB chunks of full-width rows, one layer deep for 3-D stacks."""
    if len(shape) < 2 or 0 in shape:
        return None
    length, width = shape[-2], shape[-1]
    cols = width if width * itemsize <= CHUNK_BYTES else max(1, CHUNK_BYTES // (64 * itemsize))
    rows = max(1, min(length, CHUNK_BYTES // (cols * itemsize)))
    return (1,) * (len(shape) - 2) + (rows, cols)


def open_h5(path: str | os.PathLike, mode: str = "r") -> h5py.File:
    """Open an HDF5 file, turning the usual failures into messages that name the file.

    Parameters
    ----------
    path : str or os.PathLike
    mode : str
        h5py's mode (``"r"``, ``"r+"``).

    Returns
    -------
    h5py.File
        Use it as a context manager.

    Raises
    ------
    InputError
        Absent, not a regular file, or not readable as HDF5.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():  # a folder, FIFO or device: h5py would fail obscurely, or block on a FIFO
        from sbts.core.io.safenames import require_regular

        require_regular(path, "HDF5 file")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read as HDF5 ({exc}); is it complete and not in use?") from None


def direct(f: h5py.File, name: str) -> h5py.Dataset:
    """Dataset ``name`` of ``f`` opened without a chunk cache when its chunks are stored as they are
    (no filter).

    Through the cache (h5py's default: 1 MiB a dataset) HDF5 reads a whole chunk into it and copies
    the selection out; without one it reads the selection of an unfiltered chunk straight into the
    array.  sbts's chunks are a layer's row strip of ~1 MB, so every block read went through the
    cache: reading the 1000² × 177-pair phase and coherence by 48-row blocks took 1.0–1.2 s with the
    cache and 0.31–0.33 s without.  A filtered (compressed) chunk must be decoded whole: such a
    dataset keeps the file's cache, so that the blocks that share a chunk decode it once.  (HDF5
    keeps one cache per open dataset, set by its first opening: the dataset is opened here first.)

    Parameters
    ----------
    f : h5py.File
        An open file.
    name : str
        The dataset's path in it.

    Returns
    -------
    h5py.Dataset
        Read and write it as ``f[name]``; a name that is no dataset gives what ``f[name]`` gives.
    """
    dapl = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    dapl.set_chunk_cache(0, 0, 1.0)  # slots, bytes, preemption: no cache
    try:
        ds = h5py.Dataset(h5py.h5d.open(f.id, name.encode(), dapl=dapl))
    except (KeyError, TypeError):  # not a dataset (a group, a missing name): as f[name] says it
        return f[name]
    # any filter of the pipeline, also one h5py has no name for (a plugin's: blosc, zstd, ...)
    if ds.chunks is not None and ds.id.get_create_plist().get_nfilters():
        ds.id.close()
        return f[name]
    return ds


def read_attrs(path: str | os.PathLike) -> dict[str, str]:
    with open_h5(path) as f:
        return {k: _attr_str(v) for k, v in f.attrs.items()}


def read_metadata(path: str | os.PathLike) -> Metadata:
    return Metadata.from_attrs(read_attrs(path), source=str(path))


def _attr_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    return str(value)


def part_path(path: str | os.PathLike) -> Path:
    """The temporary name this process writes ``path`` under (``<name>.<pid>.part``)."""
    return private_name(path)


class WriteError(SbtsError):
    """Writing an output failed (disk full, folder read-only, file system error)."""


def _is_no_space(exc: BaseException) -> bool:
    text = str(exc).lower()
    return getattr(exc, "errno", None) == errno.ENOSPC or "no space" in text or "errno = 28" in text


@contextlib.contextmanager
def _writing(path: Path, on_failure=None):
    """Turn h5py's low-level write failures (RuntimeError or OSError) into a :class:`WriteError`;
    ``on_failure()`` runs first (a writer gives the space of its broken file back)."""
    try:
        yield
    except WriteError:
        raise
    except (OSError, RuntimeError) as exc:
        if on_failure is not None:
            on_failure()
        raise WriteError(f"cannot write {path}: {_reason(exc)}") from None


def write_guard(path: str | os.PathLike):
    """``with write_guard(path): ...``: a file-system failure while writing ``path`` (disk full,
    read-only folder) becomes a one-line :class:`WriteError` naming it."""
    return _writing(Path(path))


def _reason(exc: BaseException) -> str:
    """One line: why a write failed (HDF5's messages carry its whole error stack and a time stamp)."""
    if _is_no_space(exc):
        return "no space left on device (the disk is full)"
    strerror = getattr(exc, "strerror", None)
    text = strerror or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    text = text.split(" (file write failed")[0].split(", time = ")[0]
    return f"{text} (is the disk full or the folder read-only?)"


def check_distinct(outputs: Iterable[str | os.PathLike] | str | os.PathLike,
                   inputs: Iterable[str | os.PathLike] | str | os.PathLike, option: str = "-o") -> None:
    """Refuse to write an output over one of the inputs it is computed from.

    It would be replaced while read, and the input lost.

    Parameters
    ----------
    outputs, inputs : path or iterable of paths
        ``None`` entries are ignored.
    option : str
        The option that names the output, for the message.

    Raises
    ------
    InputError
        An output is an input (the same file, by any path).
    """
    outs = [outputs] if isinstance(outputs, (str, os.PathLike)) else list(outputs)
    ins = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    for out in outs:
        for inp in ins:
            if inp is None or out is None:
                continue
            if _same_path(Path(out), Path(inp)):
                raise InputError(f"output {out} is the input {inp}: writing it would overwrite the input "
                                 f"while it is read; choose another output ({option})")


def _same_path(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


# ---------------------------------------------------------------------------- lost writes
# h5py writes a dataset's cached chunks when the dataset object is garbage-collected; a failure
# there (disk full) is only "ignored" by Python (sys.unraisablehook) and the data is lost.  Writers
# watch for such failures on their partial files and refuse to give them their final name.
_lost: list[str] = []


def _watch_lost_writes() -> None:
    current = sys.unraisablehook
    if getattr(current, "_sbts_lost_writes", False):
        return

    def hook(unraisable, _previous=current):
        if isinstance(unraisable.exc_value, (OSError, RuntimeError)) and "h5py" in repr(unraisable.object):
            _lost.append(str(unraisable.exc_value))
            del _lost[:-100]
        _previous(unraisable)

    hook._sbts_lost_writes = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


def _lost_writes(tmp: Path) -> str:
    for text in _lost:
        if tmp.name in text:
            return _reason(OSError(text))
    return ""


# ---------------------------------------------------------------------------- free space
# Writers of this process that are open, by file system: their datasets are allocated lazily by
# HDF5, so the space they still need is counted against the free space for all of them together
# (a step writing three files must not count the same free megabytes three times).
_open_writers: set[H5Writer] = set()
_writers_lock = threading.Lock()
_MARGIN_PER_DATASET = 8192  # object header, chunk index


def _allocated(path: Path) -> int:
    try:
        st = os.stat(path)
    except OSError:
        return 0
    return getattr(st, "st_blocks", 0) * 512 or st.st_size


def _device(path: Path) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def check_free_space(folder: Path, nbytes: int, what: str) -> None:
    """Refuse to start writing ``nbytes`` in ``folder`` when its file system has less free.

    Parameters
    ----------
    folder : pathlib.Path
    nbytes : int
        Bytes about to be written.
    what : str
        What would be written, for the message.

    Raises
    ------
    WriteError
        Not enough space (an :class:`SbtsError`).
    """
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if nbytes > free:
        raise WriteError(f"not enough space for {what}: about {_size_text(nbytes)} needed, "
                         f"{_size_text(free)} free in {folder}")


def _size_text(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 1e5 else f"{nbytes / 1e3:.0f} kB"


def _disk_nearly_full(folder: Path) -> bool:
    """After a failed write: is the file system (nearly) out of space?"""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < (1 << 16)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, size_hint: int = 0):
    """Write a non-HDF5 output (GeoTIFF, text, figure, archive) the way :class:`H5Writer` writes.

    Under the output's lock, to a private temporary name that is renamed into place when the block
    ends, and removed if it fails.  A failure of the file system (disk full, read-only folder,
    GDAL's I/O errors) becomes a :class:`WriteError` naming the output.

    Parameters
    ----------
    path : str or os.PathLike
        The final output.
    size_hint : int
        Bytes expected (refused up front when the disk has less).

    Yields
    ------
    pathlib.Path
        The temporary path: write there, with any library.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot create the folder of {path}: {exc.strerror or exc}") from None
    with output_lock(path):
        remove_orphans(path)
        tmp = private_name(path)
        check_free_space(path.parent, size_hint + 4096, str(path))
        try:
            yield tmp
            replace_file(tmp, path)
        except BaseException as exc:
            full = _disk_nearly_full(path.parent)  # before the partial file gives its space back
            with contextlib.suppress(OSError):
                tmp.unlink()
            text = str(exc).lower()
            io_error = isinstance(exc, OSError) or (isinstance(exc, RuntimeError) and (
                full or _is_no_space(exc) or any(w in text for w in ("i/o error", "write", "read-only"))))
            if isinstance(exc, WriteError) or not io_error:
                raise
            reason = "no space left on device (the disk is full)" if full else _reason(exc)
            raise WriteError(f"cannot write {path}: {reason}") from None


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a small text output atomically (see :func:`atomic_output`).

    Parameters
    ----------
    path : str or os.PathLike
    text : str
        Written as UTF-8.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = text.encode("utf-8")
    with atomic_output(path, len(data)) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return Path(path)


@contextlib.contextmanager
def edit_in_place(path: str | os.PathLike, reserve: int = 1 << 20):
    """Open an existing HDF5 file for a small in-place edit.

    A drop list, a reference point, a dataset rewritten block by block: under the file's output
    lock, refused up front when its file system has less than ``reserve`` bytes free, write failures
    reported as :class:`WriteError`.  When a write fails anyway (the disk filled up meanwhile), what
    HDF5 still holds is thrown away instead of written (see :func:`_divert`): the file keeps what
    was on disk before the failure, and the process does not crash when it exits.

    Parameters
    ----------
    path : str or os.PathLike
        The file to edit.
    reserve : int
        Free bytes required before starting.

    Yields
    ------
    h5py.File
        Opened ``r+``.
    """
    path = Path(path)
    with output_lock(path):
        check_free_space(path.parent, reserve, f"an update of {path}")
        f = open_h5(path, "r+")
        try:
            with _writing(path, lambda: _divert(f)):
                yield f
        finally:
            with contextlib.suppress(Exception):
                f.close()


def _divert(f: h5py.File) -> None:
    """Point the descriptor of ``f`` at an anonymous in-memory file (Linux ``memfd``), so that the
    flushes HDF5 makes when it closes a file it failed to write are thrown away rather than fail
    again; elsewhere, nothing can be done."""
    try:
        fd = f.id.get_vfd_handle()
        sink = os.memfd_create("sbts-discarded-write")
    except Exception:  # noqa: BLE001 - not Linux or not the sec2 driver
        return
    with contextlib.suppress(OSError):
        os.dup2(sink, fd)
    os.close(sink)


class H5Writer:
    """Write one HDF5 product atomically, dataset by dataset and block by block.

    Use as a context manager: on entry the output's lock is taken (another process writing the
    same file is refused); writing goes to ``<name>.<pid>.part``; on normal exit it is renamed
    over ``path``; on an exception it is kept only if it is resumable (has a signature and writing
    itself did not fail), otherwise deleted.  A resumable writer adopts the partial file a dead
    process left with the same signature (see :mod:`sbts.core.io.lock`): skip the blocks
    :meth:`is_done` reports, :meth:`mark_done` each one written.

    Provenance: the file carries the record of the step running now (``SBTS_PROVENANCE``, see
    :mod:`sbts.core.io.provenance`) with a fresh content version; ``provenance`` gives other
    attributes instead (an edit of an existing product keeps its history).  The provenance
    attributes of the input whose metadata is copied are never carried over.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.
    metadata : Metadata or Mapping[str, str]
        Its root attributes.
    signature : str, optional
        Content key of the inputs and options; makes the write resumable.
    provenance : Mapping[str, str], optional
        Provenance attributes to write instead of the running step's record.
    """

    def __init__(self, path: str | os.PathLike, metadata: Metadata | Mapping[str, str],
                 signature: str | None = None, provenance: Mapping[str, str] | None = None) -> None:
        from sbts.core.io.provenance import PROVENANCE_KEYS, new_file_attrs

        self.path = Path(path)
        self.tmp = part_path(self.path)
        self.signature = signature
        self.done_blocks: set[str] = set()
        attrs = metadata.to_attrs() if isinstance(metadata, Metadata) else dict(metadata)
        self._attrs = {k: v for k, v in attrs.items() if k not in PROVENANCE_KEYS}
        self._attrs.update(new_file_attrs() if provenance is None else provenance)
        self._file: h5py.File | None = None
        self._lock: contextlib.AbstractContextManager | None = None
        self._reserved = 0
        self._base = 0
        self._dev: int | None = None
        self._broken = False
        self.resumed = False

    # -------------------------------------------------------------- context
    def __enter__(self) -> H5Writer:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteError(f"cannot create the folder of {self.path}: {exc.strerror or exc}") from None
        with _writers_lock:
            if any(_same_path(w.path, self.path) for w in _open_writers):
                raise WriteError(f"{self.path} is already being written by this command; two outputs "
                                 "cannot share one file name")
        _watch_lost_writes()
        lock = output_lock(self.path)
        lock.__enter__()
        self._lock = lock
        try:
            self._open()
            with _writers_lock:
                _open_writers.add(self)
            self._setup()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _setup(self) -> None:
        """Hook for subclasses: create the datasets every file of the kind has."""

    def _open(self) -> None:
        for cand, pid in reversed(orphans(self.path)):  # newest first
            if self._file is None and self.signature and self._adopt(cand, pid):
                continue
            with contextlib.suppress(OSError):
                cand.unlink()
        if self._file is None:
            try:
                self._file = h5py.File(self.tmp, "w", locking=False)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    self.tmp.unlink()
                raise WriteError(f"cannot create {self.tmp}: {_reason(exc)}") from None
            with self._writing():
                if self.signature:
                    self._file.attrs[_SIG_ATTR] = self.signature
        self._dev = _device(self.tmp)
        self._base = _allocated(self.tmp)
        with self._writing():
            self._file.attrs[_OWNER_ATTR] = f"{os.getpid()}@{socket.gethostname()}"
            self._file.attrs.update({k: str(v) for k, v in self._attrs.items()})

    def _adopt(self, cand: Path, pid: int | None) -> bool:
        """Continue the partial file ``cand`` of a dead run when it has this writer's signature."""
        try:
            with h5py.File(cand, "r", locking=False) as f:
                if f.attrs.get(_SIG_ATTR) != self.signature:
                    return False
                done = set(json.loads(f.attrs.get(_DONE_ATTR, "[]")))
        except (OSError, ValueError):
            logger.info("discarding unreadable partial file %s", cand)
            return False
        try:
            if cand != self.tmp:
                os.replace(cand, self.tmp)
            self._file = h5py.File(self.tmp, "r+", locking=False)
        except OSError:
            logger.info("discarding unreadable partial file %s", cand)
            return False
        self.done_blocks = done
        self.resumed = True
        owner = "" if pid in (None, os.getpid()) else f" of process {pid}, which is gone"
        logger.info("resuming %s: %d block(s) already written%s", self.path.name, len(done), owner)
        return True

    def __exit__(self, exc_type, exc, tb) -> None:
        f = self._file
        self._file = None
        with _writers_lock:
            _open_writers.discard(self)
        try:
            if f is None:
                return
            if exc_type is None:
                lost = _lost_writes(self.tmp)
                if lost:
                    self._discard(f)
                    raise WriteError(f"cannot write {self.path}: {lost}")
                try:
                    with self._writing():
                        for key in (_SIG_ATTR, _DONE_ATTR, _OWNER_ATTR):
                            if key in f.attrs:
                                del f.attrs[key]
                        f.close()
                        replace_file(self.tmp, self.path)
                except WriteError:
                    self._discard(f)
                    raise
                logger.debug("wrote %s", self.path)
                return
            # keep a resumable partial file, unless writing itself failed (it may be damaged, and a
            # full disk needs the space back)
            if not self.signature or self._broken or isinstance(exc, (OSError, RuntimeError, WriteError)):
                self._discard(f)
            else:
                with contextlib.suppress(Exception):
                    f.close()
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.__exit__(None, None, None)

    def _writing(self):
        return _writing(self.tmp, self._release_space)

    def _release_space(self) -> None:
        """A write failed: the partial file is lost.  HDF5 still holds data it could not write
        (dirty chunks, metadata) and will try again when the datasets and the file are closed;
        on a full disk that fails again and leaves the library in a state that crashes the
        interpreter at exit.  So the file's descriptor is pointed at an anonymous in-memory file
        (Linux ``memfd``; elsewhere the file is truncated to give its blocks back): the closes
        that follow complete, and what they write is thrown away."""
        self._broken = True
        f = self._file
        if f is None:
            return
        if hasattr(os, "memfd_create"):
            _divert(f)
        else:  # give the blocks back at least
            with contextlib.suppress(Exception):
                os.ftruncate(f.id.get_vfd_handle(), 0)
        with contextlib.suppress(OSError):
            self.tmp.unlink()

    def _outstanding(self) -> int:
        """Bytes this writer's datasets may still add to its file."""
        return max(0, self._base + self._reserved - _allocated(self.tmp))

    def _reserve(self, nbytes: int, name: str) -> None:
        """Refuse to start a dataset the file system cannot hold, counting what the other open
        writers of this process still need there (HDF5 allocates chunks lazily, and a write that
        fails half-way is worse than a refusal up front)."""
        self._reserved += nbytes + _MARGIN_PER_DATASET
        try:
            free = shutil.disk_usage(self.tmp.parent).free
        except OSError:
            return
        with _writers_lock:
            others = [w for w in _open_writers if w is not self and w._dev == self._dev]
        need = self._outstanding() + sum(w._outstanding() for w in others)
        if need > free:
            raise WriteError(f"not enough space for {self.path} (dataset {name!r}): about "
                             f"{_size_text(need)} needed, {_size_text(free)} free in {self.tmp.parent}")

    def _discard(self, f: h5py.File) -> None:
        """Close and delete the partial file (its blocks released first: see :meth:`_release_space`)."""
        self._file = f
        self._release_space()
        self._file = None
        with contextlib.suppress(Exception):
            f.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()

    @property
    def file(self) -> h5py.File:
        """The open temporary file (inside the ``with`` block only)."""
        if self._file is None:
            raise RuntimeError("H5Writer used outside its context")
        return self._file

    # -------------------------------------------------------------- datasets
    def create(self, name: str, shape: tuple[int, ...] | None = None, dtype: Any = np.float32,
               data: np.ndarray | None = None, chunks: tuple[int, ...] | bool | None = None,
               compression: str | None = None, attrs: Mapping[str, Any] | None = None,
               fillvalue: Any = None) -> h5py.Dataset:
        """Create a dataset (or return it when resuming and it already has this shape)."""
        f = self.file
        if data is not None:
            data = np.asarray(data)
            shape, dtype = data.shape, data.dtype
        if name in f:
            ds = f[name]
            if ds.shape == tuple(shape or ()):
                if data is None:  # resuming: the chunks not written yet still need their space
                    self._reserve(max(0, ds.size * ds.dtype.itemsize - ds.id.get_storage_size()), name)
                else:
                    with self._writing():
                        ds[...] = data
                return ds
            with self._writing():
                del f[name]
        if chunks is None and shape is not None and len(shape) >= 2:
            chunks = default_chunks(tuple(shape), np.dtype(dtype).itemsize)
        if len(shape or ()) < 2:
            chunks = None
        if shape is not None:
            self._reserve(int(np.prod(shape)) * np.dtype(dtype).itemsize, name)
        with self._writing():
            ds = f.create_dataset(name, shape=shape, dtype=dtype, data=data, chunks=chunks,
                                  compression=compression, fillvalue=fillvalue)
            ds.attrs["MODIFICATION_TIME"] = str(time.time())
            for key, value in (attrs or {}).items():
                ds.attrs[key] = value
            ds.flush()
        return ds

    def write(self, name: str, data: np.ndarray, block: Block | None = None,
              layers: slice | int | np.ndarray | None = None) -> None:
        """Write ``data`` into dataset ``name`` at ``block`` (2-D window) and optional ``layers``.

        The dataset is flushed before returning, so a failed write (disk full) is reported here,
        not later from a destructor.  Unfiltered chunks are written without the chunk cache
        (:func:`direct`): through it a block that covers part of a chunk had HDF5 read the chunk
        back, patch it and write it whole at every block (61 dates of 1000², blocks of 48 rows in
        chunks of 262: 0.35–0.69 s through the cache, 0.14–0.18 s without)."""
        ds = direct(self.file, name)
        with self._writing():
            if block is None:
                ds[...] = data
            elif ds.ndim == 2:
                ds[block.rows, block.cols] = data
            elif layers is None:
                ds[:, block.rows, block.cols] = data
            else:
                ds[layers, block.rows, block.cols] = data
            ds.flush()

    def write_chunks(self, name: str, encoded: Sequence[EncodedChunk], block: Block) -> None:
        """Store chunks encoded elsewhere (:mod:`sbts.core.io.chunk_codec`) for ``block`` of the 3-D
        dataset ``name``: the bytes go in as they are, the filter already ran."""
        ds = self.file[name]
        with self._writing():
            for chunk in encoded:
                offset = (chunk.offset[0], block.row_start + chunk.offset[1], block.col_start + chunk.offset[2])
                ds.id.write_direct_chunk(offset, chunk.data, chunk.filter_mask)
            ds.flush()

    def flush(self) -> None:
        """Flush what was written directly into ``w.file`` (a failed write is reported here)."""
        with self._writing():
            self.file.flush()

    def set_attrs(self, **attrs: Any) -> None:
        """Set root attributes (values written as strings)."""
        with self._writing():
            self.file.attrs.update({k: str(v) for k, v in attrs.items()})

    # -------------------------------------------------------------- resume
    def is_done(self, key: Block | str) -> bool:
        """Whether block ``key`` was written by this writer or the run it resumes."""
        return str(key) in self.done_blocks

    def mark_done(self, key: Block | str) -> None:
        """Record a finished block (flushed to disk so a kill after this keeps it)."""
        self.done_blocks.add(str(key))
        if self.signature:
            with self._writing():
                self.file.attrs[_DONE_ATTR] = json.dumps(sorted(self.done_blocks))
                self.file.flush()


def write_h5(path: str | os.PathLike, metadata: Metadata | Mapping[str, str],
             datasets: Mapping[str, np.ndarray], dataset_attrs: Mapping[str, Mapping[str, Any]] | None = None,
             compression: str | None = None) -> Path:
    """Write small products (maps, masks) in one go, atomically."""
    with H5Writer(path, metadata) as w:
        for name, data in datasets.items():
            w.create(name, data=np.asarray(data), attrs=(dataset_attrs or {}).get(name), compression=compression
                     if np.asarray(data).ndim >= 2 else None)
    return Path(path)


def encode_dates(dates: Iterable[str]) -> np.ndarray:
    """Dates as MintPy stores them: fixed-length ASCII (``S8``).

    Parameters
    ----------
    dates : iterable of str
        ``YYYYMMDD``.

    Returns
    -------
    numpy.ndarray
        dtype ``S8``.
    """
    return np.array([d.encode("ascii") for d in dates], dtype="S8")


def decode_strings(values: np.ndarray) -> list[str]:
    return [v.decode("ascii") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]
