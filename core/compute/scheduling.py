"""Run a step's block tasks here, in a pool of processes, or on a dask.distributed cluster.

A block-wise step splits its work into independent items (usually :class:`~sbts.core.io.blocks.Block`
strips) and gives two functions: ``read(item)``, the I/O, and ``compute(item, inputs)``, the
numbers.  :func:`run_blocks` runs them and yields ``(item, result)`` as results arrive; the caller
writes each result where it belongs (HDF5 writers take blocks in any order) and records the item as
done, so an interrupted run continues where it stopped.  The three ways give identical results: the
same functions run on the same inputs, only where and when differs.

* **Here** (one worker, or one item): a thread reads item k+1 while this process computes item k
  (reading is I/O: h5py and the kernel copy data without needing this process's numpy), with one
  core left to that reader for BLAS.  The caller's memory budget must count two items of input.
* **Process pool** (``workers > 1``): each worker is set up by :func:`init_worker` (dies with its
  parent, ignores Ctrl-C, one BLAS thread, keeps freed heap for the next block).  At most
  ``2 × workers`` items are in flight, so memory stays near ``workers`` items; the items queued
  behind the running ones are announced to the kernel (``read_ahead``) so that their reads find the
  page cache.  Results come in submission order; their large arrays come back through shared memory
  (:mod:`sbts.core.compute.shared_results`), not pickled through the pool's pipe.  Ctrl-C or an
  error cancels the queued items.
* **dask.distributed** (``cluster="local"`` for a LocalCluster of ``workers`` processes, or a
  scheduler address): one task per item with one BLAS thread, retried twice if a worker is lost;
  results come in completion order.  The client (and a LocalCluster) is opened once and kept for
  the later steps of the run (:func:`dask_client`, closed by :func:`close_clusters`).

``read`` and ``compute`` must be picklable for the pool and dask (module-level functions, or
:func:`functools.partial` of them over picklable arguments).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sbts.core.compute import shared_results
from sbts.core.errors import InputError

logger = logging.getLogger(__name__)

T = TypeVar("T")  # a work item (a block)
I = TypeVar("I")  # noqa: E741 - what read() returns for an item
R = TypeVar("R")  # what compute() returns for an item


class ReadAheadHint(Protocol):
    """Announces the items that will be read soon (e.g. :class:`sbts.core.io.readahead.ReadAhead`)."""

    def advise(self, item: Any) -> None: ...

    def close(self) -> None: ...


def memory_per_task(max_memory: float, workers: int = 1, cluster: str | None = None) -> float:
    """The memory (GB) one item may use: ``max_memory`` shared by the workers that run at once.

    Parameters
    ----------
    max_memory : float
        The run's budget in GB (``mintpy.compute.maxMemory``).
    workers : int
        Processes that run items at once (``mintpy.compute.numWorker``).
    cluster : str, optional
        ``"local"`` or a dask scheduler address; with one, even one worker runs apart from this process.

    Returns
    -------
    float
        GB for one item: ``max_memory / workers`` when items run in a pool or on dask, else
        ``max_memory`` less the free memory the workers of a kept pool (:func:`keep_pool`) hold for
        their next items, down to an equal share of the pool's workers and this process.
    """
    workers = max(1, int(workers))
    if runs_apart(workers, cluster):
        return max_memory / workers
    held = kept_workers_bytes()
    if not held:
        return max_memory
    assert _kept is not None
    return max(max_memory - held / 1024**3, max_memory / (_kept.workers + 1))


def runs_apart(workers: int = 1, cluster: str | None = None) -> bool:
    """Whether items run in other processes (a pool of several workers, or dask even with one).

    Parameters
    ----------
    workers : int
        ``mintpy.compute.numWorker``.
    cluster : str, optional
        ``"local"`` or a dask scheduler address.

    Returns
    -------
    bool
    """
    return bool(cluster) or int(workers) > 1


def workers_within(max_memory: float, item_bytes: float, workers: int = 1, cluster: str | None = None,
                   num_items: int | None = None) -> int:
    """How many items a step whose items cannot be split (a date's weather delay, a pair's bridging)
    runs at once: in the pool, no more than ``max_memory`` holds at ``item_bytes`` each (at least
    one) nor than there are items; on dask, ``workers`` (its workers' own memory limits rule, and
    another number would start a second cluster).

    Parameters
    ----------
    max_memory : float
        The run's budget in GB.
    item_bytes : float
        What one item holds while it is computed.
    workers : int
        ``mintpy.compute.numWorker``.
    cluster : str, optional
        ``"local"`` or a dask scheduler address.
    num_items : int, optional
        The items to run.

    Returns
    -------
    int
        The ``workers`` to give :func:`run_blocks`.
    """
    workers = max(1, int(workers))
    if cluster:
        return workers
    if num_items is not None:
        workers = min(workers, max(1, int(num_items)))
    if item_bytes > 0:
        workers = min(workers, max(1, int(max_memory * 1024**3 // item_bytes)))
    return workers


def describe(workers: int = 1, cluster: str | None = None) -> str:
    """`` on N workers`` (or ``""`` when everything runs here), for log lines.

    Parameters
    ----------
    workers : int
        Processes of the pool or the dask cluster.
    cluster : str, optional
        ``"local"`` or a dask scheduler address.

    Returns
    -------
    str
    """
    workers = max(1, int(workers))
    return f" on {workers} worker{'s' if workers > 1 else ''}" if runs_apart(workers, cluster) else ""


def run_blocks(items: Sequence[T], read: Callable[[T], I], compute: Callable[[T, I], R], *,
               workers: int = 1, cluster: str | None = None,
               read_ahead: Callable[[], ReadAheadHint] | None = None, ordered: bool = False) -> Iterator[tuple[T, R]]:
    """Yield ``(item, compute(item, read(item)))`` for every item, here, in a pool or on dask.

    Parameters
    ----------
    items : Sequence
        The work items (usually :class:`~sbts.core.io.blocks.Block` s).
    read : callable
        ``read(item)``: the I/O of an item (picklable for the pool and dask: a module-level function
        or a :func:`functools.partial` of one).
    compute : callable
        ``compute(item, inputs)``: the numbers of an item (picklable likewise).
    workers : int
        Processes of the pool (or of the local dask cluster); 1 runs here, a thread reading ahead.
    cluster : str, optional
        ``"local"`` or the address of a dask scheduler (then dask runs the items).
    read_ahead : callable, optional
        Opens a hint object whose ``advise(item)`` is called for items queued in the pool (pool only).
    ordered : bool
        On dask too, yield in submission order (results that complete early wait): for a caller that
        adds results up, or writes them in sequence, in the same order whoever computed them.

    Yields
    ------
    tuple
        ``(item, result)``: in submission order here and in the pool, in completion order on dask
        unless ``ordered``.
    """
    items = list(items)
    if not items:
        return
    workers = max(1, int(workers))
    if cluster:
        yield from _run_dask(items, read, compute, workers, cluster, ordered)
    elif workers > 1 and len(items) > 1:
        yield from _run_pool(items, read, compute, workers, read_ahead)
    else:
        yield from _run_here(items, read, compute)


def read_and_compute(read: Callable[[T], I], compute: Callable[[T, I], R], item: T) -> tuple[T, R]:
    """One item, start to end (what a pool worker runs)."""
    return item, compute(item, read(item))


def _read_compute_share(read: Callable[[T], I], compute: Callable[[T, I], R], item: T) -> tuple[T, Any]:
    """:func:`read_and_compute` in a pool worker: its large arrays return through shared memory
    (:mod:`sbts.core.compute.shared_results`); then the worker keeps no more free heap than its share
    of the run's budget (:func:`init_worker`)."""
    shared = shared_results.to_shared(compute(item, read(item)))
    if _worker_keep is not None:
        from sbts.core.compute.heap import release_spare_memory

        release_spare_memory(_worker_keep)
    return item, shared


