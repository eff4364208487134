"""Averages of the interferogram stack over the kept pairs, computed block by block.

These are the small maps the reference_point and quick_overview steps produce (MintPy layout):

- ``avgSpatialCoh.h5`` (dataset ``coherence``): temporal mean of the coherence of the kept pairs;
- ``avgPhaseVelocity.h5`` (dataset ``velocity``, m/year): the stacking velocity (Zebker et al. 1997),
  mean over kept pairs of ``(φ − φ_ref)·(−λ/4π)/Δt``;
- ``maskConnComp.h5`` (dataset ``mask``): pixels unwrapped (non-zero connected component) in every
  kept pair — the common connected-component mask.

Every function streams the stack in blocks sized from ``max_memory`` (GB), so memory stays bounded
whatever the stack size.  Zero ``unwrapPhase`` is MintPy's no-data value and is ignored like NaN.

The module also holds the small helpers that the network and reference steps share: finding the
geometry file next to a stack, and (re-exported from :mod:`sbts.core.io.masks`) reading a mask file.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.errors import DataError
from sbts.core.inversion.options import UPDATE_STORE_KEY
from sbts.core.inversion.refphase import reference_phase
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import open_h5
from sbts.core.io.masks import (
    geometry_water_mask,  # noqa: F401 - the steps' import
    read_mask_file,  # noqa: F401 - re-exported: the steps read masks from here
)
from sbts.core.io.products import (
    IfgramStack,
    as_stack,  # noqa: F401 - the steps' import
    write_map,
)
from sbts.core.io.progress import progress
from sbts.core.io.workdir import WorkDir, find_geometry
from sbts.core.model.dates import DAYS_PER_YEAR, format_date

logger = logging.getLogger(__name__)

AVG_COHERENCE_FILE = "avgSpatialCoh.h5"
STACKING_VELOCITY_FILE = "avgPhaseVelocity.h5"
CONNCOMP_MASK_FILE = "maskConnComp.h5"
WATER_MASK_FILE = "waterMask.h5"
_PHASE_DATASETS = ("unwrapPhase", "unwrapPhase_bridging", "unwrapPhase_phaseClosure",
                   "unwrapPhase_bridging_phaseClosure")


# ---------------------------------------------------------------------------- helpers
def kept_index(stack: IfgramStack) -> np.ndarray:
    """Indices of the kept pairs; a stack with none kept cannot give any average."""
    index = np.flatnonzero(stack.pairs.keep)
    if index.size == 0:
        raise DataError(f"{stack.path}: every interferogram is dropped (dropIfgram all False); "
                        "relax the mintpy.network.* rules and re-run modify_network")
    return index


def _read_kept(stack: IfgramStack, name: str, block: Block, index: np.ndarray) -> np.ndarray:
    # all kept: one contiguous read is much faster than a fancy-indexed one
    if index.size == len(stack.pairs):
        return stack.read(name, block)
    return stack.read(name, block, index=index)


def _blocks(stack: IfgramStack, name: str, num_layers: int, max_memory: float,
            extra_bytes: float = 0.0) -> list[Block]:
    itemsize = np.dtype(stack._dtypes[name]).itemsize
    # the read layers, plus about three float work arrays of the same size
    bytes_per_pixel = num_layers * (itemsize + 3 * 4) + extra_bytes
    return plan_blocks(stack.shape, bytes_per_pixel, max_memory, stack.chunk_shape(name))


def _nanmean_layers(data: np.ndarray, zero_is_nodata: bool) -> np.ndarray:
    """Mean over the first axis of the finite (and, if asked, non-zero) values; NaN where none.

    Layer by layer (one layer of temporaries, kept from layer to layer), float64 sums added in layer
    order, each value added only where it is valid (the same sums as adding 0 elsewhere).
    """
    total = np.zeros(data.shape[1:], np.float64)
    count = np.zeros(data.shape[1:], np.int32)
    valid = np.empty(data.shape[1:], bool)
    nonzero = np.empty(data.shape[1:], bool) if zero_is_nodata else None
    for k in range(data.shape[0]):
        layer = data[k].astype(np.float32, copy=False)
        np.isfinite(layer, out=valid)
        if nonzero is not None:
            np.not_equal(layer, 0, out=nonzero)
            valid &= nonzero
        np.add(total, layer, out=total, where=valid)
        count += valid
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)




def write_water_mask(stack_path: str | os.PathLike, work_dir: str | os.PathLike) -> Path | None:
    """``waterMask.h5`` (dataset ``waterMask``, True = land) in ``work_dir`` from the geometry file's
    ``waterMask``, as smallbaselineApp's modify_network step writes it for the later steps and tools
    that look for it there (network mask, unwrapping-error regions, view.py -m): pixels where the
    geometry's ``latitude`` or ``longitude`` is 0 (no data) are water too; the attributes are the
    geometry's with ``FILE_TYPE = waterMask``.  None (nothing written) when the geometry has no
    ``waterMask``; an existing file newer than the geometry is kept (update mode).
    """
    geom = find_geometry(stack_path, work_dir)
    if geom is None:
        return None
    with open_h5(geom) as f:
        if "waterMask" not in f:
            return None
        out = Path(work_dir) / WATER_MASK_FILE
        if out.exists() and out.stat().st_mtime_ns >= geom.stat().st_mtime_ns:
            logger.info("%s is newer than %s: kept", out.name, geom.name)
            return out
        water = np.asarray(f["waterMask"][()] != 0)
        for name in ("latitude", "longitude"):
            if name in f and f[name].shape == water.shape:
                water &= f[name][()] != 0
    from sbts.core.io.h5 import read_metadata

    meta = read_metadata(geom).for_product("waterMask", "1")
    path = write_map(out, meta, "waterMask", {"waterMask": water}, unit="1")
    logger.info("wrote %s from %s (%d of %d pixels land)", path, geom.name, int(water.sum()), water.size)
    return path


# ---------------------------------------------------------------------------- averages
def temporal_average(stack: IfgramStack | str | os.PathLike, dataset: str = "coherence",
                     max_memory: float = DEFAULT_MAX_MEMORY_GB, workers: int = 1,
                     cluster: str | None = None) -> np.ndarray:
    """Per-pixel nanmean of ``dataset`` over the kept pairs, (L, W) float32.

    For phase datasets zero counts as no-data (MintPy's convention); pixels without any valid value
    are NaN.  A pixel's mean is its own: the blocks may run in the pool or on dask (``workers``,
    ``cluster``) with the same result.
    """
    stack = as_stack(stack)
    stack._require(dataset)
    index = kept_index(stack)
    out = np.full(stack.shape, np.nan, np.float32)
    zero_nodata = dataset in _PHASE_DATASETS
    blocks = _blocks(stack, dataset, index.size, memory_per_task(max_memory, workers, cluster))
    results = run_blocks(blocks, functools.partial(_read_kept, stack, dataset, index=index),
                         functools.partial(_mean_block, zero_nodata), workers=workers, cluster=cluster)
    for block, mean in progress(results, f"average {dataset}", "block", total=len(blocks)):
        out[block.slices] = mean
    return out


def _mean_block(zero_nodata: bool, _block: Block, data: np.ndarray) -> np.ndarray:
    return _nanmean_layers(data, zero_nodata)


def write_average_coherence(stack_path: str | os.PathLike, work_dir: str | os.PathLike,
                            max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Write ``avgSpatialCoh.h5`` (dataset ``coherence``) into ``work_dir``."""
    stack = as_stack(stack_path)
    return write_coherence_map(stack, work_dir, temporal_average(stack, "coherence", max_memory))


