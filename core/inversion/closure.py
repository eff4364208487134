"""Triplets of interferograms, their closure phase and integer 2π ambiguities (Yunjun et al. 2019 §3.2).

For three acquisitions d1 < d2 < d3 whose three pairs all exist and are kept, the closure phase
``φc = φ12 + φ23 − φ13`` is small (noise, decorrelation, soil moisture) for correctly unwrapped
interferograms, and off by ``2π·k`` when one of them carries an unwrapping error.  Its integer part
``c_int = (φc − wrap(φc)) / 2π`` therefore flags unwrapping errors without any model of the signal.

This module provides:

- :func:`triplet_indices` / :func:`triplets`: the triplet matrix C (n_tri × m), +1 for (d1,d2) and
  (d2,d3), −1 for (d1,d3), over the kept pairs;
- :func:`closure_phase`, :func:`integer_ambiguity`: per block of the stack;
- :func:`num_nonzero_integer_closure`: T_int, the number of triplets with ``c_int ≠ 0`` per pixel
  (MintPy's ``numTriNonzeroIntAmbiguity.h5``, quick_overview), streamed block by block, together with
  per-triplet statistics of the wrapped closure phase; :func:`write_num_nonzero_integer_closure`
  writes both;
- :func:`solve_integer_ambiguity`: the integer correction U per pair that cancels the integer
  closures, as a sparse L1 mixed-integer program solved by HiGHS (``scipy.optimize.milp``).

The phase is referenced to REF_Y/REF_X before the closure is formed (when the stack has them):
unwrapped phases may carry an arbitrary per-pair constant (unwrapper, or a re-referencing that is
not a multiple of 2π), which adds a constant non-integer closure everywhere and would shift
``c_int`` by one at whole swaths of pixels.  Zero or NaN phase (MintPy's no-data) makes every
triplet using that pair invalid at that pixel: it counts as zero and is left out of the statistics.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import DataError
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import atomic_write_text
from sbts.core.io.masks import geometry_water_mask
from sbts.core.io.products import IfgramStack, as_stack, write_map
from sbts.core.model.pairs import Pairs

if TYPE_CHECKING:  # scipy.sparse costs ~0.1 s to import: only where a matrix is built
    import scipy.sparse as sp

logger = logging.getLogger(__name__)

NUM_TRI_FILE = "numTriNonzeroIntAmbiguity.h5"
NUM_TRI_DATASET = "mask"  # MintPy writes it as a FILE_TYPE=mask map, dataset "mask"
TRIPLET_STATS_FILE = "closurePhaseTriplets.txt"
TWO_PI = 2.0 * np.pi


# ---------------------------------------------------------------------------- triplets
def triplet_indices(pairs: Pairs, kept_only: bool = True) -> np.ndarray:
    """Pair indices ``(i12, i23, i13)`` of every triplet d1 < d2 < d3, shape (n_tri, 3), int64.

    Indices refer to ``pairs`` (all of them, dropped ones included), so the caller can index the
    full stack; with ``kept_only`` only triplets whose three pairs are kept are listed.  Sorted by
    (d1, d2, d3) for a stable order.

    Parameters
    ----------
    pairs : Pairs
        The stack's pairs (``IfgramStack.pairs``).
    kept_only : bool
        Only triplets of kept pairs.

    Returns
    -------
    numpy.ndarray
        int64 ``(n_tri, 3)``.
    """
    i1, i2 = pairs.indices()
    use = pairs.keep if kept_only else np.ones(len(pairs), bool)
    lookup = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(i1, i2)) if use[k]}
    by_first: dict[int, list[tuple[int, int]]] = {}
    for (a, b), k in lookup.items():
        by_first.setdefault(a, []).append((b, k))
    rows = []
    for (a, b), k12 in lookup.items():
        for c, k23 in by_first.get(b, ()):
            k13 = lookup.get((a, c))
            if k13 is not None:
                rows.append((a, b, c, k12, k23, k13))
    if not rows:
        return np.zeros((0, 3), np.int64)
    rows.sort()
    return np.array([r[3:] for r in rows], np.int64)


def triplets(pairs: Pairs, kept_only: bool = True) -> sp.csr_matrix:
    """The triplet matrix C (n_tri × len(pairs)): +1 (d1,d2), +1 (d2,d3), −1 (d1,d3).

    Columns of dropped pairs are zero (with ``kept_only``).  ``C·φ`` is the closure phase of every
    triplet; C·A = 0 for the design matrix A of the time series, so C sees only what no time series
    can explain.
    """
    return triplet_matrix(triplet_indices(pairs, kept_only), len(pairs))


def triplet_matrix(index: np.ndarray, num_pair: int) -> sp.csr_matrix:
    """C from triplet pair indices (see :func:`triplet_indices`).

    Parameters
    ----------
    index : numpy.ndarray
        ``(n_tri, 3)`` pair indices ``(i12, i23, i13)``.
    num_pair : int
        Columns of C: every pair of the stack.

    Returns
    -------
    scipy.sparse.csr_matrix
        int32 ``(n_tri, num_pair)``: +1 (d1,d2), +1 (d2,d3), −1 (d1,d3).
    """
    import scipy.sparse as sp

    n = index.shape[0]
    rows = np.repeat(np.arange(n), 3)
    vals = np.tile(np.array([1, 1, -1], np.int32), n)
    return sp.csr_matrix((vals, (rows, index.reshape(-1))), shape=(n, num_pair), dtype=np.int32)


# ---------------------------------------------------------------------------- closure phase
def wrap(phase: np.ndarray) -> np.ndarray:
    """Phase wrapped into [−π, π]: ``φ − 2π·rint(φ/2π)``, in the input's float precision.

    (A rounding instead of a floating-point modulo: 2.3× faster on float32, and one rounding fewer.)
    """
    phase = np.asarray(phase)
    kind = phase.dtype.type if phase.dtype.kind == "f" else np.float64
    return phase - kind(TWO_PI) * np.rint(phase * kind(1 / TWO_PI))


def integer_ambiguity(closure: np.ndarray) -> np.ndarray:
    """``round((φc − wrap(φc)) / 2π)`` as int32; non-finite closure (no data) gives 0.

    Parameters
    ----------
    closure : numpy.ndarray
        Closure phases ``C·φ`` (radians), any shape.

    Returns
    -------
    numpy.ndarray
        int32, same shape: the number of 2π cycles each closure holds.
    """
    closure = np.asarray(closure)
    with np.errstate(invalid="ignore"):
        k = np.round((closure - wrap(closure)) / TWO_PI)
    return np.where(np.isfinite(k), k, 0).astype(np.int32)


def reference_phase(stack: IfgramStack, dataset: str, index: np.ndarray) -> np.ndarray:
    """Phase at REF_Y/REF_X of pairs ``index`` (0 where the stack has no reference or no data there:
    :func:`sbts.core.inversion.refphase.reference_phase`, policy ``zero``).

    Parameters
    ----------
    stack : IfgramStack
    dataset : str
        The phase dataset (``unwrapPhase`` ...).
    index : numpy.ndarray
        Pair indices.

    Returns
    -------
    numpy.ndarray
        float64 ``(index.size,)``, radians.
    """
    from sbts.core.inversion.refphase import reference_phase as read

    ref = read(stack, dataset, index, "zero")
    return np.zeros(np.asarray(index).size) if ref is None else ref.values


def _read_layers(stack: IfgramStack, dataset: str, block: Block, index: np.ndarray) -> np.ndarray:
    if index.size == len(stack.pairs) and np.array_equal(index, np.arange(index.size)):
        return stack.read(dataset, block)
    return stack.read(dataset, block, index=index)


def _closure_of(phase: np.ndarray, tri_local: np.ndarray) -> np.ndarray:
    """Closure (n_tri, ...) of referenced ``phase`` (n_used, ...); NaN where a pair has no data.

    Triplet by triplet into the output (no gathered copies of the layers: 3× faster)."""
    phase = phase.astype(np.float32, copy=False)
    out = np.empty((tri_local.shape[0],) + phase.shape[1:], np.float32)
    for row, (a, b, c) in zip(out, tri_local):
        np.add(phase[a], phase[b], out=row)
        np.subtract(row, phase[c], out=row)
    return out


def _prepare(stack: IfgramStack, dataset: str, reference: bool, tri: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Used pair indices, triplets in local (used-pair) indices, and the reference phase."""
    tri = triplet_indices(stack.pairs) if tri is None else tri
    used = np.unique(tri) if tri.size else np.zeros(0, np.int64)
    local = np.searchsorted(used, tri) if tri.size else tri
    ref = reference_phase(stack, dataset, used) if reference and used.size else np.zeros(used.size)
    return used, local, ref