_worker_keep: int | None = None  # in a kept pool's worker: the free heap it keeps between items (bytes)


def init_worker(parent: int | None = None, token: str | None = None, keep_bytes: int | None = None) -> None:
    """Pool worker set-up: ends with its parent (:mod:`sbts.core.compute.procs`), one BLAS thread (the
    workers share the cores), reused heap memory (:mod:`sbts.core.compute.heap`) and no Ctrl-C handling.

    ``keep_bytes``: the free heap the worker keeps after an item (a kept pool's share of the run's
    budget, :func:`keep_pool`); None keeps all of it (a call's own pool, which ends with the call).

    Ctrl-C is the main process's to handle (it reports once and cancels the pool): the pool forks
    its workers with SIGINT blocked (:func:`_run_pool`), and a worker ignores it before unblocking
    it, so a Ctrl-C during start-up never raises inside a worker's imports.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # also discards one that arrived while blocked
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

    from threadpoolctl import threadpool_limits

    from sbts.core.compute.heap import keep_freed_memory
    from sbts.core.compute.procs import die_with_parent

    global _worker_keep
    die_with_parent(parent)
    threadpool_limits(limits=1, user_api="blas")
    keep_freed_memory()
    _worker_keep = keep_bytes
    if parent is not None and token is not None:
        shared_results.set_pool(parent, token)


def _run_here(items: list[T], read: Callable[[T], I], compute: Callable[[T, I], R]) -> Iterator[tuple[T, R]]:
    """Compute in this process while a thread reads the next item."""
    from threadpoolctl import threadpool_limits

    blas_threads = max(1, (os.cpu_count() or 1) - 1)  # one core is the reader's
    with threadpool_limits(limits=blas_threads, user_api="blas"), \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sbts-read") as reader:
        ahead = reader.submit(read, items[0])
        for k, item in enumerate(items):
            inputs = ahead.result()
            if k + 1 < len(items):
                ahead = reader.submit(read, items[k + 1])
            yield item, compute(item, inputs)
            del inputs


_active_pools: set[str] = set()  # tokens of this process's running pools


class _KeptPool:
    """The process pool a run keeps for all its steps (:func:`keep_pool`), forked by :meth:`start`."""

    def __init__(self, workers: int, budget_bytes: int | None = None) -> None:
        self.workers = workers
        self.budget_bytes = budget_bytes
        self.owner = os.getpid()  # a forked worker inherits a copy of this object: it is not its pool
        self.token: str | None = None
        self.pool: ProcessPoolExecutor | None = None  # None: not started yet, or ended by an error

    def start(self) -> None:
        if self.token is not None:  # started (and perhaps ended by an error: calls then make their own)
            return
        self.token = _new_pool_token()
        keep = None if self.budget_bytes is None else self.budget_bytes // self.workers
        self.pool = _new_pool(self.workers, self.token, keep)
        _fork_workers(self.pool)

    def resident_bytes(self) -> int:
        """What the workers hold now (private resident memory, mostly the heap they keep)."""
        from sbts.core.compute.heap import resident_bytes

        pool = self.pool
        processes = list((getattr(pool, "_processes", None) or {}).values()) if pool is not None else []
        return sum(resident_bytes(p.pid) for p in processes if p.pid is not None)

    def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=True)
        if self.token is not None:
            shared_results.remove_files(os.getpid(), self.token)
            _active_pools.discard(self.token)


_kept: _KeptPool | None = None  # inside keep_pool()


@contextlib.contextmanager
def keep_pool(workers: int = 1, cluster: str | None = None, max_memory: float | None = None) -> Iterator[None]:
    """Within: every :func:`run_blocks` call of the pool runs on one pool of ``workers`` processes,
    forked by :func:`start_kept_pool` and ended on leaving (``sbts run`` keeps one for all its steps).

    A pool per call forks its workers anew each time: on the 2-core VM the bench runs on, a worker's
    first touch of its memory (blocks, temporaries) costs ~1.5 ms/MB and the steps that are mostly
    reading and writing (troposphere, deramp, DEM error, reference date) were 1.7–4× slower in a pool
    of 2 than in one process (``bench/bench_workflow.py --whole --workers 2``: 32.8 s against 25.9 s).  Kept
    workers reuse their heap (:func:`init_worker` keeps freed memory) from step to step, as the run's
    own process does.  The runner forks them (:func:`start_kept_pool`) before the first step that
    runs, when no step has a file open, so they hold no descriptor of the run's outputs (a rerun
    whose steps are all up to date forks nothing); a call before that makes its own pool.  A call
    with fewer workers runs on the same pool with fewer items in flight.  Nothing to do with one
    worker, on dask (its client is kept already), or inside another :func:`keep_pool`.  An error or
    Ctrl-C in a call ends the pool as it ends a call's own pool; the later calls then make their own.

    ``max_memory`` (GB, the run's budget) bounds what the pool's processes hold together: a worker
    keeps at most its share (``max_memory / workers``, what one of its items may use) of free heap
    after an item, this process hands back its free heap before the workers start a call's items,
    and :func:`kept_workers_bytes` tells the runner what the workers hold between steps.
    """
    global _kept
    if cluster or max(1, int(workers)) < 2 or _kept is not None:
        yield
        return
    kept = _KeptPool(int(workers), None if max_memory is None else int(max_memory * 1024**3))
    _kept = kept
    try:
        yield
    finally:
        _kept = None
        kept.close()


def start_kept_pool() -> None:
    """Fork the workers of the pool :func:`keep_pool` keeps, unless they are (or nothing is kept).

    Call it where no file the run writes is open (``sbts run``: before a step that runs): forked
    workers inherit the open descriptors of the moment they start."""
    if _kept is not None:
        _kept.start()


def kept_workers_bytes() -> int:
    """The private resident memory of the kept pool's workers (0 outside :func:`keep_pool`, before
    they start, and in the workers themselves): the free heap they keep for their next items counts
    against the run's budget."""
    return _kept.resident_bytes() if _kept is not None and _kept.owner == os.getpid() else 0


