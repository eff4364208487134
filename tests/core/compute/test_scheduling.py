"""The generic block scheduler (sbts.core.compute.scheduling): the same results here, in a process
pool and on a dask cluster; pool workers set up as the engine needs; errors reach the caller.

The inversion's own equality test (tests/core/inversion/test_inversion.py::test_block_and_worker_equivalence) checks
bit-identical time series through the three ways; these tests check the scheduler's contract on
functions whose answer is known.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pytest

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
from sbts.core.io.blocks import Block

BLOCKS = [Block(r, r + 3, 0, 5) for r in range(0, 21, 3)]


def read_rows(scale: float, block: Block) -> np.ndarray:
    """Stands for the I/O: the row numbers of the block, scaled."""
    return scale * np.arange(block.row_start, block.row_stop, dtype=np.float64)


def square_sum(block: Block, inputs: np.ndarray) -> tuple[float, int]:
    """Stands for the numbers: Σ rows² of the block, and the process that computed it."""
    return float((inputs ** 2).sum()), os.getpid()


def blas_threads(block: Block, inputs: np.ndarray) -> int:
    from threadpoolctl import threadpool_info

    return max((p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"), default=1)


def fail_on_second(block: Block, inputs: np.ndarray) -> float:
    if block.row_start == 3:
        raise ValueError(f"bad block {block}")
    return 0.0


def expected(block: Block) -> float:
    return float(sum((2.0 * r) ** 2 for r in range(block.row_start, block.row_stop)))


@pytest.mark.parametrize("mode", [dict(), dict(workers=2), dict(workers=2, cluster="local")],
                         ids=["here", "pool", "dask"])
def test_every_block_once_with_its_result(mode):
    pytest.importorskip("threadpoolctl")
    if mode.get("cluster"):
        pytest.importorskip("dask.distributed")
    got = list(run_blocks(BLOCKS, functools.partial(read_rows, 2.0), square_sum, **mode))
    assert sorted(b.row_start for b, _ in got) == [b.row_start for b in BLOCKS]
    for block, (value, pid) in got:
        assert value == expected(block)
        assert (pid == os.getpid()) == (not mode), "work ran in the wrong place"
    if mode.get("workers") and not mode.get("cluster"):  # the pool keeps submission order
        assert [b for b, _ in got] == BLOCKS


def test_pool_workers_use_one_blas_thread_and_hints_are_given():
    advised, closed = [], []

    class Hint:
        def advise(self, item):
            advised.append(item)

        def close(self):
            closed.append(True)

    got = list(run_blocks(BLOCKS, functools.partial(read_rows, 1.0), blas_threads, workers=2, read_ahead=Hint))
    assert all(threads == 1 for _, threads in got)
    # blocks queued behind the two running ones are announced, the hint is closed at the end
    assert advised == BLOCKS[2:] and closed == [True]


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_in_a_block_reaches_the_caller(workers):
    with pytest.raises(ValueError, match="bad block"):
        list(run_blocks(BLOCKS, functools.partial(read_rows, 1.0), fail_on_second, workers=workers))


def test_nothing_to_do_and_memory_share():
    assert list(run_blocks([], functools.partial(read_rows, 1.0), square_sum, workers=4)) == []
    assert memory_per_task(2.0) == 2.0 and memory_per_task(2.0, workers=4) == 0.5
    assert memory_per_task(2.0, workers=1, cluster="local") == 2.0
    assert describe(1) == "" and describe(3) == " on 3 workers" and describe(1, "tcp://x:8786") == " on 1 worker"


def test_dask_cluster_is_started_once_and_survives_an_error():
    """A run calls run_blocks some twenty times: the LocalCluster (1–2 s to start, and its workers'
    imports) is kept from one call to the next, an error in a block leaves it usable with nothing of
    the failed call still queued, and close_clusters ends it."""
    pytest.importorskip("dask.distributed")
    from sbts.core.compute import scheduling

    scheduling.close_clusters()
    try:
        first = list(run_blocks(BLOCKS, functools.partial(read_rows, 2.0), square_sum, workers=2, cluster="local"))
        client = scheduling.dask_client("local", 2)
        with pytest.raises(ValueError, match="bad block"):
            list(run_blocks(BLOCKS, functools.partial(read_rows, 1.0), fail_on_second, workers=2, cluster="local"))
        assert client.status == "running"
        second = list(run_blocks(BLOCKS, functools.partial(read_rows, 2.0), square_sum, workers=2, cluster="local"))
        assert scheduling.dask_client("local", 2) is client
        assert {pid for _, (_, pid) in first} == {pid for _, (_, pid) in second}, "the workers were started again"
        assert sorted((b.row_start, v) for b, (v, _) in second) == sorted((b.row_start, expected(b)) for b in BLOCKS)
    finally:
        scheduling.close_clusters()
    assert client.status == "closed" and not scheduling._clients


def late_first(block: Block, inputs: np.ndarray) -> int:
    """The first blocks finish last."""
    import time

    time.sleep(0.05 * (21 - block.row_start) / 3)
    return block.row_start


def test_dask_ordered_yields_in_submission_order():
    """``ordered=True``: a caller that adds results up gets them in item order from dask too."""
    pytest.importorskip("dask.distributed")
    from sbts.core.compute import scheduling

    try:
        got = list(run_blocks(BLOCKS, functools.partial(read_rows, 1.0), late_first, workers=2, cluster="local",
                              ordered=True))
        assert [b for b, _ in got] == BLOCKS and [v for _, v in got] == [b.row_start for b in BLOCKS]
    finally:
        scheduling.close_clusters()


def mark_started(folder: str, block: Block) -> int:
    """Leaves a file per task started, then works 50 ms."""
    import time

    Path(folder, f"{block.row_start}").touch()
    time.sleep(0.05)
    return block.row_start


def echo(block: Block, value: int) -> int:
    return value


@pytest.mark.parametrize("ordered", [False, True])
def test_dask_keeps_a_bounded_window_of_tasks(tmp_path, ordered):
    """A caller that takes its results slowly (a writer) does not let dask compute the whole job
    ahead of it: 40 tasks of 50 ms, one worker thread (window: 4 tasks), the caller waits 1 s after
    the first result; all 40 would have started by then if every task were submitted at once."""
    pytest.importorskip("dask.distributed")
    import time

    from sbts.core.compute import scheduling

    blocks = [Block(r, r + 1, 0, 4) for r in range(40)]
    try:
        results = run_blocks(blocks, functools.partial(mark_started, str(tmp_path)), echo, workers=1,
                             cluster="local", ordered=ordered)
        first = next(results)
        time.sleep(1.0)
        started = len(list(tmp_path.iterdir()))
        assert started <= scheduling._dask_in_flight(scheduling.dask_client("local", 1), 1) + 1 <= 5
        rest = list(results)
        got = [first, *rest]
        assert sorted(v for _, v in got) == list(range(40)) and len(list(tmp_path.iterdir())) == 40
        if ordered:
            assert [v for _, v in got] == list(range(40))
    finally:
        scheduling.close_clusters()


def test_runs_apart_and_workers_within_the_budget():
    from sbts.core.compute.scheduling import runs_apart, workers_within

    assert not runs_apart(1) and runs_apart(2) and runs_apart(1, "local")
    gb = 1024**3
    assert workers_within(4.0, 1.5 * gb, workers=8) == 2  # the budget holds two items
    assert workers_within(4.0, 8.0 * gb, workers=8) == 1  # at least one, however large
    assert workers_within(4.0, 0.1 * gb, workers=8, num_items=3) == 3  # no more than there are items
    assert workers_within(4.0, 8.0 * gb, workers=8, cluster="local") == 8  # dask: its own limits
    assert workers_within(4.0, 0.0, workers=3) == 3


# ----------------------------------------------------------------------------- kept pool
def touch_and_count_faults(nbytes: int, block: Block, inputs: np.ndarray) -> tuple[int, int]:
    """Allocates and writes ``nbytes`` (as a step's block and temporaries do), frees them; returns
    the process and the page faults that cost."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    scratch = np.empty(nbytes, np.uint8)
    scratch.fill(1)
    del scratch
    return os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_kept_pool_runs_every_call_on_the_same_workers_and_they_reuse_their_memory():
    """Inside keep_pool (what sbts run does around its steps) two calls run on the same two
    processes, and a worker's second 64 MiB of scratch comes from the heap its first call freed: no
    page faults (a pool per call forks new workers whose memory is new: one fault per page)."""
    from sbts.core.compute import scheduling

    nbytes = 64 << 20
    blocks = BLOCKS[:4]
    task = functools.partial(touch_and_count_faults, nbytes)
    with scheduling.keep_pool(2):
        assert scheduling._kept.pool is None, "nothing is forked before a step runs"
        scheduling.start_kept_pool()
        first = [r for _, r in run_blocks(blocks, functools.partial(read_rows, 1.0), task, workers=2)]
        second = [r for _, r in run_blocks(blocks, functools.partial(read_rows, 1.0), task, workers=2)]
        one = [r for _, r in run_blocks(blocks, functools.partial(read_rows, 1.0), task, workers=1)]
    workers = {pid for pid, _ in first}
    assert os.getpid() not in workers and len(workers) <= 2
    assert {pid for pid, _ in second} <= workers, "the second call forked new workers"
    assert all(pid == os.getpid() for pid, _ in one), "one worker runs here"
    # a fault per page touched for the first time: 16 384 of 4 KiB, or 32 of 2 MiB with transparent huge pages
    assert max(faults for _, faults in second) < 8, second
    # without keep_pool each call has its own pool: other processes, new memory
    third = [r for _, r in run_blocks(blocks, functools.partial(read_rows, 1.0), task, workers=2)]
    assert not {pid for pid, _ in third} & workers
    assert max(faults for _, faults in third) >= nbytes // (2 << 20), third


def touch_and_free(nbytes: int, block: Block, inputs: np.ndarray) -> int:
    """A block's working set of ``nbytes``, written and freed; returns the process."""
    scratch = np.empty(nbytes, np.uint8)
    scratch.fill(1)
    del scratch
    return os.getpid()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="resident memory from /proc")
