"""Large results of pool workers come back through /dev/shm (sbts.core.compute.shared_results).

The arrays must arrive equal, writable, in the nesting they were returned in, with no file left
behind: after a normal pool, after an error in a block, and (a later pool's sweep) after a parent
that was killed.  Where /dev/shm cannot take a file, the array goes through the pipe as before.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sbts.core.compute import shared_results
from sbts.core.compute.scheduling import run_blocks
from sbts.core.io.blocks import Block

pytestmark = pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="no /dev/shm")
BLOCKS = [Block(r, r + 2, 0, 4) for r in range(0, 12, 2)]


def _ours() -> list[str]:
    return sorted(p.name for p in Path("/dev/shm").iterdir() if p.name.startswith(f"sbts-{os.getpid()}-"))


def read_index(block: Block) -> int:
    return block.row_start


def big_result(block: Block, start: int) -> tuple:
    """A time-series block (3 MB, non-contiguous view), a small map, a dict and the worker's pid."""
    series = np.arange(start, start + 3 * 512 * 512, dtype=np.float32).reshape(3, 512, 512)
    return (series[:, ::1, :], np.full((2, 2), start, np.int16), {"mask": series[0] > start + 10, "n": start},
            [series.astype(np.float64)], os.getpid())


def fail_on_third(block: Block, start: int) -> tuple:
    if block.row_start == 4:
        raise ValueError("bad block")
    return big_result(block, start)


def test_round_trip_in_the_pool_equal_writable_and_no_file_left():
    got = list(run_blocks(BLOCKS, read_index, big_result, workers=2))
    assert [b for b, _ in got] == BLOCKS
    for block, (series, small, extra, (wide,), pid) in got:
        expected = big_result(block, block.row_start)
        assert pid != os.getpid()
        np.testing.assert_array_equal(series, expected[0])
        np.testing.assert_array_equal(wide, expected[3][0])
        assert series.dtype == np.float32 and wide.dtype == np.float64 and small.dtype == np.int16
        assert extra["n"] == block.row_start and extra["mask"].sum() == expected[2]["mask"].sum()
        series += 1  # writable: steps shift blocks in place
        assert isinstance(series.base, __import__("mmap").mmap)  # it came through shared memory
    assert _ours() == []


def test_an_error_leaves_no_file():
    with pytest.raises(ValueError, match="bad block"):
        list(run_blocks(BLOCKS, read_index, fail_on_third, workers=2))
    # the results after the failed block were in flight, or still being computed: removed when the
    # pool's last tasks end
    deadline = time.monotonic() + 20
    while _ours() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ours() == []


def test_too_full_goes_through_the_pipe(monkeypatch):
    shared_results.set_pool(os.getpid(), "abcd0123")
    try:
        monkeypatch.setattr(shared_results, "RESERVE_BYTES", 1 << 60)
        a = np.ones((1024, 1024), np.float32)
        assert shared_results.to_shared((a,))[0] is a
        monkeypatch.setattr(shared_results, "RESERVE_BYTES", 0)
        (shared,) = shared_results.to_shared((a,))
        assert isinstance(shared, shared_results.SharedArray) and Path(shared.path).exists()
        back = shared_results.from_shared(shared)
        assert not Path(shared.path).exists()  # unlinked as soon as it is mapped
        np.testing.assert_array_equal(back, a)
        small = np.ones(10)
        assert shared_results.to_shared(small) is small
    finally:
        shared_results._pool = None


def test_files_of_a_killed_run_are_removed_by_the_next_pool():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited
    stale = Path("/dev/shm") / f"sbts-{pid}-0badc0de-{pid + 1}-0"
    stale.write_bytes(b"x" * 100)
    try:
        list(run_blocks(BLOCKS, read_index, functools.partial(big_result), workers=2))
        assert not stale.exists()
    finally:
        stale.unlink(missing_ok=True)
