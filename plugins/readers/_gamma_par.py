"""GAMMA parameter files (``.par``, ``.diff_par``, ``base.par``, ``bperp.par``) and radar geometry.

GAMMA writes ``keyword: value [unit]`` text headers (GAMMA ISP/DIFF&GEO reference manuals).  This
module parses them once into plain dicts, maps the keywords to MintPy attribute names, and holds the
small amount of spherical-earth geometry that the readers need to derive what a format lacks
(look angle → perpendicular baseline, incidence angle and slant range per pixel).  It is shared by
the GAMMA, GeoTIFF and ROI_PAC readers, so nothing here imports GDAL.
"""

from __future__ import annotations

import datetime as _dt
import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from sbts.core.api import InputError, dates_in_name
from sbts.plugins.readers._common import header_int

logger = logging.getLogger(__name__)

SPEED_OF_LIGHT = 299_792_458.0  # m/s

_LINE = re.compile(r"^\s*([A-Za-z_][\w()\-.]*)\s*:\s*(.*?)\s*$")


# ------------------------------------------------------------------ parsing
class ParFile(dict):
    """The ``keyword → value`` dict of a par file, remembering the file (``path``) for error messages."""

    path: str = ""


def _source(par: Mapping[str, str], source: str = "") -> str:
    return source or getattr(par, "path", "") or "GAMMA par file"