def write_coherence_map(stack: IfgramStack, work_dir: str | os.PathLike, coh: np.ndarray) -> Path:
    """``avgSpatialCoh.h5`` of a mean coherence map over the kept pairs."""
    meta = stack.metadata.for_product("coherence", "1")
    path = write_map(Path(work_dir) / AVG_COHERENCE_FILE, meta, "coherence", {"coherence": coh}, unit="1",
                     NUM_IFGRAM_KEPT=int(stack.pairs.keep.sum()))
    logger.info("wrote %s (mean of %d kept pairs)", path, int(stack.pairs.keep.sum()))
    return path


def stacking_velocity(stack: IfgramStack | str | os.PathLike, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                      dataset: str = "unwrapPhase", num_worker: int = 1, cluster: str | None = None) -> np.ndarray:
    """Stacking velocity (m/year): mean over kept pairs of ``(φ − φ_ref)·(−λ/4π)/Δt``.

    Δt in years (days/365.25).  The reference phase is taken at REF_Y/REF_X when the stack has them
    (pairs with no data there are left out, since they cannot be referenced); without a reference
    the raw phase is used.  Zero/NaN phase is no-data.  Positive = toward the satellite, as MintPy.
    """
    stack = as_stack(stack)
    index, rate = _stacking_rate(stack, dataset)
    out = np.full(stack.shape, np.nan, np.float32)
    # the read layers, the next block's read ahead, and the work arrays
    blocks = _blocks(stack, dataset, index.size, memory_per_task(max_memory, num_worker, cluster),
                     extra_bytes=index.size * 4)
    logger.info("stacking velocity of %d pairs, %d block(s)%s", index.size, len(blocks), describe(num_worker, cluster))
    results = run_blocks(blocks, functools.partial(_read_kept, stack, dataset, index=index), rate,
                         workers=num_worker, cluster=cluster)
    for block, values in progress(results, "stacking velocity", "block", total=len(blocks)):
        out[block.slices] = values
    return out


