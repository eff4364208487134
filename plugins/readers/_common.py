"""Helpers shared by the ISCE, ARIA, SNAP and HyP3 readers (pair dates, ENVI headers, derived rasters).

Kept free of GDAL so that ``detect`` and metadata parsing stay light.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Block,
    InputError,
    LoadRequest,
    dates_in_name,
)

logger = logging.getLogger(__name__)

SPEED_OF_LIGHT = 299_792_458.0
WGS84_A = 6_378_137.0
WGS84_B = 6_356_752.314245


# first bytes of self-describing raster containers: TIFF/BigTIFF (both byte orders), HDF5, netCDF-3
_CONTAINER_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+", b"\x89HDF", b"CDF\x01", b"CDF\x02")


def is_container(path: Path) -> bool:
    """The file starts with the signature of a self-describing container (TIFF, HDF5, netCDF) or
    is XML text: not a headerless raster, whatever its extension (readers of raw binaries use this
    to say "not mine" without naming any other format)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head.startswith(_CONTAINER_MAGIC) or head.lstrip().startswith(b"<")


def pair_of(path: Path, levels: int = 3) -> tuple[_dt.date, _dt.date] | None:
    """The two dates of a pair from the file name or its nearest parent folders (``20190101_20190113/``).

    Only the last ``levels`` path components are looked at, so that a date-like number higher in the
    path (a project folder) is not taken for an acquisition.
    """
    parts = [path.name] + [p.name for p in list(path.parents)[: levels - 1]]
    for name in parts:
        found = dates_in_name(name)
        if len(found) >= 2:
            return found[0], found[1]
    return None


def sorted_pair(d1: _dt.date, d2: _dt.date) -> tuple[_dt.date, _dt.date, bool]:
    """(earlier, later, swapped): MintPy pairs are always date1 < date2."""
    return (d2, d1, True) if d1 > d2 else (d1, d2, False)


def index_by_pair(files: Iterable[Path]) -> dict[tuple[_dt.date, _dt.date], Path]:
    """Files keyed by their sorted pair of dates (files without two dates are skipped)."""
    out = {}
    for f in files:
        p = pair_of(Path(f))
        if p is not None:
            d1, d2, _ = sorted_pair(*p)
            out.setdefault((d1, d2), Path(f))
    return out


# --------------------------------------------------------------------------- header values
def header_float(value: object, source: object, key: str) -> float:
    """A finite float from a header value, else an InputError naming the file, key and value.

    ``value`` is the raw header text (or a number already parsed from it); ``source`` the file it
    came from.  NaN and ±Inf are refused: no reader has a use for them, and ``int()`` of them raises
    ValueError/OverflowError further down.
    """
    if value is None:
        raise InputError(f"{source}: no {key}")
    try:
        v = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{source}: {key} = {value!r} is not a number") from None
    if not math.isfinite(v):
        raise InputError(f"{source}: {key} = {value!r} is not a finite number")
    return v


def header_int(value: object, source: object, key: str, minimum: int | None = 1) -> int:
    """An integer (``12``, ``12.0``) of at least ``minimum`` from a header value, else an InputError
    naming the file, key and value.  Sizes, band counts and looks use the default minimum of 1."""
    v = header_float(value, source, key)
    if v != math.floor(v):
        raise InputError(f"{source}: {key} = {value!r} is not an integer")
    if minimum is not None and v < minimum:
        raise InputError(f"{source}: {key} = {value!r} must be at least {minimum}")
    return int(v)


def oriented_phase(raster, swapped: bool):
    """The unwrapped phase of a pair stored earlier_later: negated when the product is later_earlier.

    MintPy (and sbts) store every pair as date1 < date2; a product written the other way round
    (``20190113_20190101``) holds the opposite phase, so its sign changes (its bperp too, which is
    the caller's business); coherence and connected components are unchanged.
    """
    return MappedRaster(raster, np.negative) if swapped else raster


