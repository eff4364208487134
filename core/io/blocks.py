"""Block-wise iteration over rasters, aligned to HDF5 chunks and sized from a memory budget.

A block is a frozen pair of row/column slices.  Blocks tile the image exactly (the last ones may be
smaller), never straddle an HDF5 chunk boundary when chunking is known, and are sized so that
``bytes_per_pixel × pixels_per_block`` stays within the budget.  Full-width strips are preferred
(contiguous reads); columns are split only when one chunk-row of full width exceeds the budget.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sbts.core.config.compute import DEFAULT_MAX_MEMORY_GB

if TYPE_CHECKING:
    import numpy as np

BLOCK_WORK_GB = 0.5
"""The most a block's working set takes, whatever the budget: the budget is an upper bound, not a
target.  Past a few hundred MB a block's arrays are fresh mappings whose pages the kernel must fault
in and zero (with transparent huge pages, compact) on every block: on a 2-core machine quick_overview
of 1000 × 1000 × 230 pairs took 4.4 s in 2 blocks of 2 GB and 1.8 s in blocks of 0.5 GB (system time
3.6 → 1.1 s), and smaller blocks let the next block's read overlap the work of more of the run."""


@dataclass(frozen=True, order=True)
class Block:
    """Rows ``[row_start, row_stop)`` and columns ``[col_start, col_stop)`` of a raster.

    Parameters
    ----------
    row_start, row_stop, col_start, col_stop : int
        Half-open bounds.
    """

    row_start: int
    row_stop: int
    col_start: int
    col_stop: int

    @property
    def rows(self) -> slice:
        """The row slice."""
        return slice(self.row_start, self.row_stop)

    @property
    def cols(self) -> slice:
        """The column slice."""
        return slice(self.col_start, self.col_stop)

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)``: index a 2-D array with it (``data[block.slices]``)."""
        return (self.rows, self.cols)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the block."""
        return (self.row_stop - self.row_start, self.col_stop - self.col_start)

    @property
    def size(self) -> int:
        """Pixels in the block."""
        return self.shape[0] * self.shape[1]

    def __str__(self) -> str:
        return f"rows {self.row_start}:{self.row_stop}, cols {self.col_start}:{self.col_stop}"


