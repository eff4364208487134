"""``sbts horzvert``: LOS maps from several looks (ascending + descending) → horizontal and vertical.

Model (unit vector derived in :mod:`sbts.core.tools.common`): each look i sees
``d_los,i = d_e·(−sinθ_i sinα_i) + d_n·(sinθ_i cosα_i) + d_u·cosθ_i``.  Two looks cannot separate
three components; as MintPy's asc_desc2horz_vert, the horizontal motion is assumed to lie along one
direction with compass bearing β (clockwise from north; default 90° = east, i.e. MintPy's
``horz_az_angle = −β``).  With ``d_e = d_h·sinβ``, ``d_n = d_h·cosβ``::

    d_los,i = d_h · sinθ_i·cos(α_i + β) + d_u · cosθ_i  =  a_i·d_h + b_i·d_u

Per pixel this is a least-squares problem with two unknowns; its 2×2 normal equations are solved in
closed form for all pixels at once (exact for two looks, least squares for more).  Outputs are
MintPy's ``hz.h5`` and ``up.h5`` on the overlap of the inputs, on the first input's grid (the
others must have the same pixel size; they are placed by the nearest pixel).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import H5Writer, check_distinct
from sbts.core.io.products import Product, TimeSeries
from sbts.core.model.metadata import RadarInfo
from sbts.core.tools.common import LosGeometry, crop_metadata, map_reader, pixel_offset, require_geo

logger = logging.getLogger(__name__)

HORZ_FILE, VERT_FILE = "hz.h5", "up.h5"


def solve_horz_vert(los: Sequence[np.ndarray], incidence: Sequence[np.ndarray], azimuth: Sequence[np.ndarray],
                    horz_bearing: float = 90.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel least squares for (horizontal along ``horz_bearing``, up); NaN where undetermined.

    ``los``/angles: one array (or scalar angle) per look, broadcastable to each other; degrees.
    """
    if len(los) < 2:
        raise InputError("at least two looks (e.g. ascending and descending) are needed")
    beta = np.deg2rad(horz_bearing)
    saa = sab = sbb = sal = sbl = 0.0
    valid = True
    for d, inc, az in zip(los, incidence, azimuth):
        d = np.asarray(d, np.float64)
        theta = np.deg2rad(np.asarray(inc, np.float64))
        a = np.sin(theta) * np.cos(np.deg2rad(np.asarray(az, np.float64)) + beta)
        b = np.cos(theta)
        ok = np.isfinite(d) & np.isfinite(a) & np.isfinite(b)
        valid = valid & ok
        d = np.where(ok, d, 0.0)
        saa = saa + a * a
        sab = sab + a * b
        sbb = sbb + b * b
        sal = sal + a * d
        sbl = sbl + b * d
    det = saa * sbb - sab * sab
    # a singular system means the looks share one direction: horizontal and up are not separable
    good = valid & (np.abs(det) > 1e-6 * np.maximum(saa * sbb, 1e-30))
    with np.errstate(invalid="ignore", divide="ignore"):
        horz = np.where(good, (sbb * sal - sab * sbl) / det, np.nan)
        up = np.where(good, (saa * sbl - sab * sal) / det, np.nan)
    return horz.astype(np.float32), up.astype(np.float32)


