"""``sbts lookup geo2radar`` / ``radar2geo``: convert a lookup table between its two kinds (MintPy lookup_geo2radar.py).

MintPy's two lookup tables (see :mod:`sbts.core.steps.geocode`):

- *geo-coded* (GAMMA ``UTM_TO_RDC``, ROI_PAC ``.trans``; ``geometryGeo.h5``): ``azimuthCoord`` /
  ``rangeCoord`` on a geographic grid, the radar row/column of each geo pixel;
- *radar-coded* (ISCE; ``geometryRadar.h5``): ``latitude`` / ``longitude`` on the radar grid.

``geo2radar`` writes the radar-coded table of a geo-coded one: for each radar pixel ``(i, j)`` the
geo position where ``(azimuthCoord, rangeCoord) = (i, j)`` (the lookup inverted by a KD-tree first
guess and Newton steps on its bilinear interpolant: exact for a locally affine lookup), giving
``latitude = Y_FIRST + (r + ½)·Y_STEP``, ``longitude = X_FIRST + (c + ½)·X_STEP`` at the fractional
geo pixel ``(r, c)``.  The other geometry layers (height, incidence/azimuth angles, slant range,
masks) are resampled there (bilinear, masks nearest).  Radar pixels outside the table are NaN.  The
radar grid is ``RADAR_LENGTH × RADAR_WIDTH`` when the table says, else ``floor(max coordinate) + 1``.
With the result, tools that need a radar-coded lookup (lat/lon subset of radar files, per-pixel
positions) work on GAMMA/ROI_PAC stacks too.

``radar2geo`` is the inverse: on a geographic grid (``--lalo-step``/``--bbox`` as ``sbts geocode``;
default: the radar pixel area over the table's extent) the fractional radar row/column of each geo
pixel become ``azimuthCoord``/``rangeCoord`` (NaN outside the radar image), the other layers
resampled likewise.  Both run block by block over the output grid; outputs are written under a
temporary name and renamed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError
from sbts.core.io.blocks import plan_blocks
from sbts.core.io.h5 import H5Writer, check_distinct
from sbts.core.io.progress import progress
from sbts.core.model.metadata import Metadata
from sbts.core.steps.geocode import (
    NEAREST_ONLY,
    GeocodeOptions,
    GeoToRdcRadar,
    LatLonToGeo,
    Lookup,
    sample,
)
from sbts.core.tools.windowing import derived

logger = logging.getLogger(__name__)

_COORDS_RDC = ("azimuthCoord", "rangeCoord")
_COORDS_LATLON = ("latitude", "longitude")


def _open(path: Path, kind: str) -> Lookup:
    lookup = Lookup.open(path)
    if lookup.kind != kind:
        want = ("azimuthCoord/rangeCoord on a geographic grid (geometryGeo.h5 of GAMMA/ROI_PAC)" if kind == "rdc"
                else "latitude/longitude on the radar grid (geometryRadar.h5)")
        raise InputError(f"{path}: this conversion needs a lookup table with {want}")
    return lookup


def _layers(lookup: Lookup, drop: tuple[str, ...]) -> list[str]:
    p = lookup.product
    shape = p.shape
    return [n for n in p.datasets if n not in drop and len(p.dataset_shape(n)) == 2
            and tuple(p.dataset_shape(n)) == shape]


def _write(lookup: Lookup, mapping, meta: Metadata, out: Path, coord_names: tuple[str, str], coords_of,
           drop: tuple[str, ...], method: str, max_memory: float) -> None:
    p = lookup.product
    names = _layers(lookup, drop)
    out_shape = mapping.out_grid.shape
    blocks = plan_blocks(out_shape, 8 * (6 + 3 * max(1, len(names))), max_memory)
    with H5Writer(out, derived(meta)) as w:
        for n in coord_names:
            w.create(n, shape=out_shape, dtype=np.float32)
        dtypes = {}
        for n in names:
            dtype = p._dtypes[n] if p._dtypes[n].kind in "biuf" else np.dtype(np.float32)
            dtypes[n] = dtype
            w.create(n, shape=out_shape, dtype=dtype)
        for block in progress(blocks, f"lookup → {out.name}", "block"):
            rows, cols = mapping.coords(block)
            a, b = coords_of(rows, cols)
            w.write(coord_names[0], a.astype(np.float32), block)
            w.write(coord_names[1], b.astype(np.float32), block)
            for n, dtype in dtypes.items():
                how = "nearest" if (n in NEAREST_ONLY or dtype.kind in "biu") else method

                def read(win, n=n):
                    return p.read(n, win)

                w.write(n, sample(read, (rows, cols), p.shape, how, np.nan, dtype), block)


def geo2radar(path: str | os.PathLike, output: str | os.PathLike | None = None, method: str = "linear",
              max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Radar-coded lookup (latitude/longitude on the radar grid) from a geo-coded one; returns the output
    (default ``geometryRadar.h5`` beside the input)."""
    path = Path(path)
    lookup = _open(path, "rdc")
    out = Path(output) if output is not None else path.with_name("geometryRadar.h5")
    check_distinct(out, path)
    opts = GeocodeOptions(max_memory=max_memory, method=method)
    mapping = GeoToRdcRadar(lookup, lookup.meta, opts)  # the table is its own data grid
    geo = lookup.meta.grid.geo

    def latlon(rows, cols):
        return geo.y_first + (rows + 0.5) * geo.y_step, geo.x_first + (cols + 0.5) * geo.x_step

    meta = lookup.meta
    extra = {k: v for k, v in meta.extra.items()
             if not k.startswith("SUBSET_") and k not in ("EPSG", "UTM_ZONE", "RADAR_LENGTH", "RADAR_WIDTH")}
    out_meta = meta.replace(grid=mapping.out_grid, extra=extra, file_type="geometry").with_reference(
        y=None, x=None).with_extra(LOOKUP_SOURCE=path.name)
    _write(lookup, mapping, out_meta, out, _COORDS_LATLON, latlon, _COORDS_RDC + _COORDS_LATLON, method, max_memory)
    logger.info("wrote %s: radar-coded lookup %d×%d from %s", out, *mapping.out_grid.shape, path.name)
    return out