@pytest.mark.parametrize("budget_gb", [0.125, None], ids=["budget", "no-budget"])
def test_kept_workers_keep_no_more_free_memory_than_their_share(budget_gb):
    """With the run's budget (128 MiB, 2 workers: 64 MiB each) a worker that freed a 256 MiB working set
    keeps at most its share of it for the next items; without one it keeps all of it (a pool per
    call ends with its call).  Each worker's resident memory, read here from /proc before and after
    (which worker takes which item is the pool's choice)."""
    from sbts.core.compute import scheduling
    from sbts.core.compute.heap import resident_bytes

    share = None if budget_gb is None else int(budget_gb * 1024**3) // 2
    items = [Block(r, r + 1, 0, 1) for r in range(8)]
    with scheduling.keep_pool(2, max_memory=budget_gb):
        scheduling.start_kept_pool()
        list(run_blocks(items, functools.partial(read_rows, 1.0), square_sum, workers=2))  # both set up
        pids = [proc.pid for proc in scheduling._kept.pool._processes.values()]
        before = {pid: resident_bytes(pid) for pid in pids}
        grown = {pid for _, pid in run_blocks(items, functools.partial(read_rows, 1.0),
                                              functools.partial(touch_and_free, 256 << 20), workers=2)}
        after = {pid: resident_bytes(pid) for pid in pids}
        held = scheduling.kept_workers_bytes()
        # work in this process plans within the budget less what the workers hold, down to a third
        here = memory_per_task(1.0, 1)
        assert here == pytest.approx(max(1.0 - held / 1024**3, 1 / 3), abs=0.01)
        assert memory_per_task(1.0, 2) == 0.5  # the pool's items use the workers' memory
    assert memory_per_task(1.0, 1) == 1.0
    assert grown and grown <= set(pids), (grown, pids)
    kept = {pid: after[pid] - before[pid] for pid in grown}
    if share is None:
        assert max(kept.values()) >= 200 << 20, kept
    else:
        assert max(kept.values()) <= share + (16 << 20), kept
    assert held >= sum(after.values()) // 2  # what the runner counts against the budget between steps


