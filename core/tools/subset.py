"""``sbts subset``: crop any sbts/MintPy file to a pixel or lat/lon box (MintPy subset.py).

Box
    ``yx = (y0, y1, x0, x1)``: rows ``y0 … y1−1``, columns ``x0 … x1−1`` (end exclusive, as
    ``mintpy.subset.yx = y0:y1,x0:x1``).  ``lalo = (lat0, lat1, lon0, lon1)`` (either order, as
    ``mintpy.subset.lalo = S:N,W:E``).  On a geocoded grid each edge becomes the pixel boundary
    ``floor((lat − Y_FIRST)/Y_STEP + 0.01)`` (columns likewise), MintPy's rounding, and the box is
    the pixels between them: from the pixel holding the north-west corner up to, not including, the
    one holding the south-east corner (at least one pixel), so ``sbts subset -l/-L`` crops what
    MintPy's ``subset.py -l/-L`` crops (a UTM grid gets the box's corners projected first); in
    radar coordinates a lookup table on the same grid (``latitude`` /
    ``longitude`` of ``geometryRadar.h5``, found beside the file or given) says where each pixel is,
    and the box is the rows/columns holding a pixel inside.  A box partly outside the image is
    clipped (with a warning); one wholly outside is an error.

Attributes (MintPy's conventions)
    ``LENGTH``/``WIDTH`` of the box (and ``XMIN/XMAX/YMIN/YMAX`` = 0 … size − 1, as MintPy writes them);
    ``X_FIRST``/``Y_FIRST`` move to the box's corner; ``REF_Y``/
    ``REF_X`` are shifted, and ``REF_*`` dropped (with a warning) when the reference pixel falls
    outside; ``SUBSET_YMIN/YMAX/XMIN/XMAX`` record the box, added to the offsets a previous subset
    (or ``sbts load``'s) recorded.

Every dataset on the grid is cropped block by block (see :mod:`sbts.core.tools.windowing`); index
datasets (dates, pairs, drop list) are kept.  Output: ``sub_<name>`` beside the input by default.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.config.template import Template
from sbts.core.errors import InputError
from sbts.core.io.blocks import plan_blocks
from sbts.core.io.h5 import read_metadata
from sbts.core.io.products import Product
from sbts.core.io.workdir import find_geometry
from sbts.core.model.metadata import Metadata
from sbts.core.tools.common import crop_metadata
from sbts.core.tools.windowing import Window, output_next_to, rewrite_file

logger = logging.getLogger(__name__)

PREFIX = "sub_"
_SNAP = 0.01  # pixel fraction: an edge within 1 % of a pixel boundary is on it (as MintPy)


def _edge_index(coord: float, first: float, step: float) -> int:
    """The pixel boundary at (or, within 1 % of a pixel, just past) ``coord``: MintPy's rounding."""
    return math.floor((coord - first) / step + _SNAP)


def _edge_range(a: float, b: float, first: float, step: float) -> tuple[int, int]:
    """``[i0, i1)`` between the pixel boundaries of two box edges, at least one pixel wide."""
    i0, i1 = sorted((_edge_index(a, first, step), _edge_index(b, first, step)))
    return i0, max(i1, i0 + 1)


def parse_box(text: str, key: str) -> tuple[float, float, float, float]:
    """``a:b,c:d`` → ``(a, b, c, d)`` as floats (``mintpy.subset.yx`` / ``mintpy.subset.lalo``)."""
    try:
        (a, b), (c, d) = (tuple(float(v) for v in part.split(":")) for part in text.replace(" ", "").split(","))
    except ValueError:
        raise InputError(f"{key} = {text!r}: expected two ranges a:b,c:d") from None
    return a, b, c, d


def box_from_template(template: Template) -> tuple[tuple[int, ...] | None, tuple[float, ...] | None]:
    """``(yx, lalo)`` from ``mintpy.subset.yx`` / ``mintpy.subset.lalo`` (each ``None`` when not set)."""
    yx = template.get("mintpy.subset.yx")
    lalo = template.get("mintpy.subset.lalo")
    yx_box = None
    if yx:
        values = parse_box(yx, "mintpy.subset.yx")
        if any(v != int(v) for v in values):
            raise InputError(f"mintpy.subset.yx = {yx!r}: pixel indices must be integers")
        yx_box = tuple(int(v) for v in values)
    lalo_box = None
    if lalo:
        s, n, w, e = parse_box(lalo, "mintpy.subset.lalo")
        lalo_box = (s, n, w, e)
    return yx_box, lalo_box


