"""GAMMA products on disk: par sets, grids, rasters and geometry (private to the readers' folder).

Shared by the GAMMA reader, the GeoTIFF reader (PyRate stacks keep GAMMA's par and baseline files)
and the ROI_PAC reader (angle layers, derived geometry).


GAMMA writes headerless binaries; their size lives in other files: the interferogram par
(``.off``/``.diff_par``), the image par (``*.mli.par``/``*.slc.par``) for radar coordinates, or
the DEM/MAP par (``*.dem.par``) for geocoded products.  This reader finds the par files next to
the data, in ``mintpy.load.metaFile`` and beside the DEM/lookup files, and picks for each raster the
par whose grid matches the file size, so geocoded (``*_utm.unw``) and radar-coded stacks load
alike.  Pair dates come from file names, pair baselines from ``*base.par`` (projected with the
image geometry) or ``base_perp`` tables.  Geometry on two grids (radar DEM + geocoded lookup
table) is returned as two sources, as MintPy writes ``geometryRadar.h5`` and ``geometryGeo.h5``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sbts.core.api import (
    BinaryRaster,
    GeometrySource,
    InputError,
    LoadRequest,
    Metadata,
    TransformedRaster,
)
from sbts.plugins.readers import _gamma_par as gp

logger = logging.getLogger(__name__)

GEO_HINTS = ("utm", "eqa", "geo", "_ll", ".ll")
BASELINE_SUFFIXES = ("base.par", ".base_perp", "bperp.par", ".bperp", ".baseline", "base_init.par")


# ------------------------------------------------------------------ par collections
@dataclass
class ParSet:
    """The GAMMA par files found for a request, parsed once and classified."""

    acquisitions: list[tuple[Path, dict]] = field(default_factory=list)  # SLC/MLI image pars
    pairs: dict[tuple[_dt.date, _dt.date], tuple[Path, dict]] = field(default_factory=dict)  # off/diff_par
    dems: list[tuple[Path, dict]] = field(default_factory=list)  # DEM/MAP pars
    baselines: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    def acquisition(self, date: _dt.date | None = None) -> tuple[Path, dict] | None:
        """The image par of ``date`` (MLI preferred, its looks match the interferograms), else the
        earliest one (all dates of a stack share the geometry)."""

        def rank(item):
            name = item[0].name.lower()
            return (0 if "mli" in name else 1 if "amp" in name else 2, str(item[0]))

        if date is not None:
            same = [a for a in self.acquisitions if _acq_date(*a) == date]
            if same:
                return sorted(same, key=rank)[0]
        if not self.acquisitions:
            return None
        return sorted(self.acquisitions, key=lambda a: (_acq_date(*a) or _dt.date.max,) + rank(a))[0]

    def baseline_index(self):
        return gp.date_index(self.baselines)


def _acq_date(path: Path, par: Mapping[str, str]) -> _dt.date | None:
    found = gp.dates_in_name(path.name)
    if found:
        return found[0]
    parts = gp.numbers(par, "date")
    if len(parts) >= 3:
        try:
            return _dt.date(int(parts[0]), int(parts[1]), int(parts[2]))
        except ValueError:
            return None
    return None


def _is_baseline_name(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in BASELINE_SUFFIXES)


def _is_par_name(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith("par") or name.endswith(".off")


def collect_pars(explicit: Iterable[Path], folders: Iterable[Path], baseline_files: Iterable[Path] = ()) -> ParSet:
    """Parse the par files given (``explicit``) and those in ``folders``; classify them."""
    seen: set[Path] = set()
    candidates: list[Path] = []
    for p in explicit:
        if p not in seen:
            seen.add(p)
            candidates.append(p)
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in sorted(folder.iterdir()):
            # par files, and baseline tables beside them (``<pair>.base_perp``, as prep_gamma expects)
            if p not in seen and p.is_file() and (_is_par_name(p) or _is_baseline_name(p)):
                seen.add(p)
                candidates.append(p)
    out = ParSet()
    for p in list(baseline_files):
        if p.is_file() and p not in out.baselines:
            out.baselines.append(p)
    for p in candidates:
        if _is_baseline_name(p):
            if p not in out.baselines:
                out.baselines.append(p)
            continue
        if not p.is_file():
            continue
        par = gp.read_par(p)
        if "initial_baseline(TCN)" in par or "precision_baseline(TCN)" in par:
            if p not in out.baselines:
                out.baselines.append(p)
            continue
        out.files.append(p)
        if gp.is_dem_par(par):
            out.dems.append((p, par))
        elif gp.is_diff_par(par):
            dates = gp.pair_dates(p.name)
            if dates:
                out.pairs.setdefault(dates, (p, par))
        elif gp.is_acquisition_par(par):
            out.acquisitions.append((p, par))
    return out


def _folders(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.parent not in out:
            out.append(p.parent)
    return out


def _baseline_files(request: LoadRequest) -> list[Path]:
    files = list(request.files("bperpFile"))
    for d in request.files("baselineDir"):
        if d.is_dir():
            files.extend(p for p in sorted(d.rglob("*")) if p.is_file() and (_is_baseline_name(p) or _is_par_name(p)))
        elif d.is_file():
            files.append(d)
    return files


def request_pars(request: LoadRequest) -> ParSet:
    """Par files for a GAMMA request: metaFile, and the folders of the data, DEM and lookup files."""
    geom_keys = ("demFile", "lookupYFile", "lookupXFile", "incAngleFile", "azAngleFile")
    data = request.files("unwFile")[:1] + request.files("corFile")[:1]
    unw_folders = _folders(request.files("unwFile"))
    geom_files = [f for k in geom_keys for f in request.files(k)]
    explicit = list(request.files("metaFile"))
    for f in geom_files:
        explicit.extend(_par_siblings(f))
    return collect_pars(explicit, unw_folders + _folders(data + geom_files), _baseline_files(request))


def _par_siblings(path: Path) -> list[Path]:
    """Par files named after a raster: ``x.dem.par``, ``x_dem.par`` (for ``x.dem``), ``x.par``."""
    names = [path.name + ".par", path.stem + ".par", path.stem + "_" + path.suffix.lstrip(".") + ".par"]
    return [path.with_name(n) for n in dict.fromkeys(names) if path.with_name(n).is_file()]


def baseline_for_pair_from(index, pars: ParSet, d1: _dt.date, d2: _dt.date) -> tuple[float | None, Path | None]:
    """Pair bperp from the baseline files matched by dates, projected with the image par of ``d1``."""
    acq = pars.acquisition(d1)
    return gp.baseline_for_pair(index, d1, d2, None if acq is None else acq[1])


# ------------------------------------------------------------------ grids
@dataclass(frozen=True)
class GridChoice:
    length: int
    width: int
    attrs: Mapping[str, str]  # LENGTH/WIDTH (+ geo keys)
    par: Path
    geocoded: bool
    dtype: np.dtype | None = None  # from a DEM par's data_format


def grid_candidates(pars: ParSet, dates: Sequence[_dt.date] = ()) -> list[GridChoice]:
    """Grids described by the par files: the pair's interferogram par, image pars, DEM pars."""
    out: list[GridChoice] = []
    if len(dates) == 2 and tuple(dates) in pars.pairs:
        p, par = pars.pairs[tuple(dates)]
        size = gp.radar_size(par)
        if size:
            out.append(GridChoice(size[0], size[1], {"LENGTH": str(size[0]), "WIDTH": str(size[1])}, p, False))
    for p, par in sorted(pars.pairs.values(), key=lambda t: str(t[0])):
        size = gp.radar_size(par)
        if size:
            out.append(GridChoice(size[0], size[1], {"LENGTH": str(size[0]), "WIDTH": str(size[1])}, p, False))
    for p, par in pars.acquisitions:
        size = gp.radar_size(par)
        if size:
            out.append(GridChoice(size[0], size[1], {"LENGTH": str(size[0]), "WIDTH": str(size[1])}, p, False))
    for p, par in pars.dems:
        attrs = gp.geo_attrs(par, str(p))
        out.append(GridChoice(int(attrs["LENGTH"]), int(attrs["WIDTH"]), attrs, p, True, gp.dem_dtype(par)))
    return out


