"""Phase-ramp fitting: planar/quadratic surfaces fitted to many dates with one least-squares solve.

Orbit errors and long-wavelength atmosphere leave smooth ramps in each date of a time series.
These functions fit one low-order polynomial surface per date on a set of (masked) pixels and
evaluate it anywhere, block by block, so a ramp can be removed from an image larger than memory.

Coordinates are normalised by the full image size (``x = col / W``, ``y = row / L``, both in
[0, 1)) so the columns of the design matrix have similar magnitudes and the quadratic system stays
well conditioned for any image size.  Coefficients are therefore "change across the image":
for a ``linear`` ramp ``a + b·x + c·y``, ``b`` is the ramp's increase from the left to the right edge.

Column order of the design matrix (range = x = columns, azimuth = y = rows):

============== =============================
kind           columns
============== =============================
linear         1, x, y
quadratic      1, x, y, x², y², x·y
linear_range   1, x
linear_azimuth 1, y
quadratic_range   1, x, x²
quadratic_azimuth 1, y, y²
============== =============================

Pure numpy; no file is opened here (:meth:`RampSums.of_series` reads through the objects it is given).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from sbts.core.io.blocks import Block, pixel_bytes, plan_blocks_for

logger = logging.getLogger(__name__)

RAMP_TERMS: dict[str, tuple[str, ...]] = {
    "linear": ("1", "x", "y"),
    "quadratic": ("1", "x", "y", "x2", "y2", "xy"),
    "linear_range": ("1", "x"),
    "linear_azimuth": ("1", "y"),
    "quadratic_range": ("1", "x", "x2"),
    "quadratic_azimuth": ("1", "y", "y2"),
}
RAMP_KINDS: tuple[str, ...] = tuple(RAMP_TERMS)
_QTB_SLAB = 1 << 16  # samples per product of the shared ramp solve (see _solve_shared)


def num_coefficients(kind: str) -> int:
    """Number of coefficients of a ramp kind (3 for ``linear``, 6 for ``quadratic`` ...).

    Parameters
    ----------
    kind : str
        One of ``RAMP_KINDS``.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        An unknown kind.
    """
    return len(_terms(kind))


def _terms(kind: str) -> tuple[str, ...]:
    try:
        return RAMP_TERMS[kind]
    except KeyError:
        raise ValueError(f"unknown ramp kind {kind!r}; expected one of: {', '.join(RAMP_KINDS)}") from None


def design_matrix_ramp(shape_or_yx: tuple[int, int] | Sequence[np.ndarray], kind: str,
                       shape: tuple[int, int] | None = None, order: Literal["C", "F"] = "C") -> np.ndarray:
    """The ramp design matrix, one row per pixel (float64), in memory ``order`` (``"F"``: LAPACK's).

    ``shape_or_yx`` is either an image shape ``(L, W)`` (rows for every pixel, in C order) or a pair
    ``(y, x)`` of pixel-coordinate arrays (rows for those pixels).  Pixel coordinates are normalised
    by ``shape`` (the full image) — for an image shape by itself; for ``(y, x)`` without ``shape``
    the coordinates are used as given (already normalised).
    """
    if _is_shape(shape_or_yx):
        length, width = (int(v) for v in shape_or_yx)
        yy, xx = np.mgrid[0:length, 0:width]
        y, x = yy.ravel().astype(np.float64), xx.ravel().astype(np.float64)
        shape = (length, width) if shape is None else shape
    else:
        y, x = (np.asarray(v, np.float64).ravel() for v in shape_or_yx)
        if y.shape != x.shape:
            raise ValueError(f"y and x must have the same size ({y.size} != {x.size})")
    if shape is not None:
        y = y / max(int(shape[0]), 1)
        x = x / max(int(shape[1]), 1)
    return _columns(y, x, kind, order)


def _is_shape(value) -> bool:
    return (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, (int, np.integer)) for v in value))


def _term_values(y: np.ndarray, x: np.ndarray, kind: str) -> list:
    """The terms of ``kind`` at coordinates ``y``, ``x`` (arrays that broadcast); "1" is the scalar 1."""
    values = {"1": lambda: 1.0, "x": lambda: x, "y": lambda: y,
              "x2": lambda: x * x, "y2": lambda: y * y, "xy": lambda: x * y}
    return [values[t]() for t in _terms(kind)]


def _columns(y: np.ndarray, x: np.ndarray, kind: str, order: Literal["C", "F"] = "C") -> np.ndarray:
    """The design matrix of pixels ``y``, ``x`` (1-D), in memory ``order``.

    ``order="F"`` is LAPACK's layout: the QR of :func:`fit_ramps_samples` then starts from a plain
    copy instead of a transposing one (the values are the same either way).
    """
    terms = _term_values(y, x, kind)
    G = np.empty((x.size, len(terms)), order=order)
    for j, v in enumerate(terms):
        G[:, j] = v
    return G


def _solve_shared(G: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Least squares ``G c = rhs[i]`` for every row of ``rhs`` (n, npix): coefficients (n, k).

    By a thin QR of the (npix, k) design matrix, done once: c = R⁻¹ Qᵀ b costs one matrix product
    for all dates (an SVD-based ``lstsq`` with n right-hand sides took 5× longer on a megapixel).  A
    rank-deficient G (samples on one line, say) goes to ``lstsq`` for its minimum-norm solution.
    """
    q, r = np.linalg.qr(G)
    d = np.abs(np.diag(r))
    if d.size == 0 or d.min() <= 1e-10 * d.max():
        return np.linalg.lstsq(G, rhs.T.astype(np.float64, copy=False), rcond=None)[0].T
    # Qᵀb in float64 over slabs of samples: float32 samples are widened a slab at a time (a float64
    # copy of a million samples × 60 dates would be 480 MB)
    qtb = np.zeros((rhs.shape[0], q.shape[1]))
    for s0 in range(0, rhs.shape[1], _QTB_SLAB):
        qtb += rhs[:, s0:s0 + _QTB_SLAB].astype(np.float64, copy=False) @ q[s0:s0 + _QTB_SLAB]
    # R is upper triangular with a non-zero diagonal: its pivoted LU is R itself (nothing below the
    # diagonal to pivot or eliminate), so ``solve`` is a back-substitution as scipy's
    # ``solve_triangular`` (the same bits on a 1 Mpx × 60-date benchmark), without importing
    # scipy.linalg (0.4 s in a fresh process)
    return np.linalg.solve(r, qtb.T).T


def fit_ramps_samples(values: np.ndarray, y: np.ndarray, x: np.ndarray, shape: tuple[int, int],
                      kind: str) -> np.ndarray:
    """Ramp coefficients ``(n, k)`` fitted to ``values`` ``(n, npix)`` sampled at pixels ``(y, x)``.

    Dates whose samples are all finite share ONE least-squares solve (one factorisation of the
    ``(npix, k)`` matrix, ``n`` right-hand sides).  A date with NaN samples is solved alone on its
    finite samples; a date with fewer finite samples than coefficients gets NaN coefficients (with
    a warning) because its ramp is undetermined.

    Parameters
    ----------
    values : numpy.ndarray
        ``(n, npix)`` (or ``(npix,)`` for one date).
    y, x : numpy.ndarray
        Row and column of each sample.
    shape : tuple of int
        The full image (it fixes the coordinate normalisation).
    kind : str
        One of ``RAMP_KINDS``.

    Returns
    -------
    numpy.ndarray
        float64 ``(n, k)``, columns in the order of the module docstring.
    """
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[None, :]
    n, npix = values.shape
    k = num_coefficients(kind)
    coeffs = np.full((n, k), np.nan)
    if n == 0:
        return coeffs
    G = design_matrix_ramp((y, x), kind, shape=shape, order="F")  # LAPACK's layout: one copy less in the QR
    if G.shape[0] != npix:
        raise ValueError(f"{npix} samples per date but {G.shape[0]} pixel coordinates")
    # date by date: a (n, npix) boolean array would be one more large buffer to fault in
    complete = np.array([np.isfinite(v).all() for v in values], dtype=bool)
    if complete.any() and npix >= k:
        rhs = values if complete.all() else values[complete]  # no copy when every date is complete
        coeffs[complete] = _solve_shared(G, rhs)
    for i in np.flatnonzero(~complete | (npix < k)):
        rows = np.isfinite(values[i])
        if rows.sum() < k:
            logger.warning("ramp of date %d: %d valid pixel(s) for %d coefficients; left undetermined (NaN)",
                           i, int(rows.sum()), k)
            continue
        coeffs[i] = np.linalg.lstsq(G[rows], values[i, rows].astype(np.float64), rcond=None)[0]
    return coeffs


def fit_ramps(stack: np.ndarray, mask: np.ndarray | None, kind: str) -> np.ndarray:
    """Coefficients ``(n, k)`` of the ramp of each date of ``stack`` ``(n, L, W)`` on ``mask`` pixels.

    The same mask serves every date so all dates are solved together; NaN pixels of a date are left
    out of that date's fit only.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(n, L, W)`` (or one ``(L, W)`` image).
    mask : numpy.ndarray or None
        ``(L, W)`` bool, the pixels used (``None``: all).
    kind : str
        One of ``RAMP_KINDS``.

    Returns
    -------
    numpy.ndarray
        float64 ``(n, k)``.
    """
    stack = np.asarray(stack)
    if stack.ndim == 2:
        stack = stack[None]
    n, length, width = stack.shape
    if mask is None:
        mask = np.ones((length, width), bool)
    mask = np.asarray(mask, bool)
    if mask.shape != (length, width):
        raise ValueError(f"mask shape {mask.shape} differs from the image shape {(length, width)}")
    y, x = np.nonzero(mask)
    return fit_ramps_samples(stack[:, y, x], y, x, (length, width), kind)


def evaluate_ramps(coeffs: np.ndarray, shape: tuple[int, int], kind: str,
                   block: Block | None = None, dtype=np.float32) -> np.ndarray:
    """The ramps ``(n, h, w)`` of ``coeffs`` ``(n, k)`` over ``block`` of an image of ``shape``.

    Parameters
    ----------
    coeffs : numpy.ndarray
        ``(n, k)`` from :func:`fit_ramps` or :func:`fit_ramps_samples`.
    shape : tuple of int
        The full image (it fixes the normalisation).
    kind : str
        The kind the coefficients were fitted with.
    block : Block, optional
        The window to evaluate (``None``: the whole image), so ramps are removed block by block.
    dtype : numpy dtype
        Of the result.

    Returns
    -------
    numpy.ndarray
    """
    coeffs = np.atleast_2d(np.asarray(coeffs, np.float64))
    k = num_coefficients(kind)
    if coeffs.shape[1] != k:
        raise ValueError(f"{kind} ramps have {k} coefficients, got {coeffs.shape[1]}")
    ramp = BlockRamp(shape, kind, block)
    out = np.empty((coeffs.shape[0], *ramp.shape), dtype=dtype)
    if out.dtype == np.float64:
        for i, cf in enumerate(coeffs):
            ramp.evaluate(cf, out=out[i])
    else:
        layer = np.empty(ramp.shape)
        for i, cf in enumerate(coeffs):
            out[i] = ramp.evaluate(cf, out=layer)
    return out


class BlockRamp:
    """The ramp of any date over one block of an image, its terms computed once.

    Evaluating many dates over one block (deramping a time series) needs the terms (x, y, x², y²,
    x·y) once, not per date, and most terms are a row or a column: the running sum is kept as a
    row or a column while it can be, so a date costs a few full-block passes and no allocation.
    The terms are added in the documented column order, each as ``c·term``, so the result is the
    very same float64 sum as adding ``c·term`` to a zeroed layer one term after the other.

    Parameters
    ----------
    shape : tuple of int
        The full image (it fixes the normalisation).
    kind : str
        One of ``RAMP_KINDS``.
    block : Block, optional
        The window (``None``: the whole image).
    """

    def __init__(self, shape: tuple[int, int], kind: str, block: Block | None = None) -> None:
        length, width = int(shape[0]), int(shape[1])
        if block is None:
            block = Block(0, length, 0, width)
        self.kind = kind
        self.shape = block.shape
        y = (np.arange(block.row_start, block.row_stop, dtype=np.float64) / max(length, 1))[:, None]
        x = (np.arange(block.col_start, block.col_stop, dtype=np.float64) / max(width, 1))[None, :]
        self.terms = _term_values(y, x, kind)
        self._tmp: np.ndarray | None = None

    def evaluate(self, coeffs: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The ramp of one date's ``coeffs`` ``(k,)`` over the block, float64 ``(h, w)`` (into ``out``)."""
        if len(coeffs) != len(self.terms):
            raise ValueError(f"{self.kind} ramps have {len(self.terms)} coefficients, got {len(coeffs)}")
        if out is None:
            out = np.empty(self.shape)
        acc = np.float64(0.0)  # the running sum: a scalar, a row or a column until it must be a block
        full = False
        for c, v in zip(np.asarray(coeffs, np.float64), self.terms):
            if full and np.shape(v) == self.shape:
                if self._tmp is None:
                    self._tmp = np.empty(self.shape)
                out += np.multiply(v, c, out=self._tmp)
            elif full:
                out += c * v
            else:
                term = c * v
                if np.broadcast_shapes(np.shape(acc), np.shape(term)) == self.shape:
                    np.add(acc, term, out=out)
                    full = True
                else:
                    acc = acc + term
        if not full:
            out[...] = acc
        return out


class RampSums:
    """Least-squares ramps of every date from every pixel, given block by block: the normal equations.

    A ramp has a handful of coefficients, so its least-squares fit needs only ``GᵀG`` (k × k) and
    ``Gᵀv`` (k a date) summed over the samples: a fit on *every* mask pixel of an image of any size,
    in the memory of one block, where a QR solve would need every sample at once (MintPy fits on
    every mask pixel too).  The sums are in float64 and the coordinates are normalised (module
    docstring), so the normal matrix's condition number (the square of the design matrix's, ~1e4
    for a quadratic) costs nothing a float32 series can show.

    The sums are taken image row by image row and added in row order, so the coefficients do not
    depend on how the rows were split into blocks (the memory budget, the workers), as long as a
    block holds whole rows.  A sample that is NaN at some dates counts in the other dates only: its
    terms are summed apart for those dates and taken off their normal matrix.

    Parameters
    ----------
    num_date : int
        Dates (right-hand sides) fitted together.
    shape : tuple of int
        The full image (it fixes the coordinate normalisation).
    kind : str
        One of ``RAMP_KINDS``.
    """

    def __init__(self, num_date: int, shape: tuple[int, int], kind: str) -> None:
        self.kind = kind
        self.shape = (int(shape[0]), int(shape[1]))
        k = num_coefficients(kind)
        self.gram = np.zeros((k, k))
        self.rhs = np.zeros((num_date, k))
        self.count = 0
        self._nan_gram: np.ndarray | None = None  # (n, k, k): terms of the samples that are NaN at a date
        self._nan_count = np.zeros(num_date, np.int64)

    @classmethod
    def of_series(cls, ts: Any, read_mask: Callable[[Block], np.ndarray], kind: str,
                  max_memory: float, num_worker: int = 1, cluster: str | None = None) -> tuple[RampSums, bool]:
        """The sums over the valid mask pixels of a time series read block by block within
        ``max_memory`` GB (``ts``: a :class:`~sbts.core.io.products.TimeSeries`; ``read_mask(block)``:
        the mask's bool block), and whether the mask selects any pixel.  A pixel that is 0 at every
        date (no data) carries no ramp.  The reads are the callers' objects: this module opens no file.

        The blocks are read and their rows' terms formed (:func:`_row_terms`: the products with the
        series, the work) here, in a pool of ``num_worker`` processes or on dask (``cluster``; then
        ``ts`` and ``read_mask`` must pickle); the terms are added here in row order, so the sums are
        the same bits whoever formed them.

        Parameters
        ----------
        ts : TimeSeries
            ``shape``, ``dates``, ``read_dates(block)``, ``chunk_shape(name)``, ``dataset_name``.
        read_mask : callable
            The mask of a block (bool).
        kind : str
            One of ``RAMP_KINDS``.
        max_memory : float
            GB for a block.

        Returns
        -------
        tuple
            The sums, and whether the mask selects any pixel.
        """
        from sbts.core.compute.scheduling import memory_per_task, run_blocks

        n, shape = len(ts.dates), ts.shape
        sums = cls(n, shape, kind)
        any_mask = False
        # the block read (float32), its no-data test and a row's samples
        blocks = plan_blocks_for(shape, pixel_bytes(n, 4, copies=2), memory_per_task(max_memory, num_worker, cluster),
                                 ts.chunk_shape(ts.dataset_name))
        results = run_blocks(blocks, functools.partial(_read_masked_block, ts, read_mask),
                             functools.partial(_block_row_terms, n, shape, kind),
                             workers=num_worker, cluster=cluster, ordered=True)
        for _block, terms in results:
            if terms is None:  # the mask selects none of the block
                continue
            any_mask = True
            sums.add_rows(terms)
        return sums, any_mask

    def add_rows(self, terms: list[tuple]) -> None:
        """Add the terms of :func:`_row_terms` (in their order)."""
        n = self.rhs.shape[0]
        for gram, rhs, count, nan_terms in terms:
            self.gram += gram
            self.count += count
            self.rhs += rhs
            if not nan_terms:
                continue
            if self._nan_gram is None:
                self._nan_gram = np.zeros((n,) + self.gram.shape)
            for d, (gram_d, count_d) in nan_terms.items():
                self._nan_gram[d] += gram_d
                self._nan_count[d] += count_d

    def add(self, values: np.ndarray, mask: np.ndarray, block: Block) -> None:
        """Add the samples ``mask`` ``(h, w)`` of ``values`` ``(n, h, w)``, the dates of ``block``."""
        self.add_rows(_row_terms(self.rhs.shape[0], self.shape, self.kind, values, mask, block))

    def solve(self) -> np.ndarray:
        """float64 ``(n, k)``: each date's least-squares coefficients; NaN (with a warning) for a date
        with fewer valid samples than coefficients."""
        n, k = self.rhs.shape
        coeffs = np.full((n, k), np.nan)
        counts = self.count - self._nan_count
        for d in range(n):
            if counts[d] < k:
                logger.warning("ramp of date %d: %d valid pixel(s) for %d coefficients; left undetermined (NaN)",
                               d, int(counts[d]), k)
                continue
            gram = self.gram if self._nan_gram is None else self.gram - self._nan_gram[d]
            coeffs[d] = np.linalg.lstsq(gram, self.rhs[d], rcond=None)[0]
        return coeffs


def _row_terms(n: int, shape: tuple[int, int], kind: str, values: np.ndarray, mask: np.ndarray,
               block: Block) -> list[tuple]:
    """The terms of each row of ``block`` with mask samples, in row order: ``(GᵀG, vᵀG, count,
    {date: (G_nanᵀG_nan, count)})`` for the samples ``mask`` ``(h, w)`` of ``values`` ``(n, h, w)``
    (the last for the dates at which some of the row's samples are NaN).  A module function: it runs
    where the block was read (:meth:`RampSums.of_series`)."""
    if values.shape != (n,) + block.shape or mask.shape != block.shape:
        raise ValueError(f"values {values.shape} and mask {mask.shape} do not match {n} dates of block "
                         f"{block.shape}")
    terms = []
    for r in np.flatnonzero(mask.any(axis=1)):
        cols = np.flatnonzero(mask[r])
        v = values[:, r, cols]
        g = design_matrix_ramp((np.full(cols.size, block.row_start + r), cols + block.col_start), kind, shape=shape)
        finite = np.isfinite(v)
        nan_terms: dict[int, tuple[np.ndarray, int]] = {}
        if finite.all():
            rhs = v @ g  # float32 @ float64: summed in float64
        else:
            rhs = np.where(finite, v, 0) @ g
            for d in np.flatnonzero(~finite.all(axis=1)):
                gb = g[~finite[d]]
                nan_terms[int(d)] = (gb.T @ gb, gb.shape[0])
        terms.append((g.T @ g, rhs, cols.size, nan_terms))
    return terms


def _read_masked_block(ts: Any, read_mask: Callable[[Block], np.ndarray],
                       block: Block) -> tuple[np.ndarray, np.ndarray] | None:
    """The I/O of a block of :meth:`RampSums.of_series`: its mask and, when it selects a pixel, its dates."""
    m = read_mask(block)
    if not m.any():
        return None
    return m, ts.read_dates(block)


def _block_row_terms(n: int, shape: tuple[int, int], kind: str, block: Block,
                     inputs: tuple[np.ndarray, np.ndarray] | None) -> list[tuple] | None:
    """The rows' terms of a block (None: the mask selects none of it)."""
    if inputs is None:
        return None
    m, layers = inputs
    return _row_terms(n, shape, kind, layers, m & layers.any(axis=0), block)


def evaluate_ramps_at(coeffs: np.ndarray, y: int, x: int, shape: tuple[int, int], kind: str) -> np.ndarray:
    """The ramp value of every date at pixel ``(y, x)`` (e.g. the reference pixel).

    Parameters
    ----------
    coeffs : numpy.ndarray
        ``(n, k)``.
    y, x : int
        The pixel.
    shape : tuple of int
        The full image.
    kind : str

    Returns
    -------
    numpy.ndarray
        float64 ``(n,)``.
    """
    G = design_matrix_ramp((np.array([y]), np.array([x])), kind, shape=shape)
    return (np.atleast_2d(np.asarray(coeffs, np.float64)) @ G.T)[:, 0]


__all__ = ["RAMP_KINDS", "BlockRamp", "RampSums", "design_matrix_ramp", "fit_ramps", "fit_ramps_samples", "evaluate_ramps",
           "evaluate_ramps_at", "num_coefficients"]
