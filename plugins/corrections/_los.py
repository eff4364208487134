"""Line-of-sight geometry shared by the corrections that project a 3-D quantity onto the LOS (SET, TEC).

Conventions (MintPy's, ``shared/reference/mintpy.md``): ``incidenceAngle`` θ from the vertical at the
ground; ``azimuthAngle`` α of the LOS vector ground→satellite, from north, anticlockwise positive; so
the ground→satellite unit vector is (east, north, up) = (−sin θ sin α, sin θ cos α, cos θ), and a
displacement d projects to d·u, positive toward the satellite (sbts/MintPy displacement sign).

Without an ``azimuthAngle`` layer the azimuth comes from ``HEADING`` (clockwise from north) and
``ANTENNA_SIDE`` (−1 right-looking): α = −HEADING − 90°·side, the LOS being perpendicular to the track
on the looking side (exact for zero-Doppler geometry, to the heading's accuracy).
"""

from __future__ import annotations

import numpy as np

from sbts.core.api import Block, InputError
from sbts.plugins.corrections._tropo_common import GeometryAccess


def azimuth_from_heading(heading: float, antenna_side: int | None) -> float:
    """MintPy azimuthAngle (deg, LOS ground→satellite from north, anticlockwise) from HEADING."""
    side = -1 if antenna_side is None or antenna_side <= 0 else 1
    az = -float(heading) - 90.0 * side
    return float((az + 180.0) % 360.0 - 180.0)


def los_unit_vector(incidence: np.ndarray, azimuth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(east, north, up) of the ground→satellite unit vector; angles in degrees."""
    inc = np.deg2rad(np.asarray(incidence, np.float64))
    az = np.deg2rad(np.asarray(azimuth, np.float64))
    return -np.sin(inc) * np.sin(az), np.sin(inc) * np.cos(az), np.cos(inc)


def azimuth_angle(geom: GeometryAccess, block: Block | None, purpose: str) -> np.ndarray:
    """The LOS azimuth (deg) over ``block``: the ``azimuthAngle`` layer, else from HEADING/ANTENNA_SIDE."""
    shape = block.shape if block is not None else geom.ts.shape
    if geom.has_layer("azimuthAngle"):
        return np.asarray(geom.geometry.read("azimuthAngle", block), np.float64)
    radar = geom.ts.metadata.radar
    if radar.heading is None and geom.geometry is not None:
        radar = geom.geometry.metadata.radar
    if radar.heading is None:
        where = (f"the geometry file {geom.path} has no 'azimuthAngle' layer" if geom.path is not None
                 else "no geometry file was found (give one with -g)")
        raise InputError(f"'azimuthAngle' is needed for {purpose} but {where} and {geom.ts.path} has no HEADING "
                         "attribute to derive it from (set HEADING = ... in the template)")
    return np.full(shape, azimuth_from_heading(radar.heading, radar.antenna_side), np.float64)


def scene_bounds(geom: GeometryAccess, blocks, purpose: str) -> tuple[float, float, float, float]:
    """(south, north, west, east) of the pixels' latitude/longitude, read block by block."""
    s, n, w, e = np.inf, -np.inf, np.inf, -np.inf
    for block in blocks:
        lat, lon = geom.lat_lon(block, purpose)
        ok = np.isfinite(lat) & np.isfinite(lon) & ((lat != 0) | (lon != 0))
        if ok.any():
            s, n = min(s, float(lat[ok].min())), max(n, float(lat[ok].max()))
            w, e = min(w, float(lon[ok].min())), max(e, float(lon[ok].max()))
    if not np.isfinite([s, n, w, e]).all():
        raise InputError(f"{geom.path or geom.ts.path}: no pixel has a valid latitude/longitude for {purpose}")
    return s, n, w, e


def bilinear(grid: np.ndarray, y0: float, dy: float, x0: float, dx: float, y: np.ndarray,
             x: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``grid[..., ny, nx]`` (node (i, j) at y0 + i·dy, x0 + j·dx) at (y, x).

    Points outside the grid take the value of the nearest edge (the callers' grids cover the scene).
    Returns ``grid.shape[:-2] + y.shape``.
    """
    ny, nx = grid.shape[-2:]
    fy = np.clip((np.asarray(y, np.float64) - y0) / dy, 0.0, ny - 1.0)
    fx = np.clip((np.asarray(x, np.float64) - x0) / dx, 0.0, nx - 1.0)
    i0 = np.minimum(np.floor(fy).astype(np.intp), max(ny - 2, 0))
    j0 = np.minimum(np.floor(fx).astype(np.intp), max(nx - 2, 0))
    i1 = np.minimum(i0 + 1, ny - 1)
    j1 = np.minimum(j0 + 1, nx - 1)
    wy = fy - i0
    wx = fx - j0
    return ((1 - wy) * (1 - wx) * grid[..., i0, j0] + (1 - wy) * wx * grid[..., i0, j1]
            + wy * (1 - wx) * grid[..., i1, j0] + wy * wx * grid[..., i1, j1])
