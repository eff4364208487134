"""``sbts load``: a processor's files → ``inputs/ifgramStack.h5`` and ``inputs/geometry*.h5``.

With ``mintpy.load.ionUnwFile`` (and ``ionCorFile``/``ionConnCompFile``), the ionosphere interferograms of
the ISCE2 stack processors' split-spectrum (topsStack ``ion/*/ion_cal/filt.ion``, stripmapStack
``ionosphere/*/…``) go through the same reader, subset and multilook into ``inputs/ionStack.h5`` (MintPy's
layout: ``unwrapPhase`` in radians, ``coherence``, ``connectComponent``), on the grid of ifgramStack.h5.

The reader plugin (chosen by ``mintpy.load.processor`` or, with ``auto``, by the readers' own
``detect``) parses and reads; this module alone writes, block by block over the output grid, with
optional subset (``mintpy.subset.yx/lalo``) and multilook (``mintpy.multilook.*``).  A load whose
inputs and options are unchanged since the last one is skipped (update mode).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB, ComputeOptions
from sbts.core.config.template import Template
from sbts.core.errors import InputError, PluginError, SbtsError, shown
from sbts.core.inversion.options import UPDATE_STORE_KEY
from sbts.core.io import stack_parts
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import H5Writer, read_attrs
from sbts.core.io.load_record import LOAD_RECORD, SIGNATURE_ATTR, read_record, record_path
from sbts.core.io.products import STACK_DATASETS, StackWriter
from sbts.core.io.progress import progress
from sbts.core.io.workdir import WorkDir
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, check_physical
from sbts.core.model.pairs import Pairs
from sbts.core.model.platform import from_project_name, standard_platform
from sbts.core.plugin.interfaces import LOAD_FILE_KEYS, GeometrySource, LoadRequest, Raster, Reader, StackSource
from sbts.core.plugin.registry import Registry, detect_reader, get_registry
from sbts.core.plugin.runners import guarded

logger = logging.getLogger(__name__)

BOOL_LAYERS = {"waterMask", "shadowMask"}
NEAREST_ONLY = {"connectComponent", "waterMask", "shadowMask", "azimuthCoord", "rangeCoord",
                "latitude", "longitude", "height", "incidenceAngle", "azimuthAngle", "slantRangeDistance"}


# mintpy.load.<ion key> → the key of the same file kind the reader reads for the ionosphere stack
ION_FILE_KEYS = {"ionUnwFile": "unwFile", "ionCorFile": "corFile", "ionConnCompFile": "connCompFile"}


@dataclass(frozen=True)
class LoadResult:
    stack_file: Path | None
    geometry_files: tuple[Path, ...]
    reader: str
    skipped: bool
    ion_stack_file: Path | None = None

    @property
    def geometry_file(self) -> Path | None:
        """The geometry on the stack's grid (radar-coded if there is one), else the first."""
        radar = [p for p in self.geometry_files if p.name == "geometryRadar.h5"]
        return (radar or list(self.geometry_files) or [None])[0]


