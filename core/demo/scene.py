"""The synthetic scene: pixel grid, terrain (the DEM), radar viewing geometry and land cover.

Scene (geocoded, WGS84, ``EPSG=4326``)
--------------------------------------
A 3-arcsec grid (≈ 87 m E-W × 93 m N-S) centred near Mexico City: a flat sedimentary basin
(≈ 250 m; the absolute level is lowered so the DEM spans 0–2000 m) with a ridge in the south-west
(up to ≈ 1800 m; relief is scaled down for scenes smaller than 10 km so slopes stay plausible), a
few hills, one small steep volcanic plug (casts a few shadow pixels) and mild fractal roughness
that grows with relief.  The lake (:mod:`sbts.core.demo.water_shadow`) is cut into it.  The
geometry is radar-like although geocoded: ``latitude``/``longitude`` are ``None``; the grid is
given by ``X_FIRST/Y_FIRST/X_STEP/Y_STEP`` (pixel-corner convention, ``Y_STEP < 0``).

Acquisition geometry (spherical Earth, Sentinel-1 IW, right-looking)
--------------------------------------------------------------------
Platform altitude ``HEIGHT`` = 693 km, local ``EARTH_RADIUS`` of WGS84 at the scene latitude.  The
ground look direction is ``HEADING + 90°`` (clockwise from north); each pixel's ground-range
offset along it sets the Earth angle α, and with the pixel height h::

    r = sqrt((Re+h)² + (Re+H)² − 2(Re+h)(Re+H)cos α),   sin θ = (Re+H) sin α / r

giving ``slant_range_distance`` r (≈ 850 km) and ``incidence_angle`` θ (≈ 37°, ≈ 1° across the
scene; S1 IW covers 30–46°).  ``HEADING`` ≈ −12.7° (ascending) or −167.3° (descending), clockwise
from north.  ``azimuth_angle`` follows MintPy/ISCE: azimuth of the ground→satellite LOS vector
measured from north, anti-clockwise positive, ``= 90° − HEADING`` wrapped to (−180, 180]:
≈ **+102.7° for ascending** (the satellite lies WSW of the pixel) and ≈ −102.7° for descending.
Layover/foreshortening are not modelled beyond a coherence loss on steep slopes
(:mod:`sbts.core.demo.decorrelation`).

Land cover
----------
Vegetation patches (a power-law field above its 72 % quantile) and forest above ≈ 900 m; the
built-up basin is the rest.  They set the coherence model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sbts.core.demo.fields import S1_ALTITUDE, WGS84_A, WGS84_B, gauss, power_law_screen
from sbts.core.demo.specs import SceneSpec

BASIN_FLOOR = 250.0  # m, height of the flat basin


@dataclass(frozen=True, eq=False)
class PixelGrid:
    """The geocoded grid and each pixel's position in metres from the scene centre."""

    length: int
    width: int
    x_first: float  # deg, corner of the first pixel
    y_first: float
    x_step: float  # deg
    y_step: float  # deg, < 0
    earth_radius: float  # m, WGS84 geocentric radius at the scene latitude
    dy_m: float  # m, pixel size N-S
    dx_m: float  # m, pixel size E-W
    yy: np.ndarray  # (L, W) float64 row index
    xx: np.ndarray  # (L, W) float64 column index
    ym: np.ndarray  # (L, W) m from the centre, + southward (row direction)
    xm: np.ndarray  # (L, W) m from the centre, + eastward
    ext: float  # m, the shorter side of the scene

    @property
    def shape(self) -> tuple[int, int]:
        return (self.length, self.width)


@dataclass(frozen=True, eq=False)
class RadarGeometry:
    """What the radar sees of the terrain: ``geometryGeo.h5``'s layers, slope and heading."""

    heading: float  # deg, clockwise from north
    slant_range: np.ndarray  # (L, W) float64 m
    incidence: np.ndarray  # (L, W) float64 deg
    azimuth: np.ndarray  # (L, W) float64 deg (MintPy's azimuthAngle)
    slope_deg: np.ndarray  # (L, W) float64 terrain slope


@dataclass(frozen=True, eq=False)
class LandCover:
    """Vegetation fraction (0 built-up … 1 vegetated) and basin weight (1 on the basin floor)."""

    vegetation: np.ndarray  # (L, W) float64
    basin: np.ndarray  # (L, W) float64


def local_earth_radius(lat_deg: float) -> float:
    """Geocentric radius of the WGS84 ellipsoid at latitude (m)."""
    p = np.deg2rad(lat_deg)
    a, b = WGS84_A, WGS84_B
    num = (a * a * np.cos(p)) ** 2 + (b * b * np.sin(p)) ** 2
    den = (a * np.cos(p)) ** 2 + (b * np.sin(p)) ** 2
    return float(np.sqrt(num / den))


def pixel_grid(spec: SceneSpec) -> PixelGrid:
    """The grid of ``spec``: corner coordinates, pixel sizes and pixel positions in metres."""
    length, width = spec.shape
    lat_c, lon_c = spec.center_lat_lon
    y_step, x_step = -spec.pixel_size_deg, spec.pixel_size_deg
    y_first = lat_c - 0.5 * length * y_step
    x_first = lon_c - 0.5 * width * x_step
    earth_radius = local_earth_radius(lat_c)
    dy_m = np.deg2rad(spec.pixel_size_deg) * earth_radius
    dx_m = dy_m * np.cos(np.deg2rad(lat_c))
    yy, xx = np.mgrid[:length, :width].astype(np.float64)
    ym = (yy - (length - 1) / 2.0) * dy_m
    xm = (xx - (width - 1) / 2.0) * dx_m
    ext = min(length * dy_m, width * dx_m)
    return PixelGrid(length, width, x_first, y_first, x_step, y_step, earth_radius, dy_m, dx_m,
                     yy, xx, ym, xm, ext)


