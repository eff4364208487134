"""``sbts correct bridging | phase_closure | bridging+phase_closure``: unwrapping-error correction.

Implements the two methods of Yunjun, Fattahi & Amelung (2019, Computers & Geosciences, §3) on the
interferogram stack (stage ``ifgram``): each adds a corrected copy of the phase to
``ifgramStack.h5`` under MintPy's name and leaves ``unwrapPhase`` untouched, so the inversion can
choose its observation (:func:`corrected_dataset_name`):

``bridging`` → ``unwrapPhase_bridging``
    Per kept pair, the connected components (``connectComponent``, water masked, split into
    spatially connected pieces, pieces under ``connCompMinArea`` ignored — lowered to 0.3 % of the
    image on small images, MintPy's rule) are linked by their
    shortest boundary-to-boundary bridges (``cKDTree``); the minimum spanning tree of those bridges
    is walked breadth-first from the region holding REF_Y/REF_X, and each child region is shifted
    by ``2π·N``, ``N = round((φ_parent − φ_child)/2π)`` from the median phases in windows of radius
    ``bridgePtsRadius`` at the two bridge ends.  An optional ramp (``ramp``), fitted on the
    reference region, is removed before and restored after, so a long-wavelength signal does not
    bias N across long bridges.

``phase_closure`` → ``unwrapPhase_phaseClosure``
    Common regions = pixels sharing the same connected-component label in every kept pair
    (the paper's "common connected components": in every pair they were unwrapped together, so
    they share one integer ambiguity per pair).  In each region ``numSample`` pixels are drawn
    (seeded RNG, see below); their integer closures ``c_int = round(C·φ/2π)`` are turned into
    integer corrections U by an L1 mixed-integer program solved with HiGHS
    (:func:`sbts.core.inversion.closure.solve_integer_ambiguity`, batched by unique closure pattern); the
    region's U is the median over its samples and ``2π·U_k`` is added to pair k on the region.

``bridging+phase_closure`` → ``unwrapPhase_bridging`` then ``unwrapPhase_bridging_phaseClosure``.

Reproducibility: MintPy draws the samples with an unseeded generator; here they come from
``numpy.random.default_rng(seed)`` (``seed`` option, default 0), so a re-run gives the same answer.

Crash safety: the corrected phase is written block by block into a temporary HDF5 file beside the
stack, then copied into the stack under a temporary name and renamed (``h5py`` move) to its final
name; an existing dataset of that name is swapped out the same way.  An interrupted run therefore
never leaves a half-written dataset under the final name (leftover temporary names are removed at
the next run).  Deleting datasets does not shrink an HDF5 file; ``h5repack`` reclaims the space.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import h5py
import numpy as np

from sbts.core.api import (
    DEFAULT_ALPHA,
    INCOMPLETE_ATTR,
    TWO_PI,
    UNWRAP_ERROR_DATASETS,
    Correction,
    CorrectionContext,
    CorrectionResult,
    DataError,
    FileOption,
    IfgramStack,
    InputError,
    StackEditor,
    TaskArrays,
    Template,
    TemplateError,
    describe,
    hookimpl,
    integer_ambiguity,
    memory_per_task,
    plan_blocks,
    progress,
    read_mask_file,
    reference_phase,
    run_blocks,
    runs_apart,
    shown,
    solve_integer_ambiguity,
    task_arrays,
    triplet_indices,
    triplet_matrix,
    workers_within,
)

logger = logging.getLogger(__name__)

PREFIX = "mintpy.unwrapError."
METHOD_KEY = PREFIX + "method"
DATASETS = UNWRAP_ERROR_DATASETS  # the inversion reads the same names
_CONFIG_ATTR = "SBTS_UNWRAP_ERROR_CONFIG"
RADIUS_FRACTION = 0.05  # bridge windows at most 5 % of the image size (they must stay local)
MIN_RADIUS = 5  # smaller windows hold too few pixels for a robust median
MIN_GRADIENT_PIXELS = 20  # fewer window pixels: plain median (a plane fit on fewer is too noisy)

_KEYS_COMMON = {
    PREFIX + "waterMaskFile": "water mask (True = land) excluded from the regions (default waterMask.h5; "
                              "else the geometry file's waterMask; no = none)",
    PREFIX + "connCompMinArea": "regions smaller than this many pixels are left uncorrected (default 2.5e3; "
                                "at most 0.3 % of the image when there are several regions, as MintPy)",
}
_KEYS_BRIDGING = {
    PREFIX + "ramp": "ramp fitted on the reference region and removed while bridging: no | linear | quadratic",
    PREFIX + "bridgePtsRadius": "radius (pixels) of the window whose median phase is taken at each bridge end "
                                "(default 50, at most 5 % of the image size but not under 5)",
}
_KEYS_CLOSURE = {
    PREFIX + "numSample": "pixels sampled per common region for the closure ambiguities (default 100)",
}


def corrected_dataset_name(method: str | None) -> str:
    """The stack dataset the inversion should read for ``mintpy.unwrapError.method`` (MintPy's rule)."""
    if method is None or str(method).strip().lower() in ("", "no", "none", "false", "off", "auto"):
        return "unwrapPhase"
    key = str(method).strip().lower()
    if key not in DATASETS:
        raise TemplateError(f"{METHOD_KEY} = {method!r}: use no, {', '.join(DATASETS)}")
    return DATASETS[key]


# ---------------------------------------------------------------------------- options
@dataclass(frozen=True)
class UnwrapOptions:
    """The ``mintpy.unwrapError.*`` settings of one run (also its provenance/skip key)."""

    min_area: int = 2500
    num_sample: int = 100
    ramp: str | None = None
    radius: int = 50
    water_mask: str = "no"  # label of the mask used
    seed: int = 0
    alpha: float = DEFAULT_ALPHA
    water_file: FileOption = field(default=FileOption(PREFIX + "waterMaskFile", "waterMask.h5"), compare=False)

    @classmethod
    def from_template(cls, t: Template) -> UnwrapOptions:
        """The template's settings (the water mask label and the seed are set when the step runs)."""
        min_area = t.get_float(PREFIX + "connCompMinArea")
        num_sample = t.get_int(PREFIX + "numSample")
        radius = t.get_int(PREFIX + "bridgePtsRadius")
        ramp = t.get_str(PREFIX + "ramp", ["linear", "quadratic"])
        if num_sample is not None and num_sample < 1:
            raise TemplateError(f"{PREFIX}numSample = {num_sample}: must be at least 1")
        if radius is not None and radius < 0:
            raise TemplateError(f"{PREFIX}bridgePtsRadius = {radius}: must be >= 0")
        return cls(min_area=max(1, int(min_area or 1)), num_sample=int(num_sample or 100), ramp=ramp,
                   radius=int(radius if radius is not None else 50),
                   water_file=FileOption.from_template(t, PREFIX + "waterMaskFile"))

    @classmethod
    def from_context(cls, ctx: CorrectionContext, water_label: str) -> UnwrapOptions:
        parsed = ctx.parsed_options if isinstance(ctx.parsed_options, UnwrapOptions) else cls.from_template(ctx.template)
        opts = ctx.options
        return replace(parsed, water_mask=water_label, seed=_option(opts, "seed", int, 0),
                       alpha=_option(opts, "alpha", float, DEFAULT_ALPHA))


def _water_mask(ctx: CorrectionContext, shape: tuple[int, int]) -> tuple[np.ndarray | None, str]:
    """Land mask (True = use) and its label: waterMaskFile, else the geometry waterMask, else none."""
    option = (ctx.parsed_options.water_file if isinstance(ctx.parsed_options, UnwrapOptions)
              else FileOption.from_template(ctx.template, PREFIX + "waterMaskFile"))
    value = option.value
    if value is not None:
        path = option.path(ctx.work_dir)
        if path.exists():
            return read_mask_file(path, shape), str(value)
        if option.explicit:
            raise InputError(f"{path}: water mask not found ({PREFIX}waterMaskFile = {value}); "
                             f"give an existing file or set it to no")
    geom = ctx.geometry_file
    if geom is not None and Path(geom).exists():
        with h5py.File(geom, "r") as f:
            if "waterMask" in f and f["waterMask"].shape == tuple(shape):
                return np.asarray(f["waterMask"][()] != 0), f"{Path(geom).name}:waterMask"
    return None, "no"


# ---------------------------------------------------------------------------- crash-safe dataset write
def write_stack_dataset(stack_path: str | os.PathLike, name: str, fill: Callable[[h5py.Dataset], None],
                        like: str = "unwrapPhase", attrs: dict | None = None,
                        root_attrs: dict | None = None) -> None:
    """Add or replace 3-D dataset ``name`` of the stack through the one in-place writer of the
    stack, :meth:`sbts.core.io.stack_editor.StackEditor.write_dataset` (crash-safe, no growth on a
    rerun, versioned for update mode)."""
    StackEditor(stack_path).write_dataset(name, fill, like=like, attrs=attrs, root_attrs=root_attrs)


def _dataset_mtime(stack_path: Path, name: str) -> str:
    with h5py.File(stack_path, "r") as f:
        return str(f[name].attrs.get("MODIFICATION_TIME", "")) if name in f else ""


def _config(stack: IfgramStack, method: str, in_name: str, opts: UnwrapOptions) -> str:
    """What the output depends on: a re-run with the same key is skipped (MintPy's update mode)."""
    ref = stack.metadata.reference
    h = hashlib.sha256(np.asarray(stack.pairs.keep, np.uint8).tobytes()).hexdigest()[:16]
    return json.dumps({"method": method, "input": in_name, "input_mtime": _dataset_mtime(stack.path, in_name),
                       "ref": [ref.y, ref.x], "keep": h,
                       **{k: v for k, v in asdict(opts).items() if k != "water_file"}}, sort_keys=True)


def _up_to_date(stack_path: Path, name: str, config: str) -> bool:
    with h5py.File(stack_path, "r") as f:
        return (name in f and f[name].attrs.get(_CONFIG_ATTR) == config
                and INCOMPLETE_ATTR not in f[name].attrs)


# ---------------------------------------------------------------------------- bridging
MIN_AREA_FRACTION = 3e-3  # MintPy: on a small image the minimum region area shrinks to 0.3 % of it


def effective_min_area(min_area: float, num_pixel: int, num_region: int) -> float:
    """MintPy's rule (``conncomp.label_conn_comp``): a single region is always kept (limit 0); with
    more than one, a minimum area above 0.3 % of the image is lowered to 0.3 % of it, so a
    200 × 200 stack still corrects islands of 120+ pixels instead of ignoring everything under the
    default 2500."""
    if num_region <= 1:
        return 0.0
    return float(min(min_area, num_pixel * MIN_AREA_FRACTION))


def _regions(conncomp: np.ndarray, valid: np.ndarray, min_area: float) -> tuple[np.ndarray, int]:
    """Label map (0 = none) of spatially connected pieces of equal non-zero component, each at
    least :func:`effective_min_area` pixels."""
    from scipy import ndimage  # scipy's modules are imported where used: plugin discovery stays cheap

    pieces = []
    for value in np.unique(conncomp[valid & (conncomp != 0)]):
        lab, num = ndimage.label(valid & (conncomp == value))
        if num:
            pieces.append((lab, num, np.bincount(lab.ravel(), minlength=num + 1)))
    limit = effective_min_area(min_area, conncomp.size, sum(num for _, num, _ in pieces))
    labels = np.zeros(conncomp.shape, np.int32)
    n = 0
    for lab, num, area in pieces:
        keep = np.flatnonzero(area >= limit)
        keep = keep[keep > 0]
        lut = np.zeros(num + 1, np.int32)
        lut[keep] = n + 1 + np.arange(keep.size)
        labels = np.where(lab > 0, np.maximum(labels, lut[lab]), labels)
        n += keep.size
    return labels, n


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of a region with a 4-neighbour outside it (image edges do not count)."""
    edge = np.zeros(labels.shape, bool)
    diff = labels[1:, :] != labels[:-1, :]
    edge[1:, :] |= diff
    edge[:-1, :] |= diff
    diff = labels[:, 1:] != labels[:, :-1]
    edge[:, 1:] |= diff
    edge[:, :-1] |= diff
    return edge & (labels > 0)


def _window_median(phase: np.ndarray, labels: np.ndarray, label: int, y: int, x: int, radius: int) -> float:
    """Phase of region ``label`` at bridge end (y, x): median over a disc of ``radius``, gradient removed.

    The disc is cut by the region boundary, so its pixels lie on one side of the end point; with a
    deformation gradient across the boundary a plain median would be biased by about
    gradient × radius on each side (enough to flip N on dense fringes).  A least-squares plane over
    the window gives the local gradient; the median of the phase minus that gradient, referred to
    the end point, stays robust to outliers and unbiased by the slope.
    """
    rows = slice(max(0, y - radius), min(labels.shape[0], y + radius + 1))
    cols = slice(max(0, x - radius), min(labels.shape[1], x + radius + 1))
    yy, xx = np.ogrid[rows, cols]
    inside = (labels[rows, cols] == label) & ((yy - y) ** 2 + (xx - x) ** 2 <= radius * radius)
    values = phase[rows, cols][inside]
    dy = np.broadcast_to(yy - y, inside.shape)[inside].astype(np.float64)
    dx = np.broadcast_to(xx - x, inside.shape)[inside].astype(np.float64)
    ok = np.isfinite(values)
    values, dy, dx = values[ok], dy[ok], dx[ok]
    if values.size == 0:
        return float(phase[y, x])
    if values.size >= MIN_GRADIENT_PIXELS:
        G = np.column_stack([np.ones_like(dy), dy, dx])
        coef = np.linalg.lstsq(G, values, rcond=None)[0]
        values = values - coef[1] * dy - coef[2] * dx
    return float(np.median(values))


def bridge_pair(phase: np.ndarray, conncomp: np.ndarray, valid: np.ndarray, ref_yx: tuple[int, int] | None,
                min_area: float, radius: int, ramp: str | None = None) -> tuple[np.ndarray, dict[int, int]]:
    """Bridging of one interferogram: (corrected phase, {region label: cycles added}).

    Pixels outside the retained regions are returned unchanged.
    """
    from sbts.core.api import evaluate_ramps, fit_ramps

    labels, n = _regions(conncomp, valid, min_area)
    if n < 2:
        return phase, {}
    if ref_yx is not None and labels[ref_yx] > 0:
        root = int(labels[ref_yx])
    else:
        root = int(np.argmax(np.bincount(labels.ravel(), minlength=n + 1)[1:]) + 1)
        logger.debug("reference pixel outside every region: bridging from the largest region %d", root)
    work = phase.astype(np.float64)
    ramp_map = None
    if ramp:
        coeffs = fit_ramps(work, labels == root, ramp)
        if np.all(np.isfinite(coeffs)):
            ramp_map = evaluate_ramps(coeffs, phase.shape, ramp, dtype=np.float64)[0]
            work = work - ramp_map
    from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree
    from scipy.spatial import cKDTree

    edge = _boundaries(labels)
    ey, ex = np.nonzero(edge)
    el = labels[ey, ex]
    pts = [np.column_stack([ey[el == k], ex[el == k]]) for k in range(1, n + 1)]
    trees = [cKDTree(p) for p in pts]
    dist = np.zeros((n, n))
    ends: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]] = {}
    for i in range(n):
        for j in range(i + 1, n):
            d, idx = trees[j].query(pts[i], k=1)
            best = int(np.argmin(d))
            dist[i, j] = dist[j, i] = max(float(d[best]), 1e-6)
            a, b = tuple(pts[i][best]), tuple(pts[j][int(idx[best])])
            ends[(i, j)] = (a, b)
            ends[(j, i)] = (b, a)
    mst = minimum_spanning_tree(dist)
    order, pred = breadth_first_order(mst, root - 1, directed=False, return_predecessors=True)
    cycles = np.zeros(n + 1, np.int64)
    for node in order[1:]:
        parent = int(pred[node])
        (py, px), (cy, cx) = ends[(parent, int(node))]
        med_parent = _window_median(work, labels, parent + 1, py, px, radius) + TWO_PI * cycles[parent + 1]
        med_child = _window_median(work, labels, int(node) + 1, cy, cx, radius)
        cycles[node + 1] = int(np.round((med_parent - med_child) / TWO_PI))
    out = phase.copy()
    shift = (TWO_PI * cycles[labels]).astype(phase.dtype)
    out = np.where(labels > 0, out + shift, out)
    unreached = set(range(1, n + 1)) - {int(k) + 1 for k in order}
    if unreached:
        logger.debug("regions %s not reached by the bridges", sorted(unreached))
    return out, {k: int(cycles[k]) for k in range(1, n + 1) if cycles[k]}


#: what bridging one pair holds per pixel (its phase and components, the region labels, the float64
#: work copy, the output and the masks)
_BRIDGE_BYTES_PER_PIXEL = 48.0


def _read_pair(stack: IfgramStack, in_name: str, keep: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The I/O of one pair: its phase and, when kept, its connected components."""
    phase = stack.read(in_name, index=k).astype(np.float32)
    return phase, (stack.read("connectComponent", index=k) if keep[k] else None)


def _bridge_one(shared: TaskArrays, ref_yx: tuple[int, int] | None, min_area: float, radius: int, ramp: str | None,
                _k: int, inputs: tuple[np.ndarray, np.ndarray | None]) -> tuple[np.ndarray, dict[int, int]]:
    """The bridging of one pair (a dropped pair comes back as it is)."""
    phase, cc = inputs
    if cc is None:
        return phase, {}
    valid = np.isfinite(phase) & (phase != 0)
    if "land" in shared:
        valid &= shared["land"]
    return bridge_pair(phase, cc, valid, ref_yx, min_area, radius, ramp)


def run_bridging(stack_path: Path, in_name: str, out_name: str, land: np.ndarray | None,
                 opts: UnwrapOptions, attrs: dict | None = None, root_attrs: dict | None = None,
                 *, max_memory: float, num_worker: int = 1, cluster: str | None = None) -> str:
    """Bridging of every kept pair into ``out_name``.  The pairs are independent: they are bridged by
    the run's workers (the pool, as many at once as the budget holds a whole pair's work, or dask) and
    written as they come, the same dataset whoever bridged them."""
    stack = IfgramStack(stack_path)
    if not stack.has("connectComponent"):
        raise InputError(f"{stack_path}: no connectComponent dataset; bridging needs the unwrapper's "
                         "connected components (use phase_closure instead)")
    length, width = stack.shape
    radius = min(opts.radius, max(MIN_RADIUS, int(RADIUS_FRACTION * min(length, width))))
    if radius < opts.radius:
        logger.info("bridgePtsRadius %d capped to %d px (5 %% of the image size, at least %d)",
                    opts.radius, radius, MIN_RADIUS)
    ref = stack.metadata.reference
    ref_yx = (ref.y, ref.x) if ref.has_point and 0 <= ref.y < length and 0 <= ref.x < width else None
    if ref_yx is None:
        logger.warning("%s has no REF_Y/REF_X: bridging from the largest region of each pair", stack_path.name)
    keep = np.asarray(stack.pairs.keep)
    names = stack.pairs.date12
    m = len(stack.pairs)
    at_once = workers_within(max_memory, _BRIDGE_BYTES_PER_PIXEL * length * width, num_worker, cluster, m)
    apart = runs_apart(at_once, cluster)
    changed: dict[int, dict[int, int]] = {}

    def fill(ds: h5py.Dataset) -> None:
        with task_arrays({} if land is None else {"land": land}, stack_path, apart) as shared:
            results = run_blocks(list(range(m)), functools.partial(_read_pair, stack, in_name, keep),
                                 functools.partial(_bridge_one, shared, ref_yx, opts.min_area, radius, opts.ramp),
                                 workers=at_once, cluster=cluster)
            for k, (phase, cycles) in progress(results, "bridging", "pair", total=m):
                if cycles:
                    changed[k] = cycles
                    logger.info("bridging %s: region cycles %s", names[k], cycles)
                ds[k] = phase

    logger.info("bridging %d kept pair(s)%s", int(keep.sum()), describe(at_once, cluster))
    write_stack_dataset(stack_path, out_name, fill, like=in_name, attrs=attrs, root_attrs=root_attrs)
    return f"bridging: {len(changed)} of {int(keep.sum())} kept pair(s) corrected → {out_name}"


# ---------------------------------------------------------------------------- phase closure
def common_regions(stack: IfgramStack, land: np.ndarray | None, min_area: float, max_memory: float,
                   num_worker: int = 1, cluster: str | None = None) -> tuple[np.ndarray, int]:
    """Region map (−1 = none) of pixels with the same component label in every kept pair.

    Without ``connectComponent``: one region of the pixels with data in every kept pair.

    The blocks are read, and their pixels' label rows sorted into patterns (:func:`_block_patterns`:
    ``np.unique`` over rows of one label per pair, the work), here, in the pool or on dask; this
    process numbers the patterns.  The regions are then numbered by the first pixel (in raster order)
    of each, so the map is the same whatever the blocks, the budget and the workers.
    """
    kept = np.flatnonzero(stack.pairs.keep)
    name = "connectComponent" if stack.has("connectComponent") else "unwrapPhase"
    if name == "unwrapPhase":
        logger.warning("%s has no connectComponent: one common region of the pixels with data in every pair",
                       stack.path.name)
    region = np.full(stack.shape, -1, np.int64)
    ids: dict[bytes, int] = {}
    # the block's labels (int16 or float32), the valid mask, the label rows (int32) and their sort
    blocks = plan_blocks(stack.shape, kept.size * 12 + 16, memory_per_task(max_memory, num_worker, cluster),
                         stack.chunk_shape(name))
    items = [(block, None if land is None else np.ascontiguousarray(land[block.slices])) for block in blocks]
    results = run_blocks(items, functools.partial(_read_labels, stack, name, kept),
                         functools.partial(_block_patterns, name == "connectComponent"),
                         workers=num_worker, cluster=cluster, ordered=True)
    for (block, _), (valid, uniq, inv) in progress(results, "common regions", "block", total=len(items)):
        if not valid.any():
            continue
        sub = region[block.slices]
        if uniq is None:  # one region: no label rows
            sub[valid] = ids.setdefault(b"", 0)
        else:
            lut = np.array([ids.setdefault(row.tobytes(), len(ids)) for row in uniq], np.int64)
            sub[valid] = lut[inv]
        region[block.slices] = sub
    if not ids:
        return region.astype(np.int32), 0
    flat = region.ravel()
    present, first = np.unique(flat, return_index=True)  # each pattern's first pixel
    if present[0] < 0:
        present, first = present[1:], first[1:]
    area = np.bincount(flat[flat >= 0], minlength=len(ids))
    min_area = effective_min_area(min_area, region.size, len(ids))  # MintPy's small-image rule
    big = present[np.argsort(first, kind="stable")]  # in raster order of their first pixel ...
    big = big[area[big] >= min_area]  # ... the regions large enough
    lut = np.full(len(ids) + 1, -1, np.int64)
    lut[big] = np.arange(big.size)
    out = lut[np.where(flat >= 0, flat, len(ids))].astype(np.int32).reshape(region.shape)
    logger.info("%d common region(s) of ≥ %g px (%d smaller ignored)%s", big.size, min_area, len(ids) - big.size,
                describe(num_worker, cluster))
    return out, int(big.size)


def _read_labels(stack: IfgramStack, name: str, kept: np.ndarray, item) -> np.ndarray:
    """The I/O of a block of :func:`common_regions`: the kept pairs' labels (or phase)."""
    block, _land = item
    return stack.read(name, block, index=kept)


def _block_patterns(labelled: bool, item, data: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(valid, patterns, pattern of each valid pixel): the block's pixels with data in every kept pair
    (and on land), and, with ``labelled`` component labels, their distinct label rows (sorted) and
    each valid pixel's row; ``(valid, None, None)`` without labels (one region)."""
    block, land = item
    valid = np.ones(block.shape, bool) if land is None else land.copy()
    for layer in data:  # pair by pair: one layer of temporaries
        valid &= layer != 0
        if layer.dtype.kind == "f":
            valid &= np.isfinite(layer)
    if not labelled:
        return valid, None, None
    key_rows = data[:, valid].T.astype(np.int32)
    del data
    uniq, inv = np.unique(key_rows, axis=0, return_inverse=True)
    return valid, uniq, np.asarray(inv).reshape(-1)


def region_ambiguities(stack: IfgramStack, in_name: str, region: np.ndarray, n_region: int,
                       opts: UnwrapOptions, num_worker: int = 1, cluster: str | None = None) -> np.ndarray:
    """Integer correction U (n_region, m) of every pair on every common region (0 for dropped pairs).

    The samples' phases are read as points (a few hundred samples a region: a small part of the
    stack, :meth:`~sbts.core.io.products.Product.read_points`); their integer closures are solved in batches of
    distinct patterns here, in the pool or on dask (:func:`solve_integer_ambiguity`)."""
    m = len(stack.pairs)
    U = np.zeros((n_region, m), np.int64)
    tri = triplet_indices(stack.pairs)
    if n_region == 0 or tri.shape[0] == 0:
        if tri.shape[0] == 0:
            logger.warning("%s: no triplet among the kept pairs; phase closure cannot correct anything",
                           stack.path.name)
        return U
    used = np.unique(tri)
    C = triplet_matrix(np.searchsorted(used, tri), used.size)
    # --- draw the samples, region by region (seeded)
    rng = np.random.default_rng(opts.seed)
    flat = region.ravel()
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat[flat >= 0], minlength=n_region)
    starts = np.searchsorted(flat[order], np.arange(n_region))
    sample_pix, sample_reg = [], []
    for r in range(n_region):
        pix = order[starts[r]:starts[r] + counts[r]]
        take = rng.choice(pix, size=min(opts.num_sample, pix.size), replace=False)
        sample_pix.append(np.sort(take))
        sample_reg.append(np.full(take.size, r))
    pix = np.concatenate(sample_pix)
    reg = np.concatenate(sample_reg)
    ys, xs = np.unravel_index(pix, region.shape)
    # --- read their phase (referenced), block by block
    ref = reference_phase(stack, in_name, used)
    values = stack.read_points(in_name, used, ys, xs).astype(np.float64)
    values[(values == 0) | ~np.isfinite(values)] = np.nan
    values -= ref[:, None]
    c_int = integer_ambiguity(C @ np.nan_to_num(values, nan=0.0)).T  # (n_sample, n_tri)
    nodata = np.isnan(values).any(axis=0)
    c_int[nodata] = 0
    t0 = time.perf_counter()
    U_samples = solve_integer_ambiguity(C, c_int, alpha=opts.alpha, num_worker=num_worker,
                                        cluster=cluster)  # (n_sample, n_used)
    logger.info("closure ambiguities of %d sample(s) in %d region(s): %d distinct pattern(s), %.2f s%s",
                pix.size, n_region, np.unique(c_int, axis=0).shape[0], time.perf_counter() - t0,
                describe(num_worker, cluster))
    for r in range(n_region):
        sel = reg == r
        U[r, used] = np.round(np.median(U_samples[sel], axis=0)).astype(np.int64)
    return U


def _read_closure_block(stack: IfgramStack, in_name: str, pairs: np.ndarray, item) -> np.ndarray:
    """The ``pairs`` of one block, float32 (the I/O of a fill task)."""
    return stack.read(in_name, item[0], index=pairs).astype(np.float32, copy=False)


def _shift_block(shift_lut: np.ndarray, n_region: int, item, data: np.ndarray) -> np.ndarray:
    """The block plus 2π × its region's cycles in every pair; no-data (0, NaN) unchanged.

    ``data`` (float32, the block's own read) is shifted in place, pair by pair, and only the pairs
    with a non-zero shift somewhere are touched.
    """
    rid = np.where(item[1] >= 0, item[1], n_region)
    for k in np.flatnonzero(np.any(shift_lut != 0, axis=0)):
        layer = data[k]
        np.add(layer, shift_lut[rid, k], out=layer, where=(layer != 0) & np.isfinite(layer))
    return data


def run_phase_closure(stack_path: Path, in_name: str, out_name: str, land: np.ndarray | None,
                      opts: UnwrapOptions, max_memory: float, attrs: dict | None = None, num_worker: int = 1,
                      cluster: str | None = None) -> str:
    stack = IfgramStack(stack_path)
    if int(stack.pairs.keep.sum()) < 3:
        raise DataError(f"{stack_path}: fewer than 3 kept pairs; no closure phase to use")
    region, n_region = common_regions(stack, land, opts.min_area, max_memory, num_worker, cluster)
    U = region_ambiguities(stack, in_name, region, n_region, opts, num_worker, cluster)
    names = stack.pairs.date12
    for k in np.flatnonzero(np.any(U != 0, axis=0)):
        logger.info("phase closure %s: cycles per region %s", names[k],
                    {int(r): int(U[r, k]) for r in np.flatnonzero(U[:, k])})
    m = len(stack.pairs)
    shift_lut = np.vstack([TWO_PI * U, np.zeros((1, m))]).astype(np.float32)  # last row: no region
    nothing = not np.any(shift_lut != 0)
    with h5py.File(stack_path, "r") as f:
        # a float32 dataset stored in the stack (MintPy's files): its stored chunks are copied; a
        # virtual one (a stack appended in parts) or another type is written pair by pair; with no
        # pair corrected, either is mapped (a virtual dataset with the input's values, no copy), or
        # an output stored before is rewritten in place (StackEditor.write_corrected_copy)
        copy = f[in_name].dtype == np.float32 and (nothing or not f[in_name].is_virtual)
    # the pairs with a cycle to add somewhere: the others are copied from the input inside the stack
    changed = np.flatnonzero(np.any(shift_lut != 0, axis=0)) if copy else np.arange(m)
    lut = np.ascontiguousarray(shift_lut[:, changed])

    def fill(ds: h5py.Dataset) -> None:
        # (the block read, its shift and output, and the next block read ahead, float32; the flags)
        blocks = plan_blocks(stack.shape, changed.size * 17, memory_per_task(max_memory, num_worker, cluster),
                             stack.chunk_shape(in_name))
        items = [(block, np.ascontiguousarray(region[block.slices])) for block in blocks]
        results = run_blocks(items, functools.partial(_read_closure_block, stack, in_name, changed),
                             functools.partial(_shift_block, lut, n_region),
                             workers=num_worker, cluster=cluster)
        for (block, _), out in progress(results, "phase closure", "block", total=len(items)):
            ds[:, block.rows, block.cols] = out

    if copy:
        StackEditor(stack_path).write_corrected_copy(out_name, in_name, changed, fill, attrs=attrs)
    else:
        write_stack_dataset(stack_path, out_name, fill, like=in_name, attrs=attrs)
    n_fixed = int(np.any(U != 0, axis=0).sum())
    return f"phase closure: {n_fixed} pair(s) corrected on {n_region} common region(s) → {out_name}"


# ---------------------------------------------------------------------------- plugins
_OPTIONS = {
    "dataset": "the stack dataset to correct (default unwrapPhase)",
    "force": "yes: recompute even if the output dataset is up to date",
    "seed": "seed of the random samples of phase closure (default 0)",
    "alpha": f"weight of the L1 regularisation of phase closure (default {DEFAULT_ALPHA})",
}


def _option(options, key: str, kind, default):
    """Option ``key`` as ``kind`` (bool: yes/no), from the command line's strings or a caller's values."""
    value = options.get(key, default)
    if not isinstance(value, str):
        return kind(value)
    text = value.strip().lower()
    try:
        if kind is bool:
            if text not in ("yes", "no", "true", "false", "1", "0"):
                raise ValueError(text)
            return text in ("yes", "true", "1")
        return kind(text)
    except ValueError:
        raise InputError(f"-O {key}={shown(value)}: expected {'yes or no' if kind is bool else kind.__name__}") from None


class _UnwrapCorrection(Correction):
    stage = "ifgram"
    method = ""
    options = _OPTIONS
    step = "correct_unwrap_error"
    after = "quick_overview"

    def parse_options(self, template: Template) -> UnwrapOptions:
        return UnwrapOptions.from_template(template)

    def enabled(self, template: Template, metadata) -> bool:
        return template.get_str(METHOD_KEY, ["no", *DATASETS]) == self.method

    def reads(self, options: UnwrapOptions, work_dir: Path) -> list[Path]:
        """The water mask file (waterMaskFile) and the geometry, whose waterMask stands in for it."""
        water = options.water_file.path(work_dir) if isinstance(options, UnwrapOptions) else None
        return [*super().reads(options, work_dir), *([water] if water is not None else [])]

    def run(self, context: CorrectionContext) -> CorrectionResult:
        stack_path = Path(context.input_file)
        if Path(context.output_file).resolve() != stack_path.resolve():
            raise InputError(f"{self.name} adds a dataset to the stack it reads; -o must be the input "
                             f"({stack_path}), not {context.output_file}")
        stack = IfgramStack(stack_path)
        in_name = context.options.get("dataset", "unwrapPhase")
        stack._require(in_name)
        land, label = _water_mask(context, stack.shape)
        opts = UnwrapOptions.from_context(context, label)
        force = _option(context.options, "force", bool, False)
        summaries = []
        for step in self.steps():
            # the closure step of "bridging+phase_closure" writes that method's own dataset
            out_name = DATASETS[self.method] if step == "phase_closure" else DATASETS[step]
            config = _config(IfgramStack(stack_path), step, in_name, opts)
            if not force and _up_to_date(stack_path, out_name, config):
                summaries.append(f"{out_name} is up to date (same input and settings); skipped")
                logger.info(summaries[-1])
            else:
                # the settings are stored with the data, in the same update of the stack
                attrs = {_CONFIG_ATTR: config, **_provenance(opts, self.method)}
                if step == "bridging":
                    # as MintPy's unwrap_error_bridging: its settings on the stack too, so the files
                    # derived from it carry them
                    root = {key: _provenance(opts, self.method)[key] for key in BRIDGING_ROOT_KEYS}
                    text = run_bridging(stack_path, in_name, out_name, land, opts, attrs, root,
                                        max_memory=context.max_memory, num_worker=context.num_worker,
                                        cluster=context.cluster)
                else:
                    text = run_phase_closure(stack_path, in_name, out_name, land, opts, context.max_memory, attrs,
                                             context.num_worker, context.cluster)
                summaries.append(text)
                logger.info(text)
            in_name = out_name
        return CorrectionResult(stack_path, summary="; ".join(summaries))

    def steps(self) -> tuple[str, ...]:
        return tuple(self.method.split("+"))


BRIDGING_ROOT_KEYS = (PREFIX + "waterMaskFile", PREFIX + "connCompMinArea", PREFIX + "bridgePtsRadius")


def _provenance(opts: UnwrapOptions, method: str) -> dict[str, str]:
    return {PREFIX + "method": method, PREFIX + "connCompMinArea": str(opts.min_area),
            PREFIX + "numSample": str(opts.num_sample), PREFIX + "ramp": opts.ramp or "no",
            PREFIX + "bridgePtsRadius": str(opts.radius), PREFIX + "waterMaskFile": opts.water_mask,
            "sbts.unwrapError.seed": str(opts.seed)}


class Bridging(_UnwrapCorrection):
    """Aligns each pair's connected components to the reference one across minimum-spanning-tree bridges."""

    name = "bridging"
    method = "bridging"
    summary = "Unwrapping errors: bridge connected components (Yunjun et al. 2019) → unwrapPhase_bridging."
    keys = {**_KEYS_COMMON, **_KEYS_BRIDGING}


class PhaseClosure(_UnwrapCorrection):
    """Integer 2π corrections per pair and common region that cancel the triplets' integer closure phase."""

    name = "phase_closure"
    method = "phase_closure"
    summary = "Unwrapping errors: integer closure-phase ambiguities (HiGHS L1 MILP) → unwrapPhase_phaseClosure."
    keys = {**_KEYS_COMMON, **_KEYS_CLOSURE}


class BridgingPhaseClosure(_UnwrapCorrection):
    """Bridging, then phase closure on the bridged phase."""

    name = "bridging+phase_closure"
    method = "bridging+phase_closure"
    summary = "Unwrapping errors: bridging then phase closure → unwrapPhase_bridging_phaseClosure."
    keys = {**_KEYS_COMMON, **_KEYS_BRIDGING, **_KEYS_CLOSURE}


@hookimpl
def sbts_corrections():
    return [Bridging(), PhaseClosure(), BridgingPhaseClosure()]


__all__ = ["Bridging", "PhaseClosure", "BridgingPhaseClosure", "corrected_dataset_name", "bridge_pair",
           "common_regions", "region_ambiguities", "write_stack_dataset", "DATASETS"]
