"""Read-ahead hints name exactly the stored bytes of a block (checked by reading those bytes)."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

from sbts.core.io.blocks import Block
from sbts.core.io.readahead import ReadAhead


def _raw(path, ranges):
    with open(path, "rb") as f:
        out = []
        for offset, length in ranges:
            f.seek(offset)
            out.append(f.read(length))
        return out


@pytest.mark.parametrize("chunks", [None, (1, 4, 10), (2, 4, 6)])
def test_ranges_hold_the_block(tmp_path, chunks):
    """Uncompressed data: the bytes at the hinted ranges are the block's values (contiguous) or
    the chunks that contain them (chunked), for the requested layers only."""
    data = np.arange(5 * 12 * 10, dtype=np.float32).reshape(5, 12, 10)
    path = tmp_path / "stack.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("unwrapPhase", data=data, chunks=chunks)
        f.create_dataset("small", data=np.zeros(3))
    block = Block(5, 9, 0, 10) if chunks != (2, 4, 6) else Block(5, 9, 2, 8)
    layers = [1, 3]
    with ReadAhead(path, ["unwrapPhase", "small", "absent"], layers) as ahead:
        ranges = ahead.ranges(block)
        ahead.advise(block)  # must not raise
    values = np.concatenate([np.frombuffer(b, dtype=np.float32) for b in _raw(path, ranges)])
    if chunks is None:
        expected = np.concatenate([data[k, 5:9, :].ravel() for k in layers])
        np.testing.assert_array_equal(values, expected)
    else:
        wanted = np.concatenate([data[k, block.rows, block.cols].ravel() for k in layers])
        assert np.isin(wanted, values).all()  # every needed value is in a hinted chunk
        not_wanted = np.setdiff1d(data[[0, 2, 4]].ravel(), data[1:4:2].ravel())
        if chunks[0] == 1:
            assert not np.isin(not_wanted, values).any()  # other layers are not read ahead


def test_no_hints_without_file_or_allocation(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("unwrapPhase", shape=(3, 8, 8), dtype=np.float32, chunks=(1, 8, 8))  # nothing written
    with ReadAhead(path, ["unwrapPhase"], [0, 1]) as ahead:
        assert ahead.ranges(Block(0, 8, 0, 8)) == []
    with ReadAhead(tmp_path / "missing.h5", ["unwrapPhase"], [0]) as ahead:
        assert ahead.ranges(Block(0, 1, 0, 1)) == []
        ahead.advise(Block(0, 1, 0, 1))


_HEAP_CHECK = """
import resource
import numpy as np
from sbts.core.compute.heap import free_heap_bytes, keep_freed_memory, release_spare_memory
assert keep_freed_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(64 << 20, np.uint8)  # 64 MiB, above glibc's largest mmap threshold
del a
before = faults()
b = np.ones(64 << 20, np.uint8)  # the same memory again: no page faults
reused = faults() - before
del b
free = free_heap_bytes()
kept = release_spare_memory(free + 1)  # within the bound: kept
released = release_spare_memory(1 << 20)  # beyond it: handed back
print(reused, free, kept, released, free_heap_bytes())
"""


@pytest.mark.skipif(not os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"), reason="glibc only")
def test_freed_memory_is_reused_and_released_beyond_the_bound():
    """In a process of its own (the setting is process-wide): a freed 64 MiB array's memory serves
    the next one without page faults (glibc's default maps it anew: 16k faults of 4 KiB, or 32 of
    2 MiB with transparent huge pages), and the spare memory is handed back only beyond the bound."""
    out = subprocess.run([sys.executable, "-c", _HEAP_CHECK], capture_output=True, text=True, check=True).stdout
    reused, free, kept, released, free_after = out.split()
    assert int(reused) < 16  # a handful of faults from the interpreter's own small allocations
    assert int(free) >= 64 << 20
    assert kept == "False" and released == "True"
    assert int(free_after) < int(free)