def choose_grid(path: Path, candidates: Sequence[GridChoice], bytes_per_pixel: Sequence[int] = (4,),
                what: str = "raster", key: str = "mintpy.load.metaFile", prefer_geo: bool = False,
                ambiguous: list | None = None) -> tuple[GridChoice, int]:
    """The candidate grid whose size explains ``path``'s byte count.

    A radar grid (``.off``/``.diff_par``/image par) and a geocoded one (DEM par) of the same size fit
    alike (prep_gamma.py users keep the ``.off`` beside geocoded products, sized as the geocoded
    grid, since MintPy reads the size there): the geocoded grid wins when the name says so
    (``utm``, ``geo``, ``eqa``...) or ``prefer_geo`` (the DEM of the request is geocoded, MintPy's
    rule), else the radar one; such choices are appended to ``ambiguous`` for one warning."""
    try:
        size = os.path.getsize(path)
    except OSError:
        raise InputError(f"{path}: file not found or unreadable") from None
    if not candidates:
        raise InputError(
            f"{path}: no GAMMA par file found to give the {what}'s width and length; put the image par "
            f"(*.mli.par / *.slc.par) or the DEM par (*.dem.par, for geocoded files) beside it, or name it "
            f"with {key}")
    geo_hint = any(h in path.name.lower() for h in GEO_HINTS)
    matches = [(c, b) for b in bytes_per_pixel for c in candidates if c.length * c.width * b == size]
    if matches:
        want_geo = geo_hint or prefer_geo
        matches.sort(key=lambda cb: (cb[0].geocoded != want_geo,))
        if ambiguous is not None and len({c.geocoded for c, _ in matches}) == 2:
            other = next(c for c, _ in matches if c.geocoded != matches[0][0].geocoded)
            ambiguous.append((path, matches[0][0], other, "the file name" if geo_hint else
                              "the geocoded DEM (mintpy.load.demFile)" if prefer_geo else "no hint of geocoding"))
        return matches[0]
    sizes = ", ".join(sorted({f"{c.width}×{c.length} ({c.par.name})" for c in candidates}))
    raise InputError(
        f"{path}: {size} bytes fit none of the grids in the GAMMA par files found ({sizes}) with "
        f"{'/'.join(str(b) for b in bytes_per_pixel)}-byte samples; the file is truncated, or its par "
        f"file is missing: name it with {key}")