@dataclass(frozen=True)
class RowSet:
    """Some image rows (increasing) over columns ``[col_start, col_stop)``: a selection that reads
    only the rows it names, in one HDF5 selection per dataset (h5py takes one increasing index list).

    Quacks like a :class:`Block` where readers use ``rows``, ``cols``, ``slices`` and ``shape``: a
    few scattered pixels (samples, pixels to redo) read without their blocks' other rows.

    Parameters
    ----------
    row_index : numpy.ndarray
        The image rows, increasing, without repeats.
    col_start, col_stop : int
        Half-open column bounds.
    """

    row_index: np.ndarray
    col_start: int
    col_stop: int

    @property
    def rows(self) -> np.ndarray:
        """The rows (an index array: ``data[rowset.rows]``)."""
        return self.row_index

    @property
    def cols(self) -> slice:
        """The column slice."""
        return slice(self.col_start, self.col_stop)

    @property
    def slices(self) -> tuple[np.ndarray, slice]:
        """``(rows, cols)``: index a 2-D array (or an h5py dataset) with it."""
        return self.row_index, self.cols

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, columns)`` of the selection."""
        return self.row_index.size, self.col_stop - self.col_start


def _round_down(value: int, multiple: int) -> int:
    return max(multiple, (value // multiple) * multiple)


def iter_blocks(
    shape: tuple[int, int],
    bytes_per_pixel: float,
    max_memory_gb: float = DEFAULT_MAX_MEMORY_GB,
    chunk_shape: tuple[int, int] | None = None,
    min_rows: int = 1,
) -> Iterator[Block]:
    """Yield blocks covering ``shape`` whose working set fits in ``max_memory_gb``.

    ``bytes_per_pixel`` is the caller's estimate of the memory one pixel costs while the block is
    processed (all arrays it holds at once).  ``chunk_shape`` is the (rows, cols) of the HDF5 chunks
    of the dataset read most; block edges fall on chunk boundaries so no chunk is decoded twice.
    """
    return iter(plan_blocks(shape, bytes_per_pixel, max_memory_gb, chunk_shape, min_rows))


def plan_blocks(
    shape: tuple[int, int],
    bytes_per_pixel: float,
    max_memory_gb: float = DEFAULT_MAX_MEMORY_GB,
    chunk_shape: tuple[int, int] | None = None,
    min_rows: int = 1,
    work_cap_gb: float | None = BLOCK_WORK_GB,
) -> list[Block]:
    """The blocks covering ``shape`` whose working set fits in ``max_memory_gb`` (and in
    :data:`BLOCK_WORK_GB`, which is faster).

    Full-width strips are preferred (contiguous reads) and aligned to whole chunk rows; columns are
    split only when one strip of the minimum height exceeds the budget.

    Parameters
    ----------
    shape : tuple of int
        ``(rows, columns)`` of the raster.
    bytes_per_pixel : float
        Memory one pixel costs while a block is processed (all arrays held at once, every layer).
    max_memory_gb : float
        The budget per block (``mintpy.compute.maxMemory``).
    chunk_shape : tuple of int, optional
        ``(rows, cols)`` of the HDF5 chunks of the dataset read most, so no chunk is decoded twice.
    min_rows : int
        Fewest rows per block (a filter's support).
    work_cap_gb : float or None
        The most a block takes even when the budget allows more (:data:`BLOCK_WORK_GB`); None: the
        budget alone (the inversion, whose per-block set-up is worth amortising over large blocks).

    Returns
    -------
    list of Block
        Tiling the raster exactly, row-major; empty for an empty raster.
    """
    length, width = int(shape[0]), int(shape[1])
    if length <= 0 or width <= 0:
        return []
    cap = max_memory_gb if work_cap_gb is None else min(max_memory_gb, work_cap_gb)
    budget_px = max(1, int(cap * 1024**3 / max(bytes_per_pixel, 1e-9)))
    crow, ccol = chunk_shape if chunk_shape else (1, 1)
    crow, ccol = max(1, min(crow, length)), max(1, min(ccol, width))
    rows_budget = budget_px // width
    cols = width
    if rows_budget >= max(crow, min_rows):
        rows = min(length, _round_down(rows_budget, crow))  # whole chunk rows
    elif rows_budget >= max(1, min_rows):
        rows = rows_budget  # the budget wins over chunk alignment
    else:
        # a full-width strip of the minimum height is over budget: split columns too
        rows = min(max(1, min_rows), length)
        cols = budget_px // rows
        cols = _round_down(cols, ccol) if cols >= ccol else max(1, cols)
        cols = min(cols, width)
    blocks = []
    for r0 in range(0, length, rows):
        for c0 in range(0, width, cols):
            blocks.append(Block(r0, min(r0 + rows, length), c0, min(c0 + cols, width)))
    return blocks


def num_blocks(shape: tuple[int, int], bytes_per_pixel: float, max_memory_gb: float = DEFAULT_MAX_MEMORY_GB,
               chunk_shape: tuple[int, int] | None = None) -> int:
    return len(plan_blocks(shape, bytes_per_pixel, max_memory_gb, chunk_shape))


def chunk_rows_cols(chunks: tuple[int, ...] | None) -> tuple[int, int] | None:
    """The (rows, cols) part of an HDF5 chunk shape of a 2-D or 3-D (layer, row, col) dataset."""
    if not chunks:
        return None
    return (int(chunks[-2]), int(chunks[-1]))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b) if b else 0


# ---------------------------------------------------------------------------- budget
def pixel_bytes(layers: int = 1, itemsize: int = 4, copies: int = 1, extra: float = 0.0) -> float:
    """Memory one pixel costs while a block is processed.

    A time series of ``n`` dates read as float32 and held in 3 arrays at once costs
    ``pixel_bytes(n, 4, 3)``; callers state what they hold instead of multiplying bytes by hand.

    Parameters
    ----------
    layers : int
        Values per pixel in one array (dates, pairs).
    itemsize : int
        Bytes per value.
    copies : int
        Arrays of that size held at once.
    extra : float
        Bytes of per-pixel scratch besides them (masks, maps).

    Returns
    -------
    float
        Bytes per pixel, for :func:`plan_blocks` / :func:`plan_blocks_for`.
    """
    return float(layers) * itemsize * copies + extra


@dataclass(frozen=True)
class Budget:
    """A memory budget (``mintpy.compute.maxMemory``): what a block, or a sample, may use.

    Attributes
    ----------
    gb : float
        The budget in GB (2**30 bytes).
    """

    gb: float = DEFAULT_MAX_MEMORY_GB

    @property
    def bytes(self) -> int:
        """The budget in bytes."""
        return int(self.gb * 1024**3)

    def blocks(self, shape: tuple[int, int], bytes_per_pixel: float, chunk_shape: tuple[int, int] | None = None,
               min_rows: int = 1) -> list[Block]:
        """Blocks of ``shape`` whose pixels, at ``bytes_per_pixel`` each, fit in the budget."""
        return plan_blocks(shape, bytes_per_pixel, self.gb, chunk_shape, min_rows)

    def count(self, bytes_per_item: float) -> int:
        """How many items of ``bytes_per_item`` fit (at least 1): samples, resamples, layers."""
        return max(1, int(self.bytes / max(bytes_per_item, 1)))

    def share(self, fraction: float) -> Budget:
        """A part of the budget (what is left for a second array held beside the first)."""
        return Budget(self.gb * fraction)


def plan_blocks_for(shape: tuple[int, int], bytes_per_pixel: float, budget: Budget | float | None = None,
                    chunk_shape: tuple[int, int] | None = None, min_rows: int = 1) -> list[Block]:
    """:func:`plan_blocks` with the budget as a :class:`Budget` or GB.

    Parameters
    ----------
    shape : tuple of int
        ``(length, width)`` of the image.
    bytes_per_pixel : float
        What one pixel costs while a block is processed (:func:`pixel_bytes`).
    budget : Budget or float, optional
        The memory budget (GB when a number); ``None``: the default budget.
    chunk_shape : tuple of int, optional
        HDF5 chunk shape the blocks align with.
    min_rows : int
        Fewest rows per block.

    Returns
    -------
    list of Block
    """
    if budget is None:
        budget = Budget()
    gb = budget.gb if isinstance(budget, Budget) else float(budget)
    return plan_blocks(shape, bytes_per_pixel, gb, chunk_shape, min_rows)


__all__ = ["Block", "RowSet", "Budget", "iter_blocks", "plan_blocks", "plan_blocks_for", "pixel_bytes", "num_blocks",
           "chunk_rows_cols", "ceil_div"]