def _read_referenced(stack: IfgramStack, dataset: str, block: Block, used: np.ndarray,
                     ref: np.ndarray) -> np.ndarray:
    return _referenced(_read_layers(stack, dataset, block, used), ref)


def _referenced(data: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """float32 ``data − ref``, no-data 0 as NaN (NaN stays NaN; ±inf stays non-finite, as no data).

    In place when ``data`` is float32 (every caller passes an array of its own: a fresh read or a
    gathered copy), layer by layer: one layer of temporaries, half the time of a new array."""
    data = data.astype(np.float32, copy=False)
    ref32 = ref.astype(np.float32)
    for layer, value in zip(data, ref32):
        zero = layer == 0
        np.subtract(layer, value, out=layer)
        np.copyto(layer, np.float32(np.nan), where=zero)
    return data


def closure_phase(stack: IfgramStack | str | os.PathLike, block: Block | None = None,
                  dataset: str = "unwrapPhase", reference: bool = True) -> np.ndarray:
    """Closure phase (n_tri, rows, cols) float32 of every kept triplet over ``block``.

    Order of triplets: :func:`triplet_indices`.  NaN where a pair of the triplet has no data.
    """
    stack = as_stack(stack)
    block = block or Block(0, stack.shape[0], 0, stack.shape[1])
    used, local, ref = _prepare(stack, dataset, reference)
    if not used.size:
        return np.zeros((0,) + block.shape, np.float32)
    return _closure_of(_read_referenced(stack, dataset, block, used, ref), local)


# ---------------------------------------------------------------------------- T_int + statistics
@dataclass(frozen=True)
class TripletStats:
    """Spatial statistics of the wrapped closure phase of each triplet (rad)."""

    date12: tuple[tuple[str, str, str], ...]  # (d1_d2, d2_d3, d1_d3)
    num_valid: np.ndarray  # pixels with data in all three pairs
    mean: np.ndarray
    std: np.ndarray
    frac_nonzero: np.ndarray  # fraction of valid pixels with c_int ≠ 0
    # the sums over the pixels they come from (valid pixels, c_int ≠ 0, Σ closure, Σ closure²), which
    # add up over pixels: an update adds the new triplets' to the stored ones (None: not kept)
    sums: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_sums(cls, date12: tuple[tuple[str, str, str], ...], n_valid: np.ndarray, n_nonzero: np.ndarray,
                  s1: np.ndarray, s2: np.ndarray) -> TripletStats:
        """The statistics of per-triplet sums over the pixels."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n_valid > 0, s1 / np.maximum(n_valid, 1), np.nan)
            std = np.where(n_valid > 0, np.sqrt(np.maximum(s2 / np.maximum(n_valid, 1) - mean ** 2, 0)), np.nan)
            frac = np.where(n_valid > 0, n_nonzero / np.maximum(n_valid, 1), np.nan)
        return cls(date12, n_valid, mean, std, frac, (n_valid, n_nonzero, s1, s2))

    def to_text(self) -> str:
        lines = ["# Closure phase of each triplet: C·φ = φ12 + φ23 − φ13 (referenced), wrapped to [-pi, pi)",
                 "# spatial mean/std over pixels with data in all three pairs; fracNonzeroInt = share of",
                 "# those pixels whose integer closure (φc − wrap(φc))/2π is not zero (unwrapping errors)",
                 f"# {'DATE12_12':<17} {'DATE12_23':<17} {'DATE12_13':<17} {'numPixel':>9} "
                 f"{'mean(rad)':>10} {'std(rad)':>10} {'fracNonzeroInt':>14}"]
        for (a, b, c), n, mu, sd, fr in zip(self.date12, self.num_valid, self.mean, self.std, self.frac_nonzero):
            lines.append(f"{a:<19} {b:<17} {c:<17} {int(n):>9d} {mu:>10.4f} {sd:>10.4f} {fr:>14.4f}")
        return "\n".join(lines) + "\n"


_TRI_GROUP = 16  # triplets whose closures are held at once in a block


def _scan_read(stack: IfgramStack, dataset: str, used: np.ndarray, ref: np.ndarray,
               item: tuple[Block, np.ndarray | None]) -> np.ndarray:
    """The referenced phase of the used pairs over one block (the I/O of a scan task)."""
    return _read_referenced(stack, dataset, item[0], used, ref)


@dataclass(frozen=True)
class Piggyback:
    """Another per-block computation on the raw phase, made in the scan's pass over the stack.

    ``index``: the stack pairs it needs; ``compute(block, phase)`` gets their raw layers
    (``(index.size, rows, cols)``) and returns a (rows, cols) map, or a stack of them
    (``(k, rows, cols)``), of any dtype.  The scan then reads the union of
    its pairs and ``index`` once (the quick_overview step: stacking velocity and T_int in one read).
    """

    index: np.ndarray
    compute: Callable[[Block, np.ndarray], np.ndarray]


def _scan_read_union(stack: IfgramStack, dataset: str, union: np.ndarray,
                     item: tuple[Block, np.ndarray | None]) -> np.ndarray:
    return _read_layers(stack, dataset, item[0], union)


def _scan_block_union(local: np.ndarray, pos_used: np.ndarray, ref: np.ndarray, extra: Piggyback,
                      pos_extra: np.ndarray, item: tuple[Block, np.ndarray | None], raw: np.ndarray):
    """:func:`_scan_block` and the piggybacked map of one block, from the raw layers of the union."""
    other = extra.compute(item[0], raw[pos_extra] if pos_extra.size < raw.shape[0] else raw)
    data = _referenced(raw[pos_used] if pos_used.size < raw.shape[0] else raw, ref)
    del raw
    return (*_scan_block(local, item, data), other)


def _scan_block(local: np.ndarray, item: tuple[Block, np.ndarray | None], phase: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """T_int of one block and its per-triplet sums (valid, non-zero, wrapped closure, its square).

    The triplets are taken :data:`_TRI_GROUP` at a time, so the closures held stay small whatever the
    network; every per-triplet sum is a row's own sum over the block's pixels, so the grouping does
    not change it.
    """
    block, mask = item
    n_tri = local.shape[0]
    flat = phase.reshape(phase.shape[0], -1)
    del phase
    count = np.zeros(flat.shape[1], np.int32)
    n_valid = np.zeros(n_tri, np.int64)
    n_nonzero = np.zeros(n_tri, np.int64)
    s1 = np.zeros(n_tri)
    s2 = np.zeros(n_tri)
    keep = None if mask is None else mask.reshape(-1)
    for g in range(0, n_tri, _TRI_GROUP):
        rows = slice(g, min(n_tri, g + _TRI_GROUP))
        closure = _closure_of(flat, local[rows])
        valid = np.isfinite(closure)
        if keep is not None:
            valid &= keep[None]
        np.copyto(closure, np.float32(0), where=~valid)  # wrap(0) = 0: invalid closures add nothing below
        # wrap() in place: k = rint(φc/2π), then φc − 2π·k (the same float32 operations, the same
        # bits); integer_ambiguity ≠ 0 ⇔ k ≠ 0
        wrapped32 = np.multiply(closure, np.float32(1 / TWO_PI))
        np.rint(wrapped32, out=wrapped32)
        nonzero = wrapped32 != 0
        np.multiply(wrapped32, np.float32(TWO_PI), out=wrapped32)
        np.subtract(closure, wrapped32, out=wrapped32)
        del closure
        count += nonzero.sum(axis=0, dtype=np.int32)
        # row by row: count_nonzero of a flat bool row is ~5× faster than a sum along an axis
        n_valid[rows] = [np.count_nonzero(row) for row in valid]
        n_nonzero[rows] = [np.count_nonzero(row) for row in nonzero]
        del nonzero, valid
        wrapped = wrapped32.astype(np.float64)
        del wrapped32
        s1[rows] = wrapped.sum(axis=1)
        np.square(wrapped, out=wrapped)
        s2[rows] = wrapped.sum(axis=1)
    return count.reshape(block.shape), n_valid, n_nonzero, s1, s2


def _scan(stack: IfgramStack, max_memory: float, dataset: str, mask: np.ndarray | None,
          reference: bool, num_worker: int = 1, cluster: str | None = None, extra: Piggyback | None = None,
          tri: np.ndarray | None = None) -> tuple[np.ndarray, TripletStats, np.ndarray | None]:
    from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
    from sbts.core.io.progress import progress

    length, width = stack.shape
    tri = triplet_indices(stack.pairs) if tri is None else tri
    used, local, ref = _prepare(stack, dataset, reference, tri)
    n_tri = tri.shape[0]
    count = np.zeros((length, width), np.int32)
    n_valid = np.zeros(n_tri, np.int64)
    n_nonzero = np.zeros(n_tri, np.int64)
    s1 = np.zeros(n_tri)
    s2 = np.zeros(n_tri)
    other = None
    if n_tri:
        # the read layers, their referenced copy and the next block's read ahead (4 B each, + the
        # no-data flags), then per triplet of a group: closure, wrapped, flags and float64 sums (~40 B)
        bytes_per_pixel = used.size * 13 + min(n_tri, _TRI_GROUP) * 40 + 8
        if extra is None:
            read = functools.partial(_scan_read, stack, dataset, used, ref)
            compute = functools.partial(_scan_block, local)
        else:  # one read of the union of the pairs: raw layers (and the read ahead), then as above
            union = np.union1d(used, extra.index)
            bytes_per_pixel += union.size * 8 + 16
            read = functools.partial(_scan_read_union, stack, dataset, union)
            compute = functools.partial(_scan_block_union, local, np.searchsorted(union, used), ref, extra,
                                        np.searchsorted(union, extra.index))
        blocks = plan_blocks(stack.shape, bytes_per_pixel, memory_per_task(max_memory, num_worker, cluster),
                             stack.chunk_shape(dataset))
        logger.info("closure phases of %d triplets%s, %d block(s)%s", n_tri,
                    "" if extra is None else " (and the stacking velocity, same read)", len(blocks),
                    describe(num_worker, cluster))
        items = [(b, None if mask is None else np.ascontiguousarray(mask[b.slices])) for b in blocks]
        results = run_blocks(items, read, compute, workers=num_worker, cluster=cluster)
        sums = {}
        for (block, _), (block_count, *block_sums) in progress(results, "closure phases", "block", total=len(items)):
            if extra is not None:
                *block_sums, block_other = block_sums
                if other is None:  # the piggybacked map's layers and dtype: those of its first block
                    other = np.full(block_other.shape[:-2] + (length, width), np.nan, block_other.dtype)
                other[(Ellipsis,) + tuple(block.slices)] = block_other
            count[block.slices] = block_count
            sums[block] = block_sums
        for block in blocks:  # added in block order, whatever order they finished in
            bv, bn, b1, b2 = sums[block]
            n_valid += bv
            n_nonzero += bn
            s1 += b1
            s2 += b2
    names = stack.pairs.date12
    stats = TripletStats.from_sums(tuple((names[a], names[b], names[c]) for a, b, c in tri), n_valid, n_nonzero,
                                   s1, s2)
    return count, stats, other


def scan_closures(stack: IfgramStack | str | os.PathLike, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                  dataset: str = "unwrapPhase", mask: np.ndarray | None = None, num_worker: int = 1,
                  cluster: str | None = None, extra: Piggyback | None = None, tri: np.ndarray | None = None
                  ) -> tuple[np.ndarray, TripletStats, np.ndarray | None]:
    """T_int, the triplet statistics and, with ``extra``, its map — all from one read of the stack.

    ``tri``: the triplets (pair indices, :func:`triplet_indices`' layout) to scan, default every kept
    triplet (an update scans only those with a new pair).  The piggybacked map is None when there is
    no triplet (nothing was read).
    """
    return _scan(as_stack(stack), max_memory, dataset, mask, True, num_worker, cluster, extra, tri)


def num_nonzero_integer_closure(stack: IfgramStack | str | os.PathLike, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                                dataset: str = "unwrapPhase", mask: np.ndarray | None = None,
                                reference: bool = True) -> np.ndarray:
    """T_int: per pixel, the number of kept triplets with non-zero integer closure, (L, W) int32.

    ``mask`` (L, W, True = use, e.g. the water mask) sets pixels outside it to 0.  A map that is
    zero over coherent land and high in patches shows where unwrapping errors sit (Yunjun 2019 eq. 9).
    """
    stack = as_stack(stack)
    return _scan(stack, max_memory, dataset, mask, reference)[0]


def triplet_closure_stats(stack: IfgramStack | str | os.PathLike, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                          dataset: str = "unwrapPhase", mask: np.ndarray | None = None,
                          reference: bool = True) -> TripletStats:
    """Per-triplet spatial mean/std of the wrapped closure phase (see :class:`TripletStats`)."""
    stack = as_stack(stack)
    return _scan(stack, max_memory, dataset, mask, reference)[1]


def write_num_nonzero_integer_closure(stack_path: str | os.PathLike, work_dir: str | os.PathLike,
                                      max_memory: float = DEFAULT_MAX_MEMORY_GB, dataset: str = "unwrapPhase",
                                      mask: np.ndarray | None | str = "auto", num_worker: int = 1,
                                      cluster: str | None = None) -> tuple[Path, Path]:
    """Write ``numTriNonzeroIntAmbiguity.h5`` (dataset ``mask``) and the triplet statistics text file.

    ``mask="auto"`` uses the ``waterMask`` of the geometry file beside the stack, if any (water has
    no meaningful closure); ``None`` uses every pixel.  One pass over the stack gives both outputs;
    its blocks run here, in a pool of ``num_worker`` processes or on dask (``cluster``).
    """
    stack = IfgramStack(stack_path)
    if stack.pairs.keep.sum() < 3:
        raise DataError(f"{stack.path}: fewer than 3 kept pairs; no triplet to form a closure phase")
    if isinstance(mask, str):
        mask = geometry_water_mask(stack.path, work_dir, stack.shape)
    count, stats, _ = _scan(stack, max_memory, dataset, mask, True, num_worker, cluster)
    return write_closure_outputs(stack, work_dir, dataset, count, stats)


def write_closure_outputs(stack: IfgramStack, work_dir: str | os.PathLike, dataset: str, count: np.ndarray,
                          stats: TripletStats) -> tuple[Path, Path]:
    """Write ``numTriNonzeroIntAmbiguity.h5`` and the triplet statistics of a scan (:func:`scan_closures`)."""
    n_tri = len(stats.date12)
    if n_tri == 0:
        logger.warning("%s: the kept network has no triplet; T_int is 0 everywhere", stack.path.name)
    meta = stack.metadata.for_product("mask", "1")
    out = write_map(Path(work_dir) / NUM_TRI_FILE, meta, "mask", {NUM_TRI_DATASET: count}, unit="1",
                    NUM_TRIPLET=n_tri, DATASET_NAME=dataset,  # START/END_DATE: the stack's dates, as MintPy's
                    START_DATE=stack.pairs.date_strings[0], END_DATE=stack.pairs.date_strings[-1])
    txt = Path(work_dir) / TRIPLET_STATS_FILE
    atomic_write_text(txt, stats.to_text())
    logger.info("wrote %s (%d triplets; %d pixels with a non-zero integer closure) and %s",
                out, n_tri, int((count > 0).sum()), txt.name)
    return out, txt


# ---------------------------------------------------------------------------- integer L1 solver
DEFAULT_ALPHA = 1e-2  # weight of ‖U‖₁ against the closure misfit (as Yunjun et al. 2019)


def solve_integer_ambiguity(C: sp.spmatrix | np.ndarray, c_int: np.ndarray, alpha: float = DEFAULT_ALPHA,
                            batch: int = 32, time_limit: float | None = None, num_worker: int = 1,
                            cluster: str | None = None) -> np.ndarray:
    """Integer corrections U (n_pattern, m) with ``C·U ≈ −c_int``, fewest cycles.

    Solves, for every row c of ``c_int`` (n_pattern, n_tri), the sparse mixed-integer program::

        min  ‖C·U + c‖₁ + α‖U‖₁     U ∈ ℤ^m

    (L1 misfit so the problem stays linear; α small makes cancelling the integer closures come
    first and, among the U that do, the one with the fewest 2π cycles win — a single erroneous pair
    rather than a combination of others).  Written with U = p − q, misfit = s − t (all ≥ 0)::

        min  Σ(p+q) + (1/α)·Σ(s+t)   s.t.  C·p − C·q + s − t = −c

    Batching: identical closure patterns are solved once (within a region most sampled pixels share
    one pattern, so this is the big saving), and the distinct non-zero patterns are stacked into one
    block-diagonal sparse MILP of up to ``batch`` blocks per HiGHS call, which pays HiGHS's set-up
    cost once per batch rather than per pixel.  With integer weights the objective is integral, so
    a zero MIP gap still terminates quickly and each block is exactly optimal (a block-diagonal
    problem is optimal only if every block is).  The batches are fixed by ``batch`` alone and run
    here, in the pool (``num_worker``) or on dask (``cluster``): the same solutions wherever.

    Parameters
    ----------
    C : scipy.sparse matrix or numpy.ndarray
        ``(n_tri, m)`` triplet matrix (:func:`triplet_matrix`).
    c_int : numpy.ndarray
        ``(n_pattern, n_tri)`` integer closures (:func:`integer_ambiguity`), one row per pixel.
    alpha : float
        Weight of ‖U‖₁ against the misfit (``DEFAULT_ALPHA``).
    batch : int
        Distinct patterns per HiGHS call.
    time_limit : float, optional
        Seconds per HiGHS call.
    num_worker : int
        Processes solving batches at once (``mintpy.compute.numWorker``).
    cluster : str, optional
        ``"local"`` or a dask scheduler's address: the batches are dask tasks.

    Returns
    -------
    numpy.ndarray
        int64 ``(n_pattern, m)``: the cycles to add to each pair.

    Raises
    ------
    DataError
        HiGHS found no integer solution.
    """
    import scipy.sparse as sp

    from sbts.core.compute.scheduling import run_blocks

    C = sp.csr_matrix(C, dtype=np.float64)
    c_int = np.atleast_2d(np.asarray(c_int, np.int64))
    n_tri, m = C.shape
    if c_int.shape[1] != n_tri:
        raise ValueError(f"c_int has {c_int.shape[1]} columns for {n_tri} triplets")
    out = np.zeros((c_int.shape[0], m), np.int64)
    if n_tri == 0 or c_int.shape[0] == 0:
        return out
    patterns, inverse = np.unique(c_int, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    todo = np.flatnonzero(np.any(patterns != 0, axis=1))
    solved = np.zeros((patterns.shape[0], m), np.int64)
    problem = _AmbiguityMilp(C, max(1, int(round(1.0 / alpha))), time_limit)
    batches = [(start, patterns[todo[start:start + max(1, batch)]]) for start in range(0, todo.size, max(1, batch))]
    workers = num_worker if len(batches) > 1 else 1
    for (start, rows), values in run_blocks(batches, _batch_patterns, functools.partial(_solve_batch, problem),
                                            workers=workers, cluster=cluster if len(batches) > 1 else None):
        solved[todo[start:start + rows.shape[0]]] = values
    logger.debug("integer ambiguities: %d pixel(s), %d distinct closure pattern(s), %d solved by HiGHS in %d batch(es)",
                 c_int.shape[0], patterns.shape[0], todo.size, len(batches))
    out[:] = solved[inverse]
    return out


@dataclass(frozen=True)
class _AmbiguityMilp:
    """The MILP of :func:`solve_integer_ambiguity` for one triplet matrix (picklable: a batch may be
    solved in a pool worker or on dask)."""

    C: Any  # (n_tri, m) scipy CSR
    weight: int  # 1/α: the misfit's integer weight
    time_limit: float | None = None

    @functools.cached_property
    def _block(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """(constraint matrix, costs, integrality) of one pattern's problem: made once per process,
        tiled for each batch."""
        import scipy.sparse as sp

        n_tri, m = self.C.shape
        eye = sp.identity(n_tri, format="csr")
        block_A = sp.hstack([self.C, -self.C, eye, -eye], format="csr")
        cost1 = np.concatenate([np.ones(2 * m), np.full(2 * n_tri, float(self.weight))])
        integ1 = np.concatenate([np.ones(2 * m), np.zeros(2 * n_tri)])
        return block_A, cost1, integ1

    def solve(self, rows: np.ndarray) -> np.ndarray:
        """U (nb, m) of the closure patterns ``rows`` (nb, n_tri): one block-diagonal HiGHS call."""
        import scipy.sparse as sp
        from scipy.optimize import Bounds, LinearConstraint, milp

        n_tri, m = self.C.shape
        nb = rows.shape[0]
        block_A, cost1, integ1 = self._block
        nvar = 2 * m + 2 * n_tri
        options = {"mip_rel_gap": 0.0}
        if self.time_limit:
            options["time_limit"] = float(self.time_limit)
        A = sp.block_diag([block_A] * nb, format="csr")
        rhs = -rows.astype(np.float64).reshape(-1)
        res = milp(np.tile(cost1, nb), integrality=np.tile(integ1, nb),
                   bounds=Bounds(0, np.inf), constraints=LinearConstraint(A, rhs, rhs), options=options)
        if res.x is None:
            raise DataError(f"HiGHS found no integer solution for the closure ambiguities: {res.message}")
        x = np.round(res.x).reshape(nb, nvar)
        return (x[:, :m] - x[:, m:2 * m]).astype(np.int64)


def _batch_patterns(item: tuple[int, np.ndarray]) -> np.ndarray:
    """The "read" of a batch task: its closure patterns travel with it."""
    return item[1]


def _solve_batch(problem: _AmbiguityMilp, _item: tuple[int, np.ndarray], rows: np.ndarray) -> np.ndarray:
    return problem.solve(rows)


def ambiguity_objective(C: sp.spmatrix | np.ndarray, c: np.ndarray, U: np.ndarray,
                        alpha: float = DEFAULT_ALPHA) -> float:
    """The objective of :func:`solve_integer_ambiguity` (in its integer-weight scaling) for one U."""
    import scipy.sparse as sp

    w = max(1, int(round(1.0 / alpha)))
    C = sp.csr_matrix(C)
    return float(np.abs(U).sum() + w * np.abs(C @ U + c).sum())


__all__ = [
    "triplet_indices", "triplets", "triplet_matrix", "wrap", "integer_ambiguity", "closure_phase",
    "reference_phase", "num_nonzero_integer_closure", "triplet_closure_stats", "write_num_nonzero_integer_closure",
    "TripletStats", "solve_integer_ambiguity", "ambiguity_objective", "NUM_TRI_FILE", "NUM_TRI_DATASET",
    "TRIPLET_STATS_FILE", "Piggyback", "scan_closures", "write_closure_outputs",
]