def override(request: LoadRequest, key: str) -> str | None:
    """An UPPER_CASE metadata key given in the template (``WAVELENGTH = 0.0555``)."""
    value = request.metadata_overrides.get(key)
    if value is None or str(value).strip().lower() in ("", "auto", "none"):
        return None
    return str(value).strip()


def override_float(request: LoadRequest, key: str) -> float | None:
    """An UPPER_CASE template key as a finite number (None when not given)."""
    value = override(request, key)
    return None if value is None else header_float(value, f"template {request.template.source}", key)


# Sentinel-1 IW single-look (range, azimuth) resolution per swath and nominal pixel spacing, metres
# (ESA, Sentinel-1 User Guide)
S1_IW_RESOLUTION = {"IW1": (2.7, 22.5), "IW2": (3.1, 22.7), "IW3": (3.5, 22.6)}
S1_IW_PIXEL = (2.3, 14.1)


def independent_looks(alooks: int, rlooks: int, resolution: tuple[float, float],
                      pixel: tuple[float, float]) -> float:
    """NCORRLOOKS: the looks of a multilooked pixel that are independent, ALOOKS·RLOOKS divided by the
    single-look oversampling (resolution / pixel spacing) in range and azimuth, as MintPy's prep_isce.
    ``resolution`` and ``pixel`` are (range, azimuth) in metres, single look."""
    return alooks * rlooks / ((resolution[0] / pixel[0]) * (resolution[1] / pixel[1]))


def wrap_degrees(angle):
    """Angles into [-180, 180)."""
    return (np.asarray(angle, dtype=np.float64) + 180.0) % 360.0 - 180.0


def seconds_of_day(text: str) -> float | None:
    """Seconds since midnight of an ISO-like or SNAP (``02-SEP-2019 07:57:57.91``) time string."""
    text = text.strip()
    m = re.search(r"(\d{1,2}):(\d{2}):(\d{2}(?:\.\d+)?)", text)
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def earth_radius_at(lat_deg: float) -> float:
    """Geocentric radius of the WGS84 ellipsoid at a latitude (m): used for EARTH_RADIUS from orbits."""
    phi = math.radians(lat_deg)
    a, b = WGS84_A, WGS84_B
    num = (a * a * math.cos(phi)) ** 2 + (b * b * math.sin(phi)) ** 2
    den = (a * math.cos(phi)) ** 2 + (b * math.sin(phi)) ** 2
    return math.sqrt(num / den)


def incidence_from_geometry(earth_radius: float, height: float, slant_range: float) -> float | None:
    """Incidence angle at the ground (deg) from the triangle Earth centre / platform / target.

    None when the header values make no triangle (radius or range ≤ 0, or numbers so large that the
    squares overflow): the caller then leaves the incidence unknown.
    """
    re_, r = earth_radius, slant_range
    try:
        cos_inc = ((re_ + height) ** 2 - re_ ** 2 - r ** 2) / (2.0 * re_ * r)
    except (ZeroDivisionError, OverflowError):
        return None
    if not (re_ > 0 and r > 0 and math.isfinite(cos_inc)):
        return None
    return math.degrees(math.acos(max(-1.0, min(1.0, cos_inc))))


# --------------------------------------------------------------------------- rasters
@dataclass(frozen=True)
class FuncRaster:
    """A raster computed from pixel coordinates (slant range from metadata, constants)."""

    shape: tuple[int, int]
    func: Callable[[np.ndarray, np.ndarray], np.ndarray]
    dtype: np.dtype = np.dtype(np.float32)

    def read(self, block: Block | None = None) -> np.ndarray:
        block = block or Block(0, self.shape[0], 0, self.shape[1])
        yy, xx = np.mgrid[block.rows, block.cols]
        return np.asarray(self.func(yy, xx), dtype=np.float32)


def slant_range_raster(shape: tuple[int, int], starting_range: float, range_pixel_size: float) -> FuncRaster:
    """Slant range of every pixel of a radar-coded grid (MintPy synthesises it the same way)."""
    return FuncRaster(tuple(shape), lambda yy, xx: starting_range + xx * range_pixel_size)


