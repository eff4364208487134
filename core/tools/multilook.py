"""``sbts multilook``: average ``ystep × xstep`` pixels of any sbts/MintPy file (MintPy multilook.py).

Output pixel ``(i, j)`` is the cell of input rows ``i·ystep … (i+1)·ystep − 1`` and columns
``j·xstep … (j+1)·xstep − 1``: its NaN-aware mean (default), median, or centre sample (``nearest``);
integer/boolean datasets (connected components, masks) always take the centre sample (see
:mod:`sbts.core.tools.windowing`).  Differences from MintPy's multilook.py, on purpose: ``unwrapPhase``
zeros are no-data (left out of the mean, as ``sbts load`` does), masks and connected components are
sampled rather than averaged, and ``NCORRLOOKS`` is multiplied by the looks (as ``sbts load`` does;
MintPy keeps it).  The size is ``floor(LENGTH/ystep) × floor(WIDTH/xstep)``.

Attributes (as ``sbts load`` multilooks, MintPy's conventions)
    ``LENGTH``/``WIDTH``; ``Y_STEP``/``X_STEP`` × looks with ``Y_FIRST``/``X_FIRST`` unchanged (the
    first cell's corner is the first pixel's); ``ALOOKS`` × ystep, ``RLOOKS`` × xstep;
    ``AZIMUTH_PIXEL_SIZE``/``RANGE_PIXEL_SIZE`` × looks; ``NCORRLOOKS`` × ystep·xstep;
    ``REF_Y = REF_Y // ystep``, ``REF_X = REF_X // xstep`` (the cell holding the reference pixel);
    ``SUBSET_*`` unchanged; ``XMIN/XMAX/YMIN/YMAX`` = 0 … size − 1 (as MintPy writes them).

Output: ``<stem>_<ystep>alks_<xstep>rlks.h5`` beside the input by default.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.config.template import Template
from sbts.core.errors import InputError
from sbts.core.io.h5 import read_metadata
from sbts.core.model.metadata import GeoGrid, Grid, Metadata
from sbts.core.tools.windowing import METHODS, Window, output_next_to, rewrite_file

logger = logging.getLogger(__name__)


def multilook_metadata(meta: Metadata, ystep: int, xstep: int) -> Metadata:
    """Attributes after ``ystep × xstep`` looks (see the module docstring)."""
    length, width = meta.grid.length // ystep, meta.grid.width // xstep
    geo = meta.grid.geo
    if geo is not None:
        geo = GeoGrid(geo.x_first, geo.y_first, geo.x_step * xstep, geo.y_step * ystep, geo.x_unit, geo.y_unit,
                      geo.epsg)
    out = meta.replace(grid=Grid(length, width, geo)).with_extra(XMIN=0, XMAX=width - 1, YMIN=0, YMAX=length - 1)
    r = meta.radar
    out = out.with_radar(
        alooks=(r.alooks or 1) * ystep, rlooks=(r.rlooks or 1) * xstep,
        range_pixel_size=None if r.range_pixel_size is None else r.range_pixel_size * xstep,
        azimuth_pixel_size=None if r.azimuth_pixel_size is None else r.azimuth_pixel_size * ystep,
        ncorrlooks=None if r.ncorrlooks is None else r.ncorrlooks * ystep * xstep,
    )
    ref = meta.reference
    if ref.has_point:
        ry, rx = ref.y // ystep, ref.x // xstep
        if ry < length and rx < width:
            out = out.with_reference(y=ry, x=rx)
        else:
            logger.warning("the reference pixel (%d, %d) is in the rows/columns dropped by the looks; REF_* removed",
                           ref.y, ref.x)
            out = out.with_reference(y=None, x=None, lat=None, lon=None)
    return out


def looks_from_template(template: Template) -> tuple[int, int, str]:
    """``(ystep, xstep, method)`` from ``mintpy.multilook.ystep/xstep/method``."""
    ystep = template.get_int("mintpy.multilook.ystep") or 1
    xstep = template.get_int("mintpy.multilook.xstep") or 1
    method = template.get_str("mintpy.multilook.method", list(METHODS)) or "nearest"
    return ystep, xstep, method


def multilook_file(path: str | os.PathLike, ystep: int = 1, xstep: int = 1, method: str = "mean",
                   output: str | os.PathLike | None = None, max_memory: float = DEFAULT_MAX_MEMORY_GB) -> Path:
    """Multilook every dataset of ``path``; returns the output path."""
    path = Path(path)
    ystep, xstep = int(ystep), int(xstep)
    if ystep < 1 or xstep < 1:
        raise InputError(f"looks must be ≥ 1, got {ystep} (azimuth/y) and {xstep} (range/x)")
    if method not in METHODS:
        raise InputError(f"multilook method {method!r}: choose one of {', '.join(METHODS)}")
    meta = read_metadata(path)
    length, width = meta.grid.shape
    if length // ystep < 1 or width // xstep < 1:
        raise InputError(f"{path}: {ystep}×{xstep} looks are more than its {length}×{width} pixels")
    if ystep == 1 and xstep == 1:
        logger.warning("%s: 1×1 looks: the output is a copy", path.name)
    out = Path(output) if output is not None else output_next_to(path, suffix=f"_{ystep}alks_{xstep}rlks")
    window = Window(0, (length // ystep) * ystep, 0, (width // xstep) * xstep, ystep, xstep)
    rewrite_file(path, out, window, multilook_metadata(meta, ystep, xstep), method, max_memory, what="multilook")
    return out


def multilook_files(paths: Sequence[str | os.PathLike], ystep: int | None = None, xstep: int | None = None,
                    method: str | None = None, output: str | os.PathLike | None = None,
                    template: str | os.PathLike | None = None,
                    max_memory: float = DEFAULT_MAX_MEMORY_GB) -> list[Path]:
    """:func:`multilook_file` on each file; looks and method default to the template's ``mintpy.multilook.*``
    when one is given (options given on the command line win), else 1, 1, mean."""
    t_y, t_x, t_m = looks_from_template(Template.read(template)) if template is not None else (1, 1, "mean")
    if output is not None and len(paths) > 1:
        raise InputError("-o names one output: give one input file, or leave -o out")
    return [multilook_file(p, ystep or t_y, xstep or t_x, method or t_m, output, max_memory) for p in paths]


__all__ = ["multilook_file", "multilook_files", "multilook_metadata", "looks_from_template"]
