"""The spatial reference point: choose it, check it, store it as REF_Y/REF_X in the stack.

Interferograms are relative in space; every pixel's phase is later taken relative to this pixel, so
it must be valid (finite, non-zero unwrapPhase) in *every* kept pair and should be highly coherent.

Given ``mintpy.reference.lalo`` (wins when set) or ``mintpy.reference.yx``, the pixel is checked and
refused with a :class:`DataError` if it is outside the image, masked, or without data in a kept pair.

Automatic choice (deterministic; MintPy picks at random among the coherent pixels, which rarely lands
near an edge; sbts asks for that explicitly):

1. candidates = pixels inside the masks (``mintpy.reference.maskFile``, default maskConnComp.h5, and
   the geometry waterMask when present) with finite average coherence
   (``mintpy.reference.coherenceFile``, default avgSpatialCoh.h5; all 1 when the stack has none);
   only those with coherence ≥ ``mintpy.reference.minCoherence`` when any reach it;
2. each candidate is scored by the mean coherence of its neighbourhood (a (2r+1)² window;
   masked/NaN neighbours count as 0, so a pixel inside a coherent area beats an isolated bright one)
   times its depth inside the unmasked ground: the chessboard distance ``d`` to the nearest pixel
   that is masked, without coherence, or off the image, as ``d/(d + D)``.  ``D`` = 5 % of the
   shorter image side (2..50 pixels) and ``r`` = D/2 (1..25).  A pixel on the image's first row or
   on the shore of a masked lake scores 1/(1 + D) of its coherence, one D pixels inside 1/2, the
   centre of a large area nearly 1: among equally coherent surroundings the deeper pixel wins, and
   coherence above the threshold counts for less than being well inside (MintPy picks at random
   among the pixels above it).  The depth is measured to the masks, not to the threshold: where
   only scattered pixels reach it (a city), every one of them would otherwise be "on an edge";
3. ranked by that score, then the deeper pixel, then the one nearer the image centre, then y, x;
   the first candidate whose unwrapPhase is valid in every kept pair is chosen.

Default-named coherence/mask files that are absent (or older than the stack) are computed in memory;
explicitly set files must exist.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.options import FileOption
from sbts.core.config.template import Template
from sbts.core.errors import DataError, InputError, TemplateError, shown
from sbts.core.io.blocks import Block
from sbts.core.io.h5 import open_h5
from sbts.core.io.products import IfgramStack
from sbts.core.io.workdir import GEOMETRY_RADAR, WorkDir, find_geometry
from sbts.core.steps.averages import (
    AVG_COHERENCE_FILE,
    CONNCOMP_MASK_FILE,
    as_stack,
    connected_component_mask,
    geometry_water_mask,
    kept_index,
    read_mask_file,
    temporal_average,
    valid_in_all_kept,
)

logger = logging.getLogger(__name__)

KEY = "mintpy.reference."
_NUM_CHECKED = 20  # candidates checked one pixel at a time before a full coverage pass


@dataclass(frozen=True)
class ReferencePoint:
    """The chosen reference pixel; ``method`` is ``yx``, ``lalo`` or ``maxCoherence``."""

    y: int
    x: int
    lat: float | None
    lon: float | None
    method: str


@dataclass(frozen=True)
class ReferenceOptions:
    """``mintpy.reference.*`` (but ``date``), parsed: the pixel given by lat/lon or y/x, else the
    masks and coherence of the automatic choice."""

    yx: tuple[int, int] | None = None
    lalo: tuple[float, float] | None = None
    mask_file: FileOption = FileOption(KEY + "maskFile", CONNCOMP_MASK_FILE)
    coherence_file: FileOption = FileOption(KEY + "coherenceFile", AVG_COHERENCE_FILE)
    min_coherence: float | None = 0.85

    @classmethod
    def from_template(cls, template: Template) -> ReferenceOptions:
        lalo = template.get_numbers(KEY + "lalo", 2)
        yx = template.get_numbers(KEY + "yx", 2)
        if yx is not None and any(v != int(v) for v in yx):
            raise TemplateError(f"{template.source}: {KEY}yx = {shown(template.raw(KEY + 'yx'))}: y and x are "
                                "pixel indices and must be whole numbers")
        return cls(yx=(int(yx[0]), int(yx[1])) if yx is not None else None,
                   lalo=(lalo[0], lalo[1]) if lalo is not None else None,
                   mask_file=FileOption.from_template(template, KEY + "maskFile"),
                   coherence_file=FileOption.from_template(template, KEY + "coherenceFile"),
                   min_coherence=template.get_float(KEY + "minCoherence"))


def _options(value: ReferenceOptions | Template) -> ReferenceOptions:
    return value if isinstance(value, ReferenceOptions) else ReferenceOptions.from_template(value)


# ---------------------------------------------------------------------------- inputs
def _map_file(option: FileOption, default_name: str, stack: IfgramStack,
              work_dir: Path) -> tuple[Path | None, bool]:
    """(file to read, compute instead) for the map named by ``option``.

    Unset (``no``) → (None, False).  A file with the default name that is absent or older than the
    stack → (None, True): compute it in memory.  Any other name must exist.
    """
    path = option.path(work_dir)
    if path is None:
        return None, False
    if path.name != default_name:
        if not path.is_file():
            raise InputError(f"{option.key} {path} not found")
        return path, False
    if not path.is_file():
        return None, True
    if path.stat().st_mtime < _stack_data_time(stack):
        logger.info("%s is older than the data/drop list of %s: recomputed in memory", path.name,
                    stack.path.name)
        return None, True
    return path, False


def _stack_data_time(stack: IfgramStack) -> float:
    """When the stack's data or drop list last changed (dataset MODIFICATION_TIME; else file mtime).

    Not the file mtime alone: writing REF_Y/REF_X touches the file but changes no average.
    """
    times = []
    with open_h5(stack.path) as f:
        for name in ("dropIfgram", "coherence", "unwrapPhase", "connectComponent"):
            if name in f and "MODIFICATION_TIME" in f[name].attrs:
                try:
                    times.append(float(f[name].attrs["MODIFICATION_TIME"]))
                except (TypeError, ValueError):
                    pass
    return max(times) if times else stack.path.stat().st_mtime


def _read_coherence(path: Path, shape: tuple[int, int]) -> np.ndarray:
    with open_h5(path) as f:
        names = [n for n, o in f.items() if getattr(o, "ndim", 0) == 2]
        name = "coherence" if "coherence" in names else (names[0] if names else None)
        if name is None:
            raise InputError(f"{path}: no 2-D coherence dataset")
        data = f[name][()].astype(np.float32)
    if data.shape != tuple(shape):
        raise InputError(f"{path}: shape {data.shape} differs from the stack {tuple(shape)}")
    return data


def reference_mask(stack: IfgramStack, options: ReferenceOptions | Template, work_dir: Path,
                   max_memory: float) -> np.ndarray:
    """Where a reference pixel may lie: the reference mask file ∩ geometry waterMask."""
    path, compute = _map_file(_options(options).mask_file, CONNCOMP_MASK_FILE, stack, work_dir)
    if path is not None:
        mask = read_mask_file(path, stack.shape)
    elif compute:
        mask = connected_component_mask(stack, max_memory)
    else:
        mask = np.ones(stack.shape, bool)
    water = geometry_water_mask(stack.path, work_dir, stack.shape)
    if water is not None:
        mask &= water
    return mask


def average_coherence(stack: IfgramStack, options: ReferenceOptions | Template, work_dir: Path,
                      max_memory: float) -> np.ndarray | None:
    """The average spatial coherence map, or None when neither a coherence file nor the stack has one."""
    path, _compute = _map_file(_options(options).coherence_file, AVG_COHERENCE_FILE, stack, work_dir)
    if path is not None:
        return _read_coherence(path, stack.shape)
    if stack.has("coherence"):
        return temporal_average(stack, "coherence", max_memory)
    logger.warning("%s has no coherence: the reference point is chosen on coverage and distance from the edges "
                   "alone", stack.path.name)
    return None


# ---------------------------------------------------------------------------- checks
def pixel_problems(stack: IfgramStack, y: int, x: int, mask: np.ndarray | None = None,
                   dataset: str = "unwrapPhase") -> list[str]:
    """Why (y, x) cannot be the reference pixel; empty if it can."""
    length, width = stack.shape
    if not (0 <= y < length and 0 <= x < width):
        return [f"it is outside the {length}×{width} image"]
    problems = []
    if mask is not None and not mask[y, x]:
        problems.append("it is masked out (reference mask / water mask)")
    index = kept_index(stack)
    value = stack.read(dataset, Block(y, y + 1, x, x + 1), index=index).reshape(-1)
    bad = ~np.isfinite(value) | (value == 0)
    if bad.any():
        date12 = stack.pairs.date12
        names = [date12[i] for i in index[bad]]
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        problems.append(f"its {dataset} is NaN or zero (no data) in {len(names)} kept pair(s): "
                        f"{', '.join(names[:5])}{more}")
    return problems


def edge_margin(shape: tuple[int, int]) -> int:
    """``D``: the depth (pixels) inside the candidate area at which a pixel scores half of its coherence."""
    return int(np.clip(round(0.05 * min(shape)), 2, 50))


def neighbourhood_radius(shape: tuple[int, int]) -> int:
    """``r``: half-width of the window whose mean coherence scores a candidate's surroundings."""
    return int(np.clip(edge_margin(shape) // 2, 1, 25))


def _neighbourhood_mean(values: np.ndarray, radius: int = 1) -> np.ndarray:
    """Mean over the (2r+1)² window (out-of-image counts as 0): the 'coherent surroundings' score."""
    from scipy.ndimage import uniform_filter

    return uniform_filter(values.astype(np.float32, copy=False), size=2 * radius + 1, mode="constant", cval=0.0)


def edge_depth(area: np.ndarray) -> np.ndarray:
    """Chessboard distance (pixels) from each pixel of ``area`` to the nearest pixel outside it or off
    the image (1 on the first row); 0 outside ``area``."""
    from scipy.ndimage import distance_transform_cdt

    padded = np.pad(area, 1, constant_values=False)
    return distance_transform_cdt(padded, metric="chessboard")[1:-1, 1:-1]


def rank_candidates(coherence: np.ndarray, mask: np.ndarray, min_coherence: float | None,
                    eligible: np.ndarray | None = None, limit: int | None = None) -> np.ndarray:
    """Candidate pixels (flat indices) in the documented order of preference.

    ``eligible`` restricts the candidates without changing the scores; ``limit`` keeps about the best
    ``limit`` (every pixel tied with the last one is kept, so the order stays deterministic).
    """
    coh = np.where(mask & np.isfinite(coherence), coherence, np.nan).astype(np.float32)
    usable = np.isfinite(coh)
    if not usable.any() or (eligible is not None and not (usable & eligible).any()):
        return np.empty(0, np.int64)
    if min_coherence is not None:
        strong = usable & (coh >= min_coherence)
        if (strong if eligible is None else strong & eligible).any():
            usable = strong
        else:
            logger.warning("no pixel reaches the reference minCoherence %.2f (max %.3f): using the best available",
                           min_coherence, np.nanmax(coh))
    margin = edge_margin(coh.shape)
    depth = edge_depth(np.isfinite(coh))
    score = _neighbourhood_mean(np.nan_to_num(coh, nan=0.0), neighbourhood_radius(coh.shape))
    score *= depth.astype(np.float32) / (depth + margin).astype(np.float32)
    candidates = usable if eligible is None else usable & eligible
    flat = np.flatnonzero(candidates.ravel())
    flat_score = score.ravel()[flat]
    if limit is not None and flat.size > limit:
        kth = np.partition(flat_score, flat.size - limit)[flat.size - limit]
        sel = flat_score >= kth
        flat, flat_score = flat[sel], flat_score[sel]
    ys, xs = np.unravel_index(flat, coh.shape)
    centre = np.hypot(ys - (coh.shape[0] - 1) / 2, xs - (coh.shape[1] - 1) / 2)
    # np.lexsort sorts by the last key first
    order = np.lexsort((xs, ys, centre, -depth.ravel()[flat], -flat_score))
    return flat[order]


def _latlon_of(stack: IfgramStack, y: int, x: int, work_dir: Path | None) -> tuple[float | None, float | None]:
    geo = stack.metadata.grid.geo
    if geo is not None:
        return geo.yx_to_lalo(y, x)
    geom = find_geometry(stack.path, work_dir)
    if geom is not None:
        with open_h5(geom) as f:
            if "latitude" in f and "longitude" in f:
                return float(f["latitude"][y, x]), float(f["longitude"][y, x])
    return None, None


def lalo_to_yx(stack: IfgramStack, lat: float, lon: float, work_dir: Path | None = None) -> tuple[int, int]:
    """Pixel of (lat, lon): through the geo grid, else nearest pixel of the radar geometry lat/lon."""
    length, width = stack.shape
    geo = stack.metadata.grid.geo
    if geo is not None:
        y = int(np.floor((lat - geo.y_first) / geo.y_step))
        x = int(np.floor((lon - geo.x_first) / geo.x_step))
        if not (0 <= y < length and 0 <= x < width):
            raise DataError(f"reference lat/lon {lat}, {lon} is outside the image (pixel {y}, {x} of "
                            f"{length}×{width})")
        return y, x
    geom = find_geometry(stack.path, work_dir, names=(GEOMETRY_RADAR,))
    if geom is None:
        raise TemplateError("mintpy.reference.lalo needs a geocoded stack or inputs/geometryRadar.h5 with "
                            "latitude/longitude; use mintpy.reference.yx instead")
    with open_h5(geom) as f:
        if "latitude" not in f or "longitude" not in f:
            raise TemplateError(f"mintpy.reference.lalo: {geom} has no latitude/longitude; use reference.yx")
        la, lo = f["latitude"][()].astype(np.float64), f["longitude"][()].astype(np.float64)
    dist = (la - lat) ** 2 + ((lo - lon) * np.cos(np.radians(lat))) ** 2
    if not np.isfinite(dist).any():
        raise DataError(f"{geom}: latitude/longitude are all NaN")
    y, x = np.unravel_index(int(np.nanargmin(dist)), dist.shape)
    # farther than ~2 pixel spacings from the nearest pixel centre: the point is off the image
    yn, xn = (y + 1 if y + 1 < length else y - 1), (x + 1 if x + 1 < width else x - 1)
    coslat = np.cos(np.radians(lat))
    spacing = [((la[a, b] - la[y, x]) ** 2 + ((lo[a, b] - lo[y, x]) * coslat) ** 2)
               for a, b in ((yn, x), (y, xn)) if 0 <= a < length and 0 <= b < width and (a, b) != (y, x)]
    spacing = [s for s in spacing if np.isfinite(s) and s > 0]
    if spacing and dist[y, x] > 4 * max(spacing):
        raise DataError(f"reference lat/lon {lat}, {lon} is outside the image covered by {geom}")
    return int(y), int(x)


# ---------------------------------------------------------------------------- choose / set
def choose_reference(stack: IfgramStack | str | os.PathLike, options: ReferenceOptions | Template,
                     work_dir: str | os.PathLike, max_memory: float = DEFAULT_MAX_MEMORY_GB) -> ReferencePoint:
    """The reference pixel from the options (checked) or chosen automatically (see module doc)."""
    options = _options(options)
    stack = as_stack(stack)
    work_dir = Path(work_dir)
    mask = reference_mask(stack, options, work_dir, max_memory)

    lalo, yx = options.lalo, options.yx
    if lalo is not None or yx is not None:
        if lalo is not None:
            lat, lon = lalo
            y, x = lalo_to_yx(stack, lat, lon, work_dir)
            method = "lalo"
            if yx is not None and yx != (y, x):
                logger.warning("both reference.lalo and reference.yx are set; lalo (pixel %d, %d) is used", y, x)
        else:
            y, x = yx
            method = "yx"
        problems = pixel_problems(stack, y, x, mask)
        if problems:
            hint = ""
            try:
                alt = _auto(stack, options, work_dir, max_memory, mask)
                hint = f"; the automatic choice would be y/x = {alt.y}, {alt.x}"
            except DataError:
                pass
            raise DataError(f"reference pixel y/x = {y}, {x} ({method}) cannot be used: "
                            f"{'; '.join(problems)}{hint}")
        lat, lon = _latlon_of(stack, y, x, work_dir)
        logger.info("reference pixel y/x = %d, %d from %s", y, x, method)
        return ReferencePoint(y, x, lat, lon, method)
    return _auto(stack, options, work_dir, max_memory, mask)


def _auto(stack: IfgramStack, options: ReferenceOptions, work_dir: Path, max_memory: float,
          mask: np.ndarray) -> ReferencePoint:
    coherence = average_coherence(stack, options, work_dir, max_memory)
    has_coherence = coherence is not None
    if coherence is None:
        coherence = np.ones(stack.shape, np.float32)
    min_coh = options.min_coherence
    candidates = rank_candidates(coherence, mask, min_coh, limit=_NUM_CHECKED)
    if candidates.size == 0:
        raise DataError("no pixel can be the reference: the reference mask leaves no pixel with coherence; "
                        "check maskConnComp.h5 / mintpy.reference.maskFile")
    width = stack.shape[1]
    chosen = None
    for flat in candidates[:_NUM_CHECKED]:
        y, x = divmod(int(flat), width)
        if not pixel_problems(stack, y, x):
            chosen = (y, x)
            break
    if chosen is None:
        logger.info("the best reference candidates lack data in some pair: checking the coverage everywhere")
        valid = valid_in_all_kept(stack, "unwrapPhase", max_memory)
        rest = rank_candidates(coherence, mask, min_coh, eligible=valid, limit=1)
        if rest.size:
            chosen = divmod(int(rest[0]), width)
    if chosen is None:
        raise DataError("no candidate reference pixel has unwrapPhase data in every kept pair; drop the "
                        "pairs with gaps (modify_network) or relax the mask")
    y, x = chosen
    lat, lon = _latlon_of(stack, y, x, work_dir)
    depth = int(edge_depth(np.isfinite(np.where(mask, coherence, np.nan)))[y, x])
    where = f"{depth} pixel(s) inside the unmasked area"
    if has_coherence:
        logger.info("reference pixel y/x = %d, %d chosen automatically (average coherence %.3f, %s)", y, x,
                    float(coherence[y, x]), where)
    else:
        logger.info("reference pixel y/x = %d, %d chosen automatically (no coherence: on coverage, %s)", y, x,
                    where)
    return ReferencePoint(y, x, lat, lon, "maxCoherence")


def set_reference(stack_path: str | os.PathLike, y: int, x: int, lat: float | None = None,
                  lon: float | None = None) -> None:
    """Store REF_Y/REF_X (and REF_LAT/REF_LON) as root attributes of the stack, in place.

    Data is not rewritten; the file is not touched when the same point is already stored (MintPy's
    skip rule).  lat/lon come from the geo grid when geocoded and not given.  The write goes
    through :class:`~sbts.core.io.stack_editor.StackEditor`.
    """
    from sbts.core.io.stack_editor import StackEditor

    stack = as_stack(stack_path)
    length, width = stack.shape
    if not (0 <= y < length and 0 <= x < width):
        raise DataError(f"reference pixel y/x = {y}, {x} is outside the {length}×{width} image")
    if (lat is None or lon is None) and stack.metadata.grid.geo is not None:
        lat, lon = stack.metadata.grid.geo.yx_to_lalo(y, x)
    StackEditor(stack.path, step="reference_point").set_reference(y, x, lat, lon)


def reference_chooser(options: ReferenceOptions | Template | None, work_dir: str | os.PathLike,
                      max_memory: float = DEFAULT_MAX_MEMORY_GB):
    """What the inversion engine calls for a stack without a reference point (``invert_network(...,
    choose_reference=...)``): choose one as the reference_point step does and store it in the stack."""

    def choose(stack: IfgramStack) -> tuple[int, int]:
        choice = choose_reference(stack, options if options is not None else Template(), work_dir, max_memory)
        set_reference(stack.path, choice.y, choice.x, choice.lat, choice.lon)
        return choice.y, choice.x

    return choose


def run(options: ReferenceOptions, workdir: WorkDir, compute: ComputeOptions,
        keep: tuple[int, int, float | None, float | None] | None = None, update_store: bool = False,
        force: bool = False) -> list[Path]:
    """The reference_point step of ``sbts run``: the average coherence and connected-component mask
    it chooses on (``avgSpatialCoh.h5``, ``maskConnComp.h5``), then REF_Y/REF_X in the stack.

    ``keep`` (y, x, lat, lon): the point of the previous run, kept when it has data in every kept
    pair (after new acquisitions were appended with the same reference options).  ``update_store``
    keeps the sums behind the two maps, so that an append adds only the new pairs
    (:func:`sbts.core.steps.overview_update.reference_maps`; ``force``: every pair)."""
    from sbts.core.steps.averages import write_coherence_map, write_conncomp_map
    from sbts.core.steps.overview_update import reference_maps

    outputs = []
    coherence, mask = reference_maps(workdir, compute.max_memory, update_store, force, compute.num_worker,
                                     compute.cluster)
    stack = IfgramStack(workdir.stack)
    if coherence is not None:
        outputs.append(write_coherence_map(stack, workdir.root, coherence))
    outputs.append(write_conncomp_map(stack, workdir.root, mask))
    if keep is not None:
        y, x = keep[0], keep[1]
        kept = np.flatnonzero(stack.pairs.keep)
        inside = 0 <= y < stack.shape[0] and 0 <= x < stack.shape[1]
        value = stack.read("unwrapPhase", Block(y, y + 1, x, x + 1), kept).reshape(-1) if inside else np.zeros(1)
        if np.all(np.isfinite(value) & (value != 0)):
            set_reference(workdir.stack, y, x, keep[2], keep[3])
            logger.info("reference point y=%d x=%d kept from the previous run (new acquisitions appended)", y, x)
            return outputs
        logger.info("the previous reference point y=%d x=%d has no data in some new pair: choosing again "
                    "(a changed reference point means a full inversion)", y, x)
    choice = choose_reference(IfgramStack(workdir.stack), options, workdir.root, compute.max_memory)
    set_reference(workdir.stack, choice.y, choice.x, choice.lat, choice.lon)
    logger.info("reference point y=%d x=%d (%s)", choice.y, choice.x, choice.method)
    return outputs


__all__ = ["run", "ReferenceOptions", "ReferencePoint", "choose_reference", "set_reference", "pixel_problems", "rank_candidates",
           "lalo_to_yx", "reference_mask", "average_coherence", "edge_depth", "edge_margin",
           "neighbourhood_radius"]
