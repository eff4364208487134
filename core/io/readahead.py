"""Ask the kernel to start reading the bytes of upcoming blocks (``posix_fadvise(WILLNEED)``).

Pool workers read a block, then solve it; on a cold disk two workers end up waiting for the
disk at the same moments, with both cores idle.  While they work, the main process tells the
kernel which byte ranges of the stack the next blocks will need, so that their reads are served
from the page cache.  No data moves through this process: the hints name the HDF5 chunks (or
rows of a contiguous dataset) of the block's layers.

Hints are advice: anything unexpected (no ``posix_fadvise``, an unallocated chunk, a layout
h5py cannot describe) just means no hint, never an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from sbts.core.io.blocks import Block

logger = logging.getLogger(__name__)


class ReadAhead:
    """Byte-range hints for the layers ``layers`` of ``datasets`` of one HDF5 file."""

    def __init__(self, path: str | os.PathLike, datasets: Sequence[str], layers: Sequence[int]):
        self.path = Path(path)
        self.layers = np.asarray(layers, dtype=np.int64)
        self._file: h5py.File | None = None
        self._fd: int | None = None
        if not hasattr(os, "posix_fadvise"):
            return
        try:
            self._file = h5py.File(self.path, "r")
            self._datasets = [self._file[name] for name in datasets if name in self._file]
            self._fd = os.open(self.path, os.O_RDONLY)
        except (OSError, KeyError) as exc:
            logger.debug("no read-ahead for %s: %s", self.path, exc)
            self.close()

    def ranges(self, block: Block) -> list[tuple[int, int]]:
        """(offset, length) in the file of the stored data a read of ``block`` needs."""
        out: list[tuple[int, int]] = []
        if self._file is None:
            return out
        for ds in self._datasets:
            try:
                out.extend(_dataset_ranges(ds, self.layers, block))
            except (OSError, ValueError, TypeError, RuntimeError) as exc:
                logger.debug("no read-ahead for %s/%s: %s", self.path, ds.name, exc)
        return out

    def advise(self, block: Block) -> None:
        """Start reading ``block``'s bytes into the page cache (returns without waiting)."""
        if self._fd is None:
            return
        for offset, length in self.ranges(block):
            try:
                os.posix_fadvise(self._fd, offset, length, os.POSIX_FADV_WILLNEED)
            except OSError as exc:
                logger.debug("read-ahead hint refused for %s: %s", self.path, exc)
                return

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _dataset_ranges(ds: h5py.Dataset, layers: np.ndarray, block: Block) -> list[tuple[int, int]]:
    if ds.ndim != 3 or ds.is_virtual:  # a stack made of parts: its bytes are in other files
        return []
    _, length, width = ds.shape
    item = ds.dtype.itemsize
    if ds.chunks is None:  # contiguous: each layer's rows are one run of bytes
        base = ds.id.get_offset()
        if base is None:  # not allocated yet
            return []
        row_bytes = width * item
        first = block.row_start * row_bytes + block.col_start * item
        size = (block.row_stop - block.row_start - 1) * row_bytes + (block.col_stop - block.col_start) * item
        return [(int(base + layer * length * row_bytes + first), int(size)) for layer in layers]
    cdepth, crows, ccols = ds.chunks
    out = []
    for z0 in dict.fromkeys(int(layer) - int(layer) % cdepth for layer in layers):
        for r0 in range(block.row_start - block.row_start % crows, block.row_stop, crows):
            for c0 in range(block.col_start - block.col_start % ccols, block.col_stop, ccols):
                info = ds.id.get_chunk_info_by_coord((z0, r0, c0))
                if info.byte_offset is not None and info.size:
                    out.append((int(info.byte_offset), int(info.size)))
    return out
