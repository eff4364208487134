"""ASF HyP3 InSAR reader (INSAR_GAMMA, INSAR_ISCE_BURST, INSAR_ISCE_MULTI_BURST products).

One folder per pair holding UTM GeoTIFFs named ``<product>_<layer>.tif`` (``unw_phase``, ``corr``,
``conncomp`` (ISCE2 products), ``dem``, ``lv_theta``, ``lv_phi``, ``water_mask``; ``_clip`` when cut to
a common extent) and the product metadata ``<product>.txt`` of ``key: value`` lines (Reference /
Secondary Granule, Baseline, UTC time, Heading, Spacecraft height, Earth radius at nadir, Slant range
near/center/far, Range/Azimuth looks ...).

Conventions (HyP3 product guide): ``lv_theta`` is the look-vector elevation from the horizontal and
``lv_phi`` its orientation from east, anticlockwise (north = π/2), both in radians; MintPy wants the
incidence from the vertical (90° − θ) and the LOS azimuth from north, anticlockwise (φ − 90°).
HyP3 products are Sentinel-1 C band; the wavelength and single-look pixel sizes are the Sentinel-1 IW
constants (template keys override them).
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Confidence,
    GdalRaster,
    GeometrySource,
    Grid,
    InputError,
    LoadRequest,
    Metadata,
    PairSource,
    RadarInfo,
    Reader,
    StackSource,
    TransformedRaster,
    dates_in_name,
    hookimpl,
)
from sbts.plugins.readers._common import (
    gdal_geogrid,
    gdal_geometry_layers,
    header_float,
    header_int,
    incidence_from_geometry,
    land_mask,
    oriented_phase,
    override_float,
    sorted_pair,
    wrap_degrees,
)

logger = logging.getLogger(__name__)

S1_WAVELENGTH = 0.05546576  # m, Sentinel-1 C band (5.405 GHz)
S1_RANGE_PIXEL = 2.329562  # m, IW single-look slant-range spacing
S1_AZIMUTH_PIXEL = 14.1  # m, IW single-look azimuth spacing (approximate)
_LAYER = re.compile(r"_(unw_phase|corr|conncomp|dem|lv_theta|lv_phi|water_mask|wrapped_phase|amp)(_clip)?\.tif$")


def product_name(path: Path) -> str:
    """``S1AC_..._1DBE`` from ``S1AC_..._1DBE_unw_phase_clip.tif``."""
    m = _LAYER.search(path.name)
    return path.name[: m.start()] if m else path.stem


def metadata_file(path: Path) -> Path:
    return path.with_name(product_name(path) + ".txt")


def read_product_txt(path: Path) -> dict[str, str]:
    """``key: value`` lines of a HyP3 product ``.txt`` (keys as written, values stripped)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        raise InputError(f"{path}: HyP3 product metadata not found or unreadable") from None
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    if "Reference Granule" not in out:
        raise InputError(f"{path}: no 'Reference Granule' line; not a HyP3 product metadata file")
    return out


def _num(meta: dict, key: str, path: Path, required: bool = False) -> float | None:
    if key not in meta:
        if required:
            raise InputError(f"{path}: no '{key}' line in the HyP3 product metadata")
        return None
    return header_float(meta[key], path, key)


def platform_of(granule: str) -> str:
    """PLATFORM in MintPy's vocabulary (``sen``) for a Sentinel-1 granule name (S1A_/S1B_/S1C_ ...)."""
    from sbts.core.api import standard_platform

    g = granule.split(",")[0].strip()
    m = re.match(r"S1([A-D])_", g)
    return standard_platform(f"Sentinel-1{m.group(1)}" if m else "Sentinel-1")