def _scale_looks(attrs: dict[str, str], acq_par: Mapping[str, str], grid: GridChoice) -> dict[str, str]:
    """Adapt an image par's looks and pixel sizes to a radar grid multilooked further (SLC par →
    interferogram grid)."""
    size = gp.radar_size(acq_par)
    if grid.geocoded or size is None:
        return attrs
    al = max(1, int(round(size[0] / grid.length)))
    rl = max(1, int(round(size[1] / grid.width)))
    if al == 1 and rl == 1:
        return attrs
    out = dict(attrs)
    for key, factor in (("ALOOKS", al), ("RLOOKS", rl)):
        out[key] = str(int(float(out.get(key, "1"))) * factor)
    for key, factor in (("AZIMUTH_PIXEL_SIZE", al), ("RANGE_PIXEL_SIZE", rl)):
        if key in out:
            out[key] = repr(float(out[key]) * factor)
    return out


def corner_attrs(par_path: Path) -> dict[str, str]:
    """LAT_REF1..4 / LON_REF1..4 from the ``<image>.corner`` file beside an image par (``x.mli.par`` →
    ``x.mli.corner``: the latitude and longitude of the four corners, one per line, as the lines 3-6
    of GAMMA's ``SLC_corners`` output keep them and MintPy's prep_gamma.py reads them); {} if absent."""
    corner = par_path.with_suffix("").with_name(par_path.with_suffix("").name + ".corner")
    if not corner.is_file():
        return {}
    rows = []
    for line in corner.read_text(errors="replace").splitlines():
        tokens = line.split()
        try:
            rows.append((float(tokens[0]), float(tokens[1])))
        except (IndexError, ValueError):
            continue
    if len(rows) != 4:
        logger.warning("%s: expected the latitude and longitude of 4 corners; ignored", corner)
        return {}
    out = {}
    for i, (lat, lon) in enumerate(rows, start=1):
        out[f"LAT_REF{i}"], out[f"LON_REF{i}"] = repr(lat), repr(lon)
    return out


