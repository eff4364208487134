"""``sbts mosaic``: overlapping geocoded maps with the same pixel size onto their union grid.

Files are added in order.  Each new map is first shifted by the mean of (new − mosaic) over the
pixels both cover — two InSAR maps are relative to different reference points, so they differ by a
constant (MintPy image_stitch) — then fills the pixels the mosaic does not cover yet; where both
cover a pixel the earlier file wins, so the first file sets the reference.  ``offset=False`` skips the
adjustment (e.g. for maps already in one reference).  Integer/boolean maps (masks) are never
shifted.  The union grid is held in memory (one float32 map), like the inputs it is made from.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sbts.core.errors import InputError
from sbts.core.io.h5 import check_distinct
from sbts.core.io.products import Product, write_map
from sbts.core.tools.common import crop_metadata, map_reader, pixel_offset, require_geo

logger = logging.getLogger(__name__)


def mosaic_arrays(arrays: Sequence[np.ndarray], offsets: Sequence[tuple[int, int]], adjust: bool = True
                  ) -> tuple[np.ndarray, tuple[int, int], list[float]]:
    """Mosaic float maps placed at (row, col) ``offsets`` of one grid.

    Returns the union map, the (row, col) of its first pixel on that grid, and the offset removed
    from each map (0 for the first and for maps without overlap).
    """
    y0 = min(dy for dy, _ in offsets)
    x0 = min(dx for _, dx in offsets)
    y1 = max(dy + a.shape[0] for (dy, _), a in zip(offsets, arrays))
    x1 = max(dx + a.shape[1] for (_, dx), a in zip(offsets, arrays))
    out = np.full((y1 - y0, x1 - x0), np.nan, np.float32)
    removed = []
    for i, ((dy, dx), data) in enumerate(zip(offsets, arrays)):
        region = np.s_[dy - y0:dy - y0 + data.shape[0], dx - x0:dx - x0 + data.shape[1]]
        cur = out[region]
        new = np.asarray(data, np.float64)
        shift = 0.0
        if adjust and i > 0:
            both = np.isfinite(cur) & np.isfinite(new)
            if both.any():
                shift = float(np.mean(new[both] - cur[both]))
                new = new - shift
            else:
                logger.warning("map %d does not overlap the mosaic so far: its offset is not adjusted", i + 1)
        removed.append(shift)
        fill = ~np.isfinite(cur) & np.isfinite(new)
        cur[fill] = new[fill]
    return out, (y0, x0), removed


def mosaic_files(files: Sequence[str | os.PathLike], output: str | os.PathLike, dataset: str | None = None,
                 adjust_offset: bool = True) -> Path:
    """Mosaic one map dataset of several geocoded files into ``output``; returns its path."""
    if len(files) < 2:
        raise InputError("mosaic needs at least two files")
    check_distinct(output, files)
    products = [Product.open(f) for f in files]
    grids = [require_geo(p.metadata, p.path) for p in products]
    offsets = [(0, 0)] + [pixel_offset(grids[0], g, p.path) for g, p in zip(grids[1:], products[1:])]
    readers = [map_reader(p, dataset) for p in products]
    arrays = [r() for r in readers]
    kind = arrays[0].dtype
    if kind.kind != "f":
        adjust_offset = False
    floats = [np.where(a != 0, a, np.nan).astype(np.float32) if a.dtype.kind != "f" else a.astype(np.float32)
              for a in arrays]
    out, (y0, x0), removed = mosaic_arrays(floats, offsets, adjust_offset)
    for p, shift in zip(products[1:], removed[1:]):
        if adjust_offset:
            logger.info("%s: offset %.6g %s removed", p.path.name, shift, p.metadata.unit or "")
    data = out if kind.kind == "f" else np.nan_to_num(out, nan=0).astype(kind)
    first = products[0]
    meta = crop_metadata(first.metadata, y0, x0, *out.shape)
    name = readers[0].dataset
    ftype = first.metadata.file_type
    if ftype == "timeseries":
        ftype = name = "displacement"
    path = write_map(output, meta, ftype, {name: data}, unit=first.metadata.unit,
                     MOSAIC_FILES=",".join(p.path.name for p in products),
                     MOSAIC_OFFSETS=",".join(f"{s:.6g}" for s in removed))
    logger.info("wrote %s (%d×%d union of %d files)", path, out.shape[0], out.shape[1], len(files))
    return Path(path)


__all__ = ["mosaic_arrays", "mosaic_files"]
