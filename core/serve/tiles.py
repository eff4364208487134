"""Map tiles: which pixels a 256 × 256 tile shows, and its colours as a PNG.

Two placements (``GridInfo.mode``):

* ``pixel`` — the image itself (Leaflet's ``CRS.Simple``): at zoom ``z`` one image pixel is ``2**z``
  screen pixels; map coordinates are ``lng = column``, ``lat = −row`` (pixel edges on integers);
* ``mercator`` — a latitude/longitude grid on Web-Mercator (EPSG:3857) XYZ tiles, so an optional
  basemap lines up.  A tile row has one latitude and a tile column one longitude, so the source
  rows and columns are found separately (nearest pixel, no resampling of values).

Colours: ``index = floor((v − vmin) / (vmax − vmin) · 256)`` clipped to 0..255 into the 256-entry
table of a matplotlib colour map (what ``imshow`` does with its default 256-colour maps); NaN and
masked pixels are transparent.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np

from sbts.core.errors import InputError

TILE = 256
MAX_ZOOM = 24


def tile_indices(grid, z: int, tx: int, ty: int, size: int = TILE) -> tuple[np.ndarray, np.ndarray]:
    """Source (rows, cols) of a tile's pixel rows and columns; −1 where the tile lies outside the grid."""
    if not -MAX_ZOOM <= z <= MAX_ZOOM:
        raise InputError(f"zoom {z} out of range")
    centre = np.arange(size, dtype=np.float64) + 0.5
    if grid.mode == "pixel":
        scale = 2.0 ** z
        cols = np.floor((tx * size + centre) / scale)
        rows = np.floor((ty * size + centre) / scale)
    else:
        g = grid.geo
        n = size * 2.0 ** z
        lon = (tx * size + centre) / n * 360.0 - 180.0
        lat = np.degrees(np.arctan(np.sinh(np.pi * (1.0 - 2.0 * (ty * size + centre) / n))))
        cols = np.floor((lon - g.x_first) / g.x_step)
        rows = np.floor((lat - g.y_first) / g.y_step)
    rows = np.where((rows >= 0) & (rows < grid.length), rows, -1).astype(np.int64)
    cols = np.where((cols >= 0) & (cols < grid.width), cols, -1).astype(np.int64)
    return rows, cols


def lnglat_bounds(grid) -> list[list[float]]:
    """[[south, west], [north, east]] of a grid in the page's map coordinates (see the module docstring)."""
    if grid.mode == "pixel":
        return [[-float(grid.length), 0.0], [0.0, float(grid.width)]]
    g = grid.geo
    lats = sorted((g.y_first, g.y_first + grid.length * g.y_step))
    lons = sorted((g.x_first, g.x_first + grid.width * g.x_step))
    return [[lats[0], lons[0]], [lats[1], lons[1]]]


@lru_cache(maxsize=64)
def colour_table(name: str) -> np.ndarray:
    """(256, 4) uint8 RGBA of a matplotlib colour map."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise InputError(f"unknown colour map {name!r} (any matplotlib name: RdBu_r, viridis, jet ...)") from None
    rgba = cmap(np.linspace(0.0, 1.0, 256))
    return np.round(rgba * 255).astype(np.uint8)


def colour_index(values: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
    """Index 0..255 into the colour table; −1 for NaN."""
    span = vmax - vmin
    if not (math.isfinite(span) and span > 0):
        raise InputError(f"colour limits {vmin}..{vmax}: the maximum must be larger than the minimum")
    with np.errstate(invalid="ignore"):
        idx = np.floor((values - vmin) / span * 256.0)
    idx = np.clip(np.nan_to_num(idx, nan=-1.0), -1, 255).astype(np.int16)
    idx[np.isnan(values)] = -1
    idx[(idx < 0) & ~np.isnan(values)] = 0
    return idx


def colourise(values: np.ndarray, vmin: float, vmax: float, cmap: str) -> np.ndarray:
    """RGBA (h, w, 4) uint8; NaN transparent."""
    idx = colour_index(values, vmin, vmax)
    table = colour_table(cmap)
    out = table[np.maximum(idx, 0)]
    out[idx < 0] = 0
    return out


def encode_png(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


@lru_cache(maxsize=1)
def empty_png() -> bytes:
    return encode_png(np.zeros((TILE, TILE, 4), np.uint8))


__all__ = ["tile_indices", "lnglat_bounds", "colour_table", "colour_index", "colourise", "encode_png", "empty_png",
           "TILE"]