@dataclass(frozen=True)
class Window:
    """Subset box in source pixels plus multilook steps; maps output blocks to source windows."""

    y0: int
    y1: int
    x0: int
    x1: int
    ystep: int = 1
    xstep: int = 1
    method: str = "nearest"

    @property
    def shape(self) -> tuple[int, int]:
        return ((self.y1 - self.y0) // self.ystep, (self.x1 - self.x0) // self.xstep)

    def source_block(self, out: Block) -> Block:
        return Block(self.y0 + out.row_start * self.ystep, self.y0 + out.row_stop * self.ystep,
                     self.x0 + out.col_start * self.xstep, self.x0 + out.col_stop * self.xstep)

    def reduce(self, data: np.ndarray, name: str) -> np.ndarray:
        ys, xs = self.ystep, self.xstep
        if ys == 1 and xs == 1:
            return data
        method = "nearest" if name in NEAREST_ONLY else self.method
        if method == "nearest":
            return data[ys // 2::ys, xs // 2::xs]
        h, w = data.shape[0] // ys, data.shape[1] // xs
        cube = data[: h * ys, : w * xs].reshape(h, ys, w, xs).astype(np.float32)
        cube = np.where(cube == 0, np.nan, cube) if name == "unwrapPhase" else cube
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                out = np.nanmean(cube, axis=(1, 3)) if method == "mean" else np.nanmedian(cube, axis=(1, 3))
        return np.nan_to_num(out, nan=0.0) if name == "unwrapPhase" else out


@dataclass(frozen=True)
class LoadOptions:
    """``mintpy.load.*``, ``mintpy.subset.*``, ``mintpy.multilook.*``: their resolved values (what update
    mode and provenance record) and the file patterns, checked when parsed.  Readers receive the
    template itself (:class:`~sbts.core.plugin.interfaces.LoadRequest` carries it)."""

    settings: dict = field(default_factory=dict)
    patterns: dict = field(default_factory=dict)
    base_dir: Path = Path(".")
    update_mode: bool = True  # mintpy.load.updateMode: no reads every file on every run
    template: Template = field(default_factory=Template, compare=False, repr=False, metadata={"digest": False})

    @classmethod
    def from_template(cls, template: Template, base_dir: str | os.PathLike) -> LoadOptions:
        t = template
        t.get_int("mintpy.multilook.ystep")
        t.get_int("mintpy.multilook.xstep")
        t.get_str("mintpy.multilook.method", ["nearest", "mean", "median"])
        if t.get("mintpy.subset.lalo"):
            _box(t.get("mintpy.subset.lalo"), "mintpy.subset.lalo")
        settings = {}
        for prefix in ("mintpy.load.", "mintpy.subset.", "mintpy.multilook."):
            settings.update(t.section(prefix))
        base = Path(base_dir)
        return cls(settings, dict(build_request(t, base).patterns), base, update_mode=t.get_bool(UPDATE_MODE_KEY),
                   template=t)


UPDATE_MODE_KEY = "mintpy.load.updateMode"


def build_request(template: Template, base_dir: Path) -> LoadRequest:
    """Turn ``mintpy.load.*File`` keys into absolute glob patterns (relative to the template)."""
    patterns = {}
    for key in LOAD_FILE_KEYS:
        value = template.get(f"mintpy.load.{key}")
        if value:
            value = os.path.expanduser(os.path.expandvars(value))
            patterns[key] = value if os.path.isabs(value) else str(base_dir / value)
    return LoadRequest(patterns, template, base_dir, template.metadata_overrides())


def select_reader(request: LoadRequest, registry: Registry, processor: str | None = None) -> Reader:
    """The reader named by ``mintpy.load.processor``, or with ``auto`` the one the files say
    (:func:`~sbts.core.plugin.registry.detect_reader`: the surest reader, a tie refused)."""
    processor = processor or request.template.get("mintpy.load.processor") or "auto"
    if processor != "auto":
        return registry.get("reader", processor)
    return detect_reader(request, registry)


# attributes that describe the file itself, not the acquisition: a template cannot change them
_FIXED_KEYS = {"LENGTH", "WIDTH", "FILE_TYPE"}


def _apply_overrides(meta: Metadata, overrides: dict[str, str]) -> Metadata:
    if overrides:
        attrs = meta.to_attrs()
        for key in sorted(_FIXED_KEYS & set(overrides)):
            if str(overrides[key]).strip() != attrs.get(key):
                raise InputError(f"template key {key} = {shown(overrides[key])} disagrees with the data "
                                 f"({key} = {attrs.get(key)}); {key} is set by the files, remove it from the template")
        bad = [k for k in overrides if k.startswith(("SBTS_", "SUBSET_"))]
        if bad:
            raise InputError(f"template key {bad[0]} is written by sbts itself; remove it from the template")
        attrs.update(overrides)
        meta = Metadata.from_attrs(attrs, source="template metadata keys")
    platform = standard_platform(meta.radar.platform)
    return meta if platform == meta.radar.platform else meta.with_radar(platform=platform)


def _accept_metadata(meta: Metadata, source: str) -> Metadata:
    """Check physical metadata where it enters sbts (reader output, template keys): impossible
    values are refused and implausible ones named in a warning, before anything is written."""
    for text in check_physical(meta, source):
        logger.warning("%s", text)
    return meta


def _platform_keys(template: Template, meta: Metadata, overrides: dict[str, str]) -> dict[str, str]:
    """PROJECT_NAME and, when neither the files nor the template say, PLATFORM from the template's
    name (MintPy's ``<Region><Sensor><A|D><track>`` convention: SydneyEnvD123.txt → env)."""
    project, sensor = from_project_name(template.source)
    out = {}
    if project and "PROJECT_NAME" not in overrides and "PROJECT_NAME" not in meta.extra:
        out["PROJECT_NAME"] = project
    if sensor and "PLATFORM" not in overrides and not meta.radar.platform:
        logger.info("PLATFORM = %s from the template name %s (the files do not say)", sensor, project)
        out["PLATFORM"] = sensor
    return out


def _window(template: Template, meta: Metadata, geometry: GeometrySource | None) -> Window:
    length, width = meta.grid.shape
    y0, y1, x0, x1 = 0, length, 0, width
    lalo = template.get("mintpy.subset.lalo")
    yx = template.get("mintpy.subset.yx")
    if lalo:
        s, n, w, e = _box(lalo, "mintpy.subset.lalo")
        if meta.grid.geo is not None:
            g = meta.grid.geo
            ya, xa = g.lalo_to_yx(n, w)
            yb, xb = g.lalo_to_yx(s, e)
            y0, y1, x0, x1 = min(ya, yb), max(ya, yb) + 1, min(xa, xb), max(xa, xb) + 1
        elif geometry is not None and "latitude" in geometry.layers and "longitude" in geometry.layers:
            lat = geometry.layers["latitude"].read()
            lon = geometry.layers["longitude"].read()
            inside = (lat >= s) & (lat <= n) & (lon >= w) & (lon <= e)
            if not inside.any():
                raise InputError(f"mintpy.subset.lalo = {lalo}: no pixel of the lookup table falls inside")
            rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
            y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        else:
            raise InputError("mintpy.subset.lalo needs geocoded data or latitude/longitude lookup files; "
                             "use mintpy.subset.yx instead")
    elif yx:
        parts = yx.replace(" ", "").split(",")
        try:
            (y0, y1), (x0, x1) = (tuple(int(v) for v in p.split(":")) for p in parts)
        except ValueError:
            raise InputError(f"mintpy.subset.yx = {yx!r}: expected y0:y1,x0:x1") from None
    y0, x0 = max(0, int(y0)), max(0, int(x0))
    y1, x1 = min(length, int(y1)), min(width, int(x1))
    if y1 <= y0 or x1 <= x0:
        raise InputError(f"the subset is empty or outside the {length}×{width} image")
    ystep = template.get_int("mintpy.multilook.ystep") or 1
    xstep = template.get_int("mintpy.multilook.xstep") or 1
    method = template.get_str("mintpy.multilook.method", ["nearest", "mean", "median"]) or "nearest"
    if ystep < 1 or xstep < 1:
        raise InputError("mintpy.multilook.ystep/xstep must be ≥ 1")
    win = Window(y0, y1, x0, x1, ystep, xstep, method)
    if min(win.shape) < 1:
        raise InputError(f"mintpy.multilook.ystep/xstep = {ystep}/{xstep} is larger than the "
                         f"{y1 - y0}×{x1 - x0} image (subset): the stack would have no pixel")
    return win


def _box(text: str, key: str) -> tuple[float, float, float, float]:
    try:
        (a, b), (c, d) = (tuple(float(v) for v in p.split(":")) for p in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(f"{key} = {text!r}: expected S:N,W:E") from None
    return min(a, b), max(a, b), min(c, d), max(c, d)


def _window_metadata(meta: Metadata, win: Window) -> Metadata:
    length, width = win.shape
    geo = meta.grid.geo
    if geo is not None:
        geo = GeoGrid(geo.x_first + win.x0 * geo.x_step, geo.y_first + win.y0 * geo.y_step,
                      geo.x_step * win.xstep, geo.y_step * win.ystep, geo.x_unit, geo.y_unit, geo.epsg)
    meta = meta.replace(grid=Grid(length, width, geo))
    r = meta.radar
    if win.ystep > 1 or win.xstep > 1:
        meta = meta.with_radar(
            alooks=(r.alooks or 1) * win.ystep, rlooks=(r.rlooks or 1) * win.xstep,
            range_pixel_size=None if r.range_pixel_size is None else r.range_pixel_size * win.xstep,
            azimuth_pixel_size=None if r.azimuth_pixel_size is None else r.azimuth_pixel_size * win.ystep,
            ncorrlooks=None if r.ncorrlooks is None else r.ncorrlooks * win.ystep * win.xstep,
        )
    if (win.y0, win.x0) != (0, 0) or win.shape != meta.grid.shape:
        meta = meta.with_extra(SUBSET_YMIN=win.y0, SUBSET_YMAX=win.y1, SUBSET_XMIN=win.x0, SUBSET_XMAX=win.x1)
    return meta


def _signature(reader: str, inputs: list[Path], win: Window, overrides: dict[str, str], names: list[str]) -> str:
    h = hashlib.sha256()
    for p in sorted(set(inputs)):
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{p}|missing".encode())
    h.update(json.dumps([reader, win.__dict__, sorted(overrides.items()), names], default=str).encode())
    return h.hexdigest()


def _is_current(path: Path, signature: str) -> bool:
    if not path.exists():
        return False
    try:
        return read_attrs(path).get(SIGNATURE_ATTR) == signature
    except SbtsError:
        return False


def _check_pairs(stack: StackSource) -> StackSource:
    """Drop pairs whose layers differ in size from the most common size (named in a warning)."""
    shapes = [tuple(p.layers["unwrapPhase"].shape) for p in stack.pairs]
    common = collections.Counter(shapes).most_common(1)[0][0]
    bad = [p for p, s in zip(stack.pairs, shapes) if s != common]
    for p in stack.pairs:
        for name, layer in p.layers.items():
            if tuple(layer.shape) != tuple(p.layers["unwrapPhase"].shape):
                raise InputError(f"{p.path}: layer {name} is {layer.shape} but unwrapPhase is "
                                 f"{p.layers['unwrapPhase'].shape}; the files of this pair do not match")
    if bad:
        logger.warning("dropping %d interferogram(s) whose size differs from %s: %s", len(bad), common,
                       ", ".join(p.path or f"{p.date1}_{p.date2}" for p in bad))
    for name in STACK_DATASETS:  # a layer of some pairs only (a missing *_cc.tif) cannot be stacked
        lacking = [p for p in stack.pairs if name not in p.layers]
        if lacking and len(lacking) < len(stack.pairs):
            raise InputError(f"{name} is missing for {len(lacking)} of {len(stack.pairs)} interferograms: "
                             + ", ".join(p.path or f"{p.date1:%Y%m%d}_{p.date2:%Y%m%d}" for p in lacking[:3])
                             + (" ..." if len(lacking) > 3 else "")
                             + "; add the missing file(s) or leave those interferograms out of mintpy.load.unwFile")
    keep = [p for p in stack.pairs if tuple(p.layers["unwrapPhase"].shape) == common]
    if (stack.metadata.grid.shape != common):
        logger.warning("the stack metadata give %d×%d pixels but the interferograms hold %d×%d: using the "
                       "interferograms' size", *stack.metadata.grid.shape, *common)
        meta = stack.metadata.replace(grid=Grid(common[0], common[1], stack.metadata.grid.geo))
    else:
        meta = stack.metadata
    if meta.grid.geo is not None:
        keep = _same_georeference(keep, meta)
    return dataclasses.replace(stack, pairs=keep, metadata=meta)


def _same_georeference(pairs: list, meta: Metadata) -> list:
    """Drop (with a warning naming them) the interferograms of a geocoded stack whose own
    georeference (a GeoTIFF's geotransform) is not the grid of the others: stacked pixel by pixel,
    they would mix different places."""
    def corner(p) -> tuple[float, ...] | None:
        try:
            gt = getattr(p.layers["unwrapPhase"], "geotransform", None)
        except Exception:  # noqa: BLE001 - a reader's raster without a usable geotransform
            return None
        return None if gt is None else (float(gt[0]), float(gt[3]), float(gt[1]), float(gt[5]))

    corners = [corner(p) for p in pairs]
    known = [c for c in corners if c is not None]
    if not known:
        return pairs
    geo = meta.grid.geo
    dx, dy = abs(geo.x_step) or 1.0, abs(geo.y_step) or 1.0
    key = [(round(c[0] / dx * 2), round(c[1] / dy * 2)) if c is not None else None for c in corners]
    common = collections.Counter(k for k in key if k is not None).most_common(1)[0][0]
    ref = next(c for c, k in zip(corners, key) if k == common)

    def off(c) -> bool:
        return (abs(c[0] - ref[0]) > dx / 2 or abs(c[1] - ref[1]) > dy / 2
                or abs(c[2] - ref[2]) > 1e-6 * dx or abs(c[3] - ref[3]) > 1e-6 * dy)

    bad = [p for p, c in zip(pairs, corners) if c is not None and off(c)]
    if bad:
        logger.warning("dropping %d interferogram(s) not on the grid of the others (upper-left corner %.6g, %.6g, "
                       "pixel %.3g × %.3g): %s", len(bad), ref[0], ref[1], ref[2], ref[3],
                       ", ".join(f"{p.path or f'{p.date1}_{p.date2}'} at {corner(p)[0]:.6g}, {corner(p)[1]:.6g}"
                                 for p in bad[:5]) + (" ..." if len(bad) > 5 else ""))
    if abs(geo.x_first - ref[0]) > 0.75 * dx or abs(geo.y_first - ref[1]) > 0.75 * dy:
        logger.warning("the stack metadata put the upper-left corner at %.6g, %.6g but the interferograms at "
                       "%.6g, %.6g", geo.x_first, geo.y_first, ref[0], ref[1])
    bad_ids = {id(p) for p in bad}
    return [p for p in pairs if id(p) not in bad_ids]


# ------------------------------------------------------------------ stages: request → reader → plan
@dataclass(frozen=True)
class _Sources:
    """What the reader opened: the interferograms (or None) and the geometries (radar and/or geo)."""

    reader: Reader
    stack: StackSource | None
    geometries: list[GeometrySource]


@dataclass(frozen=True)
class _GeometryPlan:
    """One geometry file to write: its source, window on the source grid, metadata, path and signature."""

    source: GeometrySource
    window: Window
    metadata: Metadata
    path: Path
    signature: str


@dataclass
class _Plan:
    """What a load would write: the reader's sources, the window and each output's input signature."""

    reader: Reader
    stack: StackSource | None
    geometries: list[_GeometryPlan]
    win: Window
    overrides: dict[str, str]
    stack_file: Path | None
    stack_sig: str | None
    ion_stack: StackSource | None = None
    ion_file: Path | None = None
    ion_sig: str | None = None


def _ion_request(template: Template, base_dir: Path, request: LoadRequest) -> LoadRequest | None:
    """The request of the ionosphere stack: ``mintpy.load.ion*File`` in place of the interferograms'
    patterns, the metadata/baseline/geometry patterns kept (the reader needs them); ``None`` without
    ``ionUnwFile``."""
    found = {}
    for key, as_key in ION_FILE_KEYS.items():
        value = template.get(f"mintpy.load.{key}")
        if value:
            value = os.path.expanduser(os.path.expandvars(value))
            found[as_key] = value if os.path.isabs(value) else str(base_dir / value)
    if not found:
        return None
    if "unwFile" not in found:
        raise InputError("mintpy.load.ionCorFile/ionConnCompFile are set but mintpy.load.ionUnwFile is not: give the "
                         "ionosphere interferograms (e.g. ../ion/*/ion_cal/filt.ion) or remove them")
    patterns = {k: v for k, v in request.patterns.items()
                if k not in ("unwFile", "corFile", "connCompFile", "intFile", "magFile")}
    patterns.update(found)
    return LoadRequest(patterns, template, base_dir, request.metadata_overrides)


def _plan_ion(template: Template, base_dir: Path, request: LoadRequest, reader: Reader,
              stack: StackSource | None) -> StackSource | None:
    """The ionosphere stack of the request (read by the stack's reader), checked against the stack."""
    ion_request = _ion_request(template, base_dir, request)
    if ion_request is None:
        return None
    pattern = ion_request.pattern("unwFile")
    if stack is None:
        raise InputError(f"mintpy.load.ionUnwFile = {pattern!r} is set but there is no interferogram stack "
                         "(mintpy.load.unwFile): the ionosphere stack is loaded beside it")
    if not ion_request.files("unwFile"):
        raise InputError(f"mintpy.load.ionUnwFile = {pattern!r} matches no file; check the pattern "
                         f"(relative paths are taken from {base_dir})")
    with guarded(f"reader {reader.name!r} (ionosphere stack)"):
        ion = reader.open_stack(ion_request)
    if ion is None or not ion.pairs:
        raise InputError(f"reader {reader.name!r} found no ionosphere interferogram in mintpy.load.ionUnwFile = "
                         f"{pattern!r}")
    ion = _check_pairs(ion)
    if ion.metadata.grid.shape != stack.metadata.grid.shape:
        raise InputError(f"mintpy.load.ionUnwFile = {pattern!r}: the ionosphere interferograms are "
                         f"{ion.metadata.grid.shape[0]}×{ion.metadata.grid.shape[1]} but the interferograms are "
                         f"{stack.metadata.grid.shape[0]}×{stack.metadata.grid.shape[1]}; give the files on the same "
                         "grid (same looks)")
    return ion


def _request(template: Template, base_dir: Path) -> LoadRequest:
    """Stage 1: the file patterns of the template, refused when the interferogram pattern matches nothing."""
    request = build_request(template, base_dir)
    for key in ("unwFile",):
        if request.pattern(key) and not request.files(key):
            raise InputError(f"mintpy.load.{key} = {request.pattern(key)!r} matches no file; check the pattern "
                             f"(relative paths are taken from {base_dir})")
    return request


def _open_sources(request: LoadRequest, registry: Registry, processor: str | None) -> _Sources:
    """Stage 2: the reader (named or detected) opens the interferograms and the geometry."""
    reader = select_reader(request, registry, processor)
    with guarded(f"reader {reader.name!r}"):
        stack = reader.open_stack(request)
        geometry = reader.open_geometry(request)
    if geometry is None:
        geometries: list[GeometrySource] = []
    elif isinstance(geometry, GeometrySource):
        geometries = [geometry]
    else:
        geometries = list(geometry)
    if len({g.metadata.grid.is_geocoded for g in geometries}) != len(geometries):
        raise PluginError(f"reader {reader.name!r} returned two geometries of the same kind (radar/geo)")
    if stack is None and not geometries:
        raise InputError(f"reader {reader.name!r} found no interferogram and no geometry file in the patterns given")
    return _Sources(reader, stack, geometries)


# the plan of the last stale check (``sbts run`` asks whether the load is stale, then loads): the load
# reuses it when nothing it was built from changed, instead of having the reader parse every
# interferogram's metadata again (0.3 s for 170 GeoTIFF pairs; more for processors with a sidecar
# file a pair)
_last_plan: tuple[tuple, list[Path], _Plan] | None = None


def _plan_key(template: Template, work_dir: Path, base_dir: Path, processor: str | None, registry: Registry) -> tuple:
    return (tuple(sorted(template.values.items())), str(work_dir), str(base_dir), processor, id(registry))


def _stack_files(stack: StackSource) -> list[Path]:
    """Every file a stack's values come from: the reader's inputs and its pairs' own files."""
    return list(stack.inputs) + [f for p in stack.pairs for f in p.inputs]


def _stack_signature(reader: str, stack: StackSource, win: Window, overrides: dict[str, str]) -> str:
    """The input signature of a stack output (``ifgramStack.h5``, ``ionStack.h5``)."""
    return _signature(reader, _stack_files(stack), win, overrides,
                      [n for n in STACK_DATASETS if n in stack.pairs[0].layers])


def _geometry_signature(reader: str, geom: GeometrySource, win: Window, overrides: dict[str, str]) -> str:
    """The input signature of a geometry output (``geometryRadar.h5``, ``geometryGeo.h5``)."""
    return _signature(reader, list(geom.inputs), win, overrides, sorted(geom.layers))


def _sources_unchanged(plan: _Plan) -> bool:
    """Every file the plan's signatures cover is as it was when the plan was made."""
    name = plan.reader.name
    if plan.stack is not None and plan.stack_sig != _stack_signature(name, plan.stack, plan.win, plan.overrides):
        return False
    if plan.ion_stack is not None and plan.ion_sig != _stack_signature(name, plan.ion_stack, plan.win, plan.overrides):
        return False
    return all(g.signature == _geometry_signature(name, g.source, g.window, plan.overrides) for g in plan.geometries)


def _matched(request: LoadRequest) -> list[Path]:
    return [f for key in sorted(request.patterns) for f in request.files(key)]


def _plan(template: Template, work_dir: Path, base_dir: Path, processor: str | None,
          registry: Registry, remember: bool = False) -> _Plan:
    """Stage 3: checked metadata, the subset/multilook window and the outputs with their signatures.

    ``remember``: keep the plan for the next call with the same arguments (the stale check's plan,
    for the load that follows); that call takes it if the same files match and none changed."""
    global _last_plan
    key = _plan_key(template, work_dir, base_dir, processor, registry)
    last, _last_plan = _last_plan, None
    request = _request(template, base_dir)
    files = _matched(request)
    if last is not None and last[0] == key and last[1] == files and _sources_unchanged(last[2]):
        return last[2]
    plan = _plan_anew(template, work_dir, base_dir, processor, registry, request)
    if remember:
        _last_plan = (key, files, plan)
    return plan


def _plan_anew(template: Template, work_dir: Path, base_dir: Path, processor: str | None,
               registry: Registry, request: LoadRequest) -> _Plan:
    sources = _open_sources(request, registry, processor)
    reader, stack, geometries = sources.reader, sources.stack, sources.geometries
    # the window is defined on the stack grid; a radar-coded lat/lon lookup on that grid helps lalo subsets
    radar_geometry = next((g for g in geometries if not g.metadata.grid.is_geocoded), None)
    overrides = dict(request.metadata_overrides)
    inputs_dir = work_dir / "inputs"
    base_meta = stack.metadata if stack is not None else geometries[0].metadata
    overrides.update(_platform_keys(template, base_meta, overrides))
    label = f"reader {reader.name!r}" + (" and the template's UPPER_CASE keys" if overrides else "")
    if stack is not None:
        _accept_metadata(_apply_overrides(stack.metadata, overrides), f"{label}, interferograms")
    for geom in geometries:
        _accept_metadata(_apply_overrides(geom.metadata, overrides), f"{label}, geometry")
    if stack is not None:
        if not stack.pairs:
            raise InputError(f"no interferogram matches mintpy.load.unwFile = {request.pattern('unwFile')!r}")
        stack = _check_pairs(stack)
        base_meta = stack.metadata
    win = _window(template, base_meta, radar_geometry)
    stack_file = stack_sig = None
    if stack is not None:
        stack_file = inputs_dir / "ifgramStack.h5"
        stack_sig = _stack_signature(reader.name, stack, win, overrides)
    ion = _plan_ion(template, base_dir, request, reader, stack)
    ion_file = ion_sig = None
    if ion is not None:
        ion_file = inputs_dir / "ionStack.h5"
        ion_sig = _stack_signature(reader.name, ion, win, overrides)
    planned = []
    for geom in geometries:
        # the subset/multilook window applies to geometry on the stack's grid; a lookup table on
        # another grid (GAMMA/ROI_PAC geocoded lookup) is written whole
        same_grid = geom.metadata.grid == base_meta.grid
        gwin = win if same_grid else Window(0, geom.metadata.grid.length, 0, geom.metadata.grid.width)
        gmeta = _apply_overrides(_window_metadata(geom.metadata, gwin), overrides)
        name = "geometryGeo.h5" if gmeta.grid.is_geocoded else "geometryRadar.h5"
        sig = _geometry_signature(reader.name, geom, gwin, overrides)
        planned.append(_GeometryPlan(geom, gwin, gmeta, inputs_dir / name, sig))
    return _Plan(reader, stack, planned, win, overrides, stack_file, stack_sig, ion, ion_file, ion_sig)


def load_data(template: Template, work_dir: str | os.PathLike, base_dir: str | os.PathLike | None = None,
              processor: str | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB, force: bool = False,
              registry: Registry | None = None, num_worker: int = 1, cluster: str | None = None) -> LoadResult:
    """Load a processor's files into ``<work_dir>/inputs``; see the module docstring.

    ``num_worker`` threads read the interferograms of each block (and the geometry layers of a block);
    with ``cluster`` a dask scheduler's address, its workers read them instead, a block's layer in a
    few pieces of pairs (the geometry a block a task), and this process writes (see
    :func:`_pair_layers`, :func:`_geometry_blocks`; ``"local"`` reads with threads).  The files are
    the same bits either way.

    Stages: request (:func:`_request`) → reader (:func:`_open_sources`) → plan (:func:`_plan`) →
    write the stack (:func:`_load_stack`) → write the geometry (:func:`_load_geometries`); an output
    whose input signature matches is skipped (update mode) unless ``force``.
    """
    work_dir = Path(work_dir)
    base_dir = Path(base_dir) if base_dir is not None else work_dir
    if not force and not template.get_bool(UPDATE_MODE_KEY):
        logger.info("%s = no: every file is read again", UPDATE_MODE_KEY)
        force = True
    plan = _plan(template, work_dir, base_dir, processor, registry or get_registry())
    logger.info("reading %s files with the %r reader", plan.reader.name, plan.reader.name)
    stack_written = _load_stack(plan, max_memory, force, num_worker, in_parts=template.get_bool(UPDATE_STORE_KEY),
                                cluster=cluster)
    ion_written = _load_ion_stack(plan, max_memory, force, num_worker, cluster)
    geometry_files, geometry_written = _load_geometries(plan, max_memory, force, num_worker, cluster)
    return LoadResult(plan.stack_file, geometry_files, plan.reader.name,
                      skipped=not (stack_written or ion_written or geometry_written), ion_stack_file=plan.ion_file)


def _load_ion_stack(plan: _Plan, max_memory: float, force: bool, num_worker: int = 1,
                    cluster: str | None = None) -> bool:
    """Write ``ionStack.h5`` (same window as the stack) unless it is current; True when written."""
    if plan.ion_stack is None or plan.ion_file is None or plan.ion_sig is None:
        return False
    if not force and _is_current(plan.ion_file, plan.ion_sig):
        logger.info("%s is up to date with its inputs: skipped", plan.ion_file)
        return False
    _write_stack(plan.ion_stack, plan.win, plan.overrides, plan.ion_file, plan.ion_sig, max_memory, plan.reader.name,
                 num_worker=num_worker, cluster=cluster)
    return True


def _load_stack(plan: _Plan, max_memory: float, force: bool, num_worker: int = 1, in_parts: bool = False,
                cluster: str | None = None) -> bool:
    """Stage 4: write ``ifgramStack.h5`` unless it is current; True when written.

    When the stack on disk was loaded with the same options from files that are all unchanged,
    and the patterns now match more pairs, only the new pairs' files are read: the earlier pairs
    are copied from the stack on disk (see :func:`_previous_stack`), or with ``in_parts``
    (:data:`~sbts.core.inversion.options.UPDATE_STORE_KEY`: the switch of the update machinery;
    without it ``ifgramStack.h5`` stays one self-contained file) left where they are (:func:`_append_in_parts`), and the record beside
    the stack (:data:`LOAD_RECORD`) names the new pairs and dates."""
    if plan.stack is None or plan.stack_file is None or plan.stack_sig is None:
        return False
    if not force and _is_current(plan.stack_file, plan.stack_sig):
        logger.info("%s is up to date with its inputs: skipped", plan.stack_file)
        if read_record(plan.stack_file).get("signature") != plan.stack_sig:
            _write_record(plan, None)  # a load killed between the stack and its record
        return False
    previous = None if force else _previous_stack(plan)
    _write_stack(plan.stack, plan.win, plan.overrides, plan.stack_file, plan.stack_sig, max_memory, plan.reader.name,
                 previous, num_worker, in_parts, cluster)
    _write_record(plan, previous)
    return True


# ------------------------------------------------------------------ appending new acquisitions
@dataclass(frozen=True)
class _Previous:
    """The stack on disk whose pairs a load copies instead of reading their files again."""

    path: Path
    pairs: tuple[str, ...]  # date12 in the file's order
    dates: tuple[str, ...]
    signature: str
    reference: dict  # REF_* attributes it carried (the reference_point step's choice)
    keep: tuple[bool, ...]  # its dropIfgram (the network step's choice)


def _options_key(plan: _Plan) -> str:
    names = [n for n in STACK_DATASETS if plan.stack is not None and n in plan.stack.pairs[0].layers]
    return _signature(plan.reader.name, [], plan.win, plan.overrides, names)


def _file_stamps(paths) -> dict[str, list[int]]:
    out = {}
    for p in sorted({str(p) for p in paths}):
        try:
            st = os.stat(p)
            out[p] = [st.st_size, st.st_mtime_ns]
        except OSError:
            out[p] = [-1, -1]
    return out


def _date12(p) -> str:
    return f"{p.date1:%Y%m%d}_{p.date2:%Y%m%d}"


def _previous_stack(plan: _Plan) -> _Previous | None:
    """The stack on disk, when its pairs can be copied into the new one: the same reader, window,
    template metadata and datasets, and every source file it was read from unchanged.  A pair it
    holds that the patterns no longer match is an error (never a silent rewrite without it)."""
    assert plan.stack is not None and plan.stack_file is not None
    path = plan.stack_file
    if not path.exists():
        return None
    record = read_record(path)
    try:
        from sbts.core.io.products import IfgramStack

        attrs = read_attrs(path)
        stack = IfgramStack(path)
        old_pairs, shape = tuple(stack.pairs.date12), stack.shape
        old_keep = tuple(bool(k) for k in stack.pairs.keep)
        old_dates = tuple(stack.pairs.date_strings)
        datasets = {n for n in STACK_DATASETS if stack.has(n)}
    except SbtsError as exc:
        logger.info("%s cannot be appended to (%s): loading every pair", path, exc)
        return None
    if not record or record.get("signature") != attrs.get(SIGNATURE_ATTR):
        logger.info("%s has no load record of its own (%s): loading every pair", path.name, LOAD_RECORD)
        return None
    if record.get("options") != _options_key(plan):
        logger.info("the load options (reader, subset, multilook, metadata keys, datasets) changed since %s was "
                    "written: loading every pair", path.name)
        return None
    new_names = {_date12(p) for p in plan.stack.pairs}
    gone = [d for d in old_pairs if d not in new_names]
    if gone:
        raise InputError(f"{len(gone)} interferogram(s) of {path} are no longer matched by mintpy.load.unwFile: "
                         + ", ".join(gone[:5]) + (" ..." if len(gone) > 5 else "")
                         + "; restore their files, or reload the whole stack with --force")
    stamps = record.get("files") or {}
    changed = [f for f, st in stamps.items() if _file_stamps([f])[f] != list(st)]
    if changed and _only_listings_changed(plan.stack, record, changed, old_pairs):
        logger.info("%s%s list(s) new pairs; the files of the %d pair(s) in %s are unchanged: appending",
                    Path(changed[0]).name, " ..." if len(changed) > 1 else "", len(old_pairs), path.name)
        changed = []
    if changed:
        logger.info("%d source file(s) of %s changed since it was loaded (%s%s): loading every pair", len(changed),
                    path.name, changed[0], " ..." if len(changed) > 1 else "")
        return None
    names = {n for n in STACK_DATASETS if n in plan.stack.pairs[0].layers}
    if shape != plan.win.shape or datasets != names:
        logger.info("%s has another grid or other datasets: loading every pair", path.name)
        return None
    ref = {k: str(v) for k, v in attrs.items() if k in ("REF_Y", "REF_X", "REF_LAT", "REF_LON")}
    return _Previous(path, old_pairs, old_dates, str(attrs.get(SIGNATURE_ATTR)), ref, old_keep)


def _pair_files(pair) -> list[str]:
    return sorted({str(f) for f in pair.inputs})


def _only_listings_changed(stack: StackSource, record: dict, changed: list[str], old_pairs: tuple[str, ...]) -> bool:
    """The changed files are all files that list the pairs (:attr:`StackSource.listings`), and every
    pair loaded before is still read from the same files as then (recorded per pair, unchanged:
    they are among the record's stamped files): a listing rewritten with new pairs only."""
    listings = {str(p) for p in stack.listings}
    recorded = record.get("pairs") or {}
    if not listings or not set(changed) <= listings or set(record.get("listings") or []) != listings:
        return False
    by_name = {_date12(p): p for p in stack.pairs}
    return all(recorded.get(d) and recorded[d] == _pair_files(by_name[d]) for d in old_pairs)


def _write_record(plan: _Plan, previous: _Previous | None) -> None:
    """Write :data:`LOAD_RECORD` (atomically) after the stack took its name."""
    from sbts.core.io.h5 import atomic_write_text

    assert plan.stack is not None and plan.stack_file is not None
    record: dict = {"signature": plan.stack_sig, "options": _options_key(plan),
                    "files": _file_stamps(_stack_files(plan.stack))}
    if plan.stack.listings:  # what lets a rewritten listing append (see _only_listings_changed)
        record["listings"] = sorted(str(p) for p in plan.stack.listings)
        record["pairs"] = {_date12(p): _pair_files(p) for p in plan.stack.pairs if p.inputs}
    if previous is not None:
        old = set(previous.pairs)
        names = sorted(_date12(p) for p in plan.stack.pairs)
        new_pairs = [d for d in names if d not in old]
        dates = sorted({d for n in names for d in n.split("_")})
        record["update"] = {"new_pairs": new_pairs, "new_dates": [d for d in dates if d not in set(previous.dates)],
                            "old_pairs": list(previous.pairs), "old_signature": previous.signature,
                            "old_reference": previous.reference, "old_keep": list(previous.keep)}
        logger.info("appended %d interferogram(s) (%d new date(s)) to %s", len(new_pairs),
                    len(record["update"]["new_dates"]), plan.stack_file.name)
    atomic_write_text(record_path(plan.stack_file), json.dumps(record, indent=1, sort_keys=True))


def _load_geometries(plan: _Plan, max_memory: float, force: bool, num_worker: int = 1,
                     cluster: str | None = None) -> tuple[tuple[Path, ...], bool]:
    """Stage 5: write each geometry file unless it is current; their paths, and whether any was written."""
    written = False
    for g in plan.geometries:
        if force or not _is_current(g.path, g.signature):
            _write_geometry(g.source, g.window, g.metadata, g.path, g.signature, max_memory, num_worker, cluster)
            written = True
        else:
            logger.info("%s is up to date with its inputs: skipped", g.path)
    return tuple(g.path for g in plan.geometries), written


def stale_outputs(template: Template, work_dir: str | os.PathLike, base_dir: str | os.PathLike | None = None,
                  processor: str | None = None, registry: Registry | None = None) -> str:
    """Why a load would rewrite ``inputs/`` now ("" when every output matches its sources).

    The sources are what the reader reads (interferograms, sidecar metadata, baselines, geometry),
    compared by name, size and modification time through each output's input signature, so a
    changed or added interferogram makes the load stale even when the outputs are newer.
    """
    work_dir = Path(work_dir)
    base_dir = Path(base_dir) if base_dir is not None else work_dir
    plan = _plan(template, work_dir, base_dir, processor, registry or get_registry(), remember=True)
    if plan.stack_file is not None and plan.stack_sig is not None and not _is_current(plan.stack_file, plan.stack_sig):
        return f"the source files of {plan.stack_file.name} changed (or it is missing)"
    if plan.ion_file is not None and plan.ion_sig is not None and not _is_current(plan.ion_file, plan.ion_sig):
        return f"the source files of {plan.ion_file.name} changed (or it is missing)"
    for g in plan.geometries:
        if not _is_current(g.path, g.signature):
            return f"the source files of {g.path.name} changed (or it is missing)"
    return ""


def _write_stack(stack: StackSource, win: Window, overrides: dict[str, str], path: Path, sig: str,
                 max_memory: float, reader: str, previous: _Previous | None = None, num_worker: int = 1,
                 in_parts: bool = False, cluster: str | None = None) -> None:
    """Write the stack block by block; the interferograms' windows of a block are read by
    ``num_worker`` threads (reading is I/O: GDAL and h5py release the GIL), each into its own
    layer of the block, or by dask's workers (``cluster``): the same bits either way."""
    order = sorted(range(len(stack.pairs)), key=lambda k: (stack.pairs[k].date1, stack.pairs[k].date2))
    sources = [stack.pairs[k] for k in order]
    bperp = [np.nan if p.bperp is None else p.bperp for p in sources]
    pairs = Pairs(tuple(p.date1 for p in sources), tuple(p.date2 for p in sources),
                  np.nan_to_num(np.asarray(bperp, np.float64)), None)
    missing = [f"{p.date1:%Y%m%d}_{p.date2:%Y%m%d}" for p, b in zip(sources, bperp) if not np.isfinite(b)]
    if missing:
        logger.warning("%d of %d interferograms have no perpendicular baseline (%s%s): stored as 0 m; the "
                       "DEM-error correction needs them (mintpy.load.bperpFile / the processor's baseline files)",
                       len(missing), len(sources), ", ".join(missing[:3]), " ..." if len(missing) > 3 else "")
    meta = _apply_overrides(_window_metadata(stack.metadata, win), overrides)
    meta = meta.replace(processor=meta.processor or reader).with_extra(**{SIGNATURE_ATTR: sig})
    names = {n: STACK_DATASETS[n] for n in STACK_DATASETS if n in sources[0].layers}
    if previous is not None and in_parts and _append_in_parts(sources, pairs, names, meta, win, path, sig, max_memory, reader,
                                                 previous, num_worker, cluster):
        return
    out_shape = win.shape
    # one dataset of all pairs is held at a time (from a cluster, also its pieces as they arrive),
    # plus one source window being reduced per thread
    threads = 1 if _on_cluster(cluster) else max(1, min(int(num_worker), len(sources)))
    per_pixel = (len(sources) * 4 * (2.5 if _on_cluster(cluster) else 1.5) + 8 * win.ystep * win.xstep * threads
                 + (4 * len(previous.pairs) if previous else 0))
    blocks = plan_blocks(out_shape, per_pixel, max_memory)
    logger.info("writing %s: %d pairs, %d×%d pixels, datasets %s", path, len(sources), *out_shape, ", ".join(names))
    # pairs of the stack on disk are copied from it (their files are not read again)
    old_pos = {d: k for k, d in enumerate(previous.pairs)} if previous is not None else {}
    copied = [(k, old_pos[_date12(p)]) for k, p in enumerate(sources) if _date12(p) in old_pos]
    old_pos_new = {c[0] for c in copied}
    new_idx, old_idx = np.array([c[0] for c in copied], np.intp), np.array([c[1] for c in copied], np.intp)
    if previous is not None:
        logger.info("%s: copying %d pairs from the stack on disk, reading %d new", path.name, len(copied),
                    len(sources) - len(copied))
    with contextlib.ExitStack() as stack_ctx:
        old_file = None
        if copied:
            import h5py

            old_file = stack_ctx.enter_context(h5py.File(previous.path, "r", locking=False))  # type: ignore[union-attr]
        w = stack_ctx.enter_context(StackWriter(path, meta, pairs, names, signature=sig))
        todo = [k for k in range(len(sources)) if k not in old_pos_new]
        # the copied pairs' stored chunks go over as they are (no decoding); then only new pairs are written
        raw = {name for name in names if old_file is not None and _copy_chunks(old_file[name], w, name, old_idx, new_idx)}
        layers = [name for name in names if todo or name not in raw]
        left = [block for block in blocks if not w.is_done(block)]
        reads = _pair_layers(left, layers, sources, todo, win, reader, num_worker, cluster)
        for block, name, fill in progress(reads, desc="load stack", unit="layer", total=len(left) * len(layers)):
            out = np.empty((len(sources),) + block.shape, names[name])
            if old_file is not None and name not in raw:
                out[new_idx] = old_file[name][:, block.rows, block.cols][old_idx]
            fill(out)
            if name in raw:
                w.write(name, out[todo], block, layers=np.asarray(todo))
            else:
                w.write(name, out, block)
            if name == layers[-1]:
                w.mark_done(block)
        if not layers:
            for block in left:
                w.mark_done(block)
    stack_parts.remove_unused(path)  # written whole: the parts of an earlier stack are not needed


def _append_in_parts(sources: list, pairs: Pairs, names: dict, meta: Metadata, win: Window, path: Path, sig: str,
                     max_memory: float, reader: str, previous: _Previous, num_worker: int,
                     cluster: str | None = None) -> bool:
    """Append without copying the stack (see :mod:`sbts.core.io.stack_parts`): write the tail from
    the first new pair on into a part, and a stack whose 3-D datasets map onto the parts.  False
    (nothing written) when the tail is more than half of the stack, the stack would need more than
    :data:`~sbts.core.io.stack_parts.MAX_PARTS` parts, or the file system has no hard links: the
    caller then writes the stack whole."""
    keys = [_date12(p) for p in sources]
    old_count = len(previous.pairs)
    prefix = 0
    while prefix < old_count and keys[prefix] == previous.pairs[prefix]:
        prefix += 1
    size = len(sources) - prefix
    if prefix == 0 or size > len(sources) // 2:
        logger.info("%s: %d of %d pairs move: writing the stack whole", path.name, size, len(sources))
        return False
    try:
        pieces = stack_parts.pieces_of(previous.path, names)
    except (OSError, KeyError) as exc:
        logger.info("%s: its layout cannot be read (%s): writing the stack whole", path.name, exc)
        return False
    if pieces is None:
        logger.info("%s: its datasets are not mapped alike: writing the stack whole", path.name)
        return False
    if len(pieces) == 1 and pieces[0].file == ".":  # loaded whole: it becomes the first part
        try:
            pieces = [stack_parts.Piece(stack_parts.link_whole(previous.path, previous.signature), 0, 0, old_count)]
        except OSError as exc:
            logger.info("%s cannot be linked into %s (%s): writing the stack whole", path.name,
                        stack_parts.parts_dir(path).name, exc.strerror or exc)
            return False
    tail_file = stack_parts.part_path(path, sig)
    pieces = stack_parts.truncate(pieces, prefix) + [
        stack_parts.Piece(stack_parts.relative_name(path, tail_file), 0, prefix, size)]
    if len({p.file for p in pieces}) > stack_parts.MAX_PARTS:
        logger.info("%s would be made of more than %d parts: writing it whole", path.name, stack_parts.MAX_PARTS)
        return False
    tail = sources[prefix:]
    old = set(previous.pairs)
    kept = [k for k, key in enumerate(keys[prefix:]) if key in old]  # old layers prefix.. in order
    todo = [k for k in range(size) if keys[prefix + k] not in old]  # new pairs: read from their files
    logger.info("%s: %d pairs stay where they are, %d are written to %s (%d of them new); the stack is not copied",
                path.name, prefix, size, tail_file.relative_to(path.parent), len(todo))
    if not _is_current(tail_file, sig):
        tail_pairs = Pairs(pairs.date1[prefix:], pairs.date2[prefix:], pairs.bperp[prefix:], None)
        threads = 1 if _on_cluster(cluster) else max(1, min(int(num_worker), len(todo)))
        per_pixel = size * 4 * (2.5 if _on_cluster(cluster) else 1.5) + 8 * win.ystep * win.xstep * threads
        with contextlib.ExitStack() as ctx:
            import h5py

            old_file = ctx.enter_context(h5py.File(previous.path, "r", locking=False))
            w = ctx.enter_context(StackWriter(tail_file, meta, tail_pairs, names, signature=sig + ":tail"))
            left = [b for b in plan_blocks(win.shape, per_pixel, max_memory) if not w.is_done(b)]
            layers = list(names)
            reads = _pair_layers(left, layers, tail, todo, win, reader, num_worker, cluster)
            for block, name, fill in progress(reads, desc="load stack", unit="layer", total=len(left) * len(layers)):
                out = np.empty((size,) + block.shape, names[name])
                if kept:
                    out[kept] = old_file[name][prefix:old_count, block.rows, block.cols]
                fill(out)
                w.write(name, out, block)
                if name == layers[-1]:
                    w.mark_done(block)
    with StackWriter(path, meta, pairs, names, signature=sig, pieces=pieces):
        pass
    stack_parts.remove_unused(path)
    return True


def _filter_pipeline(ds) -> tuple:
    """The dataset's HDF5 filters (code, flags, parameters), from its creation property list."""
    plist = ds.id.get_create_plist()
    return tuple(tuple(plist.get_filter(i)[:3]) for i in range(plist.get_nfilters()))


def _copy_chunks(src, w, name: str, old_idx: np.ndarray, new_idx: np.ndarray) -> bool:
    """Copy layers ``old_idx`` of ``src`` to layers ``new_idx`` of ``w``'s dataset ``name`` chunk by
    chunk, raw (HDF5 direct chunk I/O: the stored bytes, filters and all): the same bits as decoding
    and writing them again, without the decoding.  False (nothing copied) unless both datasets
    have one-layer chunks of the same shape, the same dtype and the same filters."""
    dst = w.file[name]
    same = (src.chunks is not None and src.chunks == dst.chunks and src.chunks[0] == 1 and src.dtype == dst.dtype
            and src.shape[1:] == dst.shape[1:] and _filter_pipeline(src) == _filter_pipeline(dst))
    if not same or not old_idx.size:
        return False
    (_, rows, cols), (length, width) = src.chunks, src.shape[1:]
    offsets = [(r, c) for r in range(0, length, rows) for c in range(0, width, cols)]
    try:
        for i, j in zip(old_idx.tolist(), new_idx.tolist()):
            for r, c in offsets:
                mask, data = src.id.read_direct_chunk((i, r, c))
                dst.id.write_direct_chunk((j, r, c), data, mask)
    except (OSError, KeyError, ValueError) as exc:  # a chunk never written (fill value): decode instead
        logger.debug("%s: raw chunk copy of %s not possible (%s)", w.path, name, exc)
        return False
    w.flush()
    return True


def _pair_layers(blocks: list[Block], layers: list[str], sources: list, todo: list[int], win: Window, reader: str,
                 num_worker: int = 1, cluster: str | None = None):
    """``(block, name, fill)`` for each block and layer in turn, ``fill(out)`` putting layer
    ``name`` of the pairs ``todo`` into ``out[todo]`` (``out``: every pair of the block).

    Here, ``num_worker`` threads read a layer's pairs, each into its own layer of ``out`` (reading is
    I/O: GDAL and h5py release the GIL).  On a dask cluster (``cluster``: a scheduler address) a
    block's layer is cut into pieces of pairs (:class:`_PairPiece`, about two per worker) that the
    workers read, each from the files (shared storage: the workers need the processor's files at
    the same paths) and reduce (subset, multilook) before sending it; this process only writes.
    The rasters go to the workers with cloudpickle (a reader's transform may be a lambda).

    ``cluster = "local"`` reads with threads here: a LocalCluster's workers share this machine's
    disks and cores, and sending every byte back to this process to be written made the load of a
    1000² × 230-pair stack twice as slow on 2 cores (18.7 s against 9.1 s).
    """
    if cluster == "local" and todo:
        logger.info("mintpy.compute.cluster = local: the interferograms are read by %d threads of this process "
                    "(workers on this machine would only send every byte back to it to write)", max(1, int(num_worker)))
    if not _on_cluster(cluster) or not todo:
        threads = max(1, min(int(num_worker), len(todo)))
        with contextlib.ExitStack() as ctx:
            pool = ctx.enter_context(ThreadPoolExecutor(threads, thread_name_prefix="sbts-load")) if threads > 1 else None
            if pool is not None:
                logger.info("reading the interferograms with %d threads", threads)
            for block in blocks:
                src = win.source_block(block)
                for name in layers:
                    yield block, name, functools.partial(_load_pairs, sources=sources, todo=todo, win=win, src=src,
                                                         name=name, reader=reader, pool=pool)
        return
    from sbts.core.compute.scheduling import describe, run_blocks

    per = -(-len(todo) // (2 * max(1, int(num_worker))))
    pieces = [_PairPiece(block, name, start, min(start + per, len(todo)))
              for block in blocks for name in layers for start in range(0, len(todo), per)]
    logger.info("reading the interferograms%s, %d pieces of up to %d pairs", describe(num_worker, cluster),
                len(pieces), per)
    read = functools.partial(_read_piece, sources, todo, win, reader)
    parts: list[tuple[_PairPiece, np.ndarray]] = []
    for piece, data in run_blocks(pieces, read, _piece_values, workers=num_worker, cluster=cluster, ordered=True):
        parts.append((piece, data))
        if piece.stop == len(todo):  # the last piece of the block's layer
            yield piece.block, piece.name, functools.partial(_place_pieces, todo=todo, parts=parts)
            parts = []


def _on_cluster(cluster: str | None) -> bool:
    """Whether the loader's reads go to a dask cluster: a scheduler's address (not ``"local"``)."""
    return bool(cluster) and cluster != "local"


@dataclass(frozen=True)
class _PairPiece:
    """A dask task of the loader: layer ``name`` of the pairs ``todo[start:stop]`` over ``block``."""

    block: Block
    name: str
    start: int
    stop: int


def _read_piece(sources: list, todo: list[int], win: Window, reader: str, piece: _PairPiece) -> np.ndarray:
    """The pairs of ``piece`` read and reduced, in a worker: ``(stop − start, *block.shape)``."""
    src = win.source_block(piece.block)
    out = np.empty((piece.stop - piece.start,) + piece.block.shape, STACK_DATASETS[piece.name])
    for i, k in enumerate(todo[piece.start:piece.stop]):
        out[i] = _read_pair(sources[k], win, src, piece.name, reader)
    return out


def _piece_values(_piece: _PairPiece, data: np.ndarray) -> np.ndarray:
    """The compute of a loader task: the read pairs are the result (the work is reading them)."""
    return data


def _place_pieces(out: np.ndarray, *, todo: list[int], parts: list) -> None:
    for piece, data in parts:
        out[todo[piece.start:piece.stop]] = data


def _load_pairs(out: np.ndarray, *, sources: list, todo: list[int], win: Window, src: Block, name: str, reader: str,
                pool: ThreadPoolExecutor | None) -> None:
    """Layer ``name`` of the pairs ``todo`` into ``out``, by the threads of ``pool`` when given (each
    into its own layer: the same bits whatever their number); the first reader error is raised."""
    fill = functools.partial(_load_pair, out, sources, win, src, name, reader)
    for _ in (map(fill, todo) if pool is None else pool.map(fill, todo)):
        pass


def _load_pair(out: np.ndarray, sources: list, win: Window, src: Block, name: str, reader: str, k: int) -> None:
    """Layer ``name`` of pair ``k`` over the source window ``src``, reduced, into ``out[k]``."""
    out[k] = _read_pair(sources[k], win, src, name, reader)


def _read_pair(p, win: Window, src: Block, name: str, reader: str) -> np.ndarray:
    """Layer ``name`` of pair ``p`` over the source window ``src``, reduced to the output grid."""
    data = _read_layer(p.layers[name], src, p.path or f"{p.date1:%Y%m%d}_{p.date2:%Y%m%d}", name, reader)
    data = win.reduce(data, name)
    if name == "unwrapPhase":
        data = np.nan_to_num(data, nan=0.0)  # MintPy: 0 = no data
    return data


def _read_layer(layer: Raster, src: Block, path: str, name: str, reader: str = "") -> np.ndarray:
    where = f"{path or name}: reader {reader!r} reading {name}" if reader else f"{path or name}: reading {name}"
    with guarded(where, error=InputError):
        data = layer.read(src)
    if data.shape != src.shape:
        raise InputError(f"{path or name}: {name} returned {data.shape} for a {src.shape} window")
    return data


def _write_geometry(geometry: GeometrySource, win: Window, meta: Metadata, path: Path, sig: str,
                    max_memory: float, num_worker: int = 1, cluster: str | None = None) -> None:
    """The geometry file, block by block: the layers of a block read by ``num_worker`` threads here
    or, with a scheduler's address (``cluster``), a block by a dask worker (this process writes);
    the same bits either way (:func:`_geometry_values`)."""
    layers = dict(geometry.layers)
    for name, layer in layers.items():
        if tuple(layer.shape[-2:]) != tuple(geometry.metadata.grid.shape):
            raise InputError(f"geometry layer {name} is {layer.shape}, but the geometry grid is "
                             f"{geometry.metadata.grid.shape}")
    meta = meta.replace(file_type="geometry", unit=None).with_extra(**{SIGNATURE_ATTR: sig})
    from sbts.core.compute.scheduling import memory_per_task

    budget = memory_per_task(max_memory, num_worker, cluster) if _on_cluster(cluster) else max_memory
    blocks = plan_blocks(win.shape, 4 * len(layers) * win.ystep * win.xstep * 4, budget)
    with H5Writer(path, meta, signature=sig) as w:
        for name in layers:
            dtype = bool if name in BOOL_LAYERS else np.float32
            w.create(name, shape=win.shape, dtype=dtype, compression="lzf")
        left = [block for block in blocks if not w.is_done(block)]
        for block, values in progress(_geometry_blocks(left, layers, win, num_worker, cluster),
                                      desc="load geometry", unit="block", total=len(left)):
            for name, data in values.items():
                w.write(name, data, block)
            w.mark_done(block)


def _geometry_blocks(blocks: list[Block], layers: dict, win: Window, num_worker: int = 1,
                     cluster: str | None = None):
    """``(block, {layer: values})`` for each block: here, the layers of a block read by
    ``num_worker`` threads (GDAL and h5py release the GIL); on a dask cluster (a scheduler's
    address) by its workers, a block a task (the files at the same paths on shared storage; the
    rasters travel with cloudpickle).  ``"local"`` reads with threads, as the stack does
    (:func:`_pair_layers`)."""
    if _on_cluster(cluster) and blocks:
        from sbts.core.compute.scheduling import describe, run_blocks

        logger.info("reading the geometry%s, %d block(s)", describe(num_worker, cluster), len(blocks))
        yield from run_blocks(blocks, functools.partial(_geometry_values, layers, win), _piece_values,
                              workers=num_worker, cluster=cluster)
        return
    threads = max(1, min(int(num_worker), len(layers)))
    with (ThreadPoolExecutor(threads, thread_name_prefix="sbts-load") if threads > 1
          else contextlib.nullcontext()) as pool:
        for block in blocks:
            yield block, _geometry_values(layers, win, block, pool)


def _geometry_values(layers: dict, win: Window, block: Block, pool: ThreadPoolExecutor | None = None
                     ) -> dict[str, np.ndarray]:
    """Every geometry layer over the output ``block``: read, reduced to the output grid (subset,
    multilook) and typed as the file stores it (bool masks, float32; the radar coordinates of a
    multilooked grid in its pixels).  The same function in a thread, here or in a dask worker."""
    src = win.source_block(block)

    def one(item: tuple[str, Raster]) -> tuple[str, np.ndarray]:
        name, layer = item
        data = win.reduce(_read_layer(layer, src, "", name), name)
        if name in BOOL_LAYERS:
            return name, np.nan_to_num(data).astype(bool)
        if name in ("azimuthCoord", "rangeCoord") and (win.ystep > 1 or win.xstep > 1):
            step = win.ystep if name == "azimuthCoord" else win.xstep
            data = data.astype(np.float32) / step
        return name, data.astype(np.float32)

    items = list(layers.items())
    return dict(map(one, items) if pool is None else pool.map(one, items))


def run(options: LoadOptions, workdir: WorkDir, compute: ComputeOptions, force: bool = False) -> list[Path]:
    """The load_data step of ``sbts run``: the processor's files into ``inputs/``.  Without any
    ``mintpy.load.*File`` pattern it goes on with an ``inputs/`` written before (MintPy's
    load_data.py, prep_aria.py, an earlier ``sbts load``), as smallbaselineApp.py does.
    ``force`` (``sbts run --force``) reloads files whose sources are unchanged."""
    if not options.patterns and workdir.stack.exists():
        logger.info("no mintpy.load.*File pattern in the template: using the loaded %s",
                    ", ".join(str(p.relative_to(workdir.root)) for p in workdir.loaded()))
        return workdir.loaded()
    result = load_data(options.template, workdir.root, base_dir=options.base_dir, max_memory=compute.max_memory,
                       num_worker=compute.num_worker, cluster=compute.cluster, force=force)
    return [p for p in [result.stack_file, result.ion_stack_file, *result.geometry_files] if p is not None]


def stale(options: LoadOptions, workdir: WorkDir) -> str:
    """Why load_data must run again ("" when not): the processor's files are its inputs, so a changed
    or added interferogram reloads."""
    if not options.patterns:
        return "" if workdir.stack.exists() else f"{workdir.stack.name} is missing"
    if not options.update_mode:
        return f"{UPDATE_MODE_KEY} = no"
    return stale_outputs(options.template, workdir.root, base_dir=options.base_dir)