def asc_desc_to_horz_vert(files: Sequence[str | os.PathLike],
                          geometries: Sequence[str | os.PathLike | None] | None = None,
                          dataset: str | None = None, horz_bearing: float = 90.0,
                          outdir: str | os.PathLike | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB) -> tuple[Path, Path]:
    """Write ``hz.h5`` and ``up.h5`` from two or more geocoded LOS files; returns their paths.

    ``geometries``: one geometry file per input, on that input's grid; a None entry (or no list) takes
    the angles from that file's attributes.
    """
    if len(files) < 2:
        raise InputError("horzvert needs at least two LOS files (e.g. ascending and descending)")
    if geometries and len(geometries) != len(files):
        raise InputError(f"{len(geometries)} geometry file(s) for {len(files)} LOS files: give one per file, in order")
    products = [Product.open(f) for f in files]
    grids = [require_geo(p.metadata, p.path) for p in products]
    offsets = [(0, 0)] + [pixel_offset(grids[0], g, p.path) for g, p in zip(grids[1:], products[1:])]
    y0 = max(dy for dy, _ in offsets)
    x0 = max(dx for _, dx in offsets)
    y1 = min(dy + p.shape[0] for (dy, _), p in zip(offsets, products))
    x1 = min(dx + p.shape[1] for (_, dx), p in zip(offsets, products))
    if y1 <= y0 or x1 <= x0:
        raise InputError(f"{products[0].path.name} and the other files do not overlap")
    readers = [map_reader(p, dataset) for p in products]
    geoms = [LosGeometry(p.metadata, p.path, geometries[i] if geometries else None) for i, p in enumerate(products)]
    _check_references(products)

    first = products[0]
    name = readers[0].dataset
    ftype = first.metadata.file_type
    if isinstance(first, TimeSeries):
        ftype = name = "displacement"
    meta = crop_metadata(first.metadata, y0, x0, y1 - y0, x1 - x0).replace(file_type=ftype, radar=RadarInfo(
        wavelength=first.metadata.radar.wavelength, platform=first.metadata.radar.platform))
    meta = meta.with_extra(HORZ_BEARING=horz_bearing, SOURCE_FILES=",".join(p.path.name for p in products))
    out_dir = Path(outdir) if outdir is not None else first.path.resolve().parent
    shape = (y1 - y0, x1 - x0)
    paths = out_dir / HORZ_FILE, out_dir / VERT_FILE
    check_distinct(paths, [*files, *(g for g in geometries or () if g not in (None, "-"))], option="--outdir")
    blocks = plan_blocks(shape, 8.0 * (4 * len(files) + 8), max_memory)
    with H5Writer(paths[0], meta.with_extra(DESCRIPTION=f"horizontal motion toward bearing {horz_bearing:g}°")) as wh, \
            H5Writer(paths[1], meta.with_extra(DESCRIPTION="vertical motion, positive up")) as wu:
        wh.create(name, shape=shape, dtype=np.float32)
        wu.create(name, shape=shape, dtype=np.float32)
        solved = 0
        for block in blocks:
            los, inc, az = [], [], []
            for (dy, dx), reader, geom in zip(offsets, readers, geoms):
                own = Block(block.row_start + y0 - dy, block.row_stop + y0 - dy,
                            block.col_start + x0 - dx, block.col_stop + x0 - dx)
                los.append(reader(own).astype(np.float64))
                i, a = geom.angles(own if geom.geometry is not None else None)
                inc.append(i)
                az.append(a)
            horz, up = solve_horz_vert(los, inc, az, horz_bearing)
            wh.write(name, horz, block)
            wu.write(name, up, block)
            solved += int(np.isfinite(up).sum())
    if solved == 0:
        logger.warning("no pixel could be decomposed: the looks are parallel (same geometry twice?) or "
                       "the data are NaN on the overlap")
    logger.info("wrote %s and %s (%d×%d overlap of %d files)", *paths, shape[0], shape[1], len(files))
    return paths


def _check_references(products: Sequence[Product]) -> None:
    """Warn when the inputs are referenced to different places: the decomposition would mix offsets."""
    refs = [(p.metadata.reference.lat, p.metadata.reference.lon) for p in products]
    if any(r[0] is None for r in refs):
        return
    geo = products[0].metadata.grid.geo
    lat0, lon0 = refs[0]
    for (lat, lon), p in zip(refs[1:], products[1:]):
        if abs(lat - lat0) > abs(geo.y_step) or abs(lon - lon0) > abs(geo.x_step):
            logger.warning("%s is referenced at %.4f, %.4f but %s at %.4f, %.4f; re-reference them to one "
                           "point for a meaningful decomposition", p.path.name, lat, lon, products[0].path.name,
                           lat0, lon0)


__all__ = ["solve_horz_vert", "asc_desc_to_horz_vert", "HORZ_FILE", "VERT_FILE"]