def _geo_lalo_window(meta: Metadata, lalo: Sequence[float]) -> tuple[int, int, int, int]:
    geo = meta.grid.geo
    lat0, lat1, lon0, lon1 = (float(v) for v in lalo)
    s, n, w, e = min(lat0, lat1), max(lat0, lat1), min(lon0, lon1), max(lon0, lon1)
    if geo.epsg not in (None, 4326):
        from sbts.core.steps.geocode import crs_transform

        xs, ys = crs_transform(4326, geo.epsg)(np.array([w, e, w, e]), np.array([s, s, n, n]))
        s, n, w, e = ys.min(), ys.max(), xs.min(), xs.max()
    y0, y1 = _edge_range(s, n, geo.y_first, geo.y_step)
    x0, x1 = _edge_range(w, e, geo.x_first, geo.x_step)
    return y0, y1, x0, x1


def _radar_lalo_window(path: Path, meta: Metadata, lalo: Sequence[float], lookup: str | os.PathLike | None,
                       max_memory: float) -> tuple[int, int, int, int]:
    lookup_path = Path(lookup) if lookup else find_geometry(
        path, accept=lambda p: _is_radar_lookup(p, meta.grid.shape))
    if lookup_path is None:
        raise InputError(f"{path} is in radar coordinates: a lat/lon box needs a lookup table on its grid "
                         "(geometryRadar.h5 with latitude/longitude); give it with --lookup, or use a y/x box")
    geom = Product.open(lookup_path)
    for name in ("latitude", "longitude"):
        geom._require(name)
    if geom.shape != meta.grid.shape:
        raise InputError(f"{lookup_path} is {geom.shape[0]}×{geom.shape[1]} but {path} is "
                         f"{meta.grid.length}×{meta.grid.width}: the lookup must be on the file's grid")
    lat0, lat1, lon0, lon1 = (float(v) for v in lalo)
    s, n, w, e = min(lat0, lat1), max(lat0, lat1), min(lon0, lon1), max(lon0, lon1)
    rows = np.zeros(meta.grid.length, bool)
    cols = np.zeros(meta.grid.width, bool)
    for block in plan_blocks(geom.shape, 24, max_memory):
        lat = geom.read("latitude", block)
        lon = geom.read("longitude", block)
        with np.errstate(invalid="ignore"):
            inside = (lat >= s) & (lat <= n) & (lon >= w) & (lon <= e)
        rows[block.rows] |= inside.any(axis=1)
        cols[block.cols] |= inside.any(axis=0)
    if not rows.any():
        raise InputError(f"lat/lon box {s:g}:{n:g},{w:g}:{e:g}: no pixel of {lookup_path.name} falls inside")
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    return int(r[0]), int(r[-1]) + 1, int(c[0]), int(c[-1]) + 1


def _is_radar_lookup(path: Path, shape: tuple[int, int]) -> bool:
    try:
        meta = read_metadata(path)
        product = Product.open(path)
    except Exception:  # noqa: BLE001 - any unreadable candidate is just not the lookup
        return False
    return meta.grid.geo is None and meta.grid.shape == shape and product.has("latitude")


