"""Shared by the radar-format fixture writers: the synthetic stack seen as a processor's product.

Nothing here is a format: these are the physics the writers need to make the files agree with
each other (an orbit whose heading is the stack's HEADING, lat/lon lookup rasters that place the
radar grid on the ground, dates and pairs as names).

Radar grid
    ``make_synthetic_stack`` draws its scene on a map grid.  A radar-coded writer takes that grid
    as the radar grid unchanged (row = azimuth line, column = range sample), so every truth array
    still applies pixel for pixel, and places it on the ground with lookup rasters: row ``i`` moves
    ``AZ_GROUND`` metres along the flight direction (HEADING, clockwise from north), column ``j``
    ``RG_GROUND`` metres across it to the right (right-looking), both about the scene centre.
    Ascending images therefore come out south-up, as real ascending radar images do.

Orbit
    A circular arc through one state at the reference date's mid-scene time: the platform at
    ``HEIGHT`` above the WGS84 ellipsoid, its nadir offset from the scene centre to the left of the
    track by the ground distance the incidence angle implies, its Earth-fixed velocity horizontal
    with exactly the stack's HEADING.  What ISCE derives from an orbit (ENU heading, altitude,
    along-heading radius of curvature, speed) therefore has a known answer: :func:`orbit_truth`.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

WGS84_A = 6_378_137.0
WGS84_E2 = 6.694379990141316e-3
S1_RANGE_PIXEL = 2.329562  # m, single-look slant-range spacing of Sentinel-1 IW
S1_AZIMUTH_TIME = 2.055556e-3  # s, Sentinel-1 IW azimuth time interval
S1_PRF = 486.486
SPEED = 7_600.0  # m/s, Earth-fixed speed of the platform (circular arc)
SENSING_HOUR = {"ASCENDING": (0, 36, 0), "DESCENDING": (12, 36, 0)}  # UTC, near the synthetic CENTER_LINE_UTC


# ----------------------------------------------------------------------------- small geodesy
def llh_to_xyz(lat, lon, h):
    lat, lon = math.radians(lat), math.radians(lon)
    n = WGS84_A / math.sqrt(1 - WGS84_E2 * math.sin(lat) ** 2)
    return np.array([(n + h) * math.cos(lat) * math.cos(lon), (n + h) * math.cos(lat) * math.sin(lon),
                     (n * (1 - WGS84_E2) + h) * math.sin(lat)])


def enu_basis(lat, lon):
    """Unit east, north, up vectors (Earth-fixed) at a geodetic lat/lon."""
    la, lo = math.radians(lat), math.radians(lon)
    e = np.array([-math.sin(lo), math.cos(lo), 0.0])
    n = np.array([-math.sin(la) * math.cos(lo), -math.sin(la) * math.sin(lo), math.cos(la)])
    u = np.array([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)])
    return e, n, u


def radius_along_heading(lat, heading):
    """Radius of curvature of the ellipsoid at ``lat`` along azimuth ``heading`` (Euler's formula)."""
    s2 = math.sin(math.radians(lat)) ** 2
    m = WGS84_A * (1 - WGS84_E2) / (1 - WGS84_E2 * s2) ** 1.5  # meridian
    n = WGS84_A / math.sqrt(1 - WGS84_E2 * s2)  # prime vertical
    c, s = math.cos(math.radians(heading)), math.sin(math.radians(heading))
    return m * n / (n * c * c + m * s * s)


def destination(lat, lon, azimuth, distance, radius=6_371_000.0):
    """Point ``distance`` metres from (lat, lon) along ``azimuth`` on a sphere (deg)."""
    la, lo, az, d = math.radians(lat), math.radians(lon), math.radians(azimuth), distance / radius
    la2 = math.asin(math.sin(la) * math.cos(d) + math.cos(la) * math.sin(d) * math.cos(az))
    lo2 = lo + math.atan2(math.sin(az) * math.sin(d) * math.cos(la), math.cos(d) - math.sin(la) * math.sin(la2))
    return math.degrees(la2), math.degrees(lo2)


# ----------------------------------------------------------------------------- the stack
def scene_centre(synth) -> tuple[float, float]:
    return float(synth.lat_axis.mean()), float(synth.lon_axis.mean())


def ground_spacing(synth) -> tuple[float, float]:
    """(azimuth, range) ground spacing of the radar grid: the synthetic grid's N-S and E-W metres."""
    lat0, _ = scene_centre(synth)
    dy = abs(float(synth.attrs["Y_STEP"])) * math.pi / 180 * 6_371_000.0
    dx = abs(float(synth.attrs["X_STEP"])) * math.pi / 180 * 6_371_000.0 * math.cos(math.radians(lat0))
    return dy, dx


def radar_looks(synth) -> tuple[int, int]:
    """(ALOOKS, RLOOKS) that make the multilooked radar pixel as large as the synthetic pixel."""
    az_ground, _ = ground_spacing(synth)
    slant_step = float(np.median(np.abs(np.diff(synth.slant_range_distance, axis=1))))
    return max(1, round(az_ground / (SPEED * S1_AZIMUTH_TIME))), max(1, round(slant_step / S1_RANGE_PIXEL))


def lookup_latlon(synth) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude (float64) of every radar pixel: the grid rotated by the heading."""
    length, width = synth.shape
    lat0, lon0 = scene_centre(synth)
    heading = float(synth.attrs["HEADING"])
    az_step, rg_step = ground_spacing(synth)
    ii, jj = np.mgrid[0:length, 0:width].astype(np.float64)
    s = (ii - (length - 1) / 2) * az_step  # along track
    g = (jj - (width - 1) / 2) * rg_step  # across track, to the right
    h, r = math.radians(heading), math.radians(heading + 90.0)
    east = s * math.sin(h) + g * math.sin(r)
    north = s * math.cos(h) + g * math.cos(r)
    m_per_deg = math.pi / 180 * 6_371_000.0
    lat = lat0 + north / m_per_deg
    lon = lon0 + east / (m_per_deg * np.cos(np.radians(lat)))
    return lat, lon


def sensing_mid(synth, date: dt.date) -> dt.datetime:
    hh, mm, ss = SENSING_HOUR[synth.attrs["ORBIT_DIRECTION"]]
    return dt.datetime(date.year, date.month, date.day, hh, mm, ss) + dt.timedelta(seconds=3.7)


def orbit_truth(synth) -> dict:
    """What ISCE derives from the orbit at mid-scene: HEADING, HEIGHT, EARTH_RADIUS, speed, nadir."""
    lat0, lon0 = scene_centre(synth)
    heading = float(synth.attrs["HEADING"])
    height = float(synth.attrs["HEIGHT"])
    inc = math.radians(float(np.mean(synth.incidence_angle)))
    re_ = 6_371_000.0
    look = math.asin(re_ * math.sin(inc) / (re_ + height))
    ground = re_ * (inc - look)
    lat_s, lon_s = destination(lat0, lon0, heading - 90.0, ground)  # nadir: left of the scene
    return {"HEADING": heading, "HEIGHT": height, "EARTH_RADIUS": radius_along_heading(lat_s, heading),
            "speed": SPEED, "lat": lat_s, "lon": lon_s}


def orbit_state_vectors(synth, mid: dt.datetime, count: int = 11, step: float = 10.0):
    """(time, position, velocity) Earth-fixed state vectors around ``mid`` on a circular arc."""
    truth = orbit_truth(synth)
    p0 = llh_to_xyz(truth["lat"], truth["lon"], truth["HEIGHT"])
    e, n, _u = enu_basis(truth["lat"], truth["lon"])
    h = math.radians(truth["HEADING"])
    v0 = SPEED * (math.sin(h) * e + math.cos(h) * n)
    axis = np.cross(p0, v0)
    axis /= np.linalg.norm(axis)
    omega = SPEED / np.linalg.norm(p0)
    t0 = mid.replace(microsecond=0) - dt.timedelta(seconds=step * (count // 2) + 3.7)
    out = []
    for k in range(count):
        t = t0 + dt.timedelta(seconds=step * k)
        ang = omega * (t - mid).total_seconds()
        # Rodrigues rotation of p0 about the orbit normal
        p = p0 * math.cos(ang) + np.cross(axis, p0) * math.sin(ang) + axis * np.dot(axis, p0) * (1 - math.cos(ang))
        v = omega * np.cross(axis, p)
        out.append((t, p, v))
    return out


def pair_names(synth) -> list[tuple[str, str]]:
    d = synth.date_list
    return [(d[i], d[j]) for i, j in zip(synth.date1_index, synth.date2_index)]


def reference_index(synth) -> int:
    """The stack processor's reference date: the middle acquisition (not the first, as in real stacks)."""
    return synth.num_date // 2