def radar2geo(path: str | os.PathLike, output: str | os.PathLike | None = None, method: str = "linear",
              lalo_step: tuple[float, float] | None = None, bbox: tuple[float, float, float, float] | None = None,
              max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Geo-coded lookup (azimuthCoord/rangeCoord on a lat/lon grid) from a radar-coded one; returns the
    output (default ``geometryGeo.h5`` beside the input)."""
    path = Path(path)
    lookup = _open(path, "latlon")
    out = Path(output) if output is not None else path.with_name("geometryGeo.h5")
    check_distinct(out, path)
    opts = GeocodeOptions(lalo_step=lalo_step, bbox=bbox, method=method, max_memory=max_memory)
    mapping = LatLonToGeo(lookup, opts)

    def rdc(rows, cols):
        return rows, cols

    meta = lookup.meta
    extra = {k: v for k, v in meta.extra.items() if not k.startswith("SUBSET_")}
    length, width = meta.grid.shape
    out_meta = meta.replace(grid=mapping.out_grid, extra=extra, file_type="geometry").with_reference(
        y=None, x=None).with_extra(RADAR_LENGTH=length, RADAR_WIDTH=width, LOOKUP_SOURCE=path.name)
    _write(lookup, mapping, out_meta, out, _COORDS_RDC, rdc, _COORDS_RDC + _COORDS_LATLON, method, max_memory)
    logger.info("wrote %s: geo-coded lookup %d×%d from %s", out, *mapping.out_grid.shape, path.name)
    return out


__all__ = ["geo2radar", "radar2geo"]