def subset_window(path: str | os.PathLike, meta: Metadata, yx: Sequence[int] | None = None,
                  lalo: Sequence[float] | None = None, lookup: str | os.PathLike | None = None,
                  max_memory: float = DEFAULT_MAX_MEMORY_GB) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` of the box in the file's pixels, clipped to the image (see the module docstring)."""
    path = Path(path)
    if (yx is None) == (lalo is None):
        raise InputError("give one box: pixels (y0 y1 x0 x1) or latitude/longitude (lat0 lat1 lon0 lon1)")
    length, width = meta.grid.shape
    if yx is not None:
        if len(yx) != 4:
            raise InputError(f"subset y/x box {tuple(yx)}: expected y0 y1 x0 x1")
        y0, y1, x0, x1 = (int(v) for v in yx)
        if y1 <= y0 or x1 <= x0:
            raise InputError(f"subset y/x box {y0}:{y1},{x0}:{x1}: the end must be after the start (end exclusive)")
    elif meta.grid.geo is not None:
        y0, y1, x0, x1 = _geo_lalo_window(meta, lalo)
    else:
        y0, y1, x0, x1 = _radar_lalo_window(path, meta, lalo, lookup, max_memory)
    clipped = max(0, y0), min(length, y1), max(0, x0), min(width, x1)
    if clipped[1] <= clipped[0] or clipped[3] <= clipped[2]:
        raise InputError(f"{path}: the subset box (rows {y0}:{y1}, columns {x0}:{x1}) is outside the "
                         f"{length}×{width} image")
    if clipped != (y0, y1, x0, x1):
        logger.warning("%s: subset box rows %d:%d, columns %d:%d clipped to the image: %d:%d, %d:%d",
                       path.name, y0, y1, x0, x1, *clipped)
    return clipped


def subset_metadata(meta: Metadata, y0: int, y1: int, x0: int, x1: int, source: str = "") -> Metadata:
    """Attributes of the box ``[y0, y1) × [x0, x1)`` (see the module docstring)."""
    out = crop_metadata(meta, y0, x0, y1 - y0, x1 - x0)
    if meta.reference.has_point and not out.reference.has_point:
        logger.warning("%s: the reference pixel (%d, %d) is outside the subset; REF_Y/REF_X dropped (the data "
                       "stay referenced to it: re-reference inside the subset if needed)",
                       source or "subset", meta.reference.y, meta.reference.x)
    ymin = int(float(meta.extra.get("SUBSET_YMIN", 0) or 0))
    xmin = int(float(meta.extra.get("SUBSET_XMIN", 0) or 0))
    return out.with_extra(SUBSET_YMIN=ymin + y0, SUBSET_YMAX=ymin + y1, SUBSET_XMIN=xmin + x0, SUBSET_XMAX=xmin + x1,
                          XMIN=0, XMAX=x1 - x0 - 1, YMIN=0, YMAX=y1 - y0 - 1)


def subset_file(path: str | os.PathLike, yx: Sequence[int] | None = None, lalo: Sequence[float] | None = None,
                output: str | os.PathLike | None = None, lookup: str | os.PathLike | None = None,
                max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Crop every dataset of ``path`` to the box; returns the output (default ``sub_<name>`` beside it)."""
    path = Path(path)
    meta = read_metadata(path)
    y0, y1, x0, x1 = subset_window(path, meta, yx, lalo, lookup, max_memory)
    out_meta = subset_metadata(meta, y0, y1, x0, x1, path.name)
    out = Path(output) if output is not None else output_next_to(path, PREFIX)
    rewrite_file(path, out, Window(y0, y1, x0, x1), out_meta, max_memory=max_memory, what="subset")
    logger.info("%s: rows %d:%d, columns %d:%d → %s", path.name, y0, y1, x0, x1, out)
    return out


def subset_files(paths: Sequence[str | os.PathLike], yx: Sequence[int] | None = None,
                 lalo: Sequence[float] | None = None, output: str | os.PathLike | None = None,
                 lookup: str | os.PathLike | None = None, template: str | os.PathLike | None = None,
                 max_memory: float = DEFAULT_MAX_MEMORY_GB) -> list[Path]:
    """:func:`subset_file` on each file; the box may come from a template's ``mintpy.subset.yx/lalo``.

    With both keys set the lat/lon box wins, except for a radar-coded file without a lookup table,
    which takes the y/x box (MintPy's rule)."""
    both = False
    if template is not None:
        if yx is not None or lalo is not None:
            raise InputError("give the box either on the command line or in the template, not both")
        yx, lalo = box_from_template(Template.read(template))
        if yx is None and lalo is None:
            raise InputError(f"{template}: neither mintpy.subset.yx nor mintpy.subset.lalo is set")
        both = yx is not None and lalo is not None
    if output is not None and len(paths) > 1:
        raise InputError("-o names one output: give one input file, or leave -o out (sub_<name> each)")
    outputs = []
    for p in paths:
        use_yx, use_lalo = (None, lalo) if both else (yx, lalo)
        if both and not _can_place(Path(p), lookup):
            use_yx, use_lalo = yx, None
            logger.info("%s: radar-coded without a lookup table: mintpy.subset.yx used", Path(p).name)
        outputs.append(subset_file(p, use_yx, use_lalo, output, lookup, max_memory))
    return outputs


def _can_place(path: Path, lookup: str | os.PathLike | None) -> bool:
    """Whether a lat/lon box can be placed on ``path``: geocoded, or a lookup on its grid exists."""
    meta = read_metadata(path)
    if meta.grid.geo is not None or lookup is not None:
        return True
    return find_geometry(path, accept=lambda q: _is_radar_lookup(q, meta.grid.shape)) is not None


__all__ = ["subset_file", "subset_files", "subset_window", "subset_metadata", "box_from_template", "parse_box",
           "PREFIX"]