def terrain(grid: PixelGrid, rng: np.random.Generator) -> np.ndarray:
    """(L, W) float64 true heights (m) before the lake is cut in: basin, ridge, hills, plug, roughness."""
    length, width, dy_m, dx_m, ym, xm, ext = (grid.length, grid.width, grid.dy_m, grid.dx_m, grid.ym,
                                              grid.xm, grid.ext)
    h = np.full((length, width), BASIN_FLOOR)
    # ridge along the SW: line through (u, v) = (0, 0.45) and (0.5, 1.0) of the scene
    p0 = np.array([-(width - 1) / 2.0 * dx_m, (0.45 - 0.5) * (length - 1) * dy_m])
    p1 = np.array([0.0, 0.5 * (length - 1) * dy_m])
    dvec = (p1 - p0) / np.linalg.norm(p1 - p0)
    dist = (xm - p0[0]) * dvec[1] - (ym - p0[1]) * dvec[0]
    along = (xm - p0[0]) * dvec[0] + (ym - p0[1]) * dvec[1]
    relief_scale = min(1.0, ext / 10_000.0)  # keep slopes plausible on small test scenes
    ridge_amp = 1350.0 * relief_scale * (1.0 + 0.15 * np.sin(2 * np.pi * along / (0.6 * ext)
                                                             + rng.uniform(0, 2 * np.pi)))
    h += ridge_amp * np.exp(-0.5 * (dist / (0.11 * ext)) ** 2)
    # a few rounded hills (away from the basin centre)
    for cy, cx in ((0.15, 0.2), (0.8, 0.85), (0.1, 0.5)):
        oy = (cy + rng.uniform(-0.05, 0.05) - 0.5) * (length - 1) * dy_m
        ox = (cx + rng.uniform(-0.05, 0.05) - 0.5) * (width - 1) * dx_m
        s = rng.uniform(0.04, 0.07) * ext
        h += rng.uniform(200.0, 450.0) * relief_scale * gauss(ym - oy, xm - ox, s, s)
    # a small steep volcanic plug: slopes > 90° − θ cast radar shadow
    cone_y = int(round((0.32 + rng.uniform(-0.03, 0.03)) * (length - 1)))
    cone_x = int(round((0.22 + rng.uniform(-0.03, 0.03)) * (width - 1)))
    h += 450.0 * gauss(ym - ym[cone_y, cone_x], xm - xm[cone_y, cone_x], 1.3 * dy_m, 1.3 * dx_m)
    relief = np.clip((h - BASIN_FLOOR) / 1000.0, 0.0, 1.0)
    h += (8.0 + 25.0 * relief) * power_law_screen(rng, 1, (length, width), (dy_m, dx_m),
                                                  exponent=3.0, outer_scale=5.0 * ext)[0]
    return h


def with_lake(heights: np.ndarray, water: np.ndarray) -> np.ndarray:
    """The true heights: the lake surface 2 m below the basin floor, everything within 0–2000 m."""
    h = heights.copy()
    h[water] = BASIN_FLOOR - 2.0
    return np.clip(h, 0.0, 2000.0)


def heading_deg(spec: SceneSpec) -> float:
    """Sentinel-1's heading (deg clockwise from north) for the orbit direction."""
    return -12.7 if spec.orbit_direction == "ASCENDING" else -167.3


def radar_geometry(grid: PixelGrid, spec: SceneSpec, heights: np.ndarray) -> RadarGeometry:
    """Slant range, incidence and azimuth angles of every pixel on a spherical Earth; slope."""
    heading = heading_deg(spec)
    earth_radius = grid.earth_radius
    look_az = np.deg2rad(heading + 90.0)  # ground look direction, clockwise from north
    ground_range = grid.xm * np.sin(look_az) + (-grid.ym) * np.cos(look_az)  # north = −ym
    rs = earth_radius + S1_ALTITUDE
    th_c = np.deg2rad(spec.center_incidence)
    alpha_c = th_c - np.arcsin(earth_radius * np.sin(th_c) / rs)
    alpha = alpha_c + ground_range / earth_radius
    rp = earth_radius + heights
    slant = np.sqrt(rp ** 2 + rs ** 2 - 2.0 * rp * rs * np.cos(alpha))
    inc = np.rad2deg(np.arcsin(np.clip(rs * np.sin(alpha) / slant, -1.0, 1.0)))
    az_angle = (90.0 - heading + 180.0) % 360.0 - 180.0
    azimuth = np.full(grid.shape, az_angle)
    gy, gx = np.gradient(heights, grid.dy_m, grid.dx_m)
    slope_deg = np.rad2deg(np.arctan(np.hypot(gy, gx)))
    return RadarGeometry(heading, slant, inc, azimuth, slope_deg)


def land_cover(grid: PixelGrid, heights: np.ndarray, water: np.ndarray, rng: np.random.Generator) -> LandCover:
    """Vegetation patches and high forest (none on the lake); the basin floor's weight."""
    patches = power_law_screen(rng, 1, grid.shape, (grid.dy_m, grid.dx_m), exponent=3.5, outer_scale=grid.ext)[0]
    veg = np.clip((patches - np.quantile(patches, 0.72)) / 0.6, 0.0, 1.0)
    veg = np.maximum(veg, np.clip((heights - 800.0) / 400.0, 0.0, 1.0))
    veg[water] = 0.0
    basin = np.clip(1.0 - (heights - BASIN_FLOOR) / 400.0, 0.0, 1.0)
    return LandCover(veg, basin)