def metadata_attrs(grid: GridChoice, pars: ParSet, date: _dt.date | None, file_type: str) -> dict[str, str]:
    """MintPy attributes for a raster on ``grid``: the image par of ``date`` plus the grid keys."""
    attrs: dict[str, str] = {}
    acq = pars.acquisition(date)
    if acq is not None:
        attrs.update(_scale_looks(gp.acquisition_attrs(acq[1], str(acq[0])), acq[1], grid))
        attrs.update(corner_attrs(acq[0]))
    attrs.update(grid.attrs)
    attrs.update(FILE_TYPE=file_type, PROCESSOR="gamma")
    return attrs


# ------------------------------------------------------------------ layer builders
def be_raster(path: Path, grid: GridChoice, dtype: str | np.dtype = ">f4", nodata: float | None = None) -> BinaryRaster:
    return BinaryRaster(path, (grid.length, grid.width), np.dtype(dtype), nodata=nodata)


def lookup_layers(path: Path, shape: tuple[int, int]) -> dict[str, object]:
    """GAMMA lookup table (geo → radar): fcomplex big-endian, real = range pixel, imag = azimuth line."""
    return {
        "rangeCoord": BinaryRaster(path, shape, np.dtype(">f4"), band=0, bands=2, interleave="BIP"),
        "azimuthCoord": BinaryRaster(path, shape, np.dtype(">f4"), band=1, bands=2, interleave="BIP"),
    }


def _sample(raster) -> np.ndarray:
    from sbts.core.api import Block

    length, width = raster.shape
    mid = length // 2
    return np.asarray(raster.read(Block(mid, mid + 1, 0, width)), np.float64)


def angle_layer(path: Path, raster, name: str):
    """Incidence/azimuth angle layers from GAMMA angle files, converted to MintPy's convention.

    ``*lv_theta*`` is the look-vector elevation (inc = 90° − θ); ``*lv_phi*`` the look-vector
    orientation anticlockwise from east (az = φ − 90°); other files are taken as the angle itself.
    Radians or degrees are told apart once, from the middle row.
    """
    sample = _sample(raster)
    finite = sample[np.isfinite(sample) & (sample != 0)]
    radians = bool(finite.size) and float(np.max(np.abs(finite))) <= np.pi + 1e-6
    lname = path.name.lower()
    scale = 180.0 / np.pi if radians else 1.0
    if name == "incidenceAngle" and "lv_theta" in lname:
        func = lambda v: np.where(v == 0, np.nan, 90.0 - v * scale).astype(np.float32)  # noqa: E731
    elif name == "azimuthAngle" and "lv_phi" in lname:
        def func(v):
            az = (v * scale - 90.0 + 180.0) % 360.0 - 180.0
            return np.where(v == 0, np.nan, az).astype(np.float32)
    else:
        func = lambda v: (v * scale).astype(np.float32)  # noqa: E731
    logger.debug("%s: %s read as %s", path, name, "radians" if radians else "degrees")
    return TransformedRaster(raster, func)


def mask_layer(path: Path, shape: tuple[int, int], invert: bool = False):
    """Water/shadow masks: one byte or float32 big-endian per pixel, by file size."""
    size = os.path.getsize(path)
    dtype = np.dtype("u1") if size == shape[0] * shape[1] else np.dtype(">f4")
    base = BinaryRaster(path, shape, dtype)
    if invert:
        return TransformedRaster(base, lambda v: (v == 0).astype(np.float32))
    return TransformedRaster(base, lambda v: (v != 0).astype(np.float32))


