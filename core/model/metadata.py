"""Typed metadata, parsed once from (and written back to) MintPy's root attributes.

On disk every attribute is a string (MintPy's convention, so files move both ways); in memory sbts
works with the typed objects below.  Keys sbts does not model are kept verbatim in ``extra`` so a
round trip through sbts never loses what another tool wrote.

Units and signs (all sbts files, as MintPy):

- ``unwrapPhase``: radians, positive = motion *away* from the satellite.
- ``timeseries``: metres, positive = motion *toward* the satellite; ``d = -λ/(4π)·φ``.
- time in years = days / 365.25; ``velocity``: m/year.
- ``incidenceAngle`` from the vertical, ``azimuthAngle`` of the LOS from north, anticlockwise (degrees);
  ``HEADING`` clockwise from north, in (-180, 180].
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from sbts.core.errors import InputError
from sbts.core.model.dates import format_date, parse_date


def _to_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, _dt.date):
        return format_date(value)
    return str(value)


def _float(attrs: Mapping[str, str], key: str, source: str = "") -> float | None:
    if key not in attrs or str(attrs[key]).strip() in ("", "None", "none", "nan"):
        return None
    where = f" in {source}" if source else ""
    try:
        value = float(attrs[key])
    except (TypeError, ValueError):
        raise InputError(f"attribute {key}={attrs[key]!r}{where} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"attribute {key}={attrs[key]!r}{where} is not a finite number")
    return value


def _int(attrs: Mapping[str, str], key: str, source: str = "") -> int | None:
    value = _float(attrs, key, source)
    return None if value is None else int(round(value))


def epsg_utm_zone(epsg: int | None) -> str | None:
    """MintPy's ``UTM_ZONE`` (``"14N"``, ``"33S"``) of a WGS84 UTM EPSG code (326zz / 327zz), else None."""
    if epsg is None:
        return None
    epsg = int(epsg)
    if 32601 <= epsg <= 32660:
        return f"{epsg - 32600}N"
    if 32701 <= epsg <= 32760:
        return f"{epsg - 32700}S"
    return None


def utm_zone_epsg(zone: str | None, source: str = "") -> int | None:
    """EPSG code of MintPy's ``UTM_ZONE`` (``"14N"``; a bare number is northern, as MintPy's prep_gamma)."""
    if zone is None or not str(zone).strip():
        return None
    text = str(zone).strip().upper()
    hemi = text[-1] if text[-1] in "NS" else "N"
    digits = text[:-1] if text[-1] in "NS" else text
    try:
        number = int(digits)
    except ValueError:
        raise InputError(f"attribute UTM_ZONE={zone!r}{' in ' + source if source else ''} is not a UTM zone "
                         "(e.g. 14N)") from None
    if not 1 <= number <= 60:
        raise InputError(f"attribute UTM_ZONE={zone!r}{' in ' + source if source else ''}: zone out of 1..60")
    return (32600 if hemi == "N" else 32700) + number