def radar_from_txt(meta: dict, path: Path, request: LoadRequest | None = None) -> tuple[RadarInfo, dict]:
    """RadarInfo (+ extra attributes) from a product ``.txt``; template keys override."""
    def ov(key):
        return override_float(request, key) if request is not None else None

    def looks(key, line):  # template key, else the .txt line (a positive integer), else 1
        value = ov(key)
        if value:
            return header_int(value, "template", key)
        return header_int(meta[line], path, line) if line in meta else 1

    alooks, rlooks = looks("ALOOKS", "Azimuth looks"), looks("RLOOKS", "Range looks")
    re_ = _num(meta, "Earth radius at nadir", path)
    h = _num(meta, "Spacecraft height", path)
    r_center = _num(meta, "Slant range center", path)
    inc = incidence_from_geometry(re_, h, r_center) if None not in (re_, h, r_center) else None
    rps = _num(meta, "Multilook range pixel size", path) or S1_RANGE_PIXEL * rlooks
    radar = RadarInfo(
        wavelength=ov("WAVELENGTH") or S1_WAVELENGTH,
        alooks=alooks, rlooks=rlooks,
        range_pixel_size=rps,
        azimuth_pixel_size=ov("AZIMUTH_PIXEL_SIZE") or S1_AZIMUTH_PIXEL * alooks,
        starting_range=_num(meta, "Slant range near", path),
        earth_radius=re_, height=h,
        heading=_num(meta, "Heading", path),
        orbit_direction=(meta.get("Reference Pass Direction") or "").upper() or None,
        antenna_side=-1,
        platform=platform_of(meta["Reference Granule"]),
        center_line_utc=_num(meta, "UTC time", path),
        incidence_angle=inc,
        slant_range_distance=r_center,
    )
    extra = {}
    if "Unwrapping type" in meta:
        extra["UNWRAP_METHOD"] = meta["Unwrapping type"]
    if "Reference Orbit Number" in meta:
        extra["ORBIT_NUMBER"] = meta["Reference Orbit Number"]
    return radar, extra


def slant_range_from_incidence(incidence_deg, earth_radius: float, height: float) -> np.ndarray:
    """Slant range (m) to a target on a sphere of radius ``earth_radius`` seen at ``incidence_deg``
    from a platform ``height`` above it: the law of sines gives the look angle at the platform,
    sin(look) = R·sin(inc)/(R + h); the Earth angle is inc − look; the law of cosines the range."""
    inc = np.radians(np.asarray(incidence_deg, np.float64))
    rs = earth_radius + height
    look = np.arcsin(np.clip(earth_radius * np.sin(inc) / rs, -1.0, 1.0))
    earth_angle = inc - look
    r = np.sqrt(earth_radius ** 2 + rs ** 2 - 2.0 * earth_radius * rs * np.cos(earth_angle))
    return r.astype(np.float32)


def corner_attrs(grid: Grid, orbit_direction: str | None) -> dict[str, str]:
    """LAT_REF1..4 / LON_REF1..4: the corners of the product's bounding box in its map units, first
    line near range first (ascending: south-west, south-east, north-west, north-east; descending the
    opposite), what MintPy's prep_hyp3.py writes for the scene footprint."""
    g = grid.geo
    if g is None:
        return {}
    n, w = g.y_first, g.x_first
    s, e = n + g.y_step * grid.length, w + g.x_step * grid.width
    if (orbit_direction or "").upper().startswith("D"):
        lats, lons = (n, n, s, s), (e, w, e, w)
    else:
        lats, lons = (s, s, n, n), (w, e, w, e)
    out = {}
    for i, (la, lo) in enumerate(zip(lats, lons), start=1):
        out[f"LAT_REF{i}"], out[f"LON_REF{i}"] = repr(float(la)), repr(float(lo))
    return out


def pair_dates(path: Path, meta: dict | None = None) -> tuple[_dt.date, _dt.date]:
    """Reference and secondary dates: from the product name, checked against the granule names."""
    dates = dates_in_name(product_name(path))
    if len(dates) < 2 and meta is not None:
        dates = dates_in_name(meta.get("Reference Granule", "")) [:1] + dates_in_name(meta.get("Secondary Granule", ""))[:1]
    if len(dates) < 2:
        raise InputError(f"{path}: no reference/secondary dates in the HyP3 product name")
    return dates[0], dates[1]