def _new_pool_token() -> str:
    """The token of a new pool's result files, registered as running; the files nobody will take
    (of runs that were killed, of this process's pools that ended) are removed first."""
    token = shared_results.new_token()
    shared_results.clean_at_exit()
    shared_results.remove_files()  # left by runs that were killed
    shared_results.remove_files(os.getpid(), keep=frozenset(_active_pools))  # by this process's ended pools
    _active_pools.add(token)
    return token


def _new_pool(workers: int, token: str, keep_bytes: int | None = None) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=workers, initializer=init_worker, initargs=(os.getpid(), token, keep_bytes))


def _fork_workers(pool: ProcessPoolExecutor) -> None:
    """Start ``pool``'s workers now (the first submit forks them all) with SIGINT blocked: they start
    with it blocked and :func:`init_worker` ignores it; a Ctrl-C meanwhile reaches this process when
    it is unblocked."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        started = pool.submit(os.getpid)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    started.result()


def _run_pool(items: list[T], read: Callable[[T], I], compute: Callable[[T, I], R], workers: int,
              read_ahead: Callable[[], ReadAheadHint] | None) -> Iterator[tuple[T, R]]:
    kept = _kept if _kept is not None and _kept.pool is not None and _kept.workers >= workers else None
    if kept is not None:
        pool, token = kept.pool, kept.token
        assert pool is not None and token is not None
        # as many items in flight as the call's workers: with fewer than the pool has, one more
        # queued would start on an idle worker and hold memory the call did not count
        depth = workers * 2 if workers == kept.workers else workers
        if kept.budget_bytes is not None:
            # the items use the budget in the workers; what this process keeps free meanwhile is not
            # used (it receives results and writes them) and would come on top of it
            from sbts.core.compute.heap import release_spare_memory

            release_spare_memory(0)
    else:
        token = _new_pool_token()
        pool = _new_pool(workers, token)
        depth = workers * 2
    hint = read_ahead() if read_ahead is not None else None
    try:
        # bounded look-ahead keeps memory near the budget; the items queued behind the running
        # ones are announced so that their reads find the page cache
        pending: list[Future[tuple[T, R]]] = []
        for k, item in enumerate(items):
            if k == 0 and kept is None:
                # the first submit forks the workers: they start with SIGINT blocked (init_worker
                # ignores it); a Ctrl-C meanwhile reaches this process when it is unblocked
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                try:
                    pending.append(pool.submit(_read_compute_share, read, compute, item))
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            else:
                pending.append(pool.submit(_read_compute_share, read, compute, item))
            if hint is not None and len(pending) > workers:
                hint.advise(item)
            if len(pending) >= depth:
                yield _received(pending.pop(0))
        while pending:
            yield _received(pending.pop(0))
    except BaseException:
        # Ctrl-C or an error: drop the queued items instead of waiting for them; the results of the
        # tasks still running are removed when they end (or by this process's next pool, or at exit)
        if kept is not None:
            kept.pool = None  # the pool ends here; the later calls make their own
        workers_now = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        threading.Thread(target=_sweep_after, args=(workers_now, token), name="sbts-sweep", daemon=True).start()
        raise
    finally:
        if hint is not None:
            hint.close()
        if kept is None:
            shared_results.remove_files(os.getpid(), token)  # results in flight that nobody will take
    if kept is None:
        # forked workers share the caller's open output files' locks: they must be gone before those close
        pool.shutdown(wait=True)
        _active_pools.discard(token)


def _sweep_after(processes: list, token: str) -> None:
    """Wait for a cancelled pool's workers to end (after their running tasks), then remove the result
    files they left.  (At interpreter exit, concurrent.futures joins the pools before the ``atexit``
    sweep of :func:`sbts.core.compute.shared_results.clean_at_exit` runs.)"""
    try:
        for process in processes:
            process.join()
    finally:
        shared_results.remove_files(os.getpid(), token)
        _active_pools.discard(token)


def _received(future: Future) -> tuple[Any, Any]:
    """A pool result with its shared-memory arrays mapped back."""
    item, result = future.result()
    return item, shared_results.from_shared(result)


def _compute_one_thread(read: Callable[[T], I], compute: Callable[[T, I], R], item: T) -> tuple[T, R]:
    """:func:`read_and_compute` with one BLAS thread, for dask workers (one task per worker thread)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return read_and_compute(read, compute, item)


