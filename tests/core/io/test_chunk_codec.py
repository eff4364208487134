"""Chunks compressed away from their file (core/io/chunk_codec.py) are the bytes HDF5's own filter
stores: compared chunk by chunk with a dataset written the ordinary way, edge chunks included."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.chunk_codec import ChunkCodec, chunk_aligned, pack_chunks, unpack_chunks
from sbts.core.io.h5 import H5Writer
from sbts.core.model.metadata import Grid, Metadata


def _chunk_bytes(path, name="x"):
    with h5py.File(path, "r") as f:
        ds = f[name]
        out = {}
        for offset in np.ndindex(*(-(-s // c) for s, c in zip(ds.shape, ds.chunks))):
            start = tuple(o * c for o, c in zip(offset, ds.chunks))
            out[start] = ds.id.read_direct_chunk(start)
        return out, ds[()]


@pytest.mark.parametrize("compression", ["lzf", "gzip", None])
@pytest.mark.parametrize("budget_rows", [600, 64, 16])  # whole strips, strips of chunk rows, split columns
def test_encoded_chunks_equal_the_filters_own(tmp_path, compression, budget_rows):
    rng = np.random.default_rng(3)
    shape = (5, 150, 130)  # not a multiple of the chunk in either direction: padded edge chunks
    data = rng.normal(size=shape).astype(np.float32)
    data[:, 40:80, 10:50] = 0  # compressible runs
    data[2, :3, :3] = np.nan
    chunks = (1, 32, 48)
    meta = Metadata(grid=Grid(*shape[1:]))
    with H5Writer(tmp_path / "plain.h5", meta) as w:
        w.create("x", shape=shape, dtype=np.float32, chunks=chunks, compression=compression)
        w.write("x", data)
    # a budget of ~budget_rows full rows of 5 float32 layers × 3 copies
    blocks = plan_blocks(shape[1:], 4 * 5 * 3, budget_rows * shape[2] * 60 / 1024**3, chunks[1:], min_rows=chunks[1])
    assert chunk_aligned(blocks, *chunks[1:])
    if budget_rows == 16:
        assert any(b.col_stop - b.col_start < shape[2] for b in blocks)  # columns split on the grid
    codec = ChunkCodec(chunks, compression)
    with H5Writer(tmp_path / "direct.h5", meta) as w:
        w.create("x", shape=shape, dtype=np.float32, chunks=chunks, compression=compression)
        for block in blocks:
            w.write_chunks("x", codec.encode(data[:, block.rows, block.cols]), block)
    # packed into one array (what a pool worker returns through shared memory) and unpacked as views
    with H5Writer(tmp_path / "packed.h5", meta) as w:
        w.create("x", shape=shape, dtype=np.float32, chunks=chunks, compression=compression)
        for block in blocks:
            packed = pack_chunks(codec.encode(data[:, block.rows, block.cols]))
            assert isinstance(packed[3], np.ndarray) and packed[3].dtype == np.uint8
            w.write_chunks("x", unpack_chunks(packed), block)
    plain, plain_data = _chunk_bytes(tmp_path / "plain.h5")
    for other in ("direct.h5", "packed.h5"):
        direct, direct_data = _chunk_bytes(tmp_path / other)
        assert plain.keys() == direct.keys()
        for key in plain:
            assert plain[key] == direct[key], (other, key)
        np.testing.assert_array_equal(direct_data, data)


def test_chunk_aligned():
    assert chunk_aligned([Block(0, 32, 0, 100), Block(32, 50, 0, 100)], 32, 48)
    assert not chunk_aligned([Block(0, 20, 0, 100), Block(20, 50, 0, 100)], 32, 48)  # a start off the grid
    assert not chunk_aligned([Block(0, 50, 0, 40), Block(0, 50, 40, 100)], 32, 48)
    assert chunk_aligned([], 32, 48)