@dataclass(frozen=True)
class MappedRaster:
    """A raster with a per-pixel function applied on read, keeping the source dtype when asked."""

    base: object
    func: Callable[[np.ndarray], np.ndarray]
    out_dtype: np.dtype = np.dtype(np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.base.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.out_dtype)

    @property
    def geotransform(self) -> tuple[float, ...] | None:
        return getattr(self.base, "geotransform", None)

    def read(self, block: Block | None = None) -> np.ndarray:
        return np.asarray(self.func(self.base.read(block)), dtype=self.out_dtype)


# --------------------------------------------------------------------------- ENVI headers
_ENVI_TYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}


def read_envi_header(path: Path) -> dict[str, str]:
    """``key = value`` pairs of an ENVI ``.hdr`` (values in braces may span lines), keys lower case."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        raise InputError(f"{path}: ENVI header not found or unreadable") from None
    if not text.lstrip().upper().startswith("ENVI"):
        raise InputError(f"{path}: not an ENVI header (first word is not 'ENVI')")
    out: dict[str, str] = {}
    # [ \t]* around '=': \s* would cross the newline, so an empty value would swallow the next line
    for m in re.finditer(r"^\s*([^=\n]+?)[ \t]*=[ \t]*(\{[^}]*\}|[^\n]*)", text, flags=re.M):
        value = m.group(2).strip()
        if value.startswith("{"):
            value = value[1:-1].strip()
        out[m.group(1).strip().lower()] = value
    return out


def envi_layout(hdr: Mapping[str, str], path: Path) -> dict:
    """Size, dtype (with byte order), bands, interleave and offset of an ENVI raster."""
    width = header_int(hdr.get("samples"), path, "samples")
    length = header_int(hdr.get("lines"), path, "lines")
    bands = header_int(hdr.get("bands", "1"), path, "bands")
    code = header_int(hdr.get("data type"), path, "data type", minimum=None)
    if code not in _ENVI_TYPES:
        raise InputError(f"{path}: ENVI data type {code} is not supported (complex data cannot be loaded)")
    interleave = (hdr.get("interleave") or "bsq").strip().upper()
    if interleave not in ("BSQ", "BIL", "BIP"):
        raise InputError(f"{path}: interleave = {hdr.get('interleave')!r} is not bsq, bil or bip")
    offset = header_int(hdr.get("header offset") or "0", path, "header offset", minimum=0)
    order = ">" if hdr.get("byte order", "0").strip() == "1" else "<"
    return dict(shape=(length, width), dtype=np.dtype(order + _ENVI_TYPES[code]), bands=bands,
                interleave=interleave, offset=offset)


def envi_geogrid(hdr: Mapping[str, str]):
    """GeoGrid from an ENVI ``map info`` (tie point: 1-based pixel whose upper-left corner is given)."""
    from sbts.core.api import GeoGrid

    info = hdr.get("map info")
    if not info:
        return None
    items = [s.strip() for s in info.split(",")]
    try:
        px, py, x, y, dx, dy = (float(v) for v in items[1:7])
    except (ValueError, IndexError):
        return None
    geographic = "geographic" in items[0].lower()
    unit = "degrees" if geographic else "meters"
    epsg = 4326 if geographic else None
    return GeoGrid(x - (px - 1.0) * dx, y + (py - 1.0) * dy, dx, -abs(dy), unit, unit, epsg)


def gdal_geogrid(path: str):
    """GeoGrid (pixel-corner origin, as GDAL's geotransform) and EPSG of any GDAL raster, or None."""
    from osgeo import gdal, osr

    from sbts.core.api import GeoGrid

    gdal.UseExceptions()
    ds = gdal.Open(str(path))
    gt = ds.GetGeoTransform(can_return_null=True)
    if gt is None:
        return None, ds
    epsg, unit = None, "degrees"
    wkt = ds.GetProjection()
    if wkt:
        srs = osr.SpatialReference(wkt=wkt)
        srs.AutoIdentifyEPSG()
        code = srs.GetAuthorityCode(None)
        epsg = int(code) if code else None
        unit = "degrees" if srs.IsGeographic() else "meters"
    return GeoGrid(gt[0], gt[3], gt[1], gt[5], unit, unit, epsg), ds


def land_mask(a: np.ndarray) -> np.ndarray:
    """Water masks of ARIA/HyP3: 1 = land (valid), 0 = water or no data."""
    return np.nan_to_num(a) > 0


def gdal_geometry_layers(request: LoadRequest, spec: Iterable[tuple[str, str, Callable | None]]):
    """Geometry layers from one GDAL raster per ``mintpy.load.*File`` key, all on one grid.

    ``spec`` lists (template key, layer name, per-pixel conversion or None); returns (layers,
    input files, Grid or None).  A file on another grid than the first is refused.
    """
    from sbts.core.api import GdalRaster, Grid

    layers, inputs, grid = {}, [], None
    for key, name, func in spec:
        files = request.files(key)
        if not files:
            continue
        f = files[0]
        g, ds = gdal_geogrid(str(f))
        shape = (ds.RasterYSize, ds.RasterXSize)
        if grid is None:
            grid = Grid(shape[0], shape[1], g)
        elif shape != grid.shape:
            raise InputError(f"{f}: {shape} pixels but the other geometry files have {grid.shape}")
        raster = GdalRaster(str(f))
        if func is land_mask:
            raster = MappedRaster(raster, land_mask, np.dtype(bool))
        elif func is not None:
            raster = MappedRaster(raster, func)
        layers[name] = raster
        inputs.append(f)
    return layers, inputs, grid


def first_existing(paths: Iterable[Path]) -> Path | None:
    for p in paths:
        if Path(p).exists():
            return Path(p)
    return None


# --------------------------------------------------------------------------- slant range from incidence
def slant_range_from_incidence(incidence_deg, earth_radius: float, height: float):
    """Slant range (m) of a target seen at incidence θ from a platform ``height`` above a sphere of
    ``earth_radius`` (the triangle Earth centre / platform / target, law of sines):
    look angle β = asin(Rₑ·sin θ / (Rₑ+H)), range = (Rₑ+H)·sin(θ−β)/sin θ.  MintPy uses the same
    triangle for SNAP (SLANT_RANGE_DISTANCE) and for geocoded incidence rasters."""
    inc = np.radians(np.asarray(incidence_deg, dtype=np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        look = np.arcsin(earth_radius * np.sin(inc) / (earth_radius + height))
        rng = (earth_radius + height) * np.sin(inc - look) / np.sin(inc)
    return np.where(np.isfinite(rng) & (inc > 0), rng, np.nan)


def slant_range_layer(incidence, earth_radius: float, height: float):
    """A slantRangeDistance raster computed from an incidence-angle raster, block by block."""
    return MappedRaster(incidence, lambda a: slant_range_from_incidence(a, earth_radius, height))


def corner_refs(geo, shape: tuple[int, int], orbit_direction: str | None) -> dict[str, str]:
    """LAT_REF1..4 / LON_REF1..4 of a geocoded grid in MintPy's order (first line near, first line far,
    last line near, last line far; right-looking): ascending S,S,N,N / W,E,W,E, descending N,N,S,S /
    E,W,E,W — the corners prep_aria writes."""
    if geo is None:
        return {}
    length, width = shape
    n, w = geo.y_first, geo.x_first
    s, e = n + length * geo.y_step, w + width * geo.x_step
    if (orbit_direction or "").upper().startswith("A"):
        lats, lons = (s, s, n, n), (w, e, w, e)
    else:
        lats, lons = (n, n, s, s), (e, w, e, w)
    out = {}
    for k in range(4):
        out[f"LAT_REF{k + 1}"] = repr(float(lats[k]))
        out[f"LON_REF{k + 1}"] = repr(float(lons[k]))
    return out