def _run_dask(items: list[T], read: Callable[[T], I], compute: Callable[[T, I], R], workers: int,
              cluster: str, ordered: bool = False) -> Iterator[tuple[T, R]]:
    """The items on dask, at most :func:`_dask_in_flight` of them submitted and not yet yielded.

    Submitting every item at once would let the workers compute the whole job ahead of a caller
    that writes the results one by one: finished results wait in the workers' memory (or their
    spill files) and, when ``ordered``, here.  With a bounded window a result is fetched soon
    after it is ready, and the workers hold a few blocks each, as the pool does.
    """
    client = dask_client(cluster, workers)
    from dask.distributed import as_completed

    window = _dask_in_flight(client, workers)
    queue = iter(enumerate(items))
    position: dict[str, int] = {}
    futures: list[Any] = []  # submitted, not yet yielded (for cancelling)

    def submit() -> Any | None:
        for k, item in queue:
            fut = client.submit(_compute_one_thread, read, compute, item, pure=False, retries=2)
            position[fut.key] = k
            futures.append(fut)
            return fut
        return None

    waiting: dict[int, tuple[T, R]] = {}
    following = 0  # the next position to yield when ordered
    try:
        first: list[Any] = []
        while len(first) < window and (fut := submit()) is not None:
            first.append(fut)
        done = as_completed(first, loop=client.loop)  # the client is not the default one
        for fut in done:
            result = fut.result()
            k = position.pop(fut.key)
            futures.remove(fut)
            fut.release()
            if not ordered:
                nxt = submit()
                if nxt is not None:
                    done.add(nxt)
                yield result
                continue
            waiting[k] = result
            while following in waiting:
                nxt = submit()  # one yielded, one submitted: results held here stay within the window
                if nxt is not None:
                    done.add(nxt)
                yield waiting.pop(following)
                following += 1
    finally:
        # an error, Ctrl-C or a caller that stops early: nothing of this call keeps running on the cluster
        left = [f for f in futures if not f.done()]
        if left:
            client.cancel(left)


