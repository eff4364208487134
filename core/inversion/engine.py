"""``sbts invert``: the interferogram stack → phase time series (SBAS, weighted least squares).

This module owns the I/O and the bookkeeping; the numerics are in :mod:`sbts.core.inversion.kernel` (batched
solves over all pixels of a block) and :mod:`sbts.core.inversion.weights`.  It reproduces MintPy's
``ifgram_inversion.py`` numbers (see docs/inversion.md):

1. kept pairs only; the phase of every pair is referenced to the reference pixel where it is non-zero;
2. zero phase is no data; optionally pairs with coherence (or connected component) below
   ``maskThreshold`` are masked per pixel;
3. per pixel, its own valid pairs are inverted (weights from coherence for ``var``/``fim``/``coh``);
   a pixel where some date has fewer than ``minRedundancy`` pairs stays empty;
4. displacement = −λ/(4π)·phase (metres, positive toward the satellite), first date = 0;
5. temporal coherence (Pepe & Lanari 2006) and the number of pairs used are written beside, and
   ``maskTempCoh.h5`` = temporal coherence ≥ ``minTempCoh`` (excluding shadow).

Blocks are full-width strips sized from ``--max-memory``; they are solved in this process, in a
pool of processes, or on a dask.distributed cluster (:mod:`sbts.core.compute.scheduling`), with
identical results.  Finished blocks are recorded in the partial outputs, so an interrupted run
continues where it stopped.

:func:`invert_network` runs in four named stages: :func:`_prepare_inputs` (checks, kept pairs,
reference point and phase, land mask, signature), :func:`_plan_blocks` (the per-block task and the
blocks under the memory budget), :func:`_solve_blocks` (every block not yet done, written as it
arrives) and :func:`_finish_outputs` (reference pixel, ``maskTempCoh``, the reliability check).
The options are :class:`~sbts.core.inversion.options.InversionOptions`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.config.template import Template
from sbts.core.errors import DataError, InputError, TemplateError
from sbts.core.inversion.options import (  # noqa: F401 - re-exported: the engine's options
    MASK_DATASETS,
    UNWRAP_ERROR_DATASETS,
    WEIGHT_FUNCS,
    InversionOptions,
)
from sbts.core.inversion.refphase import reference_phase
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import H5Writer, check_distinct, check_free_space, read_attrs, write_guard
from sbts.core.io.lock import output_locks, private_name, remove_orphans
from sbts.core.io.masks import read_mask_file
from sbts.core.io.products import Geometry, IfgramStack, TimeSeriesWriter
from sbts.core.io.progress import progress
from sbts.core.io.workdir import find_geometry
from sbts.core.model.metadata import Metadata
from sbts.core.model.pairs import Pairs

logger = logging.getLogger(__name__)

SIGNATURE_ATTR = "SBTS_INVERSION_SIGNATURE"
MASK_SCRATCH = ".sbts_invert_mask"  # + .<pid>.npy: the land mask the workers read, private to the run


@dataclass(frozen=True)
class InversionOutputs:
    """The files of one inversion.

    Parameters
    ----------
    timeseries, temporal_coherence, num_inv_ifgram : pathlib.Path
        ``timeseries.h5``, ``temporalCoherence.h5``, ``numInvIfgram.h5`` (or other names: the
        ionosphere stack's ``ion.h5``, ``temporalCoherenceIon.h5``, ``numInvIon.h5``).
    mask_temp_coh : pathlib.Path, optional
        ``maskTempCoh.h5``; ``None``: neither this mask nor the reliability check (minNumPixel),
        as for a stack inverted only to be removed from the phase (the ionosphere).
    skipped : bool
        The outputs were current (update mode).
    num_reliable_pixels : int
        Pixels of ``maskTempCoh`` (0 when not made).
    """

    timeseries: Path
    temporal_coherence: Path
    num_inv_ifgram: Path
    mask_temp_coh: Path | None
    skipped: bool = False
    num_reliable_pixels: int = 0
    num_gap: Path | None = None  # numGap.h5, written with the NSBAS option (sbts.nsbas)
    decor_cov: Path | None = None  # timeseriesDecorCov.h5, written with calc_cov

    @property
    def paths(self) -> tuple[Path, ...]:
        """The files written (the mask only when made; numGap.h5 and timeseriesDecorCov.h5 when asked for)."""
        paths = (self.timeseries, self.temporal_coherence, self.num_inv_ifgram, self.mask_temp_coh,
                 self.num_gap, self.decor_cov)
        return tuple(p for p in paths if p is not None)


@dataclass(frozen=True)
class _BlockTask:
    """Everything a worker needs to solve one block (picklable, no open files)."""

    stack_path: str
    obs_dataset: str
    kept_index: tuple[int, ...]
    date1_index: tuple[int, ...]
    date2_index: tuple[int, ...]
    tbase: tuple[float, ...]
    ref_phase: tuple[float, ...] | None
    weight_func: str
    looks: int
    min_norm_velocity: bool
    min_redundancy: float
    mask_dataset: str | None
    mask_threshold: float
    phase2range: float
    pixel_mask_path: str | None = None  # .npy of the (L, W) bool mask of pixels to solve
    residual_norm: str = "L2"
    nsbas: bool = False
    nsbas_gamma: float = 1e-4
    nsbas_model: str = "linear"
    calc_cov: bool = False
    robust: float | None = None  # threshold (rad) of the screened least squares, None: off
    # (frozen, start, end) of the exact update's store, made as each block is solved (None: no store)
    store_layout: tuple[int, int, int] | None = None
    extra: dict = field(default_factory=dict)


def _pixel_mask_for(task: _BlockTask, block: Block) -> np.ndarray | None:
    if task.pixel_mask_path is None:
        return None
    mm = np.load(task.pixel_mask_path, mmap_mode="r")
    return np.array(mm[block.rows, block.cols])


@dataclass
class _BlockInputs:
    """What :func:`read_block` read for one block: phase (NaN = no data), coherence, land mask."""

    phase: np.ndarray  # (pairs, pixels) float32, referenced
    coherence: np.ndarray | None  # (pairs, pixels) float32, when weighting needs it
    pixel_mask: np.ndarray | None  # (rows, cols) bool, pixels to solve


def _datasets_read(task: _BlockTask) -> list[str]:
    """The stack datasets :func:`read_block` reads for this task."""
    names = [task.obs_dataset]
    if task.weight_func != "no" or task.mask_dataset == "coherence" or task.calc_cov:
        names.append("coherence")
    if task.mask_dataset == "connectComponent":
        names.append("connectComponent")
    return names


def read_block(task: _BlockTask, block: Block) -> _BlockInputs:
    """Read (and reference) the inputs of one block: the I/O half of :func:`solve_block`."""
    stack = IfgramStack(task.stack_path)
    idx = np.asarray(task.kept_index)
    phase = stack.read(task.obs_dataset, block, idx).reshape(len(idx), -1).astype(np.float32, copy=False)
    invalid = phase == 0  # MintPy: zero phase is no data (NaN stays NaN through the subtraction)
    if task.ref_phase is not None:
        phase -= np.asarray(task.ref_phase, np.float32)[:, None]
    np.copyto(phase, np.float32(np.nan), where=invalid)
    del invalid
    coherence = None
    if "coherence" in _datasets_read(task):
        coherence = stack.read("coherence", block, idx).reshape(len(idx), -1).astype(np.float32, copy=False)
    if task.mask_dataset == "coherence":
        assert coherence is not None  # read above: the coherence mask needs it
        np.copyto(phase, np.float32(np.nan), where=~(coherence >= task.mask_threshold))
    elif task.mask_dataset == "connectComponent":
        cc = stack.read("connectComponent", block, idx).reshape(len(idx), -1)
        np.copyto(phase, np.float32(np.nan), where=cc == 0)
    if task.weight_func == "no" and not task.calc_cov:
        coherence = None
    return _BlockInputs(phase, coherence, _pixel_mask_for(task, block))


def solve_block(task: _BlockTask, block: Block, inputs: _BlockInputs | None = None
                ) -> tuple[Block, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, Any]:
    """Read (unless ``inputs`` is given) and invert one block.

    Returns (block, timeseries in metres, temporal coherence, number of pairs used, number of
    network gaps, time-series covariance (n, n, rows, cols) in m² or None, the exact-update store's
    part of the block (:class:`~sbts.core.inversion.incremental.StoreBlock`) or None).
    """
    from sbts.core.inversion.kernel import NsbasModel, invert_block

    if inputs is None:
        inputs = read_block(task, block)
    phase, coherence, pmask = inputs.phase, inputs.coherence, inputs.pixel_mask
    del inputs
    h, w = block.shape
    n = len(task.tbase)
    # pixels outside the land mask are not solved; all-NaN pixels come back empty from the solver
    cols = None if pmask is None or pmask.all() else np.flatnonzero(pmask.reshape(-1))
    if cols is not None:
        phase = phase[:, cols]
        coherence = None if coherence is None else coherence[:, cols]
    weight = variance = None
    if (task.weight_func != "no" or task.calc_cov) and phase.shape[1]:
        from sbts.core.inversion.weights import coherence_to_weight_fast

        assert coherence is not None  # read_block reads it whenever the pairs are weighted
        if task.weight_func != "no":
            weight = coherence_to_weight_fast(coherence, task.weight_func, task.looks)
        if task.calc_cov:  # σ² of each pair: the inverse of the var weight (same floor and cap)
            variance = 1.0 / coherence_to_weight_fast(coherence, "var", task.looks)
    del coherence
    store = None
    if phase.shape[1] == 0:
        res_ts, res_tcoh, res_num = np.zeros((n, 0), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int16)
        res_gap = np.zeros(0, np.int16)
        res_cov = np.zeros((n, n, 0), np.float32) if task.calc_cov else None
    else:
        nsbas = NsbasModel(task.nsbas_gamma, task.nsbas_model) if task.nsbas else None
        res = invert_block(phase, np.asarray(task.date1_index), np.asarray(task.date2_index),
                           np.asarray(task.tbase), weight=weight, min_norm_velocity=task.min_norm_velocity,
                           min_redundancy=task.min_redundancy, residual_norm=task.residual_norm, nsbas=nsbas,
                           variance=variance, robust=task.robust, float64=task.store_layout is not None)
        res_ts, res_tcoh, res_num = res.timeseries, res.temporal_coherence, res.num_inv_ifgram
        res_gap = res.num_gap if res.num_gap is not None else np.zeros(res_num.shape, np.int16)
        if task.store_layout is not None:
            from sbts.core.inversion.incremental import store_block

            store = store_block(phase, weight, res_ts, res_num, res_gap, task.date1_index, task.date2_index,
                                task.store_layout)
            res_ts = res_ts.astype(np.float32)
        res_ts *= np.float32(task.phase2range)
        res_cov = res.covariance
        if res_cov is not None:
            res_cov *= np.float32(task.phase2range**2)
    cov: np.ndarray | None = None
    if task.calc_cov:
        assert res_cov is not None
        if cols is None:
            cov = res_cov.reshape(n, n, h, w)
        else:
            full = np.full((n, n, h * w), np.nan, np.float32)
            full[:, :, cols] = res_cov
            cov = full.reshape(n, n, h, w)
    if cols is None:
        ts, tcoh, num, gap = res_ts, res_tcoh, res_num, res_gap
    else:
        ts = np.zeros((n, h * w), np.float32)
        tcoh = np.zeros(h * w, np.float32)
        num = np.zeros(h * w, np.int16)
        gap = np.zeros(h * w, np.int16)
        ts[:, cols], tcoh[cols], num[cols], gap[cols] = res_ts, res_tcoh, res_num, res_gap
    if task.store_layout is not None:
        store = _store_over_block(store, cols, h * w, task)
    return block, ts.reshape(n, h, w), tcoh.reshape(h, w), num.reshape(h, w), gap.reshape(h, w), cov, store


def _store_over_block(part: Any, cols: np.ndarray | None, size: int, task: _BlockTask) -> Any:
    """The store's part of the solved (land) pixels ``cols`` spread over the whole block: the
    pixels off the land mask are not exact and keep nothing (as :func:`incremental.build_store`)."""
    from sbts.core.inversion.incremental import StoreBlock

    frozen, lo, end = task.store_layout  # type: ignore[misc]
    if part is not None and cols is None:
        return part
    early = int((np.asarray(task.date2_index) < frozen).sum())
    full = StoreBlock(np.zeros((end - lo, size)), np.zeros((2, size)), np.zeros(size, np.int64),
                      np.zeros(size, bool), np.zeros(0, np.intp), np.zeros((early, 0), np.float32),
                      None if task.weight_func == "no" else np.zeros((early, 0)))
    if part is None:  # no pixel of the block is solved
        return full
    assert cols is not None
    full.x[:, cols], full.pre[:, cols], full.pre_num[cols], full.exact[cols] = part.x, part.pre, part.pre_num, part.exact
    full.sparse_pixel, full.sparse_phase, full.sparse_weight = cols[part.sparse_pixel], part.sparse_phase, \
        part.sparse_weight
    return full


def _bytes_per_pixel(num_pair: int, num_date: int, weighted: bool, calc_cov: bool = False,
                     store: bool = False) -> float:
    # phase + coherence/weight (float32, read; a second block is read ahead) and float64 working
    # copies in the solver, plus outputs
    per = num_pair * (4 + 4 + 8) + num_date * (8 + 4) + 64
    if store:  # the float64 time series kept for the update store, and the store's part of the block
        per += num_date * 8 + 8 * 32 + 64
    if weighted or calc_cov:
        per += num_pair * (4 + 4 + 8)
    if calc_cov:  # float64 covariances in the solver, float32 output (and its copy to the file)
        per += num_date * num_date * (8 * 4 + 4 * 2)
    return per * 1.5


def _signature(stack: IfgramStack, options: InversionOptions, ref: tuple[int, int], mask_token: str) -> str:
    st = os.stat(stack.path)
    payload = [str(stack.path.resolve()), st.st_size, st.st_mtime_ns, asdict(options), ref, mask_token,
               stack.pairs.keep.tolist()]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


def mask_token(water: np.ndarray | None) -> str:
    """A short key of a land mask (what the stored solutions and sums depend on)."""
    return "none" if water is None else hashlib.sha1(np.packbits(water).tobytes()).hexdigest()


def _water_mask(options: InversionOptions, stack: IfgramStack, work_dir: Path) -> np.ndarray | None:
    """Land mask (True = solve) from waterMaskFile, else from the geometry's waterMask."""
    if options.water_mask_file:
        path = Path(options.water_mask_file)
        path = path if path.is_absolute() else work_dir / path
        if path.exists():
            return read_mask_file(path, stack.shape)
        if options.water_mask_required:
            raise InputError(f"{path}: water mask not found (mintpy.networkInversion.waterMaskFile = "
                             f"{options.water_mask_file}); give an existing file or set it to no")
    geom = find_geometry(stack.path, work_dir)
    if geom is not None:
        g = Geometry(geom)
        if g.has("waterMask") and g.shape == stack.shape:
            return g.read("waterMask").astype(bool)
    return None


#: picks (and stores) a reference pixel for a stack that has none: ``chooser(stack) -> (y, x)``
ReferenceChooser = Callable[[IfgramStack], tuple[int, int]]


def _reference_point(stack: IfgramStack, choose_reference: ReferenceChooser | None) -> tuple[int, int]:
    ref = stack.metadata.reference
    if ref.y is not None and ref.x is not None:
        return ref.y, ref.x
    if choose_reference is None:
        raise InputError(f"{stack.path} has no reference point (REF_Y/REF_X): run `sbts network` (its "
                         "reference_point step) first, or set mintpy.reference.yx")
    logger.info("%s has no reference point (REF_Y/REF_X): choosing one", stack.path)
    return choose_reference(stack)


def invert_network(stack_path: str | os.PathLike, work_dir: str | os.PathLike | None = None,
                   options: InversionOptions | None = None, template: Template | None = None,
                   max_memory: float = DEFAULT_MAX_MEMORY_GB, num_worker: int = 1, cluster: str | None = None,
                   force: bool = False, choose_reference: ReferenceChooser | None = None,
                   outputs: InversionOutputs | None = None, ref_yx: tuple[int, int] | None = None,
                   update_store: bool = False) -> InversionOutputs:
    """Invert the kept interferograms of ``stack_path`` into ``timeseries.h5`` and quality maps.

    Block-wise under ``max_memory``, in this process, a process pool or on a dask cluster (the
    results are identical); skipped when the outputs are current for the same stack and options.

    Parameters
    ----------
    stack_path : str or os.PathLike
        ``ifgramStack.h5`` (or another stack of the same layout, e.g. ``ionStack.h5``).
    work_dir : str or os.PathLike, optional
        Where the outputs go (default: the folder above the stack's ``inputs/``).
    options : InversionOptions, optional
        The inversion's options (default: from ``template``, else MintPy's defaults).
    template : Template, optional
        Read only when ``options`` is not given.
    max_memory : float
        Memory budget in GB for one block.
    num_worker : int
        Processes of the pool (1: in this process).
    cluster : str, optional
        ``local`` or a dask scheduler address.
    force : bool
        Invert even when the outputs are current.
    choose_reference : callable, optional
        ``choose_reference(stack) -> (y, x)`` picks and stores a reference pixel when the stack has
        none (the application's reference_point step: ``sbts.core.steps.reference.reference_chooser``);
        without one, such a stack is refused.
    outputs : InversionOutputs, optional
        Other files than the work directory's ``timeseries.h5`` … (the ionosphere stack's ``ion.h5`` …).
    ref_yx : tuple of int, optional
        Invert relative to this pixel instead of the stack's REF_Y/REF_X, leaving the stack as it is
        (the ionosphere stack takes the phase stack's reference point).
    update_store : bool
        Store what an update needs beside the outputs (``inversionUpdate.h5``), so that a later
        inversion after new acquisitions were appended updates them exactly from it
        (:mod:`sbts.core.inversion.incremental`).

    Returns
    -------
    InversionOutputs
        The paths written (or found current: ``skipped``) and the number of reliable pixels.
    """
    stack_path = Path(stack_path)
    work_dir = Path(work_dir) if work_dir is not None else stack_path.parent.parent
    options = options or (InversionOptions.from_template(template) if template else InversionOptions())
    if update_store and (options.residual_norm != "L2" or options.nsbas or options.calc_cov or options.robust):
        raise TemplateError("sbts.networkInversion.updateStore = yes updates the plain least-squares (L2) "
                            "solution; it does not apply with residualNorm = L1, sbts.nsbas, sbts.robust or "
                            "the covariance: "
                            "set it to no")
    prep = _prepare_inputs(stack_path, work_dir, options, choose_reference, outputs, ref_yx)
    out_paths = prep.outputs.paths
    check_distinct(out_paths, [stack_path], option="-d (another work directory)")
    work_dir.mkdir(parents=True, exist_ok=True)
    # the four outputs are one result: a second inversion into the same folder is refused before
    # it touches any of them
    with output_locks(out_paths):
        if not force and _outputs_current(prep.outputs, prep.signature):
            logger.info("timeseries.h5 is up to date with %s and the same options: skipped", stack_path.name)
            return replace(prep.outputs, skipped=True)
        with _scratch_pixel_mask(work_dir, prep.water) as pixel_mask_path:
            task, blocks = _plan_blocks(prep, pixel_mask_path, max_memory, num_worker, cluster, update_store)
            from sbts.core.inversion import incremental  # exact update after appended acquisitions

            updated = (None if force or not update_store
                       else incremental.update(prep, task, max_memory, num_worker, cluster))
            if updated is not None:
                return updated
            if not update_store:
                return _write_outputs(prep, task, blocks, num_worker, cluster)
            if not incremental.StoreInPass.applies(task):  # a second pass with its own factorisation
                result = _write_outputs(prep, task, blocks, num_worker, cluster)
                incremental.build_store(prep, task, max_memory)
                return result
            # the store is made as the blocks are solved, and takes its name after the products
            store = incremental.StoreInPass(prep, task, signature=f"{prep.signature}:store")
            task = replace(task, store_layout=store.layout)
            with store:
                return _write_outputs(prep, task, blocks, num_worker, cluster, store)


# ------------------------------------------------------------------ stage 1: inputs, reference, masks
@dataclass(frozen=True, eq=False)
class _Prepared:
    """The checked inputs of one inversion (stage 1), everything the later stages need."""

    stack_path: Path
    work_dir: Path
    stack: IfgramStack  # opened after the reference point was set
    options: InversionOptions
    kept: Pairs  # the kept pairs
    kept_index: np.ndarray  # their indices in the stack
    ref_yx: tuple[int, int]
    ref_phase: np.ndarray  # (kept,) float64 phase of the reference pixel
    water: np.ndarray | None  # (L, W) bool pixels to solve (True = land), or None: all
    looks: int
    wavelength: float
    signature: str  # of the inputs and options: the outputs are current when they carry it
    outputs: InversionOutputs


def _prepare_inputs(stack_path: Path, work_dir: Path, options: InversionOptions,
                    choose_reference: ReferenceChooser | None, outputs: InversionOutputs | None = None,
                    ref_yx: tuple[int, int] | None = None) -> _Prepared:
    """Check the stack for the datasets and pairs the options need; reference point and phase; land mask."""
    stack = IfgramStack(stack_path)
    _check_datasets(stack, options)
    kept = stack.pairs.kept()
    if len(kept) == 0:
        raise DataError(f"{stack_path}: every interferogram is dropped (dropIfgram all False); "
                        "relax the mintpy.network.* rules")
    pieces = kept.num_connected_components()
    if pieces > 1:
        logger.warning("the network of kept pairs has %d disconnected pieces: the %s solution is used "
                       "(biased; consider adding pairs)", pieces,
                       "minimum-norm velocity" if options.min_norm_velocity else "minimum-norm phase")
    meta = stack.metadata
    wavelength = meta.radar.require_wavelength()
    looks = meta.radar.number_of_looks() if options.weighted or options.calc_cov else 1
    ref_y, ref_x = ref_yx if ref_yx is not None else _reference_point(stack, choose_reference)
    stack = IfgramStack(stack_path)  # reference attributes may have been added
    length, width = stack.shape
    if not (0 <= ref_y < length and 0 <= ref_x < width):
        raise DataError(f"reference pixel ({ref_y}, {ref_x}) is outside the {length}×{width} image")
    kept_index = np.flatnonzero(stack.pairs.keep)
    ref = reference_phase(stack, options.obs_dataset, kept_index, "error", point=(ref_y, ref_x))
    assert ref is not None  # a point is given
    ref_phase = ref.values
    water = _water_mask(options, stack, work_dir)
    sig = _signature(stack, options, (ref_y, ref_x), mask_token(water))
    if outputs is None:
        outputs = InversionOutputs(work_dir / "timeseries.h5", work_dir / "temporalCoherence.h5",
                                   work_dir / "numInvIfgram.h5", work_dir / "maskTempCoh.h5",
                                   num_gap=work_dir / "numGap.h5" if options.nsbas else None,
                                   decor_cov=work_dir / "timeseriesDecorCov.h5" if options.calc_cov else None)
    return _Prepared(stack_path, work_dir, stack, options, kept, kept_index, (ref_y, ref_x), ref_phase, water,
                     looks, wavelength, sig, outputs)


def _check_datasets(stack: IfgramStack, options: InversionOptions) -> None:
    """The observation, and the coherence/components the weights or masks need, are in the stack."""
    if not stack.has(options.obs_dataset):
        method = options.unwrap_error_method
        hint = f"; run `sbts correct {method}` first (mintpy.unwrapError.method = {method})" if method else ""
        raise InputError(f"{stack.path}: no dataset {options.obs_dataset!r} to invert{hint}")
    if options.needs_coherence:
        if not stack.has("coherence"):
            why = (f"weightFunc = {options.weight_func}" if options.weighted else
                   "maskDataset = coherence" if options.mask_dataset == "coherence" else
                   "the decorrelation covariance (uncertaintyQuantification = covariance)")
            raise InputError(f"{stack.path}: {why} needs the 'coherence' dataset; "
                             "load coherence (mintpy.load.corFile) or use weightFunc = no")
    if options.mask_dataset == "connectComponent" and not stack.has("connectComponent"):
        raise InputError(f"{stack.path}: maskDataset = connectComponent but the stack has no connectComponent")


@contextlib.contextmanager
def _scratch_pixel_mask(work_dir: Path, water: np.ndarray | None) -> Iterator[str | None]:
    """The land mask as a private ``.npy`` the workers memory-map (None without a mask); removed after."""
    mask_file = work_dir / MASK_SCRATCH
    remove_orphans(mask_file, ".npy")  # scratch masks of dead runs
    if water is None:
        yield None
        return
    path = str(private_name(mask_file, ".npy"))
    check_free_space(work_dir, water.size + 4096, path)
    try:
        with write_guard(path):
            np.save(path, water)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(path)
        raise
    try:
        yield path
    finally:
        if os.path.exists(path):
            os.remove(path)


# ------------------------------------------------------------------ stage 2: plan the blocks
def _plan_blocks(prep: _Prepared, pixel_mask_path: str | None, max_memory: float, num_worker: int,
                 cluster: str | None, store: bool = False) -> tuple[_BlockTask, list[Block]]:
    """The task every block shares, and full-width blocks that fit the memory of one worker."""
    options, kept = prep.options, prep.kept
    i1, i2 = kept.indices()
    task = _BlockTask(
        stack_path=str(prep.stack_path), obs_dataset=options.obs_dataset,
        kept_index=tuple(int(k) for k in prep.kept_index),
        date1_index=tuple(int(v) for v in i1), date2_index=tuple(int(v) for v in i2),
        tbase=tuple(float(v) for v in kept.tbase()), ref_phase=tuple(prep.ref_phase.tolist()),
        weight_func=options.weight_func, looks=prep.looks, min_norm_velocity=options.min_norm_velocity,
        min_redundancy=options.min_redundancy, mask_dataset=options.mask_dataset,
        mask_threshold=options.mask_threshold, phase2range=-prep.wavelength / (4 * math.pi),
        pixel_mask_path=pixel_mask_path, residual_norm=options.residual_norm, nsbas=options.nsbas,
        nsbas_gamma=options.nsbas_gamma, nsbas_model=options.nsbas_model, calc_cov=options.calc_cov,
        robust=options.robust_threshold if options.robust else None,
    )
    stack = prep.stack
    per_pixel = _bytes_per_pixel(len(kept), len(kept.dates), options.weighted, options.calc_cov, store)
    budget = memory_per_task(max_memory, num_worker, cluster)
    blocks = plan_blocks(stack.shape, per_pixel, budget, stack.chunk_shape(options.obs_dataset), work_cap_gb=None)
    logger.info("inverting %d pairs / %d dates, %d×%d pixels, weight %s, %s form, %d block(s)%s",
                len(kept), len(kept.dates), *stack.shape, options.weight_func,
                "velocity" if options.min_norm_velocity else "phase", len(blocks), describe(num_worker, cluster))
    return task, blocks


# ------------------------------------------------------------------ stages 3 and 4: solve, finish
def _write_outputs(prep: _Prepared, task: _BlockTask, blocks: list[Block], num_worker: int,
                   cluster: str | None, store: Any = None) -> InversionOutputs:
    """Solve the blocks into the partial outputs, then finish them; they take their final names last."""
    stack, options, kept, outputs = prep.stack, prep.options, prep.kept, prep.outputs
    out_meta = _output_metadata(prep)
    ts_meta = out_meta.replace(file_type="timeseries", unit="m")
    # the blocks do not depend on the options of the reliability mask: a run rejected by
    # minNumPixel and rerun with other mask options keeps its inverted blocks
    block_sig = _signature(stack, replace(options, min_temp_coh=0.0, min_num_pixel=0, shadow_mask=False),
                           prep.ref_yx, mask_token(prep.water))
    with TimeSeriesWriter(outputs.timeseries, ts_meta, kept.date_strings, kept.date_bperp(),
                          signature=block_sig) as wts, \
            H5Writer(outputs.temporal_coherence, out_meta.replace(file_type="temporalCoherence", unit="1"),
                     signature=block_sig) as wtc, \
            H5Writer(outputs.num_inv_ifgram, out_meta.replace(file_type="mask", unit="1"),
                     signature=block_sig) as wnum, \
            contextlib.ExitStack() as stack_cm:
        wtc.create("temporalCoherence", shape=stack.shape, dtype=np.float32)
        wnum.create("mask", shape=stack.shape, dtype=np.float32)
        wgap = None
        if outputs.num_gap is not None:
            wgap = stack_cm.enter_context(H5Writer(outputs.num_gap, out_meta.replace(file_type="mask", unit="1"),
                                                   signature=block_sig))
            wgap.create("numGap", shape=stack.shape, dtype=np.int16)
        wcov = None
        if outputs.decor_cov is not None:
            n = len(kept.dates)
            wcov = stack_cm.enter_context(H5Writer(outputs.decor_cov, ts_meta.replace(unit="m^2").with_extra(
                COVARIANCE="decorrelation: H diag(sigma2) H^T of the inversion estimator H, sigma2 from "
                           "coherence and number of looks (var weight)" +
                           (", times pi/2 for L1" if options.residual_norm == "L1" else "") +
                           (", of the final least squares without the dropped pairs (sbts.robust)"
                            if options.robust else "")),
                signature=block_sig))
            wcov.create("date", data=np.array(kept.date_strings, dtype="S8"))
            wcov.create("timeseries", shape=(n, n, *stack.shape), dtype=np.float32,
                        chunks=(n, n, 1, min(stack.shape[1], max(1, (1 << 20) // (4 * n * n)))))
        _solve_blocks(task, blocks, wts, wtc, wnum, num_worker, cluster, wgap, wcov, store)
        if wcov is not None:  # the reference pixel is known exactly (MintPy: coherence 1, all pairs)
            ry, rx = prep.ref_yx
            wcov.file["timeseries"][:, :, ry, rx] = 0.0
            wcov.flush()
        reliable = _finish_outputs(prep, out_meta, wtc, wnum)
    return replace(outputs, skipped=False, num_reliable_pixels=reliable)


def _output_metadata(prep: _Prepared) -> Metadata:
    """The outputs' attributes: the stack's, the reference point and date, the options (MintPy's keys)."""
    stack, kept = prep.stack, prep.kept
    meta = stack.metadata
    ref_y, ref_x = prep.ref_yx
    out_meta = meta.replace(reference=meta.reference.__class__(
        y=ref_y, x=ref_x, lat=meta.reference.lat, lon=meta.reference.lon, date=kept.dates[0]))
    return out_meta.with_extra(**prep.options.provenance(), **{SIGNATURE_ATTR: prep.signature},
                               **{"mintpy.networkInversion.numIfgram": str(len(kept))},
                               # MintPy's stack metadata: first/last date of every pair, dropped too
                               START_DATE=stack.pairs.date_strings[0], END_DATE=stack.pairs.date_strings[-1])


def _solve_blocks(task: _BlockTask, blocks: list[Block], wts: H5Writer, wtc: H5Writer, wnum: H5Writer,
                  num_worker: int, cluster: str | None, wgap: H5Writer | None = None,
                  wcov: H5Writer | None = None, store: Any = None) -> None:
    """Solve every block the partial outputs do not hold yet, writing each as it arrives."""
    from sbts.core.io.readahead import ReadAhead

    writers = [w for w in (wts, wtc, wnum, wgap, wcov, None if store is None else store.writer) if w is not None]
    todo = [b for b in blocks if not all(w.is_done(b) for w in writers)]
    if len(todo) < len(blocks):
        logger.info("resuming: %d of %d blocks already inverted", len(blocks) - len(todo), len(blocks))
    results = run_blocks(todo, functools.partial(read_block, task), functools.partial(solve_block, task),
                         workers=num_worker, cluster=cluster,
                         read_ahead=functools.partial(ReadAhead, task.stack_path, _datasets_read(task),
                                                      task.kept_index))
    for block, (_, ts, tcoh, num, gap, cov, part) in progress(results, total=len(todo), desc="invert", unit="block"):
        if store is not None:
            store.write(block, part)
        wts.write("timeseries", ts, block)
        wtc.write("temporalCoherence", tcoh, block)
        wnum.write("mask", num.astype(np.float32), block)
        if wgap is not None:
            wgap.write("numGap", gap, block)
        if wcov is not None:
            wcov.file["timeseries"][:, :, block.rows, block.cols] = cov
            wcov.flush()
        for w in writers:
            w.mark_done(block)


def _finish_outputs(prep: _Prepared, out_meta: Metadata, wtc: H5Writer, wnum: H5Writer) -> int:
    """Reference pixel values, ``maskTempCoh.h5`` and the reliability check; the reliable pixel count."""
    from sbts.core.io.products import write_map

    # MintPy: the reference pixel is perfectly coherent and uses every pair
    ref_y, ref_x = prep.ref_yx
    ref_pixel = Block(ref_y, ref_y + 1, ref_x, ref_x + 1)
    wtc.write("temporalCoherence", np.ones((1, 1), np.float32), ref_pixel)
    wnum.write("mask", np.full((1, 1), len(prep.kept), np.float32), ref_pixel)
    if prep.outputs.mask_temp_coh is None:  # no mask asked for: no reliability check either
        return 0
    # the reliability check comes before any output takes its final name: a rejected
    # inversion leaves only its (resumable) partial files, never a result to build on
    tcoh_map = wtc.file["temporalCoherence"][()]
    mask = temp_coh_mask(tcoh_map, prep.options, prep.stack_path, prep.work_dir)
    reliable = check_reliable(mask, prep.options)
    write_map(prep.outputs.mask_temp_coh, out_meta, "mask", {"mask": mask}, unit="1")
    return reliable


def _outputs_current(outputs: InversionOutputs, sig: str) -> bool:
    for path in outputs.paths:
        if not path.exists():
            return False
        try:
            if read_attrs(path).get(SIGNATURE_ATTR) != sig:
                return False
        except Exception:  # noqa: BLE001 - unreadable → recompute
            return False
    return True


def temp_coh_mask(tcoh: np.ndarray, options: InversionOptions, stack_path: Path, work_dir: Path) -> np.ndarray:
    """``maskTempCoh``: temporal coherence ≥ minTempCoh, shadow excluded."""
    mask = tcoh >= options.min_temp_coh
    if options.shadow_mask:
        geom = find_geometry(stack_path, work_dir)
        if geom is not None:
            g = Geometry(geom)
            if g.has("shadowMask") and g.shape == mask.shape:
                mask &= ~g.read("shadowMask").astype(bool)
    return mask


def check_reliable(mask: np.ndarray, options: InversionOptions) -> int:
    """The number of reliable pixels; refused (MintPy's minNumPixel check) when too few."""
    count = int(mask.sum())
    if count < options.min_num_pixel:
        raise DataError(f"only {count} pixels have temporal coherence ≥ {options.min_temp_coh} "
                        f"(minNumPixel = {options.min_num_pixel}); the inversion is unreliable: check the "
                        "network, the reference point and the unwrapping, or lower mintpy.networkInversion.minTempCoh")
    logger.info("%d reliable pixels (temporal coherence ≥ %s)", count, options.min_temp_coh)
    return count
