"""Block reads without HDF5's chunk cache (sbts.core.io.h5.direct): the same values, the cache off
only where chunks are stored unfiltered, and what a name that is no dataset does unchanged."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sbts.core.io.h5 import direct


@pytest.fixture
def stack(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.normal(size=(7, 50, 40)).astype(np.float32)
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("plain", data=data, chunks=(1, 20, 40))
        f.create_dataset("packed", data=data, chunks=(1, 20, 40), compression="lzf")
        f.create_dataset("summed", data=data, chunks=(1, 20, 40), fletcher32=True)  # a filter, no compression
        f.create_dataset("contiguous", data=data)
        f.create_group("grp")
    return path, data


def cache_bytes(ds: h5py.Dataset) -> int:
    return ds.id.get_access_plist().get_chunk_cache()[1]


def test_unfiltered_chunks_are_read_without_a_cache_and_give_the_same_values(stack):
    path, data = stack
    with h5py.File(path, "r") as f:
        ds = direct(f, "plain")
        assert cache_bytes(ds) == 0
        assert np.array_equal(ds[2:5, 13:37, 5:30], data[2:5, 13:37, 5:30])  # across chunk rows
        out = np.empty((7, 9, 40), np.float32)
        ds.read_direct(out, np.s_[:, 31:40, :])
        assert np.array_equal(out, data[:, 31:40, :])
        assert np.array_equal(direct(f, "contiguous")[1, 4:6], data[1, 4:6])


def test_compressed_chunks_keep_the_files_cache(stack):
    path, data = stack
    with h5py.File(path, "r") as f:
        ds = direct(f, "packed")
        assert cache_bytes(ds) == cache_bytes(f["plain"]) > 0  # h5py's default, 1 MiB
        assert np.array_equal(ds[3, 7:29], data[3, 7:29])
        assert cache_bytes(direct(f, "summed")) > 0


def test_a_name_that_is_no_dataset_behaves_as_indexing_the_file(stack):
    path, _ = stack
    with h5py.File(path, "r") as f:
        assert isinstance(direct(f, "grp"), h5py.Group)
        with pytest.raises(KeyError):
            direct(f, "missing")


def test_writer_blocks_across_chunks_write_every_value(tmp_path):
    """H5Writer.write (no chunk cache for unfiltered chunks): blocks of rows that cut through chunks,
    in any order, leave exactly the data; a compressed dataset written the same way too."""
    from sbts.core.io.blocks import Block
    from sbts.core.io.h5 import H5Writer

    rng = np.random.default_rng(5)
    data = rng.normal(size=(5, 70, 30)).astype(np.float32)
    blocks = [Block(r, min(70, r + 9), 0, 30) for r in range(0, 70, 9)]
    with H5Writer(tmp_path / "o.h5", {"FILE_TYPE": "timeseries"}) as w:
        for name, compression in (("plain", None), ("packed", "lzf")):
            w.create(name, shape=data.shape, dtype=np.float32, chunks=(1, 25, 30), compression=compression)
            for block in blocks[::-1]:
                w.write(name, data[:, block.rows, block.cols], block)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert np.array_equal(f["plain"][()], data)
        assert np.array_equal(f["packed"][()], data)