@dataclass(frozen=True)
class GeoGrid:
    """Geographic (or projected) raster grid: upper-left corner of the first pixel and steps.

    Parameters
    ----------
    x_first, y_first : float
        Upper-left corner of the first pixel (MintPy's ``X_FIRST``/``Y_FIRST``).
    x_step, y_step : float
        Pixel size; ``y_step`` is negative for north-up grids.
    x_unit, y_unit : str
        ``"degrees"`` or ``"meters"``.
    epsg : int, optional
        Coordinate system of a projected grid (``UTM_ZONE`` is derived from it).
    """

    x_first: float
    y_first: float
    x_step: float
    y_step: float  # negative for north-up grids
    x_unit: str = "degrees"
    y_unit: str = "degrees"
    epsg: int | None = None

    def lalo_to_yx(self, lat: float, lon: float) -> tuple[int, int]:
        # floor, not truncation: a point half a pixel outside the grid must not land on row/col 0
        """Row and column of the pixel holding (lat, lon) (``floor``: a point outside may be negative)."""
        y = int(np.floor((lat - self.y_first) / self.y_step))
        x = int(np.floor((lon - self.x_first) / self.x_step))
        return y, x

    def yx_to_lalo(self, y: float, x: float) -> tuple[float, float]:
        """Centre of pixel (y, x)."""
        return self.y_first + (y + 0.5) * self.y_step, self.x_first + (x + 0.5) * self.x_step

    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL geotransform."""
        return (self.x_first, self.x_step, 0.0, self.y_first, 0.0, self.y_step)


@dataclass(frozen=True)
class Grid:
    """Raster size and, when geocoded, its geographic grid (MintPy: ``Y_FIRST`` present ⇔ geocoded).

    Parameters
    ----------
    length, width : int
        Rows and columns (MintPy's ``LENGTH``/``WIDTH``).
    geo : GeoGrid, optional
        The geographic grid; ``None`` in radar coordinates.
    """

    length: int
    width: int
    geo: GeoGrid | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(length, width)``."""
        return (self.length, self.width)

    @property
    def is_geocoded(self) -> bool:
        """Whether the raster is on a geographic (or projected) grid."""
        return self.geo is not None


@dataclass(frozen=True)
class Reference:
    """Spatial and temporal reference of a product."""

    y: int | None = None
    x: int | None = None
    lat: float | None = None
    lon: float | None = None
    date: _dt.date | None = None

    @property
    def has_point(self) -> bool:
        return self.y is not None and self.x is not None


def heading_degrees(heading: float) -> float:
    """A heading (degrees clockwise from north) in (-180, 180], as ISCE and MintPy write it: about -12
    for an ascending and -168 for a descending Sentinel-1 pass.  347.3 and -12.7 are the same heading."""
    h = float(heading)
    if not -360.0 <= h <= 360.0:  # not a heading at all: kept, for check_physical to refuse by name
        return h
    h = (h + 180.0) % 360.0 - 180.0
    return 180.0 if h == -180.0 else h


@dataclass(frozen=True)
class RadarInfo:
    """Acquisition parameters that the algorithms need (``None`` where the processor did not say).

    Each field is one MintPy attribute (in brackets); lengths in metres, angles in degrees.

    Parameters
    ----------
    wavelength : float, optional
        Radar wavelength [WAVELENGTH].
    alooks, rlooks : int, optional
        Azimuth and range looks [ALOOKS, RLOOKS].
    ncorrlooks : float, optional
        Independent looks of the coherence [NCORRLOOKS].
    range_pixel_size, azimuth_pixel_size : float, optional
        Slant-range and azimuth pixel size [RANGE_PIXEL_SIZE, AZIMUTH_PIXEL_SIZE].
    starting_range : float, optional
        Slant range of the first column [STARTING_RANGE].
    earth_radius, height : float, optional
        Local Earth radius and platform altitude [EARTH_RADIUS, HEIGHT].
    heading : float, optional
        Flight direction, clockwise from north, kept in (-180, 180] [HEADING].
    orbit_direction : str, optional
        ``ASCENDING`` or ``DESCENDING`` [ORBIT_DIRECTION].
    antenna_side : int, optional
        -1 right-looking, 1 left-looking [ANTENNA_SIDE].
    platform : str, optional
        Sensor, as :func:`standard_platform` spells it [PLATFORM].
    center_line_utc : float, optional
        Acquisition time of the centre line, seconds of the day [CENTER_LINE_UTC].
    prf : float, optional
        Pulse repetition frequency, Hz [PRF].
    incidence_angle, slant_range_distance : float, optional
        Scalar fallbacks when no geometry layer gives them [INCIDENCE_ANGLE, SLANT_RANGE_DISTANCE].
    """

    wavelength: float | None = None  # m
    alooks: int | None = None
    rlooks: int | None = None
    ncorrlooks: float | None = None
    range_pixel_size: float | None = None  # m, slant range
    azimuth_pixel_size: float | None = None  # m
    starting_range: float | None = None  # m
    earth_radius: float | None = None  # m
    height: float | None = None  # platform altitude, m
    heading: float | None = None  # deg, clockwise from north
    orbit_direction: str | None = None  # ASCENDING / DESCENDING
    antenna_side: int | None = None  # -1 right looking
    platform: str | None = None
    center_line_utc: float | None = None  # s of day
    prf: float | None = None
    incidence_angle: float | None = None  # scalar fallback, deg
    slant_range_distance: float | None = None  # scalar fallback, m

    def __post_init__(self) -> None:
        # one HEADING convention whatever the processor wrote (SNAP: [0, 360)): MintPy's (-180, 180]
        if self.heading is not None:
            object.__setattr__(self, "heading", heading_degrees(self.heading))

    def number_of_looks(self) -> int:
        """Independent looks for the coherence→weight conversion: NCORRLOOKS, else ALOOKS·RLOOKS/1.94."""
        for key, value in (("NCORRLOOKS", self.ncorrlooks), ("ALOOKS", self.alooks), ("RLOOKS", self.rlooks)):
            if value is not None and not value > 0:
                raise InputError(f"{key} = {value} in the metadata: the number of looks must be positive; "
                                 f"fix it in the template ({key} = 1)")
        if self.ncorrlooks is not None:
            return max(1, int(round(self.ncorrlooks)))
        if self.alooks is not None and self.rlooks is not None:
            return max(1, int(round(self.alooks * self.rlooks / 1.94)))
        raise InputError(
            "the number of looks is unknown: the stack has neither NCORRLOOKS nor ALOOKS and RLOOKS; "
            "set them in the template (e.g. ALOOKS = 1, RLOOKS = 1) or use weightFunc = no"
        )

    def require_wavelength(self) -> float:
        """The wavelength in metres; an :class:`InputError` saying how to set it if absent or invalid."""
        if self.wavelength is None:
            raise InputError("WAVELENGTH is missing from the metadata; set it in the template (WAVELENGTH = 0.0555)")
        if not (self.wavelength > 0 and math.isfinite(self.wavelength)):
            raise InputError(f"WAVELENGTH = {self.wavelength!r} in the metadata is not a positive number of metres; "
                             "fix it (template: WAVELENGTH = 0.0555 for Sentinel-1)")
        return self.wavelength


# attribute name ↔ RadarInfo field, with converters
_RADAR_KEYS: dict[str, tuple[str, type]] = {
    "WAVELENGTH": ("wavelength", float),
    "ALOOKS": ("alooks", int),
    "RLOOKS": ("rlooks", int),
    "NCORRLOOKS": ("ncorrlooks", float),
    "RANGE_PIXEL_SIZE": ("range_pixel_size", float),
    "AZIMUTH_PIXEL_SIZE": ("azimuth_pixel_size", float),
    "STARTING_RANGE": ("starting_range", float),
    "EARTH_RADIUS": ("earth_radius", float),
    "HEIGHT": ("height", float),
    "HEADING": ("heading", float),
    "ORBIT_DIRECTION": ("orbit_direction", str),
    "ANTENNA_SIDE": ("antenna_side", int),
    "PLATFORM": ("platform", str),
    "CENTER_LINE_UTC": ("center_line_utc", float),
    "PRF": ("prf", float),
    "INCIDENCE_ANGLE": ("incidence_angle", float),
    "SLANT_RANGE_DISTANCE": ("slant_range_distance", float),
}
_GRID_KEYS = {"LENGTH", "WIDTH", "X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP", "X_UNIT", "Y_UNIT", "EPSG", "UTM_ZONE"}
_REF_KEYS = {"REF_Y", "REF_X", "REF_LAT", "REF_LON", "REF_DATE"}
_ID_KEYS = {"FILE_TYPE", "UNIT", "PROCESSOR"}


@dataclass(frozen=True)
class Metadata:
    """All metadata of one sbts/MintPy file, typed.

    Built with :meth:`from_attrs` from a file's attributes, written with :meth:`to_attrs`; changed
    with :meth:`replace`, :meth:`with_extra`, :meth:`with_radar`, :meth:`with_reference`.

    Parameters
    ----------
    grid : Grid
        Size and (geocoded) grid.
    file_type : str
        MintPy's ``FILE_TYPE`` (``ifgramStack``, ``timeseries``, ``geometry`` ...).
    unit : str, optional
        ``UNIT`` of the main dataset.
    processor : str, optional
        ``PROCESSOR`` that made the input (a reader sets its own name).
    radar : RadarInfo
        Acquisition parameters.
    reference : Reference
        Reference point and date (``REF_Y``/``REF_X``/``REF_LAT``/``REF_LON``/``REF_DATE``).
    extra : Mapping[str, str]
        The attributes sbts does not model (provenance keys, processor-specific values), written
        back unchanged.
    """

    grid: Grid
    file_type: str = ""
    unit: str | None = None
    processor: str | None = None
    radar: RadarInfo = field(default_factory=RadarInfo)
    reference: Reference = field(default_factory=Reference)
    extra: Mapping[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ parsing
    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any], source: str = "") -> Metadata:
        """Parse MintPy-style root attributes (strings, or numbers/bytes as h5py may return)."""
        a = {str(k): _to_str(v) for k, v in attrs.items()}
        length, width = _int(a, "LENGTH", source), _int(a, "WIDTH", source)
        where = f" of {source}" if source else ""
        if length is None or width is None:
            raise InputError(f"the attributes{where} lack LENGTH/WIDTH: not an sbts/MintPy file?")
        if length < 1 or width < 1:
            raise InputError(f"the attributes{where} give an empty grid (LENGTH={length}, WIDTH={width})")
        geo = None
        if "Y_FIRST" in a and "X_FIRST" in a:
            keys = ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP")
            x_first, y_first, x_step, y_step = (_float(a, key, source) for key in keys)
            if x_first is None or y_first is None or x_step is None or y_step is None:
                missing = [key for key in keys if _float(a, key, source) is None]
                raise InputError(f"the attributes{where} give X_FIRST/Y_FIRST but no {'/'.join(missing)}: a "
                                 "geocoded grid needs X_FIRST, Y_FIRST, X_STEP and Y_STEP")
            geo = GeoGrid(
                x_first=x_first,
                y_first=y_first,
                x_step=x_step,
                y_step=y_step,
                x_unit=a.get("X_UNIT", "degrees"),
                y_unit=a.get("Y_UNIT", "degrees"),
                epsg=_int(a, "EPSG", source) or utm_zone_epsg(a.get("UTM_ZONE"), source),
            )
        radar_kwargs: dict[str, Any] = {}
        for key, (name, conv) in _RADAR_KEYS.items():
            if key in a and a[key].strip() not in ("", "None", "none", "nan"):
                if conv is str:
                    radar_kwargs[name] = a[key].strip()
                elif conv is int:
                    radar_kwargs[name] = _int(a, key, source)
                else:
                    radar_kwargs[name] = _float(a, key, source)
        ref_date = None
        if a.get("REF_DATE", "").strip() not in ("", "None", "none"):
            ref_date = parse_date(a["REF_DATE"])
        reference = Reference(
            y=_int(a, "REF_Y", source),
            x=_int(a, "REF_X", source),
            lat=_float(a, "REF_LAT", source),
            lon=_float(a, "REF_LON", source),
            date=ref_date,
        )
        known = _GRID_KEYS | _REF_KEYS | _ID_KEYS | set(_RADAR_KEYS)
        extra = {k: v for k, v in a.items() if k not in known}
        return cls(
            grid=Grid(length, width, geo),
            file_type=a.get("FILE_TYPE", ""),
            unit=a.get("UNIT"),
            processor=a.get("PROCESSOR"),
            radar=RadarInfo(**radar_kwargs),
            reference=reference,
            extra=extra,
        )

    def to_attrs(self) -> dict[str, str]:
        """MintPy root attributes, all strings."""
        a: dict[str, str] = dict(self.extra)
        a["FILE_TYPE"] = self.file_type
        a["LENGTH"] = str(self.grid.length)
        a["WIDTH"] = str(self.grid.width)
        if self.unit is not None:
            a["UNIT"] = self.unit
        if self.processor is not None:
            a["PROCESSOR"] = self.processor
        g = self.grid.geo
        if g is not None:
            a.update(
                X_FIRST=_to_str(g.x_first), Y_FIRST=_to_str(g.y_first),
                X_STEP=_to_str(g.x_step), Y_STEP=_to_str(g.y_step),
                X_UNIT=g.x_unit, Y_UNIT=g.y_unit,
            )
            if g.epsg is not None:
                a["EPSG"] = str(g.epsg)
            zone = epsg_utm_zone(g.epsg)
            if zone:  # MintPy reads a projected grid as UTM only with UTM_ZONE (else metres as degrees)
                a["UTM_ZONE"] = zone
        for key, (name, _conv) in _RADAR_KEYS.items():
            value = getattr(self.radar, name)
            if value is not None:
                a[key] = _to_str(value)
        r = self.reference
        for key, value in (("REF_Y", r.y), ("REF_X", r.x), ("REF_LAT", r.lat), ("REF_LON", r.lon), ("REF_DATE", r.date)):
            if value is not None:
                a[key] = _to_str(value)
        return a

    # ------------------------------------------------------------------ edits
    def replace(self, **changes: Any) -> Metadata:
        """A copy with the given fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_extra(self, **items: Any) -> Metadata:
        """A copy with attributes added to (or changed in) ``extra``; values become strings."""
        extra = dict(self.extra)
        extra.update({k: _to_str(v) for k, v in items.items()})
        return dataclasses.replace(self, extra=extra)

    def with_reference(self, **changes: Any) -> Metadata:
        """A copy with fields of :attr:`reference` changed."""
        return dataclasses.replace(self, reference=dataclasses.replace(self.reference, **changes))

    def with_radar(self, **changes: Any) -> Metadata:
        """A copy with fields of :attr:`radar` changed."""
        return dataclasses.replace(self, radar=dataclasses.replace(self.radar, **changes))

    def for_product(self, file_type: str, unit: str | None, shape: tuple[int, int] | None = None) -> Metadata:
        """Metadata of a product derived from this file (same grid and acquisition, new type)."""
        grid = self.grid if shape is None else Grid(shape[0], shape[1], self.grid.geo)
        return dataclasses.replace(self, file_type=file_type, unit=unit, grid=grid)


# physically possible ranges of the acquisition parameters: (lowest, highest, lowest allowed?)
_POSITIVE = (0.0, math.inf, False)
_RADAR_RANGES: dict[str, tuple[float, float, bool]] = {
    "wavelength": _POSITIVE, "alooks": (1, math.inf, True), "rlooks": (1, math.inf, True),
    "ncorrlooks": _POSITIVE, "range_pixel_size": _POSITIVE, "azimuth_pixel_size": _POSITIVE,
    "starting_range": _POSITIVE, "earth_radius": _POSITIVE, "height": _POSITIVE, "prf": _POSITIVE,
    "slant_range_distance": _POSITIVE, "incidence_angle": (0.0, 90.0, False), "heading": (-360.0, 360.0, True),
    "center_line_utc": (0.0, 86400.0, True),
}
_ATTR_OF = {name: key for key, (name, _conv) in _RADAR_KEYS.items()}


def check_physical(meta: Metadata, source: str = "") -> list[str]:
    """Refuse metadata that cannot describe a SAR acquisition; return warnings for implausible values.

    Called where metadata enters sbts (reader output, template UPPER_CASE keys): a negative
    WAVELENGTH or zero looks would otherwise scale every result silently.
    """
    where = f" ({source})" if source else ""
    r = meta.radar
    for name, (low, high, low_ok) in _RADAR_RANGES.items():
        value = getattr(r, name)
        if value is None:
            continue
        if not math.isfinite(value) or value < low or (value == low and not low_ok) or value > high:
            bound = f"more than {low:g}" if high == math.inf and not low_ok else (
                f"at least {low:g}" if high == math.inf else f"between {low:g} and {high:g}")
            raise InputError(f"{_ATTR_OF[name]} = {value!r}{where} is impossible: it must be {bound}; "
                             f"fix the metadata or set {_ATTR_OF[name]} in the template")
    warnings: list[str] = []
    if r.wavelength is not None and not 0.005 <= r.wavelength <= 1.0:
        warnings.append(f"WAVELENGTH = {r.wavelength!r} m{where} is not a radar wavelength (Sentinel-1: 0.0555 m); "
                        "is it in another unit?")
    if r.antenna_side is not None and r.antenna_side not in (-1, 1):
        raise InputError(f"ANTENNA_SIDE = {r.antenna_side}{where}: must be -1 (right looking) or 1 (left looking)")
    if r.orbit_direction is not None and r.orbit_direction.strip().upper() not in (
            "ASCENDING", "DESCENDING", "A", "D", "ASC", "DSC", "DESC"):
        warnings.append(f"ORBIT_DIRECTION = {r.orbit_direction[:40]!r}{where} is neither ASCENDING nor DESCENDING")
    g = meta.grid.geo
    if g is not None:
        for key, value in (("X_STEP", g.x_step), ("Y_STEP", g.y_step), ("X_FIRST", g.x_first), ("Y_FIRST", g.y_first)):
            if value is None:
                raise InputError(f"{key} is missing{where}: a geocoded grid needs X_FIRST, Y_FIRST, X_STEP and Y_STEP")
        if g.x_step == 0 or g.y_step == 0:
            raise InputError(f"X_STEP/Y_STEP = {g.x_step!r}/{g.y_step!r}{where}: a pixel size cannot be zero")
        if g.y_unit.lower().startswith("deg") and g.epsg in (None, 4326):
            # a warning, not an error: a projected grid written without Y_UNIT/EPSG reads as degrees
            south = g.y_first + meta.grid.length * g.y_step
            if not (-90.5 <= min(g.y_first, south) and max(g.y_first, south) <= 90.5):
                warnings.append(f"Y_FIRST = {g.y_first!r}, Y_STEP = {g.y_step!r}{where}: the grid's latitudes "
                                f"({min(g.y_first, south):.6g} to {max(g.y_first, south):.6g}) are not on Earth; "
                                "if the grid is projected, set Y_UNIT/X_UNIT = meters and EPSG")
    return warnings


def radar_field_names() -> list[str]:
    return [f.name for f in fields(RadarInfo)]