def dem_is_geocoded(request: LoadRequest) -> bool:
    """The request's DEM (mintpy.load.demFile) has a DEM/MAP par of its own whose grid fits it: then
    the products are geocoded (MintPy decides so from the DEM too)."""
    for dem in request.files("demFile")[:1]:
        own = [g for g in grid_candidates(collect_pars(_par_siblings(dem), [])) if g.geocoded]
        try:
            size = os.path.getsize(dem)
        except OSError:
            return False
        return any(g.length * g.width * b == size for g in own for b in (2, 4))
    return False


def build_geometry(request: LoadRequest, pars: ParSet, stack_grid: GridChoice | None, processor: str,
                   stack_geo_attrs: Mapping[str, str] | None = None,
                   extra_attrs: Mapping[str, str] | None = None,
                   geo_layers: Mapping[str, object] | None = None,
                   skip: Iterable[str] = (), extra_inputs: Iterable[Path] = ()) -> list[GeometrySource] | None:
    """Geometry sources from GAMMA-style geometry files, grouped by grid, with derived layers.

    ``stack_geo_attrs`` describes a geocoded stack grid known from elsewhere (a GeoTIFF stack) so a
    lookup table of that size lands on it; ``geo_layers`` are layers already on that grid (a
    GeoTIFF DEM); ``extra_attrs`` add radar metadata (GeoTIFF tags); keys in ``skip`` were read
    by the caller; ``extra_inputs`` are the caller's files the geometry takes values from (the
    GeoTIFF whose grid and tags it has).
    """
    skip = set(skip)
    keys = ("demFile", "lookupYFile", "lookupXFile", "incAngleFile", "azAngleFile", "waterMaskFile",
            "shadowMaskFile")

    def files(key: str) -> list[Path]:
        return [] if key in skip else request.files(key)

    if not any(files(k) for k in keys) and not geo_layers:
        return None
    acq = pars.acquisition()
    candidates = grid_candidates(pars)
    if stack_geo_attrs is not None:
        candidates.insert(0, GridChoice(int(stack_geo_attrs["LENGTH"]), int(stack_geo_attrs["WIDTH"]),
                                        dict(stack_geo_attrs), Path("<stack grid>"), True))
    if stack_grid is not None and stack_grid not in candidates:
        candidates.insert(0, stack_grid)
    groups: dict[tuple, tuple[GridChoice, dict[str, object]]] = {}
    # the files the geometry is made of: its rasters, and the pars it takes values from (the
    # acquisition's, each grid's), not every par of the request: a new acquisition's pars leave the
    # geometry as it was, and its load signature too (else every append rewrote the geometry)
    inputs: list[Path] = ([acq[0]] if acq is not None else []) + list(extra_inputs)

    def put(grid: GridChoice, name: str, layer) -> None:
        key = _grid_key(grid)
        groups.setdefault(key, (grid, {}))[1].setdefault(name, layer)

    if geo_layers:
        grid = candidates[0]
        for name, layer in geo_layers.items():
            put(grid, name, layer)
            if getattr(layer, "path", None):
                inputs.append(Path(layer.path))
    for dem in files("demFile")[:1]:
        own = [g for g in grid_candidates(collect_pars(_par_siblings(dem), [])) if g.geocoded]
        cands = own + candidates
        grid, nbytes = choose_grid(dem, cands, (4, 2), "DEM", "mintpy.load.demFile's .par or mintpy.load.metaFile")
        dtype = grid.dtype if (grid.dtype is not None and grid.dtype.itemsize == nbytes) else (">f4" if nbytes == 4 else ">i2")
        put(grid, "height", BinaryRaster(dem, (grid.length, grid.width), np.dtype(dtype)))
        inputs.append(dem)
    lut = (files("lookupYFile") or files("lookupXFile"))[:1]
    for path in lut:
        geo = [c for c in candidates if c.geocoded] or candidates
        grid, _ = choose_grid(path, geo, (8,), "lookup table", "the DEM par of the lookup grid (mintpy.load.metaFile)")
        for name, layer in lookup_layers(path, (grid.length, grid.width)).items():
            put(grid, name, layer)
        inputs.append(path)
    for key, name in (("incAngleFile", "incidenceAngle"), ("azAngleFile", "azimuthAngle")):
        for path in files(key)[:1]:
            grid, _ = choose_grid(path, candidates, (4,), name)
            put(grid, name, angle_layer(path, be_raster(path, grid), name))
            inputs.append(path)
    for key, name in (("waterMaskFile", "waterMask"), ("shadowMaskFile", "shadowMask")):
        for path in files(key)[:1]:
            grid, _ = choose_grid(path, candidates, (1, 4), name)
            invert = name == "waterMask" and ("wbd" in path.name.lower() or "waterbody" in path.name.lower())
            put(grid, name, mask_layer(path, (grid.length, grid.width), invert))
            inputs.append(path)
    # the stack's radar grid gets a geometry even if only the geocoded lookup table was given
    if stack_grid is not None and not stack_grid.geocoded:
        groups.setdefault(_grid_key(stack_grid), (stack_grid, {}))

    base_attrs: dict[str, str] = {}
    if acq is not None:
        base_attrs.update(gp.acquisition_attrs(acq[1], str(acq[0])))
        base_attrs.update(corner_attrs(acq[0]))
    if extra_attrs:
        for k, v in extra_attrs.items():
            base_attrs.setdefault(k, v)
    sources: list[GeometrySource] = []
    by_kind: dict[bool, GeometrySource] = {}
    for grid, layers in groups.values():
        attrs = dict(base_attrs)
        if acq is not None:
            attrs = _scale_looks(attrs, acq[1], grid)
        attrs.update(grid.attrs)
        attrs.update(FILE_TYPE="geometry", PROCESSOR=processor)
        shape = (grid.length, grid.width)
        derived = _derive(attrs, shape, grid.geocoded, layers)
        for name, layer in derived.items():
            layers.setdefault(name, layer)
        if not layers:
            continue
        if grid.geocoded in by_kind:
            logger.warning("%s: geometry files on a second %s grid (%s) are ignored", processor,
                           "geocoded" if grid.geocoded else "radar", ", ".join(layers))
            continue
        grid_par = [grid.par] if grid.par.is_file() and grid.par not in inputs else []
        source = GeometrySource(layers, Metadata.from_attrs(attrs, source=str(grid.par)), tuple(inputs + grid_par))
        by_kind[grid.geocoded] = source
        sources.append(source)
    return sources or None


def _grid_key(grid: GridChoice) -> tuple:
    if grid.geocoded:
        a = grid.attrs
        return ("geo", grid.length, grid.width, round(float(a["Y_FIRST"]), 7), round(float(a["X_FIRST"]), 7))
    return ("radar", grid.length, grid.width)


def _derive(attrs: Mapping[str, str], shape, geocoded: bool, layers: Mapping[str, object]) -> dict[str, object]:
    """Slant range and incidence per pixel where physics allows (see :mod:`._gamma_par`)."""
    if "incidenceAngle" in layers and "slantRangeDistance" in layers:
        return {}
    range_of = None
    try:
        r0, dr = float(attrs["STARTING_RANGE"]), float(attrs["RANGE_PIXEL_SIZE"])
    except (KeyError, ValueError):
        r0 = dr = None
    if r0 is not None:
        if not geocoded:
            range_of = gp.column_ranges(shape[1], r0, dr)
        elif "rangeCoord" in layers:
            # the lookup's range coordinate counts pixels of the image par's grid
            range_of = gp.lookup_ranges(layers["rangeCoord"], r0, dr)
    derived = gp.derived_geometry(shape, attrs, range_of, layers.get("height"))
    return {k: v for k, v in derived.items() if k not in layers}