_PARENT_TRIM = """
import functools, numpy as np
from sbts.core.compute import scheduling
from sbts.core.compute.heap import keep_freed_memory, resident_bytes
from sbts.core.io.blocks import Block
keep_freed_memory()  # as the sbts command does
def noop(block, inputs):
    return 0
with scheduling.keep_pool(2, max_memory={budget}):
    scheduling.start_kept_pool()
    a = np.ones(256 << 20, np.uint8); del a  # a step's block, freed: the heap keeps it
    kept = resident_bytes(__import__("os").getpid())
    list(scheduling.run_blocks([Block(r, r + 1, 0, 1) for r in range(4)], str, noop, workers=2))
    print(kept - resident_bytes(__import__("os").getpid()))
"""


@pytest.mark.skipif(not os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"), reason="glibc only")
@pytest.mark.parametrize("budget", ["0.5", "None"])
def test_run_process_hands_back_its_free_heap_when_the_workers_start(budget):
    """In a process of its own (the allocator setting is process-wide): with a budget, the memory a
    finished step freed in the run's process goes back to the system when the kept pool's workers
    start a call's items (they use the budget meanwhile); without one it stays."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _PARENT_TRIM.format(budget=budget)], capture_output=True,
                         text=True, check=True).stdout
    released = int(out.split()[-1])
    if budget == "None":
        assert released < 16 << 20, released
    else:
        assert released >= 200 << 20, released


def test_kept_pool_ends_with_an_error_and_later_calls_make_their_own():
    from sbts.core.compute import scheduling

    with scheduling.keep_pool(2):
        kept = scheduling._kept
        scheduling.start_kept_pool()
        with pytest.raises(ValueError, match="bad block"):
            list(run_blocks(BLOCKS, functools.partial(read_rows, 1.0), fail_on_second, workers=2))
        assert kept.pool is None, "a pool that saw an error is not reused"
        got = list(run_blocks(BLOCKS, functools.partial(read_rows, 2.0), square_sum, workers=2))
        assert [v for _, (v, _) in got] == [expected(b) for b in BLOCKS]
    assert scheduling._kept is None


def test_sbts_run_keeps_one_pool_for_its_steps(tmp_path, monkeypatch):
    """The runner enters keep_pool with the run's workers and budget (and its cluster, for which it
    does nothing) and forks it before a step that runs."""
    import contextlib

    from sbts.core.workflow import runner

    seen = []

    @contextlib.contextmanager
    def spy(workers, cluster=None, max_memory=None):
        seen.append((workers, cluster, max_memory))
        yield

    monkeypatch.setattr(runner, "keep_pool", spy)
    monkeypatch.setattr(runner, "start_kept_pool", lambda: seen.append("start"))
    (tmp_path / "t.cfg").write_text("mintpy.compute.numWorker = 2\n")
    with contextlib.suppress(Exception):  # no inputs: load_data fails; the pool was started before it
        runner.run_workflow(tmp_path / "t.cfg", tmp_path, dostep="load_data", num_worker=2, max_memory=3)
    assert seen == [(2, None, 3.0), "start"]