def _stacking_rate(stack: IfgramStack, dataset: str):
    """(pairs, compute(block, phase) -> the block's stacking velocity) of :func:`stacking_velocity`."""
    index, ref_phase, scale = _stacking_terms(stack, dataset)
    return index, functools.partial(_mean_rate, ref_phase, scale, _time_order(stack, index))


def _time_order(stack: IfgramStack, index: np.ndarray) -> np.ndarray:
    """The order in which the rates of pairs ``index`` are added: by second date, then first.

    Acquisitions appended to a stack add pairs whose second date is later than every old one, so in
    this order they come last wherever the (date1, date2)-sorted stack puts them: an update continues
    the stored sums and adds exactly what a full scan adds, in the same order (the same bits)."""
    i1, i2 = stack.pairs.indices()
    return np.lexsort((i1[index], i2[index]))


def _stacking_terms(stack: IfgramStack, dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rate pairs (kept, referenced), their reference phase and their factor to m/year (float32)."""
    stack._require(dataset)
    wavelength = stack.metadata.radar.require_wavelength()
    index = kept_index(stack)
    ref = reference_phase(stack, dataset, index, "drop")  # pairs without data there are left out
    if ref is None:
        logger.info("%s has no REF_Y/REF_X: stacking velocity of the unreferenced phase", stack.path.name)
        ref_phase = np.zeros(index.size)
    else:
        index, ref_phase = index[ref.usable], ref.values[ref.usable]
    days = stack.pairs.temporal_baseline_days()[index].astype(np.float64)
    scale = (-wavelength / (4 * np.pi) / (days / DAYS_PER_YEAR)).astype(np.float32)
    return index, ref_phase.astype(np.float32), scale


def _mean_rate(ref_phase: np.ndarray, scale: np.ndarray, order: np.ndarray, _block: Block,
               phase: np.ndarray) -> np.ndarray:
    """Mean over pairs of the referenced phase rate (m/year) of one block; no-data (0, NaN) left out."""
    total, count = _add_rates(ref_phase, scale, order, phase, np.zeros(phase.shape[1:], np.float64),
                              np.zeros(phase.shape[1:], np.int32))
    return _rate_mean(total, count)


def _rate_sums(ref_phase: np.ndarray, scale: np.ndarray, order: np.ndarray, start, block: Block,
               phase: np.ndarray) -> np.ndarray:
    """The rate total and count of one block (2, rows, cols) float64, continued from ``start(block)``
    (the stored sums of an update) or from zero."""
    if start is None:
        total, count = np.zeros(phase.shape[1:], np.float64), np.zeros(phase.shape[1:], np.float64)
    else:
        total, count = start(block)
    return np.stack(_add_rates(ref_phase, scale, order, phase, total, count))


def _rate_mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def _add_rates(ref_phase: np.ndarray, scale: np.ndarray, order: np.ndarray, phase: np.ndarray,
               total: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # pair by pair over the block's pixels: the temporaries are one layer each, kept from pair to
    # pair, and the float64 sums are added in ``order`` (:func:`_time_order`; an update continues them)
    rate = np.empty(phase.shape[1:], np.float32)
    ok = np.empty(phase.shape[1:], bool)
    other = np.empty(phase.shape[1:], bool)
    for k in order:
        layer = phase[k].astype(np.float32, copy=False)
        np.subtract(layer, ref_phase[k], out=rate)
        rate *= scale[k]
        np.isfinite(rate, out=ok)
        np.not_equal(layer, 0, out=other)
        ok &= other  # no-data phase (0, NaN) and overflows left out
        np.add(total, rate, out=total, where=ok)  # as _nanmean_layers: the same sums as adding 0 elsewhere
        count += ok
    return total, count


def write_stacking_velocity(stack_path: str | os.PathLike, work_dir: str | os.PathLike,
                            max_memory: float = DEFAULT_MAX_MEMORY_GB, dataset: str = "unwrapPhase",
                            num_worker: int = 1, cluster: str | None = None) -> Path:
    """Write ``avgPhaseVelocity.h5`` (dataset ``velocity``, m/year) into ``work_dir``."""
    stack = as_stack(stack_path)
    return _write_velocity(stack, work_dir, stacking_velocity(stack, max_memory, dataset, num_worker, cluster))


def _write_velocity(stack: IfgramStack, work_dir: str | os.PathLike, velocity: np.ndarray) -> Path:
    kept = stack.pairs.kept()
    start, end = format_date(kept.dates[0]), format_date(kept.dates[-1])
    meta = stack.metadata.for_product("velocity", "m/year")
    path = write_map(Path(work_dir) / STACKING_VELOCITY_FILE, meta, "velocity", {"velocity": velocity},
                     unit="m/year", START_DATE=start, END_DATE=end, DATE12=f"{start}_{end}")
    logger.info("wrote %s", path)
    return path


def valid_in_all_kept(stack: IfgramStack | str | os.PathLike, dataset: str = "unwrapPhase",
                      max_memory: float = DEFAULT_MAX_MEMORY_GB, index: np.ndarray | None = None,
                      workers: int = 1, cluster: str | None = None) -> np.ndarray:
    """True where ``dataset`` is finite and non-zero in every kept pair (or in the pairs ``index``), (L, W) bool.

    The blocks may run in the pool or on dask (``workers``, ``cluster``)."""
    stack = as_stack(stack)
    stack._require(dataset)
    index = kept_index(stack) if index is None else index
    out = np.zeros(stack.shape, bool)
    blocks = _blocks(stack, dataset, index.size, memory_per_task(max_memory, workers, cluster))
    results = run_blocks(blocks, functools.partial(_read_kept, stack, dataset, index=index), _coverage_block,
                         workers=workers, cluster=cluster)
    for block, ok in progress(results, f"coverage of {dataset}", "block", total=len(blocks)):
        out[block.slices] = ok
    return out


def _coverage_block(block: Block, data: np.ndarray) -> np.ndarray:
    ok = np.ones(block.shape, bool)
    for layer in data:  # pair by pair: one layer of temporaries
        ok &= layer != 0
        if layer.dtype.kind == "f":
            ok &= np.isfinite(layer)
    return ok


def connected_component_mask(stack: IfgramStack | str | os.PathLike, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                             workers: int = 1, cluster: str | None = None) -> np.ndarray:
    """Common connected-component mask: connectComponent ≠ 0 in every kept pair.

    Without a ``connectComponent`` dataset, unwrapPhase finite and ≠ 0 in every kept pair instead
    (the same meaning: the pixel was unwrapped everywhere).
    """
    stack = as_stack(stack)
    if stack.has("connectComponent"):
        return valid_in_all_kept(stack, "connectComponent", max_memory, workers=workers, cluster=cluster)
    logger.info("%s has no connectComponent: mask = unwrapPhase non-zero in every kept pair", stack.path.name)
    return valid_in_all_kept(stack, "unwrapPhase", max_memory, workers=workers, cluster=cluster)


def write_conncomp_mask(stack_path: str | os.PathLike, work_dir: str | os.PathLike,
                        max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Write ``maskConnComp.h5`` (dataset ``mask``, bool) into ``work_dir``."""
    stack = as_stack(stack_path)
    return write_conncomp_map(stack, work_dir, connected_component_mask(stack, max_memory))


def write_conncomp_map(stack: IfgramStack, work_dir: str | os.PathLike, mask: np.ndarray) -> Path:
    """``maskConnComp.h5`` of a mask of the pixels unwrapped in every kept pair."""
    if not mask.any():
        logger.warning("maskConnComp: no pixel is unwrapped in every kept pair")
    meta = stack.metadata.for_product("mask", "1")
    path = write_map(Path(work_dir) / CONNCOMP_MASK_FILE, meta, "mask", {"mask": mask}, unit="1")
    logger.info("wrote %s (%d of %d pixels True)", path, int(mask.sum()), mask.size)
    return path


@dataclass(frozen=True)
class OverviewOptions:
    """quick_overview's options: ``update_store`` (``sbts.networkInversion.updateStore``, the switch of
    every update store) keeps its sums in ``quickOverviewUpdate.h5`` for appended acquisitions."""

    update_store: bool = False

    @classmethod
    def from_template(cls, template) -> OverviewOptions:
        return cls(update_store=template.get_bool(UPDATE_STORE_KEY))


def quick_overview(workdir: WorkDir, compute: ComputeOptions, update_store: bool = False,
                   force: bool = False) -> list[Path]:
    """The quick_overview step of ``sbts run``: the stacking velocity and, with 3 kept pairs or more,
    the number of non-zero integer closure phases (MintPy's quick look at the unwrapping).

    Both come from one read of the phase: the closure scan reads the union of its pairs and the
    stacking velocity's and computes the velocity of each block on the way.  With ``update_store``
    the sums behind both are kept (:mod:`.overview_update`), and after appended acquisitions only
    the new pairs' rates and the new triplets are added to them (``force``: scan every pair).
    """
    from sbts.core.inversion.closure import Piggyback, scan_closures, triplet_indices, write_closure_outputs
    from sbts.core.inversion.engine import mask_token
    from sbts.core.steps import overview_update as ou

    stack = IfgramStack(workdir.stack)
    dataset = "unwrapPhase"
    if stack.pairs.keep.sum() < 3:
        logger.info("fewer than 3 kept pairs: no closure phase to count")
        ou.drop_store(workdir.root)
        return [write_stacking_velocity(stack, workdir.root, compute.max_memory, num_worker=compute.num_worker,
                                        cluster=compute.cluster)]
    mask = geometry_water_mask(stack.path, workdir.root, stack.shape)
    index, ref_phase, scale = _stacking_terms(stack, dataset)
    ref = stack.metadata.reference
    terms = ou.Terms(index, ref_phase, scale, triplet_indices(stack.pairs), {
        "dataset": dataset, "ref_yx": [ref.y, ref.x] if ref.has_point else None,
        "wavelength": stack.metadata.radar.require_wavelength(), "mask": mask_token(mask)})
    plan = ou.plan(workdir.root, stack, terms) if update_store and not force else None
    tri_rows = np.arange(terms.tri.shape[0]) if plan is None else plan.tri_rows
    rate_rows = np.arange(index.size) if plan is None else plan.rate_rows
    start = None if plan is None else functools.partial(ou.stored_sums, plan)
    if plan is not None:
        logger.info("quick_overview: adding %d new pair rate(s) and %d new triplet(s) to the kept sums",
                    rate_rows.size, tri_rows.size)
    # without the store, the mean rate of each block (4 bytes a pixel); with it, the sums (16)
    order = _time_order(stack, index[rate_rows])
    rates = (functools.partial(_rate_sums, ref_phase[rate_rows], scale[rate_rows], order, start) if update_store
             else functools.partial(_mean_rate, ref_phase, scale, order))
    count, stats, sums = scan_closures(stack, compute.max_memory, dataset, mask, num_worker=compute.num_worker,
                                       cluster=compute.cluster, extra=Piggyback(index[rate_rows], rates),
                                       tri=terms.tri[tri_rows])
    if sums is None and plan is not None and not tri_rows.size:  # nothing new: the stored sums as they are
        sums = np.stack(ou.stored_sums(plan, Block(0, stack.shape[0], 0, stack.shape[1])))
    if sums is None:  # no triplet at all: the scan read nothing
        ou.drop_store(workdir.root)
        velocity = stacking_velocity(stack, compute.max_memory, dataset, compute.num_worker, compute.cluster)
        return [_write_velocity(stack, workdir.root, velocity),
                *write_closure_outputs(stack, workdir.root, dataset, count, stats)]
    if plan is not None:
        old_count, old_sums = ou.stored_closure(plan)
        count = count + old_count
        stats = _merged_stats(stack, terms, plan, stats, old_sums)
    velocity = _rate_mean(sums[0], sums[1]) if update_store else sums
    outputs = [_write_velocity(stack, workdir.root, velocity),
               *write_closure_outputs(stack, workdir.root, dataset, count, stats)]
    if update_store:
        ou.write_store(workdir.root, stack, terms, sums[0], sums[1], count, stats.sums)
    else:
        ou.drop_store(workdir.root)
    return outputs


def _merged_stats(stack: IfgramStack, terms, plan, new, old_sums):
    """The statistics of every kept triplet, in the full scan's order, from the stored sums of the
    old triplets and the scanned sums of the new ones."""
    from sbts.core.inversion.closure import TripletStats

    n_tri = terms.tri.shape[0]
    merged = [np.zeros(n_tri, np.int64), np.zeros(n_tri, np.int64), np.zeros(n_tri), np.zeros(n_tri)]
    for out, old, fresh in zip(merged, old_sums, new.sums):
        out[plan.old_rows] = old
        out[plan.tri_rows] = fresh
    names = stack.pairs.date12
    return TripletStats.from_sums(tuple((names[a], names[b], names[c]) for a, b, c in terms.tri), *merged)


__all__ = ["quick_overview",
    "temporal_average", "write_average_coherence", "stacking_velocity", "write_stacking_velocity",
    "connected_component_mask", "write_conncomp_mask", "valid_in_all_kept", "read_mask_file", "write_water_mask",
    "geometry_water_mask", "as_stack", "kept_index",
    "AVG_COHERENCE_FILE", "STACKING_VELOCITY_FILE", "CONNCOMP_MASK_FILE", "WATER_MASK_FILE",
]