class Hyp3Reader(Reader):
    name = "hyp3"
    summary = "ASF HyP3 InSAR (GAMMA / ISCE2 burst): *_unw_phase.tif, *_corr.tif ... + <product>.txt"

    def detect(self, request: LoadRequest) -> int:
        """Specific: a ``*_unw_phase*.tif`` with its product's metadata ``.txt``; generic: the name
        alone (the reader then says which file is missing)."""
        files = request.files("unwFile")
        if not files or files[0].suffix != ".tif" or "_unw_phase" not in files[0].name:
            return Confidence.NO
        return Confidence.SPECIFIC if metadata_file(files[0]).exists() else Confidence.GENERIC

    def open_stack(self, request: LoadRequest) -> StackSource | None:
        files = [f for f in request.files("unwFile") if f.suffix == ".tif"]
        if not files:
            return None
        others = {}
        for key, name in (("corFile", "coherence"), ("connCompFile", "connectComponent")):
            others[name] = {product_name(f): f for f in request.files(key)}
        pairs, inputs = [], []
        meta0 = grid = None
        for f in files:
            txt = metadata_file(f)
            if not txt.exists():
                raise InputError(f"{f}: its HyP3 product metadata {txt.name} is missing (it gives the baseline, "
                                 "looks, heading and times; download the full product zip)")
            meta = read_product_txt(txt)
            d1, d2, swapped = sorted_pair(*pair_dates(f, meta))
            if grid is None:
                g, ds = gdal_geogrid(str(f))
                grid = Grid(ds.RasterYSize, ds.RasterXSize, g)
                meta0 = (meta, txt)
            layers = {"unwrapPhase": oriented_phase(GdalRaster(str(f)), swapped)}
            for name, index in others.items():
                o = index.get(product_name(f))
                if o is not None:
                    layers[name] = GdalRaster(str(o))
                    inputs.append(o)
                elif request.pattern({"coherence": "corFile", "connectComponent": "connCompFile"}[name]):
                    logger.warning("HyP3 product %s has no %s file", product_name(f), name)
            bperp = _num(meta, "Baseline", txt)
            if swapped:  # reference after secondary: phase and baseline of the earlier_later pair change sign
                logger.info("%s: reference date after secondary; loaded as %s_%s with phase and bperp negated",
                            f, d1, d2)
                bperp = None if bperp is None else -bperp
            pairs.append(PairSource(d1, d2, layers, bperp, str(f)))
            inputs += [f, txt]
        radar, extra = radar_from_txt(meta0[0], meta0[1], request)
        extra.update(corner_attrs(grid, radar.orbit_direction))
        md = Metadata(grid=grid, file_type="ifgramStack", processor="hyp3", radar=radar, extra=extra)
        return StackSource(pairs, md, tuple(inputs))

    def open_geometry(self, request: LoadRequest) -> GeometrySource | None:
        layers, inputs, grid = gdal_geometry_layers(request, (
            ("demFile", "height", None),
            ("incAngleFile", "incidenceAngle", lambda a: 90.0 - np.degrees(a)),  # lv_theta: elevation, radians
            ("azAngleFile", "azimuthAngle", lambda a: wrap_degrees(np.degrees(a) - 90.0)),
            ("waterMaskFile", "waterMask", land_mask)))
        txt = next((metadata_file(f) for f in inputs if metadata_file(f).exists()), None)
        if not layers:
            return None
        radar, extra = (radar_from_txt(read_product_txt(txt), txt, request) if txt else (RadarInfo(), {}))
        if "incidenceAngle" in layers and radar.earth_radius and radar.height:
            # HyP3 gives no range raster; the DEM-error step needs one (MintPy derives it the same way)
            re_, h = radar.earth_radius, radar.height
            layers["slantRangeDistance"] = TransformedRaster(
                layers["incidenceAngle"], lambda inc: slant_range_from_incidence(inc, re_, h))
        extra.update(corner_attrs(grid, radar.orbit_direction))
        md = Metadata(grid=grid, file_type="geometry", processor="hyp3", radar=radar, extra=extra)
        return GeometrySource(layers, md, tuple(inputs))


@hookimpl
def sbts_readers():
    return [Hyp3Reader()]
