"""Platform geometry from orbit state vectors: what ISCE's orbit code gives MintPy, from the formulas.

MintPy's ``prep_isce`` asks ISCE for four numbers at the reference scene's mid time: the heading of
the Earth-fixed velocity in the local east-north-up frame (``HEADING``, degrees clockwise from
north), the platform's height above the WGS84 ellipsoid (``HEIGHT``), the ellipsoid's radius of
curvature along that heading below the platform (``EARTH_RADIUS``, Euler's formula
1/R = cos²h/M + sin²h/N) and the speed (× azimuth time interval = azimuth pixel size).  Here the
state vectors are interpolated with a cubic Hermite polynomial (positions and velocities of the two
neighbouring vectors), which is exact to well below a millimetre for the 10 s spacing of precise orbits.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sbts.core.api import InputError

WGS84_A = 6_378_137.0
WGS84_E2 = 6.69437999014e-3


@dataclass(frozen=True)
class StateVector:
    time: _dt.datetime
    position: np.ndarray  # m, Earth-fixed
    velocity: np.ndarray  # m/s


@dataclass(frozen=True)
class PlatformGeometry:
    heading: float  # deg, clockwise from north, in (-180, 180]
    height: float  # m above the ellipsoid
    earth_radius: float  # m, radius of curvature along the heading below the platform
    speed: float  # m/s
    lat: float
    lon: float


def xyz_to_llh(xyz: Sequence[float]) -> tuple[float, float, float]:
    """Geodetic latitude, longitude (deg) and height (m) on WGS84 (Bowring's iteration)."""
    x, y, z = (float(v) for v in xyz)
    lon = math.atan2(y, x)
    p = math.hypot(x, y)
    lat = math.atan2(z, p * (1 - WGS84_E2))
    for _ in range(8):
        n = WGS84_A / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
        h = p / math.cos(lat) - n
        lat = math.atan2(z, p * (1 - WGS84_E2 * n / (n + h)))
    n = WGS84_A / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
    h = p / math.cos(lat) - n
    return math.degrees(lat), math.degrees(lon), h


def radius_along_heading(lat: float, heading: float) -> float:
    s2 = math.sin(math.radians(lat)) ** 2
    m = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5
    n = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)
    c, s = math.cos(math.radians(heading)), math.sin(math.radians(heading))
    return m * n / (n * c * c + m * s * s)


def interpolate(vectors: Sequence[StateVector], time: _dt.datetime) -> StateVector:
    """Cubic Hermite interpolation between the two state vectors around ``time``."""
    vs = sorted(vectors, key=lambda v: v.time)
    if len(vs) < 2 or not vs[0].time <= time <= vs[-1].time:
        span = f"{vs[0].time} .. {vs[-1].time}" if vs else "none"
        raise InputError(f"the orbit state vectors ({span}) do not cover the scene time {time}")
    k = max(i for i in range(len(vs) - 1) if vs[i].time <= time)
    a, b = vs[k], vs[k + 1]
    dt = (b.time - a.time).total_seconds()
    s = (time - a.time).total_seconds() / dt
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    pos = h00 * a.position + h10 * dt * a.velocity + h01 * b.position + h11 * dt * b.velocity
    d00, d10, d01, d11 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1, -6 * s**2 + 6 * s, 3 * s**2 - 2 * s
    vel = (d00 * a.position + d10 * dt * a.velocity + d01 * b.position + d11 * dt * b.velocity) / dt
    return StateVector(time, pos, vel)


def platform_geometry(vectors: Sequence[StateVector], time: _dt.datetime) -> PlatformGeometry:
    sv = interpolate(vectors, time)
    lat, lon, h = xyz_to_llh(sv.position)
    la, lo = math.radians(lat), math.radians(lon)
    east = np.array([-math.sin(lo), math.cos(lo), 0.0])
    north = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
    heading = math.degrees(math.atan2(float(sv.velocity @ east), float(sv.velocity @ north)))
    return PlatformGeometry(heading, h, radius_along_heading(lat, heading), float(np.linalg.norm(sv.velocity)),
                            lat, lon)


def parse_time(text: str) -> _dt.datetime | None:
    """``2019-01-01 10:00:10.123456`` / ``2019-01-01T10:00:10`` / ``02-SEP-2019 07:57:47.909601``."""
    text = text.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
                "%d-%b-%Y %H:%M:%S.%f", "%d-%b-%Y %H:%M:%S"):
        try:
            return _dt.datetime.strptime(text.title() if "-" in text[:6] and fmt.startswith("%d") else text, fmt)
        except ValueError:
            continue
    return None


def parse_vector(text: str) -> np.ndarray | None:
    """``[x, y, z]`` (ISCE dumps) as a float array, None when it is not three numbers."""
    try:
        v = np.array([float(t) for t in text.strip().strip("[]()").replace(",", " ").split()])
    except ValueError:
        return None
    return v if v.size == 3 and np.isfinite(v).all() else None
