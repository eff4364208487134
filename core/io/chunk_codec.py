"""Compress HDF5 chunks away from the file they go into, so that workers share the compression.

HDF5 compresses a chunk in the process that writes it, and h5py serialises every call behind one
lock: a compressed dataset (HDF-EOS5's lzf time series) is written by one core however many
workers a run has.  Instead, a worker runs the dataset's own filter pipeline on its block (in an
in-memory HDF5 file with the same chunk shape, filter and fill value) and hands back the encoded
chunks; the writer stores them with ``write_direct_chunk``.  The bytes stored are the ones the
filter would have produced in the writer (same library, same filter, same padding of edge chunks),
so the file reads back identically whichever way it was written.

This only works for blocks whose corners sit on the chunk grid of the target dataset:
:func:`chunk_aligned` says whether they do.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import h5py
import numpy as np

from sbts.core.io.blocks import Block

__all__ = ["EncodedChunk", "ChunkCodec", "chunk_aligned", "pack_chunks", "unpack_chunks"]


@dataclass(frozen=True)
class EncodedChunk:
    """One chunk as HDF5 stores it.

    Parameters
    ----------
    offset : tuple of int
        Its first (layer, row, column) within the block it was encoded from.
    filter_mask : int
        HDF5's mask of the filters skipped (lzf leaves a chunk it cannot shrink as it is).
    data : bytes or memoryview
        The stored bytes.
    """

    offset: tuple[int, ...]
    filter_mask: int
    data: bytes | memoryview


@dataclass(frozen=True)
class ChunkCodec:
    """The storage of a 3-D (layer, row, column) dataset, picklable for the workers of
    :func:`~sbts.core.compute.scheduling.run_blocks`.

    Parameters
    ----------
    chunks : tuple of int
        The target dataset's chunk shape.
    compression, compression_opts
        Its filter, as ``h5py.Group.create_dataset`` takes it (``"lzf"``, ``"gzip"`` and a level, None).
    fillvalue : float
        Its fill value (the padding of edge chunks).
    """

    chunks: tuple[int, int, int]
    compression: str | None = None
    compression_opts: int | None = None
    fillvalue: float = 0.0

    def encode(self, data: np.ndarray) -> list[EncodedChunk]:
        """The encoded chunks of ``data``, offsets relative to ``data[0, 0, 0]``.

        Parameters
        ----------
        data : numpy.ndarray
            (layers, rows, cols) of a block whose rows and columns start on the target's chunk grid
            (:func:`chunk_aligned`).

        Returns
        -------
        list of EncodedChunk
            Row-major over the block's chunk grid.
        """
        shape, chunks = data.shape, self.chunks
        name = f"sbts-codec-{uuid.uuid4().hex}"
        with h5py.File(name, "w", driver="core", backing_store=False) as f:
            # a max shape of whole chunks lets a block at the image edge keep the target's chunk shape,
            # so its edge chunks are padded (with the fill value) as the target's are
            ds = f.create_dataset("x", shape=shape, dtype=data.dtype, chunks=chunks, maxshape=shape_max(shape, chunks),
                                  compression=self.compression, compression_opts=self.compression_opts,
                                  fillvalue=self.fillvalue)
            ds[...] = data
            out = []
            for offset in itertools.product(*(range(0, s, c) for s, c in zip(shape, chunks))):
                mask, raw = ds.id.read_direct_chunk(offset)
                out.append(EncodedChunk(tuple(int(o) for o in offset), int(mask), bytes(raw)))
        return out


def pack_chunks(chunks: Sequence[EncodedChunk]) -> tuple[list, list, np.ndarray, np.ndarray]:
    """A block's chunks as ``(offsets, filter masks, ends, payload)``, their bytes in one uint8 array.

    A pool worker returns arrays through shared memory (:mod:`sbts.core.compute.shared_results`);
    a list of ``bytes`` would be pickled through the pool's pipe instead.

    Parameters
    ----------
    chunks : sequence of EncodedChunk

    Returns
    -------
    tuple
        The offsets, the filter masks, the end of each chunk in the payload, the payload.
    """
    sizes = [len(c.data) for c in chunks]
    payload = np.empty(sum(sizes), np.uint8)
    end = 0
    for c, size in zip(chunks, sizes):
        payload[end:end + size] = np.frombuffer(c.data, np.uint8)
        end += size
    return [c.offset for c in chunks], [c.filter_mask for c in chunks], np.cumsum(sizes, dtype=np.int64), payload


def unpack_chunks(packed: tuple[list, list, np.ndarray, np.ndarray]) -> list[EncodedChunk]:
    """The chunks of :func:`pack_chunks`, their data views of its payload (no copy).

    Parameters
    ----------
    packed : tuple
        What :func:`pack_chunks` returned.

    Returns
    -------
    list of EncodedChunk
    """
    offsets, masks, ends, payload = packed
    view = np.ascontiguousarray(payload, np.uint8).data.cast("B")
    stops = np.asarray(ends).tolist()
    return [EncodedChunk(tuple(int(v) for v in o), int(m), view[s:e])
            for o, m, s, e in zip(offsets, masks, [0, *stops[:-1]], stops)]


def shape_max(shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[int, ...]:
    """A max shape of whole chunks: HDF5 then accepts chunks larger than a small block's extent."""
    return tuple(-(-s // c) * c for s, c in zip(shape, chunks))


def chunk_aligned(blocks: Sequence[Block], chunk_rows: int, chunk_cols: int) -> bool:
    """Whether every block starts on the chunk grid and ends on it or at the image edge.

    Parameters
    ----------
    blocks : sequence of Block
        Tiling an image.
    chunk_rows, chunk_cols : int
        The chunk grid.

    Returns
    -------
    bool
    """
    if not blocks:
        return True
    length = max(b.row_stop for b in blocks)
    width = max(b.col_stop for b in blocks)
    for b in blocks:
        if b.row_start % chunk_rows or b.col_start % chunk_cols:
            return False
        if (b.row_stop % chunk_rows and b.row_stop != length) or (b.col_stop % chunk_cols and b.col_stop != width):
            return False
    return True
