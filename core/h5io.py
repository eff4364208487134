"""HDF5 reading and crash-safe writing.

Writes go to ``<name>.part`` beside the final file and are renamed on success, so a file under its
final name is always complete.  A writer created with a ``signature`` (a hash of its inputs and
options) records finished blocks in the partial file: an interrupted run re-run with the same
signature reopens the ``.part`` file and skips the blocks already written.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .blocks import Block
from .errors import InputError, SbtsError
from .metadata import Metadata

logger = logging.getLogger(__name__)

PART_SUFFIX = ".part"
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
    """Open an HDF5 file, turning the usual failures into messages that name the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():  # a folder, FIFO or device: h5py would fail obscurely, or block on a FIFO
        from .safeio import require_regular

        require_regular(path, "HDF5 file")
    try:
        return h5py.File(path, mode)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read as HDF5 ({exc}); is it complete and not in use?") from None


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
    path = Path(path)
    return path.with_name(path.name + PART_SUFFIX)


class WriteError(SbtsError):
    """Writing an output failed (disk full, folder read-only, file system error)."""


@contextlib.contextmanager
def _writing(path: Path):
    """Turn h5py's low-level write failures (RuntimeError or OSError) into a :class:`WriteError`."""
    try:
        yield
    except WriteError:
        raise
    except (OSError, RuntimeError) as exc:
        text = str(exc)
        hint = "the disk is full" if ("space" in text.lower() or getattr(exc, "errno", None) == 28) else \
            "is the disk full or the folder read-only?"
        raise WriteError(f"cannot write {path}: {text.splitlines()[0] if text else type(exc).__name__} ({hint})") from None


class H5Writer:
    """Write one HDF5 product atomically, dataset by dataset and block by block.

    Use as a context manager: on normal exit the ``.part`` file is renamed over ``path``; on an
    exception it is kept only if it is resumable (has a signature), otherwise deleted.
    """

    def __init__(self, path: str | os.PathLike, metadata: Metadata | Mapping[str, str],
                 signature: str | None = None) -> None:
        self.path = Path(path)
        self.tmp = part_path(self.path)
        self.signature = signature
        self.done_blocks: set[str] = set()
        self._attrs = metadata.to_attrs() if isinstance(metadata, Metadata) else dict(metadata)
        self._file: h5py.File | None = None
        self.resumed = False

    # -------------------------------------------------------------- context
    def __enter__(self) -> H5Writer:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.signature and self.tmp.exists():
            try:
                f = h5py.File(self.tmp, "r+")
                if f.attrs.get(_SIG_ATTR) == self.signature:
                    self._file = f
                    self.done_blocks = set(json.loads(f.attrs.get(_DONE_ATTR, "[]")))
                    self.resumed = True
                    logger.info("resuming %s: %d block(s) already written", self.path.name, len(self.done_blocks))
                else:
                    f.close()
            except OSError:
                logger.info("discarding unreadable partial file %s", self.tmp)
        if self._file is None:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()
            try:
                self._file = h5py.File(self.tmp, "w")
            except OSError as exc:
                raise SbtsError(f"cannot create {self.tmp}: {exc}") from None
            if self.signature:
                self._file.attrs[_SIG_ATTR] = self.signature
        with _writing(self.tmp):
            self._file.attrs.update({k: str(v) for k, v in self._attrs.items()})
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        f = self._file
        self._file = None
        if f is None:
            return
        if exc_type is None:
            try:
                with _writing(self.tmp):
                    for key in (_SIG_ATTR, _DONE_ATTR):
                        if key in f.attrs:
                            del f.attrs[key]
                    f.close()
                    os.replace(self.tmp, self.path)
            except WriteError:
                self._discard(f)
                raise
            logger.debug("wrote %s", self.path)
            return
        # keep a resumable partial file, unless writing itself failed (it may be damaged, and a
        # full disk needs the space back)
        if not self.signature or isinstance(exc, (OSError, WriteError)):
            self._discard(f)
        else:
            with contextlib.suppress(Exception):
                f.close()

    def _reserve(self, nbytes: int, name: str) -> None:
        """Refuse to start a dataset the file system cannot hold (HDF5 allocates chunks lazily, and a
        write that fails half-way leaves h5py unable to close the file cleanly)."""
        self._reserved = getattr(self, "_reserved", 0) + nbytes
        try:
            free = shutil.disk_usage(self.tmp.parent).free
        except OSError:
            return
        if self._reserved > free:
            raise WriteError(f"not enough space for {self.path} (dataset {name!r}): about "
                             f"{self._reserved / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free in {self.tmp.parent}")

    def _discard(self, f: h5py.File) -> None:
        with contextlib.suppress(Exception):
            f.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()

    @property
    def file(self) -> h5py.File:
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
            if ds.shape == tuple(shape):
                if data is not None:
                    ds[...] = data
                return ds
            del f[name]
        if chunks is None and shape is not None and len(shape) >= 2:
            chunks = default_chunks(tuple(shape), np.dtype(dtype).itemsize)
        if len(shape or ()) < 2:
            chunks = None
        if data is None and shape is not None:
            self._reserve(int(np.prod(shape)) * np.dtype(dtype).itemsize, name)
        with _writing(self.tmp):
            ds = f.create_dataset(name, shape=shape, dtype=dtype, data=data, chunks=chunks,
                                  compression=compression, fillvalue=fillvalue)
            ds.attrs["MODIFICATION_TIME"] = str(time.time())
            for key, value in (attrs or {}).items():
                ds.attrs[key] = value
        return ds

    def write(self, name: str, data: np.ndarray, block: Block | None = None,
              layers: slice | int | np.ndarray | None = None) -> None:
        """Write ``data`` into dataset ``name`` at ``block`` (2-D window) and optional ``layers``."""
        ds = self.file[name]
        with _writing(self.tmp):
            if block is None:
                ds[...] = data
            elif ds.ndim == 2:
                ds[block.rows, block.cols] = data
            elif layers is None:
                ds[:, block.rows, block.cols] = data
            else:
                ds[layers, block.rows, block.cols] = data

    def set_attrs(self, **attrs: Any) -> None:
        with _writing(self.tmp):
            self.file.attrs.update({k: str(v) for k, v in attrs.items()})

    # -------------------------------------------------------------- resume
    def is_done(self, key: Block | str) -> bool:
        return str(key) in self.done_blocks

    def mark_done(self, key: Block | str) -> None:
        """Record a finished block (flushed to disk so a kill after this keeps it)."""
        self.done_blocks.add(str(key))
        if self.signature:
            with _writing(self.tmp):
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
    return np.array([d.encode("ascii") for d in dates], dtype="S8")


def decode_strings(values: np.ndarray) -> list[str]:
    return [v.decode("ascii") if isinstance(v, bytes) else str(v) for v in np.asarray(values).ravel()]