def read_par(path: str | Path) -> dict[str, str]:
    """All ``keyword: value`` lines of a GAMMA par file (value with its units, stripped).

    Lines without a colon (titles such as ``Gamma DIFF&GEO DEM/MAP parameter file``, comments,
    table rows) are skipped; the first occurrence of a keyword wins.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the GAMMA parameter file ({exc.strerror})") from None
    out = ParFile()
    out.path = str(path)
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out


def numbers(par: Mapping[str, str], key: str) -> list[float]:
    """The leading numbers of a value (``'0.15 15.35 9.77 m m m'`` → three floats)."""
    value = par.get(key)
    if value is None:
        return []
    found = []
    for token in value.split():
        try:
            found.append(float(token))
        except ValueError:
            break
    return found


def number(par: Mapping[str, str], key: str, index: int = 0) -> float | None:
    vals = numbers(par, key)
    return vals[index] if len(vals) > index else None


def first_number(par: Mapping[str, str], *keys: str) -> float | None:
    """The first of ``keys`` present with a number (GAMMA renamed keywords between versions)."""
    for key in keys:
        value = number(par, key)
        if value is not None:
            return value
    return None


# ------------------------------------------------------------------ kinds of par files
def is_dem_par(par: Mapping[str, str]) -> bool:
    """DEM/MAP par (geocoded grid): has ``DEM_projection`` or ``corner_lat``/``corner_north``."""
    return "DEM_projection" in par or "corner_lat" in par or "corner_north" in par


def is_acquisition_par(par: Mapping[str, str]) -> bool:
    """SLC/MLI image par: has ``range_samples`` and ``azimuth_lines``."""
    return "range_samples" in par and "azimuth_lines" in par


def is_diff_par(par: Mapping[str, str]) -> bool:
    """Interferogram/offset par (``.off``, ``.diff_par``): interferogram width and lines."""
    return "interferogram_width" in par or "range_samp_1" in par


def _size(par: Mapping[str, str], lines_key: str, width_key: str, source: str) -> tuple[int, int] | None:
    """(lines, samples) from two count keywords: None when either is absent or 0 (GAMMA's "not set"),
    else positive integers or an InputError naming the file and keyword (Inf/NaN/negative/fractional)."""
    lines, width = number(par, lines_key), number(par, width_key)
    if not lines or not width:
        return None
    src = _source(par, source)
    return header_int(lines, src, lines_key), header_int(width, src, width_key)


def radar_size(par: Mapping[str, str], source: str = "") -> tuple[int, int] | None:
    """(lines, samples) of the radar image a par file describes, if it describes one."""
    pairs = (("azimuth_lines", "range_samples"), ("interferogram_azimuth_lines", "interferogram_width"),
             ("az_samp_1", "range_samp_1"))
    for lines_key, width_key in pairs:
        size = _size(par, lines_key, width_key, source)
        if size:
            return size
    return None


def dem_size(par: Mapping[str, str], source: str = "") -> tuple[int, int] | None:
    return _size(par, "nlines", "width", source)


DEM_DTYPES = {"REAL*4": ">f4", "INTEGER*2": ">i2", "SHORT": ">i2", "FLOAT": ">f4", "REAL*8": ">f8"}


def dem_dtype(par: Mapping[str, str], default: str = ">f4") -> np.dtype:
    """Sample type of a DEM described by a DEM par (``data_format``), big-endian as GAMMA writes."""
    fmt = (par.get("data_format") or "").split()
    return np.dtype(DEM_DTYPES.get(fmt[0].upper(), default) if fmt else default)


# ------------------------------------------------------------------ → MintPy attributes
_PLATFORMS = (  # (regex on sensor/title, MintPy sensor name)
    (r"\bS1[ABCD]?\b|SENTINEL", "sen"), (r"\bIS\d\b|ASAR|ENVISAT|^ASA_", "env"), (r"\bERS", "ers"),
    (r"PALSAR2|ALOS2|ALOS-2", "alos2"), (r"PALSAR|ALOS", "alos"), (r"TSX|TDX|TERRASAR|TANDEM", "tsx"),
    (r"CSK|COSMO", "csk"), (r"RADARSAT-?2|\bRS2\b", "rs2"), (r"RADARSAT-?1|\bRS1\b", "rs1"), (r"JERS", "jers"),
)


def platform_name(par: Mapping[str, str]) -> str | None:
    text = " ".join(par.get(k, "") for k in ("sensor", "title")).upper()
    for pattern, name in _PLATFORMS:
        if re.search(pattern, text):
            return name
    return None


def _utc_seconds(par: Mapping[str, str]) -> float | None:
    """Centre time in seconds of day: ``center_time``, else the time part of ``date``."""
    t = number(par, "center_time")
    if t is not None:
        return t
    parts = numbers(par, "date")
    if len(parts) >= 6:
        return parts[3] * 3600 + parts[4] * 60 + parts[5]
    return None


def orbit_direction(heading: float) -> str:
    """ASCENDING when the platform heads north (|heading| < 90° after wrapping to ±180°)."""
    h = (heading + 180.0) % 360.0 - 180.0
    return "ASCENDING" if abs(h) < 90.0 else "DESCENDING"


def add_orbit_direction(attrs: dict[str, str]) -> None:
    """Set ORBIT_DIRECTION from HEADING when only the heading is known (an unparsable heading: left unset)."""
    if "HEADING" in attrs and "ORBIT_DIRECTION" not in attrs:
        try:
            attrs["ORBIT_DIRECTION"] = orbit_direction(float(attrs["HEADING"]))
        except ValueError:
            pass


def acquisition_attrs(par: Mapping[str, str], source: str = "") -> dict[str, str]:
    """MintPy attributes from an SLC/MLI par (only what the header states, plus direct conversions).

    WAVELENGTH = c / radar_frequency; HEIGHT = sar_to_earth_center − earth_radius_below_sensor;
    ORBIT_DIRECTION from the heading; ANTENNA_SIDE −1 for azimuth_angle 90° (right looking).
    """
    a: dict[str, str] = {}

    def put(key: str, value: float | int | str | None) -> None:
        if value is not None:
            a[key] = repr(float(value)) if isinstance(value, float) else str(value)

    freq = number(par, "radar_frequency")
    if freq:
        put("WAVELENGTH", SPEED_OF_LIGHT / freq)
    src = _source(par, source)
    looks_r, looks_a = number(par, "range_looks"), number(par, "azimuth_looks")
    put("RLOOKS", None if looks_r is None else header_int(looks_r, src, "range_looks"))
    put("ALOOKS", None if looks_a is None else header_int(looks_a, src, "azimuth_looks"))
    put("RANGE_PIXEL_SIZE", number(par, "range_pixel_spacing"))
    put("AZIMUTH_PIXEL_SIZE", number(par, "azimuth_pixel_spacing"))
    near = first_number(par, "near_range_slc", "near_range_slant")
    put("STARTING_RANGE", near)
    center = first_number(par, "center_range_slc", "center_range_slant")
    if center is None and near is not None:
        spacing, size = number(par, "range_pixel_spacing"), radar_size(par, src)
        if spacing and size:
            center = near + spacing * (size[1] - 1) / 2.0
    put("SLANT_RANGE_DISTANCE", center)
    re_, rs = number(par, "earth_radius_below_sensor"), number(par, "sar_to_earth_center")
    put("EARTH_RADIUS", re_)
    if re_ is not None and rs is not None:
        put("HEIGHT", rs - re_)
    heading = number(par, "heading")
    if heading is not None:
        put("HEADING", heading)
        put("ORBIT_DIRECTION", orbit_direction(heading))
    az = number(par, "azimuth_angle")
    if az is not None:
        put("ANTENNA_SIDE", -1 if az > 0 else 1)
    inc = number(par, "incidence_angle")
    if inc is not None:
        put("INCIDENCE_ANGLE", inc)
        put("CENTER_INCIDENCE_ANGLE", inc)
    put("PRF", number(par, "prf"))
    put("CENTER_LINE_UTC", _utc_seconds(par))
    put("PLATFORM", platform_name(par))
    sensor = par.get("sensor", "").split()
    if sensor and sensor[-1].upper() in ("HH", "HV", "VH", "VV"):
        put("POLARIZATION", sensor[-1].upper())
    lat, lon = number(par, "center_latitude"), number(par, "center_longitude")
    if lat is not None and lon is not None:
        put("CENTER_LAT", lat)
        put("CENTER_LON", lon)
    if not a:
        logger.debug("%s: no acquisition keyword found", source)
    return a


def geo_attrs(par: Mapping[str, str], source: str = "") -> dict[str, str]:
    """Grid attributes of a DEM/MAP par: WIDTH/LENGTH, X/Y_FIRST/STEP, units and EPSG.

    ``corner_lat``/``corner_lon`` are taken as the upper-left corner (as GAMMA-derived products
    and the GeoTIFFs made from them do), so ``Y_FIRST = corner_lat``.
    """
    size = dem_size(par, source)
    if size is None:
        raise InputError(f"{source}: the DEM par has no width/nlines; is it a GAMMA DEM/MAP par file?")
    proj = (par.get("DEM_projection") or "EQA").split()[0].upper()
    a = {"LENGTH": str(size[0]), "WIDTH": str(size[1])}
    if proj == "EQA":
        keys = ("corner_lat", "corner_lon", "post_lat", "post_lon")
        unit, epsg = "degrees", "4326"
    else:
        keys = ("corner_north", "corner_east", "post_north", "post_east")
        unit, epsg = "meters", None
        zone = number(par, "projection_zone")
        if proj == "UTM" and zone is not None:
            south = (number(par, "false_northing") or 0.0) > 0
            epsg = str((32700 if south else 32600) + header_int(zone, _source(par, source), "projection_zone"))
    y0, x0, dy, dx = (number(par, k) for k in keys)
    if None in (y0, x0, dy, dx):
        raise InputError(f"{source}: the DEM par lacks one of {', '.join(keys)}")
    a.update(Y_FIRST=repr(y0), X_FIRST=repr(x0), Y_STEP=repr(dy), X_STEP=repr(dx), X_UNIT=unit, Y_UNIT=unit)
    if epsg:
        a["EPSG"] = epsg
    return a


# ------------------------------------------------------------------ geometry (spherical earth)
def look_angle(slant_range, earth_radius: float, height: float):
    """Off-nadir look angle (rad) of a target on a sphere of radius ``earth_radius`` seen from ``height``."""
    earth_radius = np.float64(earth_radius)  # numpy: huge header values give inf/NaN, not OverflowError
    rs = earth_radius + np.float64(height)
    r = np.asarray(slant_range, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        cos_t = (rs**2 + r**2 - earth_radius**2) / (2.0 * rs * r)
    return np.arccos(np.clip(cos_t, -1.0, 1.0))


def incidence_angle(slant_range, earth_radius: float, height: float):
    """Incidence angle (deg from the vertical at the target) by the law of sines on the triangle
    earth centre – satellite – target."""
    rs = earth_radius + height
    sin_i = rs * np.sin(look_angle(slant_range, earth_radius, height)) / earth_radius
    return np.degrees(np.arcsin(np.clip(sin_i, -1.0, 1.0)))


def bperp_from_tcn(b_c, b_n, theta):
    """Perpendicular baseline of TCN components at look angle ``theta`` (rad), right-looking.

    Same convention as GAMMA's ``base_perp`` table: bperp = B_c·cosθ − B_n·sinθ.
    """
    return np.asarray(b_c) * np.cos(theta) - np.asarray(b_n) * np.sin(theta)


def baseline_bperp(base: Mapping[str, str], acq: Mapping[str, str], source: str = "") -> float:
    """Mean perpendicular baseline over the frame from a ``base.par`` and the reference image par.

    Uses the precision baseline when it is non-zero (else the initial one), its rate over the
    frame time, and the look angle across the swath, averaged on a 11 × 11 grid (as the mean of
    GAMMA's ``base_perp`` table would be).
    """
    b = numbers(base, "precision_baseline(TCN)")
    rate = numbers(base, "precision_baseline_rate")
    if len(b) < 3 or not any(b):
        b = numbers(base, "initial_baseline(TCN)")
        rate = numbers(base, "initial_baseline_rate")
    if len(b) < 3:
        raise InputError(f"{source}: no initial_baseline(TCN) or precision_baseline(TCN) line; "
                         "not a GAMMA base.par file?")
    rate = rate if len(rate) >= 3 else [0.0, 0.0, 0.0]
    re_, rs = number(acq, "earth_radius_below_sensor"), number(acq, "sar_to_earth_center")
    near = first_number(acq, "near_range_slc", "near_range_slant")
    spacing = number(acq, "range_pixel_spacing")
    size = radar_size(acq)  # names the image par (read_par remembers its path)
    if None in (re_, rs, near):
        raise InputError(f"{source}: the image par lacks earth_radius_below_sensor, sar_to_earth_center "
                         "or near_range_slc, needed to project the baseline; give a full GAMMA SLC/MLI par "
                         "(mintpy.load.metaFile) or a *.bperp/*.base_perp table (mintpy.load.bperpFile)")
    for key, value in (("earth_radius_below_sensor", re_), ("sar_to_earth_center", rs), ("near_range_slc", near)):
        if not (np.isfinite(value) and value > 0):
            raise InputError(f"{_source(acq)}: {key} = {value!r} is not a positive length; cannot project the "
                             f"baseline of {source or 'the base.par'}")
    far = first_number(acq, "far_range_slc", "far_range_slant")
    if far is None:
        far = near + (spacing or 0.0) * ((size[1] - 1) if size else 0)
    ranges = np.linspace(near, far, 11)
    line_time = number(acq, "azimuth_line_time")
    if line_time is None:
        prf, looks = number(acq, "prf"), number(acq, "azimuth_looks") or 1
        line_time = looks / prf if prf else 0.0
    duration = line_time * (size[0] if size else 0)
    times = np.linspace(-duration / 2.0, duration / 2.0, 11)
    theta = look_angle(ranges, re_, rs - re_)[None, :]
    b_c = b[1] + rate[1] * times[:, None]
    b_n = b[2] + rate[2] * times[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        bperp = float(np.mean(bperp_from_tcn(b_c, b_n, theta)))
    if not np.isfinite(bperp):
        raise InputError(f"{source or 'base.par'}: the perpendicular baseline projected with {_source(acq)} is "
                         f"{bperp} (non-finite baseline, rate, range or timing values in these files)")
    return bperp


def read_bperp_table(path: str | Path) -> float:
    """Mean of the ``bperp`` column of a GAMMA ``base_perp`` table (``*.base_perp``, ``*bperp.par``).

    Table rows hold nine numbers: line, range, B_t, B_c, B_n, look angle, bpara, bperp, blen.
    """
    path = Path(path)
    values = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the baseline table ({exc.strerror})") from None
    for line in lines:
        tokens = line.split()
        if len(tokens) != 9:
            continue
        try:
            row = [float(t) for t in tokens]
        except ValueError:
            continue
        values.append(row[7])
    if not values:
        raise InputError(f"{path}: no 'line range B_t B_c B_n look_angle bpara bperp blen' rows; "
                         "not a GAMMA base_perp table")
    return float(np.mean(values))


def is_bperp_table(path: str | Path) -> bool:
    name = Path(path).name.lower()
    return name.endswith(".base_perp") or name.endswith("bperp.par") or name.endswith(".bperp")


# ------------------------------------------------------------------ matching files by dates
def pair_dates(name: str) -> tuple[_dt.date, _dt.date] | None:
    """The two dates of an interferogram in a file name (``20060619-20061002`` or ``_`` or 6-digit)."""
    found = dates_in_name(name)
    if len(found) < 2:
        return None
    d1, d2 = found[0], found[1]
    return (d1, d2) if d1 < d2 else (d2, d1)


def name_is_swapped(name: str) -> bool:
    """True when a pair's name lists the later date first (its phase is then later − earlier)."""
    found = dates_in_name(name)
    return len(found) >= 2 and found[0] > found[1]


def date_index(paths: Iterable[Path]) -> dict[tuple[_dt.date, ...], list[Path]]:
    """Paths keyed by the dates in their name: (d1, d2) for pair files, (d,) for one-date files."""
    out: dict[tuple[_dt.date, ...], list[Path]] = {}
    for p in paths:
        found = dates_in_name(p.name)
        if len(found) >= 2:
            key = tuple(sorted(found[:2]))
        elif len(found) == 1:
            key = (found[0],)
        else:
            continue
        out.setdefault(key, []).append(p)
    return out


def baseline_for_pair(files: Mapping[tuple[_dt.date, ...], list[Path]], d1: _dt.date, d2: _dt.date,
                      acq: Mapping[str, str] | None) -> tuple[float | None, Path | None]:
    """Pair bperp from the baseline files matched by both dates: a table first, else a base.par."""
    candidates = files.get((d1, d2), [])
    tables = [p for p in candidates if is_bperp_table(p)]
    if tables:
        return read_bperp_table(tables[0]), tables[0]
    for p in candidates:
        base = read_par(p)
        if "initial_baseline(TCN)" in base or "precision_baseline(TCN)" in base:
            if acq is None:
                logger.warning("%s: no image par (SLC/MLI) to project the baseline; bperp left unknown", p)
                return None, p
            return baseline_bperp(base, acq, str(p)), p
    return None, None


# ------------------------------------------------------------------ derived geometry rasters
class GeometryFromRange:
    """Incidence angle or slant range per pixel from a slant-range source (see the readers).

    ``range_of`` maps a block to slant ranges (m): per column on a radar grid, through the
    lookup table's range coordinate on a geocoded grid.
    """

    def __init__(self, shape, range_of, what: str, earth_radius: float | None = None,
                 height: float | None = None, dem=None) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(np.float32)
        self._range_of = range_of
        self._what = what
        self._re, self._h = earth_radius, height
        self._dem = dem  # heights on the same grid: the incidence at the target, not at the ellipsoid
        if what == "incidenceAngle" and (earth_radius is None or height is None):
            raise ValueError("incidence needs EARTH_RADIUS and HEIGHT")

    def read(self, block=None):
        r = self._range_of(block)
        if self._what == "slantRangeDistance":
            return np.asarray(r, np.float32)
        if self._dem is not None:
            z = np.nan_to_num(np.asarray(self._dem.read(block), np.float64))
            inc = incidence_angle(r, self._re + z, self._h - z)  # the triangle's target side is R + z
        else:
            inc = incidence_angle(r, self._re, self._h)
        return np.asarray(inc, np.float32)


class ConstantRaster:
    """A constant layer (scalar INCIDENCE_ANGLE / SLANT_RANGE_DISTANCE when nothing better exists)."""

    def __init__(self, shape, value: float) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(np.float32)
        self.value = float(value)

    def read(self, block=None):
        shape = self.shape if block is None else block.shape
        return np.full(shape, self.value, np.float32)


def column_ranges(width: int, starting_range: float, range_pixel_size: float):
    """``block → slant range`` per column of a radar grid: STARTING_RANGE + x·RANGE_PIXEL_SIZE."""

    def range_of(block):
        c0, c1 = (0, width) if block is None else (block.col_start, block.col_stop)
        rows = None if block is None else block.shape[0]
        r = starting_range + np.arange(c0, c1, dtype=np.float64) * range_pixel_size
        return r[None, :] if rows is None else np.broadcast_to(r, (rows, c1 - c0))

    return range_of


def lookup_ranges(range_coord, starting_range: float, range_pixel_size: float):
    """``block → slant range`` on a geocoded grid from the lookup table's range coordinate.

    Pixels outside the radar image (range coordinate ≤ 0 with azimuth 0, or NaN) give NaN.
    """

    def range_of(block):
        rg = np.asarray(range_coord.read(block), np.float64)
        out = starting_range + rg * range_pixel_size
        out[~np.isfinite(rg) | (rg == 0)] = np.nan
        return out

    return range_of


def derived_geometry(shape, attrs: Mapping[str, str], range_of=None, dem=None) -> dict[str, object]:
    """``incidenceAngle`` and ``slantRangeDistance`` layers from what the metadata allows.

    With a slant-range function and EARTH_RADIUS/HEIGHT: per pixel (at the DEM height when
    ``dem`` is a height raster on the same grid); else constants from INCIDENCE_ANGLE /
    SLANT_RANGE_DISTANCE; layers that cannot be derived are left out.
    """

    def f(key):
        try:
            return float(attrs[key]) if key in attrs else None
        except ValueError:
            return None

    layers: dict[str, object] = {}
    re_, h = f("EARTH_RADIUS"), f("HEIGHT")
    if range_of is not None:
        layers["slantRangeDistance"] = GeometryFromRange(shape, range_of, "slantRangeDistance")
        if re_ is not None and h is not None:
            layers["incidenceAngle"] = GeometryFromRange(shape, range_of, "incidenceAngle", re_, h, dem)
    if "slantRangeDistance" not in layers and f("SLANT_RANGE_DISTANCE") is not None:
        layers["slantRangeDistance"] = ConstantRaster(shape, f("SLANT_RANGE_DISTANCE"))
    if "incidenceAngle" not in layers:
        inc = f("INCIDENCE_ANGLE") or f("CENTER_INCIDENCE_ANGLE")
        if inc is None and re_ is not None and h is not None and f("SLANT_RANGE_DISTANCE") is not None:
            inc = float(incidence_angle(f("SLANT_RANGE_DISTANCE"), re_, h))
        if inc is not None:
            layers["incidenceAngle"] = ConstantRaster(shape, inc)
    return layers

