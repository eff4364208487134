"""Modify the interferogram network: choose which pairs the inversion uses, never deleting data.

The result is MintPy's ``dropIfgram`` flag (True = keep).  Like MintPy's modify_network, every run
starts again from *all* pairs and applies the ``mintpy.network.*`` rules, so changing the template
and re-running can bring pairs back; a pair is dropped when at least one rule drops it (union), and
the report keeps every reason so the user sees why.

Rules (keys ``mintpy.network.<key>``):

- ``tempBaseMax`` (days), ``perpBaseMax`` (m, on |bperp|);
- ``connNumMax``: keep pairs whose acquisition indices differ by ≤ N (a sequential network);
- ``startDate`` / ``endDate``: drop pairs reaching outside the window;
- ``excludeDate`` (YYYYMMDD list), ``excludeDate12`` (``date1_date2`` or ``YYMMDD-YYMMDD``);
- ``excludeIfgIndex``: pair indices, **0-based**, ranges ``a:b`` with the end **included**
  (``1:5`` = 1, 2, 3, 4, 5) — as MintPy's smallbaselineApp.cfg documents ("start from 0", ``1:5,25``);
- ``referenceFile``: a text file of pairs to keep (one ``date1_date2`` per line) or an
  ``ifgramStack.h5`` whose kept pairs are kept; every other pair is dropped;
- ``coherenceBased`` + ``minCoherence``: drop pairs whose masked/AOI mean coherence is below the
  threshold, except (``keepMinSpanTree``) those of the minimum spanning tree of the network weighted
  by 1/coherence (Yunjun et al. 2019 §4.2), so the network stays connected.  The tree is built on
  the pairs the other rules keep (MintPy builds it on all pairs, so a tree pair dropped by another
  rule can leave the network split even though another tree existed);
- ``areaRatioBased`` (Kang et al. 2021) is not implemented: ``yes`` raises TemplateError.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sbts.core.compute.scheduling import memory_per_task, run_blocks, runs_apart
from sbts.core.compute.task_arrays import TaskArrays, task_arrays
from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.template import Template
from sbts.core.errors import DataError, InputError, TemplateError, shown
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import atomic_write_text, open_h5
from sbts.core.io.products import IfgramStack
from sbts.core.io.progress import progress
from sbts.core.io.safenames import read_text, require_regular
from sbts.core.io.workdir import WorkDir, find_geometry
from sbts.core.model.dates import format_date, parse_date
from sbts.core.model.metadata import Metadata
from sbts.core.model.pairs import Pairs
from sbts.core.steps.averages import as_stack, geometry_water_mask, read_mask_file

logger = logging.getLogger(__name__)

KEY = "mintpy.network."
COHERENCE_TABLE = "coherenceSpatialAvg.txt"
_MIN_COH_WEIGHT = 1e-6  # coherence floor for the 1/coherence MST weight (0 or NaN coherence)


@dataclass(frozen=True)
class DropReport:
    """Outcome of the network rules: ``keep`` per pair, and why each dropped pair was dropped.

    ``reasons`` maps the date12 of every dropped pair to its reasons, each ``"<rule>: <detail>"``;
    ``coherence`` is the mean spatial coherence per pair when it was computed.
    """

    keep: np.ndarray
    reasons: dict[str, list[str]]
    coherence: np.ndarray | None = None
    date12: tuple[str, ...] = field(default=())

    @property
    def num_dropped(self) -> int:
        return int((~self.keep).sum())

    def counts(self) -> dict[str, int]:
        """Number of pairs each rule drops (a pair dropped by two rules counts for both)."""
        counter: Counter[str] = Counter()
        for items in self.reasons.values():
            counter.update({r.split(":", 1)[0] for r in items})
        return dict(sorted(counter.items()))

    def summary(self) -> str:
        lines = [f"{int(self.keep.sum())} of {self.keep.size} pairs kept, {self.num_dropped} dropped"]
        lines += [f"  {rule}: {n} pair(s)" for rule, n in self.counts().items()]
        return "\n".join(lines)


# ---------------------------------------------------------------------------- options
@dataclass(frozen=True)
class NetworkOptions:
    """``mintpy.network.*``: every key's resolved value (what update mode and provenance record),
    each checked when parsed, so a bad value fails before the run starts.  The drop rules read
    them through ``template`` (:func:`select_pairs`)."""

    settings: dict = field(default_factory=dict)
    template: Template = field(default_factory=Template, compare=False, repr=False, metadata={"digest": False})

    @classmethod
    def from_template(cls, t: Template) -> NetworkOptions:
        if t.get_bool(KEY + "areaRatioBased"):
            raise TemplateError(f"{t.source}: mintpy.network.areaRatioBased = yes is not supported by sbts; "
                                "use coherenceBased = yes instead")
        t.get_float(KEY + "tempBaseMax")
        t.get_float(KEY + "perpBaseMax")
        conn = t.get_int(KEY + "connNumMax")
        if conn is not None and conn < 1:
            raise TemplateError(f"{t.source}: {KEY}connNumMax = {conn}: must be ≥ 1")
        _date(t, KEY + "startDate")
        _date(t, KEY + "endDate")
        _dates(t, KEY + "excludeDate")
        for item in t.get_list(KEY + "excludeDate12"):
            try:
                parse_date12(item)
            except InputError as exc:
                raise TemplateError(f"{t.source}: {KEY}excludeDate12: {exc}") from None
        if t.get_list(KEY + "excludeIfgIndex"):  # the range is checked against the stack when it is known
            parse_index_list(t.get_list(KEY + "excludeIfgIndex"), 1 << 62, KEY + "excludeIfgIndex")
        if t.get_bool(KEY + "coherenceBased") and t.get_float(KEY + "minCoherence") is None:
            raise TemplateError(f"{t.source}: {KEY}minCoherence must be a number with coherenceBased = yes")
        t.get_bool(KEY + "keepMinSpanTree")
        return cls(t.section(KEY), t)


def _template(value: NetworkOptions | Template) -> Template:
    return value.template if isinstance(value, NetworkOptions) else value


# ---------------------------------------------------------------------------- parsing
def _date(template: Template, key: str) -> _dt.date | None:
    value = template.get(key)
    if value is None:
        return None
    try:
        return parse_date(value)
    except InputError:
        raise TemplateError(f"{template.source}: {key} = {shown(value)} is not a date (YYYYMMDD)") from None


def _dates(template: Template, key: str) -> list[_dt.date]:
    out = []
    for item in template.get_list(key):
        try:
            out.append(parse_date(item))
        except InputError:
            raise TemplateError(f"{template.source}: {key}: {shown(item)} is not a date (YYYYMMDD)") from None
    return out


def parse_date12(text: str) -> str:
    """Normalise ``20150101_20150201`` / ``150101-150201`` to ``YYYYMMDD_YYYYMMDD``."""
    parts = [p for p in re.split(r"[_\-\s]+", text.strip()) if p]
    if len(parts) != 2:
        raise InputError(f"{shown(text)} is not a pair name (date1_date2 or YYMMDD-YYMMDD)")
    d1, d2 = (parse_date(p) for p in parts)
    if d1 > d2:
        d1, d2 = d2, d1
    return f"{format_date(d1)}_{format_date(d2)}"


def parse_index_list(items: list[str] | str, num: int, key: str = "excludeIfgIndex") -> list[int]:
    """Parse ``25, 30, 1:5`` into sorted unique 0-based indices; ``a:b`` includes ``b``.

    Indices outside 0..num-1 are an error (a typo there would otherwise silently do nothing).
    """
    if isinstance(items, str):
        items = [v for v in re.split(r"[,\s]+", items.strip("[] ")) if v]
    out: set[int] = set()
    for item in items:
        item = item.strip("[] ")
        if not item:
            continue
        try:
            if ":" in item:
                a, b = (int(v) for v in item.split(":"))
                if b < a:
                    raise ValueError
                values = range(a, b + 1)
            else:
                values = [int(item)]
        except ValueError:
            raise TemplateError(f"{key}: {shown(item)} is not an index or a range a:b (a ≤ b)") from None
        for v in values:
            if not 0 <= v < num:
                raise TemplateError(f"{key}: index {v} is outside 0..{num - 1} (indices are 0-based)")
            out.add(v)
    return sorted(out)


def read_pair_list(path: str | os.PathLike) -> list[str]:
    """Pairs to keep from a text file (first token of each line) or from a stack's kept pairs."""
    path = require_regular(path, "mintpy.network.referenceFile")
    if path.suffix.lower() in (".h5", ".he5"):
        return IfgramStack(path).pairs.kept().date12
    pairs = []
    for lineno, line in enumerate(read_text(path, "pair list").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            pairs.append(parse_date12(line.split()[0]))
        except InputError as exc:
            raise InputError(f"{path}, line {lineno}: {exc}") from None
    return pairs


def _resolve(path: str, work_dir: str | os.PathLike | None) -> Path:
    p = Path(path).expanduser()
    if p.is_absolute() or work_dir is None or p.exists():
        return p
    return Path(work_dir) / p


# ---------------------------------------------------------------------------- MST
def minimum_spanning_tree_pairs(pairs: Pairs, coherence: np.ndarray, candidates: np.ndarray | None = None
                                ) -> np.ndarray:
    """Bool per pair: in the minimum spanning tree (forest) of ``candidates`` weighted by 1/coherence.

    High coherence = low weight, so the tree holds the best pairs that still join every date.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    m = len(pairs)
    candidates = np.ones(m, bool) if candidates is None else np.asarray(candidates, bool)
    out = np.zeros(m, bool)
    if not candidates.any():
        return out
    i1, i2 = pairs.indices()
    coh = np.asarray(coherence, np.float64)
    weight = 1.0 / np.clip(np.nan_to_num(coh, nan=0.0), _MIN_COH_WEIGHT, None)
    sel = np.flatnonzero(candidates)
    n = len(pairs.dates)
    graph = coo_matrix((weight[sel], (i1[sel], i2[sel])), shape=(n, n)).tocsr()
    tree = minimum_spanning_tree(graph).tocoo()
    lookup = {(int(a), int(b)): k for k, a, b in zip(sel, i1[sel], i2[sel])}
    for a, b in zip(tree.row, tree.col):
        out[lookup[(min(a, b), max(a, b))]] = True
    return out


# ---------------------------------------------------------------------------- the rules
@dataclass(frozen=True, eq=False)
class PairContext:
    """What the rules look at: the pairs and their baselines, the template, the mean coherence.

    ``dropped`` (bool per pair) is what the rules before the current one dropped; only
    ``coherenceBased`` reads it (its spanning tree is built on the pairs the others keep).
    """

    pairs: Pairs
    template: Template
    coherence: np.ndarray | None
    work_dir: str | os.PathLike | None
    names: list[str]
    tbase: np.ndarray  # days
    i1: np.ndarray  # date index of date1
    i2: np.ndarray
    dropped: np.ndarray

    @classmethod
    def of(cls, pairs: Pairs, template: Template, coherence: np.ndarray | None,
           work_dir: str | os.PathLike | None) -> PairContext:
        i1, i2 = pairs.indices()
        return cls(pairs, template, coherence, work_dir, pairs.date12, pairs.temporal_baseline_days(), i1, i2,
                   np.zeros(len(pairs), bool))


@dataclass(frozen=True)
class NetworkRule:
    """One ``mintpy.network.*`` rule.

    ``setting`` reads the rule's template keys and returns its value, or None when the rule is off
    (it raises TemplateError for a bad value); ``drops`` returns the bool mask of the pairs the rule
    drops; ``reason`` explains why pair k is dropped (reported as ``"<name>: <reason>"``).
    """

    name: str
    keys: tuple[str, ...]  # its template keys, after "mintpy.network."
    setting: Callable[[PairContext], Any]
    drops: Callable[[PairContext, Any], np.ndarray]
    reason: Callable[[PairContext, Any, int], str]


def _refuse_area_ratio(ctx: PairContext) -> None:
    if ctx.template.get_bool(KEY + "areaRatioBased"):
        raise TemplateError(f"{ctx.template.source}: mintpy.network.areaRatioBased = yes is not supported by sbts; "
                            "use coherenceBased = yes instead")
    return None


def _conn_num_max(ctx: PairContext) -> int | None:
    conn = ctx.template.get_int(KEY + "connNumMax")
    if conn is not None and conn < 1:
        raise TemplateError(f"{ctx.template.source}: {KEY}connNumMax = {conn}: must be ≥ 1")
    return conn


def _exclude_dates(ctx: PairContext) -> set[_dt.date] | None:
    excluded = _dates(ctx.template, KEY + "excludeDate")
    if not excluded:
        return None
    missing = [format_date(d) for d in excluded if d not in set(ctx.pairs.dates)]
    if missing:
        logger.warning("excludeDate: %s not in the network", ", ".join(missing))
    return set(excluded)


def _exclude_date12(ctx: PairContext) -> list[str] | None:
    ex12 = []
    for item in ctx.template.get_list(KEY + "excludeDate12"):
        try:
            ex12.append(parse_date12(item))
        except InputError as exc:
            raise TemplateError(f"{ctx.template.source}: {KEY}excludeDate12: {exc}") from None
    if not ex12:
        return None
    names = ctx.names
    missing = sorted(set(ex12) - set(names))
    if missing:  # a mistyped pair would leave the pair meant to be dropped in the inversion
        raise TemplateError(f"{ctx.template.source}: {KEY}excludeDate12: {', '.join(missing[:5])}"
                            f"{' ...' if len(missing) > 5 else ''} not a pair of the stack "
                            f"({len(names)} pairs, {names[0]} ... {names[-1]}); correct or remove "
                            f"{'it' if len(missing) == 1 else 'them'}")
    return ex12


def _exclude_index(ctx: PairContext) -> list[int] | None:
    items = ctx.template.get_list(KEY + "excludeIfgIndex")  # "0" is an index: only the words mean "no"
    return parse_index_list(items, len(ctx.pairs), KEY + "excludeIfgIndex") if items else None


def _index_mask(ctx: PairContext, index: list[int]) -> np.ndarray:
    mask = np.zeros(len(ctx.pairs), bool)
    mask[index] = True
    return mask


def _reference_pairs(ctx: PairContext) -> tuple[Path, set[str]] | None:
    ref_file = ctx.template.get(KEY + "referenceFile")
    if ref_file is None:
        return None
    path = _resolve(ref_file, ctx.work_dir)
    wanted = set(read_pair_list(path))
    unknown = wanted - set(ctx.names)
    if unknown:
        logger.warning("referenceFile %s lists %d pair(s) not in the network (e.g. %s)", path, len(unknown),
                       sorted(unknown)[0])
    return path, wanted


@dataclass(frozen=True)
class _CoherenceRule:
    coherence: np.ndarray  # (m,) float64 mean coherence per pair
    threshold: float
    keep_tree: bool


def _coherence_setting(ctx: PairContext) -> _CoherenceRule | None:
    t = ctx.template
    if not t.get_bool(KEY + "coherenceBased"):
        return None
    if ctx.coherence is None:
        raise DataError("coherenceBased network modification needs the mean coherence of each pair "
                        "(the stack has no coherence dataset?)")
    coh = np.asarray(ctx.coherence, np.float64)
    if coh.shape != (len(ctx.pairs),):
        raise InputError(f"coherence has shape {coh.shape}, expected ({len(ctx.pairs)},)")
    threshold = t.get_float(KEY + "minCoherence")
    if threshold is None:
        raise TemplateError(f"{t.source}: {KEY}minCoherence must be a number with coherenceBased = yes")
    return _CoherenceRule(coh, threshold, t.get_bool(KEY + "keepMinSpanTree"))


def _low_coherence(ctx: PairContext, rule: _CoherenceRule) -> np.ndarray:
    low = ~(rule.coherence >= rule.threshold)  # NaN (no valid pixel) counts as low
    if rule.keep_tree:
        tree = minimum_spanning_tree_pairs(ctx.pairs, rule.coherence, ~ctx.dropped)
        saved = low & tree
        if saved.any():
            logger.info("coherenceBased: %d pair(s) below %.2f kept as part of the minimum spanning tree",
                        int(saved.sum()), rule.threshold)
        low &= ~tree
    return low


# MintPy's network rules, applied in this order; a pair is dropped when any rule drops it
NETWORK_RULES: tuple[NetworkRule, ...] = (
    NetworkRule("areaRatioBased", ("areaRatioBased", "minAreaRatio"), _refuse_area_ratio,
                lambda ctx, _: np.zeros(len(ctx.pairs), bool), lambda ctx, _, k: ""),
    NetworkRule("tempBaseMax", ("tempBaseMax",), lambda ctx: ctx.template.get_float(KEY + "tempBaseMax"),
                lambda ctx, days: ctx.tbase > days, lambda ctx, days, k: f"{ctx.tbase[k]} days > {days:g}"),
    NetworkRule("perpBaseMax", ("perpBaseMax",), lambda ctx: ctx.template.get_float(KEY + "perpBaseMax"),
                lambda ctx, m: np.abs(ctx.pairs.bperp) > m,
                lambda ctx, m, k: f"|bperp| {np.abs(ctx.pairs.bperp)[k]:.1f} m > {m:g}"),
    NetworkRule("connNumMax", ("connNumMax",), _conn_num_max, lambda ctx, n: ctx.i2 - ctx.i1 > n,
                lambda ctx, n, k: f"{ctx.i2[k] - ctx.i1[k]} acquisitions apart > {n}"),
    NetworkRule("startDate", ("startDate",), lambda ctx: _date(ctx.template, KEY + "startDate"),
                lambda ctx, start: np.array([d < start for d in ctx.pairs.date1], bool),
                lambda ctx, start, k: f"starts before {format_date(start)}"),
    NetworkRule("endDate", ("endDate",), lambda ctx: _date(ctx.template, KEY + "endDate"),
                lambda ctx, end: np.array([d > end for d in ctx.pairs.date2], bool),
                lambda ctx, end, k: f"ends after {format_date(end)}"),
    NetworkRule("excludeDate", ("excludeDate",), _exclude_dates,
                lambda ctx, ex: np.array([a in ex or b in ex for a, b in zip(ctx.pairs.date1, ctx.pairs.date2)],
                                         bool),
                lambda ctx, ex, k: "contains " + ", ".join(
                    format_date(d) for d in (ctx.pairs.date1[k], ctx.pairs.date2[k]) if d in ex)),
    NetworkRule("excludeDate12", ("excludeDate12",), _exclude_date12,
                lambda ctx, ex12: np.isin(ctx.names, ex12), lambda ctx, ex12, k: "listed"),
    NetworkRule("excludeIfgIndex", ("excludeIfgIndex",), _exclude_index, _index_mask,
                lambda ctx, index, k: f"index {k}"),
    NetworkRule("referenceFile", ("referenceFile",), _reference_pairs,
                lambda ctx, ref: ~np.isin(ctx.names, sorted(ref[1])), lambda ctx, ref, k: f"not in {ref[0].name}"),
    NetworkRule("coherenceBased", ("coherenceBased", "minCoherence", "keepMinSpanTree"), _coherence_setting,
                _low_coherence, lambda ctx, rule, k: f"mean coherence {rule.coherence[k]:.3f} < {rule.threshold:g}"),
)
# keys that choose where the mean coherence of coherenceBased is taken (see modify_network)
COHERENCE_AREA_KEYS = ("maskFile", "aoiYX", "aoiLALO")


def select_pairs(pairs: Pairs, template: Template, coherence: np.ndarray | None = None,
                 work_dir: str | os.PathLike | None = None) -> DropReport:
    """Apply the ``mintpy.network.*`` rules (:data:`NETWORK_RULES`) to all pairs (their current keep
    flags are ignored).

    ``coherence`` (mean coherence per pair) is needed only for ``coherenceBased``; ``work_dir``
    resolves a relative ``referenceFile``.
    """
    ctx = PairContext.of(pairs, template, coherence, work_dir)
    reasons: dict[int, list[str]] = {}
    for rule in NETWORK_RULES:
        value = rule.setting(ctx)
        if value is None:
            continue
        for k in np.flatnonzero(rule.drops(ctx, value)):
            reasons.setdefault(int(k), []).append(f"{rule.name}: {rule.reason(ctx, value, int(k))}")
        ctx.dropped[list(reasons)] = True
    keep = ~ctx.dropped
    return DropReport(keep=keep, reasons={ctx.names[k]: v for k, v in sorted(reasons.items())},
                      coherence=None if coherence is None else np.asarray(coherence, np.float64),
                      date12=tuple(ctx.names))


# ---------------------------------------------------------------------------- AOI, mask, coherence
def _span(a: float, b: float, first: float, step: float, size: int, what: str) -> tuple[int, int]:
    """Pixel range [i0, i1) covering coordinates a..b on an axis (first = edge of pixel 0)."""
    lo, hi = sorted(((a - first) / step, (b - first) / step))
    eps = 1e-6  # coordinates on a pixel edge must not pull in the neighbour through rounding
    i0, i1 = max(0, int(np.floor(lo + eps))), min(size, int(np.ceil(hi - eps)))
    if i1 <= i0:
        raise TemplateError(f"{what} does not overlap the image")
    return i0, i1


def parse_aoi(template: Template, metadata: Metadata, geometry_path: str | os.PathLike | None = None
              ) -> Block | None:
    """The area of interest for the mean coherence: ``aoiYX`` (y0:y1,x0:x1, end excluded) or ``aoiLALO``.

    ``aoiLALO`` (S:N,W:E) goes through the geo grid when geocoded, else through the latitude/longitude
    of the radar geometry file ``geometry_path`` (bounding box of the pixels inside).
    """
    length, width = metadata.grid.shape
    yx = template.get(KEY + "aoiYX")
    lalo = template.get(KEY + "aoiLALO")
    if yx is not None:
        try:
            (y0, y1), (x0, x1) = (tuple(int(v) for v in part.split(":")) for part in yx.split(","))
        except ValueError:
            raise TemplateError(f"{template.source}: {KEY}aoiYX = {yx!r}: expected y0:y1,x0:x1") from None
        y0, y1, x0, x1 = max(0, y0), min(length, y1), max(0, x0), min(width, x1)
        if y1 <= y0 or x1 <= x0:
            raise TemplateError(f"{template.source}: {KEY}aoiYX = {yx!r} is empty or outside the "
                                f"{length}×{width} image")
        return Block(y0, y1, x0, x1)
    if lalo is None:
        return None
    try:
        (s, n), (w, e) = (tuple(float(v) for v in part.split(":")) for part in lalo.split(","))
    except ValueError:
        raise TemplateError(f"{template.source}: {KEY}aoiLALO = {lalo!r}: expected S:N,W:E") from None
    what = f"{template.source}: {KEY}aoiLALO = {lalo!r}"
    geo = metadata.grid.geo
    if geo is not None:
        y0, y1 = _span(n, s, geo.y_first, geo.y_step, length, what)
        x0, x1 = _span(w, e, geo.x_first, geo.x_step, width, what)
        return Block(y0, y1, x0, x1)
    if geometry_path is None:
        raise TemplateError(f"{what}: the stack is in radar coordinates and no geometry file with "
                            "latitude/longitude was found; use aoiYX instead")
    with open_h5(geometry_path) as f:
        if "latitude" not in f or "longitude" not in f:
            raise TemplateError(f"{what}: {geometry_path} has no latitude/longitude; use aoiYX instead")
        lat, lon = f["latitude"][()], f["longitude"][()]
    inside = (lat >= min(s, n)) & (lat <= max(s, n)) & (lon >= min(w, e)) & (lon <= max(w, e))
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if rows.size == 0:
        raise TemplateError(f"{what} does not overlap the image")
    return Block(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


def network_mask(template: Template, stack: IfgramStack, work_dir: str | os.PathLike) -> np.ndarray | None:
    """The mask for the mean coherence from ``mintpy.network.maskFile``.

    An explicitly set file must exist; the default (waterMask.h5) may be absent, in which case the
    geometry file's ``waterMask`` is used when there is one.
    """
    name = template.get(KEY + "maskFile")
    if name is None:
        return None
    path = _resolve(name, work_dir)
    if path.is_file():
        logger.info("mean coherence inside the mask %s", path)
        return read_mask_file(path, stack.shape)
    if template.is_set(KEY + "maskFile"):
        raise InputError(f"{KEY}maskFile {path} not found")
    water = geometry_water_mask(stack.path, work_dir, stack.shape)
    if water is not None:
        logger.info("mean coherence inside the waterMask of the geometry file")
    return water


def spatial_average_coherence(stack: IfgramStack | str | os.PathLike, mask: np.ndarray | None = None,
                              aoi: Block | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB,
                              index: np.ndarray | None = None, workers: int = 1,
                              cluster: str | None = None) -> np.ndarray:
    """Mean coherence of every pair (dropped ones too) over the mask ∩ AOI, NaN ignored, (m,).

    Read block by block within the AOI; a pair without any valid pixel gets NaN.  ``index``: only
    those pairs (their means, in that order).  The blocks' sums may be computed in the pool or on
    dask (``workers``, ``cluster``); they are added in block order whatever order they come back
    in, so the means are the same bits.
    """
    stack = as_stack(stack)
    stack._require("coherence")
    length, width = stack.shape
    aoi = aoi or Block(0, length, 0, width)
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != (length, width):
            raise InputError(f"mask shape {mask.shape} differs from the stack {(length, width)}")
        if not mask[aoi.slices].any():
            raise DataError(f"no pixel of the mask falls inside the area {aoi}; check maskFile and aoiYX/aoiLALO")
    m = len(stack.pairs) if index is None else len(index)
    total = np.zeros(m, np.float64)
    count = np.zeros(m, np.int64)
    bytes_per_pixel = m * 4 + 16  # the block read, and one layer's temporaries
    planned = plan_blocks(aoi.shape, bytes_per_pixel, memory_per_task(max_memory, workers, cluster),
                          stack.chunk_shape("coherence"))
    blocks = [Block(b.row_start + aoi.row_start, b.row_stop + aoi.row_start, b.col_start + aoi.col_start,
                    b.col_stop + aoi.col_start) for b in planned]
    apart = runs_apart(workers, cluster) and mask is not None
    with task_arrays({} if mask is None else {"mask": mask}, stack.path, apart) as shared:
        # added in block order (ordered: dask too), so the sums do not depend on who computed them
        results = run_blocks(blocks, functools.partial(_read_coherence, stack, index), functools.partial(
            _pair_sums, shared), workers=workers, cluster=cluster, ordered=True)
        for _block, (t, c) in progress(results, "mean coherence per pair", "block", total=len(blocks)):
            total += t
            count += c
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _read_coherence(stack: IfgramStack, index: np.ndarray | None, block: Block) -> np.ndarray:
    return stack.read("coherence", block, index=index)


def _pair_sums(shared: TaskArrays, block: Block, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ and count of the finite coherence of every pair over one block (inside the mask, if any)."""
    inside = shared["mask"][block.slices] if "mask" in shared else None
    m = data.shape[0]
    total = np.zeros(m, np.float64)
    count = np.zeros(m, np.int64)
    for k in range(m):  # pair by pair: one layer of temporaries
        layer = data[k].astype(np.float32, copy=False)
        valid = np.isfinite(layer)
        if inside is not None:
            valid &= inside
        total[k] = np.where(valid, layer, np.float32(0)).sum(dtype=np.float64)
        count[k] = np.count_nonzero(valid)
    return total, count


# ---------------------------------------------------------------------------- the step
def write_coherence_table(path: str | os.PathLike, pairs: Pairs, report: DropReport, data_file: str = "ifgramStack.h5",
                          mask_label: str | None = None, aoi: Block | None = None) -> Path:
    """``coherenceSpatialAvg.txt`` in MintPy's layout, so its ``plot_network.py`` and
    ``modify_network.py`` read it: four ``#`` lines (data file, mask file, AOI box as (x0, y0, x1, y1),
    threshold), a column header, then ``DATE12 <TAB> mean <TAB> Btemp/days <TAB> Bperp/m <TAB> index``
    per pair (all pairs, dropped ones too).  The drop decisions are sbts's addition, as trailing
    ``#`` lines that any ``np.loadtxt`` reader skips.
    """
    path = Path(path)
    coh = report.coherence if report.coherence is not None else np.full(len(pairs), np.nan)
    tbase = pairs.temporal_baseline_days()
    box = None if aoi is None else (aoi.col_start, aoi.row_start, aoi.col_stop, aoi.row_stop)
    lines = [f"# Data file: {data_file}", f"# Mask file: {mask_label}", f"# AOI box: {box}",
             "# Threshold: None", "#\tDATE12\t\tMean\tBtemp/days\tBperp/m\t\tNum"]
    for k, name in enumerate(pairs.date12):
        lines.append(f"{name}\t{coh[k]:.4f}\t{tbase[k]:8.0f}\t{pairs.bperp[k]:8.1f}\t{k}")
    dropped = [name for k, name in enumerate(pairs.date12) if not report.keep[k]]
    lines.append(f"# sbts modify_network: {len(pairs) - len(dropped)} pair(s) kept, {len(dropped)} dropped "
                 "(dropIfgram in the stack)")
    for name in dropped:
        lines.append(f"# dropped {name}: {'; '.join(report.reasons.get(name, [])) or '-'}")
    return atomic_write_text(path, "\n".join(lines) + "\n")


def write_drop_flags(stack_path: str | os.PathLike, keep: np.ndarray) -> bool:
    """Write ``dropIfgram`` in place (only that dataset, through
    :class:`~sbts.core.io.stack_editor.StackEditor`); return True if it changed.

    An unchanged network leaves the file untouched (downstream steps need not re-run).
    """
    from sbts.core.io.stack_editor import StackEditor

    return StackEditor(stack_path, step="modify_network").set_drop(keep)


def modify_network(stack_path: str | os.PathLike, template: NetworkOptions | Template, work_dir: str | os.PathLike,
                   max_memory: float = DEFAULT_MAX_MEMORY_GB, update_store: bool = False,
                   force: bool = False, num_worker: int = 1, cluster: str | None = None) -> DropReport:
    """The modify_network step: choose the pairs, store ``dropIfgram``, write ``coherenceSpatialAvg.txt``.

    ``update_store`` keeps the mean coherence of every pair, so that after appended acquisitions only
    the new pairs are averaged (:func:`sbts.core.steps.overview_update.pair_coherence`; ``force``:
    every pair)."""
    template = _template(template)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    stack = as_stack(stack_path)
    pairs = stack.pairs.with_keep(np.ones(len(stack.pairs), bool))  # start again from all pairs

    coherence = None
    aoi = mask_label = None
    if stack.has("coherence"):
        geom = find_geometry(stack.path, work_dir)
        aoi = parse_aoi(template, stack.metadata, geom)
        mask = network_mask(template, stack, work_dir)
        if mask is not None:
            name = template.get(KEY + "maskFile")
            mask_label = name if name and _resolve(name, work_dir).is_file() else "waterMask (geometry file)"
        from sbts.core.steps.overview_update import NET_STORE_FILE, pair_coherence

        if update_store:
            coherence = pair_coherence(stack, mask, aoi, max_memory, work_dir, force, num_worker, cluster)
        else:
            coherence = spatial_average_coherence(stack, mask, aoi, max_memory, workers=num_worker, cluster=cluster)
            (work_dir / NET_STORE_FILE).unlink(missing_ok=True)  # it would no longer go with the table
    elif template.get_bool(KEY + "coherenceBased"):
        raise DataError(f"{stack.path}: coherenceBased = yes but the stack has no coherence dataset")

    report = select_pairs(pairs, template, coherence, work_dir)
    for name, why in report.reasons.items():
        logger.info("drop %s: %s", name, "; ".join(why))
    logger.info("modify_network: %s", "; ".join(line.strip() for line in report.summary().splitlines()))

    kept = pairs.with_keep(report.keep)
    if not report.keep.any():
        logger.warning("every pair is dropped: the inversion will have nothing to use")
    else:
        orphans = sorted(set(pairs.dates) - set(kept.kept().dates))
        if orphans:
            logger.warning("%d date(s) have no kept pair and cannot be estimated: %s", len(orphans),
                           ", ".join(format_date(d) for d in orphans))
        pieces = kept.kept().num_connected_components()
        if pieces > 1:
            logger.warning("the kept network is split into %d disconnected parts: the time series is "
                           "estimated only up to an offset between parts (relax the rules or keep the MST)",
                           pieces)

    changed = write_drop_flags(stack.path, report.keep)
    logger.info("%s: dropIfgram %s", stack.path.name, "updated" if changed else "unchanged")
    write_coherence_table(work_dir / COHERENCE_TABLE, pairs, report, stack.path.name, mask_label, aoi)
    return report


def run(options: NetworkOptions, workdir: WorkDir, compute: ComputeOptions, update_store: bool = False,
        force: bool = False) -> list[Path]:
    """The modify_network step of ``sbts run``: ``waterMask.h5`` from the geometry (as smallbaselineApp
    writes it, before the network mask reads it), the drop list, ``coherenceSpatialAvg.txt``."""
    from sbts.core.steps.averages import write_water_mask

    water = write_water_mask(workdir.stack, workdir.root)
    report = modify_network(workdir.stack, options, workdir.root, compute.max_memory, update_store, force,
                            compute.num_worker, compute.cluster)
    logger.info("%s", report.summary())
    return [workdir.root / COHERENCE_TABLE] + ([water] if water else [])


__all__ = ["run",
    "NetworkOptions", "DropReport", "select_pairs", "spatial_average_coherence", "parse_aoi", "modify_network",
    "minimum_spanning_tree_pairs", "parse_index_list", "parse_date12", "read_pair_list",
    "network_mask", "write_coherence_table", "write_drop_flags", "COHERENCE_TABLE", "NETWORK_RULES",
    "NetworkRule", "PairContext",
]
