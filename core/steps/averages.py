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
from pathlib import Path

import numpy as np

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.errors import DataError
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

    Layer by layer (one layer of temporaries), float64 sums added in layer order.
    """
    total = np.zeros(data.shape[1:], np.float64)
    count = np.zeros(data.shape[1:], np.int32)
    for k in range(data.shape[0]):
        layer = data[k].astype(np.float32, copy=False)
        valid = np.isfinite(layer)
        if zero_is_nodata:
            valid &= layer != 0
        total += np.where(valid, layer, np.float32(0))
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
                     max_memory: float = DEFAULT_MAX_MEMORY_GB) -> np.ndarray:
    """Per-pixel nanmean of ``dataset`` over the kept pairs, (L, W) float32.

    For phase datasets zero counts as no-data (MintPy's convention); pixels without any valid value
    are NaN.
    """
    stack = as_stack(stack)
    stack._require(dataset)
    index = kept_index(stack)
    out = np.full(stack.shape, np.nan, np.float32)
    zero_nodata = dataset in _PHASE_DATASETS
    for block in progress(_blocks(stack, dataset, index.size, max_memory), f"average {dataset}", "block"):
        out[block.slices] = _nanmean_layers(_read_kept(stack, dataset, block, index), zero_nodata)
    return out


def write_average_coherence(stack_path: str | os.PathLike, work_dir: str | os.PathLike,
                            max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Write ``avgSpatialCoh.h5`` (dataset ``coherence``) into ``work_dir``."""
    stack = as_stack(stack_path)
    coh = temporal_average(stack, "coherence", max_memory)
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
    return index, functools.partial(_mean_rate, ref_phase.astype(np.float32), scale)


def _mean_rate(ref_phase: np.ndarray, scale: np.ndarray, _block: Block, phase: np.ndarray) -> np.ndarray:
    """Mean over pairs of the referenced phase rate (m/year) of one block; no-data (0, NaN) left out."""
    # pair by pair over the block's pixels: the temporaries are one layer, and the float64 sums are
    # added in pair order, as a sum over the pair axis would add them
    total = np.zeros(phase.shape[1:], np.float64)
    count = np.zeros(phase.shape[1:], np.int32)
    for k in range(phase.shape[0]):
        layer = phase[k].astype(np.float32, copy=False)
        rate = (layer - ref_phase[k]) * scale[k]
        ok = np.isfinite(rate) & (layer != 0)  # no-data phase (0, NaN) and overflows left out
        total += np.where(ok, rate, np.float32(0))
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


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
                      max_memory: float = DEFAULT_MAX_MEMORY_GB) -> np.ndarray:
    """True where ``dataset`` is finite and non-zero in every kept pair (L, W) bool."""
    stack = as_stack(stack)
    stack._require(dataset)
    index = kept_index(stack)
    out = np.zeros(stack.shape, bool)
    for block in progress(_blocks(stack, dataset, index.size, max_memory), f"coverage of {dataset}", "block"):
        data = _read_kept(stack, dataset, block, index)
        ok = np.ones(block.shape, bool)
        for layer in data:  # pair by pair: one layer of temporaries
            ok &= layer != 0
            if layer.dtype.kind == "f":
                ok &= np.isfinite(layer)
        out[block.slices] = ok
    return out


def connected_component_mask(stack: IfgramStack | str | os.PathLike, max_memory: float = DEFAULT_MAX_MEMORY_GB) -> np.ndarray:
    """Common connected-component mask: connectComponent ≠ 0 in every kept pair.

    Without a ``connectComponent`` dataset, unwrapPhase finite and ≠ 0 in every kept pair instead
    (the same meaning: the pixel was unwrapped everywhere).
    """
    stack = as_stack(stack)
    if stack.has("connectComponent"):
        return valid_in_all_kept(stack, "connectComponent", max_memory)
    logger.info("%s has no connectComponent: mask = unwrapPhase non-zero in every kept pair", stack.path.name)
    return valid_in_all_kept(stack, "unwrapPhase", max_memory)


def write_conncomp_mask(stack_path: str | os.PathLike, work_dir: str | os.PathLike,
                        max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Write ``maskConnComp.h5`` (dataset ``mask``, bool) into ``work_dir``."""
    stack = as_stack(stack_path)
    mask = connected_component_mask(stack, max_memory)
    if not mask.any():
        logger.warning("maskConnComp: no pixel is unwrapped in every kept pair")
    meta = stack.metadata.for_product("mask", "1")
    path = write_map(Path(work_dir) / CONNCOMP_MASK_FILE, meta, "mask", {"mask": mask}, unit="1")
    logger.info("wrote %s (%d of %d pixels True)", path, int(mask.sum()), mask.size)
    return path


def quick_overview(workdir: WorkDir, compute: ComputeOptions) -> list[Path]:
    """The quick_overview step of ``sbts run``: the stacking velocity and, with 3 kept pairs or more,
    the number of non-zero integer closure phases (MintPy's quick look at the unwrapping).

    Both come from one read of the phase: the closure scan reads the union of its pairs and the
    stacking velocity's and computes the velocity of each block on the way.
    """
    from sbts.core.inversion.closure import Piggyback, scan_closures, write_closure_outputs

    stack = IfgramStack(workdir.stack)
    dataset = "unwrapPhase"
    if stack.pairs.keep.sum() < 3:
        logger.info("fewer than 3 kept pairs: no closure phase to count")
        return [write_stacking_velocity(stack, workdir.root, compute.max_memory, num_worker=compute.num_worker,
                                        cluster=compute.cluster)]
    index, rate = _stacking_rate(stack, dataset)
    count, stats, velocity = scan_closures(
        stack, compute.max_memory, dataset, geometry_water_mask(stack.path, workdir.root, stack.shape),
        num_worker=compute.num_worker, cluster=compute.cluster, extra=Piggyback(index, rate))
    if velocity is None:  # no triplet: the scan read nothing
        velocity = stacking_velocity(stack, compute.max_memory, dataset, compute.num_worker, compute.cluster)
    return [_write_velocity(stack, workdir.root, velocity),
            *write_closure_outputs(stack, workdir.root, dataset, count, stats)]


__all__ = ["quick_overview",
    "temporal_average", "write_average_coherence", "stacking_velocity", "write_stacking_velocity",
    "connected_component_mask", "write_conncomp_mask", "valid_in_all_kept", "read_mask_file", "write_water_mask",
    "geometry_water_mask", "as_stack", "kept_index",
    "AVG_COHERENCE_FILE", "STACKING_VELOCITY_FILE", "CONNCOMP_MASK_FILE", "WATER_MASK_FILE",
]