def _dask_in_flight(client: Any, workers: int) -> int:
    """Tasks one :func:`run_blocks` call keeps on the cluster: two per worker thread (one running,
    one queued behind it, so no worker waits for the caller), at least 4."""
    try:
        threads = sum(int(w.get("nthreads", 1)) for w in client.scheduler_info()["workers"].values())
    except Exception:  # noqa: BLE001 - a scheduler that does not answer: the local count
        threads = 0
    return max(4, 2 * (threads or max(1, int(workers))))


_clients: dict[tuple[str, int], tuple[Any, Any]] = {}  # (cluster, workers) -> (Client, own LocalCluster or None)
_clients_lock = threading.Lock()


def dask_client(cluster: str, workers: int = 1) -> Any:
    """The dask client of ``cluster`` for this process: started (``"local"``: a LocalCluster of
    ``workers`` processes) or connected on first use, then kept for every later step of the run.

    Starting a LocalCluster and importing sbts, numpy and h5py in its workers takes 1–2 s; a run
    calls :func:`run_blocks` some twenty times, so one cluster per call cost more than some steps'
    work.  The workers keep nothing between tasks but their imported modules.  The clients are
    closed by :func:`close_clusters` (the end of ``sbts run``, and this process's exit).

    Parameters
    ----------
    cluster : str
        ``"local"`` or a scheduler address.
    workers : int
        Processes of a LocalCluster (ignored for an address: its scheduler has its own workers).

    Returns
    -------
    dask.distributed.Client
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--cluster needs dask.distributed: pip install 'dask[distributed]'") from None
    key = (cluster, max(1, int(workers)) if cluster == "local" else 0)
    with _clients_lock:
        held = _clients.pop(key, None)
        if held is not None:
            if held[0].status == "running":
                _clients[key] = held
                return held[0]
            _close_client(*held)  # its scheduler went away: start again
        own = None
        if cluster == "local":
            own = LocalCluster(n_workers=key[1], threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(own, set_as_default=False)
        else:
            client = Client(cluster, set_as_default=False)
        if not _clients:
            atexit.register(close_clusters)  # once per set of open clients (unregistered when they close)
        _clients[key] = (client, own)
        return client


def close_clusters() -> None:
    """Close the dask clients and LocalClusters :func:`dask_client` opened in this process (none: nothing)."""
    with _clients_lock:
        held = list(_clients.values())
        _clients.clear()
        atexit.unregister(close_clusters)
    for client, own in held:
        _close_client(client, own)


def _close_client(client: Any, own: Any) -> None:
    try:
        client.close()
    finally:
        if own is not None:
            own.close()
