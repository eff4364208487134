"""Rewrite every dataset of an sbts/MintPy file onto a new pixel grid: the engine of ``subset`` and ``multilook``.

A :class:`Window` is a box ``[y0, y1) × [x0, x1)`` of the input grid plus ``ystep × xstep`` looks;
output pixel ``(i, j)`` comes from input rows ``y0 + i·ystep … y0 + (i+1)·ystep − 1`` (and the same
for columns).  Every root dataset whose last two dimensions are the file's ``LENGTH × WIDTH``
(maps, stacks of maps: time series, interferograms, geometry) is rewritten block by block, its
leading dimensions (dates, pairs) kept; the small index datasets (``date``, ``bperp``,
``dropIfgram``, ``sensingMid`` …) are copied unchanged, as are the datasets' own attributes.  So
any file type comes out in the same layout and the other sbts steps read it.

Reduction of each ``ystep × xstep`` cell:

- ``nearest``: the cell's centre sample ``(ystep // 2, xstep // 2)`` (as ``sbts load``);
- ``mean`` / ``median``: NaN-aware mean / median of the cell (NaN when all are NaN); for
  ``unwrapPhase`` a 0 is no-data (MintPy's convention) and an all-no-data cell stays 0.

Integer and boolean datasets (connected components, masks: categories, whose mean means nothing)
always take ``nearest``.  Float geometry layers (latitude/longitude, azimuth/range coordinates,
angles, height) are averaged like the data, as MintPy's multilook.py does: the mean position of a
cell is its centre, where the multilooked data sit.  Rows/columns left over when the size is not a
multiple of the looks are dropped (floor), as MintPy does.

Output is written through :class:`~sbts.core.io.h5.H5Writer` (temporary name, renamed when done).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB
from sbts.core.errors import InputError
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import H5Writer, check_distinct, open_h5
from sbts.core.io.progress import progress
from sbts.core.model.metadata import Metadata

logger = logging.getLogger(__name__)

METHODS = ("nearest", "mean", "median")


@dataclass(frozen=True)
class Window:
    """A box of the input grid (end exclusive) and the looks taken inside it."""

    y0: int
    y1: int
    x0: int
    x1: int
    ystep: int = 1
    xstep: int = 1

    @property
    def shape(self) -> tuple[int, int]:
        """Output ``(rows, columns)``."""
        return (self.y1 - self.y0) // self.ystep, (self.x1 - self.x0) // self.xstep

    def source(self, out: Block) -> Block:
        """The input window an output block is computed from."""
        return Block(self.y0 + out.row_start * self.ystep, self.y0 + out.row_stop * self.ystep,
                     self.x0 + out.col_start * self.xstep, self.x0 + out.col_stop * self.xstep)


def derived(meta: Metadata) -> Metadata:
    """``meta`` without sbts's update-mode signatures (``SBTS_*``): they describe the input's content,
    which a rewritten file no longer has, and would let a later step skip work it must redo."""
    return meta.replace(extra={k: v for k, v in meta.extra.items() if not k.startswith("SBTS_")})


def reduce_cells(data: np.ndarray, ystep: int, xstep: int, method: str, zero_is_nodata: bool = False) -> np.ndarray:
    """Reduce the last two axes of ``data`` (a multiple of the looks) by ``ystep × xstep`` cells."""
    if ystep == 1 and xstep == 1:
        return data
    if method == "nearest":
        return data[..., ystep // 2::ystep, xstep // 2::xstep]
    lead = data.shape[:-2]
    h, w = data.shape[-2] // ystep, data.shape[-1] // xstep
    cube = data.reshape(*lead, h, ystep, w, xstep).astype(np.float64)
    if zero_is_nodata:
        cube = np.where(cube == 0, np.nan, cube)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells give NaN, as wanted
        out = (np.nanmean if method == "mean" else np.nanmedian)(cube, axis=(-3, -1))
    return np.nan_to_num(out, nan=0.0) if zero_is_nodata else out


def _method_for(dtype: np.dtype, method: str) -> str:
    return method if np.issubdtype(dtype, np.floating) else "nearest"


def rewrite_file(path: str | os.PathLike, output: str | os.PathLike, window: Window, metadata: Metadata,
                 method: str = "nearest", max_memory: float = DEFAULT_MAX_MEMORY_GB,
                 what: str = "rewrite", apply: Callable[[str, np.ndarray], np.ndarray] | None = None,
                 skip: Collection[str] = ()) -> Path:
    """Write ``output``: every dataset of ``path`` on ``window`` (see the module docstring).

    Parameters
    ----------
    path, output : path
        Input HDF5 file (sbts/MintPy layout) and the file to write (not the input).
    window : Window
        Box and looks, inside the input grid.
    metadata : Metadata
        The output's root attributes (the caller updates LENGTH/WIDTH, corner, reference …).
    method : str
        ``nearest``, ``mean`` or ``median`` for float datasets.
    max_memory : float
        GB per block.
    what : str
        Label of the progress messages.
    apply : callable, optional
        ``apply(name, block_data) -> block_data`` after the reduction, on the grid datasets (float
        results are stored as float32).
    skip : collection of str
        Datasets left out of the output.
    """
    if method not in METHODS:
        raise InputError(f"multilook method {method!r}: choose one of {', '.join(METHODS)}")
    path, output = Path(path), Path(output)
    check_distinct(output, path)
    out_shape = window.shape
    if min(out_shape) < 1:
        raise InputError(f"{path}: the window {window.y0}:{window.y1},{window.x0}:{window.x1} with "
                         f"{window.ystep}×{window.xstep} looks leaves no pixel")
    if metadata.grid.shape != out_shape:
        raise ValueError(f"metadata grid {metadata.grid.shape} is not the window's {out_shape}")
    with open_h5(path) as src:
        grid = (int(src.attrs.get("LENGTH", 0)), int(src.attrs.get("WIDTH", 0)))
        groups = [k for k, v in src.items() if isinstance(v, h5py.Group)]
        if groups:
            raise InputError(f"{path}: has groups ({', '.join(groups[:3])}); only files with root datasets "
                             "(MintPy's layout, not HDF-EOS5) can be rewritten")
        if window.y1 > grid[0] or window.x1 > grid[1] or window.y0 < 0 or window.x0 < 0:
            raise ValueError(f"window {window} outside the {grid} grid")
        with H5Writer(output, derived(metadata)) as w:
            for name, ds in src.items():
                if name in skip:
                    continue
                attrs = {k: v for k, v in ds.attrs.items() if k != "MODIFICATION_TIME"}
                if ds.ndim < 2 or tuple(ds.shape[-2:]) != grid:
                    w.create(name, data=ds[()], attrs=attrs)
                    continue
                _rewrite_dataset(ds, w, name, window, _method_for(ds.dtype, method), attrs, max_memory,
                                 what, apply)
    logger.info("wrote %s (%d×%d from %d×%d)", output, *out_shape, *grid)
    return output


def _rewrite_dataset(ds: h5py.Dataset, w: H5Writer, name: str, window: Window, method: str, attrs: dict,
                     max_memory: float, what: str, apply=None) -> None:
    lead = tuple(ds.shape[:-2])
    layers = int(np.prod(lead)) if lead else 1
    looks = window.ystep * window.xstep
    out_shape = window.shape
    floating = np.issubdtype(ds.dtype, np.floating)
    dtype = ds.dtype if method == "nearest" and (apply is None or not floating) else np.dtype(np.float32)
    w.create(name, shape=lead + out_shape, dtype=dtype, attrs=attrs)
    # per output pixel: the input cell of every layer (read dtype, and float64 while reducing)
    # (nanmedian sorts a copy: about three float64 copies of the cells at its peak)
    work = {"nearest": 0, "mean": 16, "median": 32}[method]
    per_pixel = layers * looks * (ds.dtype.itemsize + work) + layers * 8
    blocks = plan_blocks(out_shape, per_pixel, max_memory)
    zero_nodata = name.startswith("unwrapPhase")
    for block in progress(blocks, f"{what} {name}", "block"):
        src = window.source(block)
        data = ds[(Ellipsis, src.rows, src.cols)]
        out = reduce_cells(data, window.ystep, window.xstep, method, zero_nodata)
        if apply is not None:
            out = apply(name, out)
        w.write(name, out.astype(dtype, copy=False), block)


def output_next_to(path: str | os.PathLike, prefix: str = "", suffix: str = "") -> Path:
    """``<folder>/<prefix><stem><suffix>.h5`` beside ``path``."""
    path = Path(path)
    return path.with_name(f"{prefix}{path.stem}{suffix}{path.suffix or '.h5'}")


__all__ = ["Window", "METHODS", "derived", "reduce_cells", "rewrite_file", "output_next_to"]
