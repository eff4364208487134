"""Batched SBAS network inversion of a block of pixels (pure array kernels, no I/O).

For every pixel the interferometric phases φ (one per pair) are inverted for the phase time series
with the small-baseline design matrices (Berardino et al. 2002)::

    phase form     A φ_ts = φ     A[i, d1] = −1, A[i, d2] = +1, first-date column removed
    velocity form  B v = φ        B[i, k] = t_{k+1} − t_k for the intervals k covered by pair i,
                                  φ_ts[k] = Σ_{j<k} v_j (t_{j+1} − t_j)

solved in the (weighted) least-squares, minimum-norm sense — the numbers MintPy gets from
``scipy.linalg.lstsq(W^½ G, W^½ φ, cond=rcond)`` pixel by pixel — but without a per-pixel loop:

1. Unweighted pixels sharing a validity pattern (most pixels share the full one) share the
   network, so its minimum-norm operator T = pinv(G) (mapped to the time series) is computed once
   per pattern and applied with one matrix product.  Exact lstsq semantics, rcond included.
2. All other pixels (weighted, or rare patterns) are solved through the normal equations of the
   phase form, AᵀWA x = AᵀWφ.  AᵀWA is the weighted Laplacian of the pixel's network grounded at
   the first date; with dates sorted it is banded, bandwidth b = max(date2 − date1).  It is
   factorised by a banded LDLᵀ written as a loop over dates with vector operations over pixels
   (cost ∝ n·b² per pixel, low Python overhead because each step updates whole band slices).
   The elimination is done the Grassmann–Taksar–Heyman way: a pivot is not computed as
   ``diagonal − update`` but as the sum of the remaining off-diagonal weights plus the weight
   tying the node to the first date, all non-negative terms.  So there is no cancellation, the
   factorisation is accurate for any weight ratio, and a pivot is *exactly* zero if and only if the
   node closes a group of dates disconnected from the first date (a rank deficiency).
3. Rank-deficient pixels (network disconnected for that pixel) get a particular solution from the
   same factorisation (each floating group pinned at one date) and are then projected onto the
   orthogonal complement of the null space of the chosen form, which is exactly the minimum-norm
   solution: for the phase form every floating group is shifted to zero mean; for the velocity
   form the null space is spanned by the velocity patterns D⁻¹Δ1_C of the floating groups C and a
   tiny (groups × groups) least-squares projection is solved per pixel.  The groups come from the
   elimination tree of the factorisation (no graph search).

For a pixel connected to the first date both forms have the same unique solution, so only the
rank-deficient pixels depend on ``min_norm_velocity``.  Temporal coherence (Pepe & Lanari 2006)
uses the unweighted residual of the used pairs.  All arithmetic is float64, outputs are float32.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["InversionResult", "NsbasModel", "invert_block", "design_matrix_phase", "design_matrix_velocity",
           "nsbas_design", "L1_TOL", "L1_MAX_ITER", "L1_DELTA", "ROBUST_SCREEN", "ROBUST_THRESHOLD", "ROBUST_Z"]

# Working-memory target for one internal chunk of pixels (bytes).
_CHUNK_BYTES = 192 * 1024**2
# Size of one (pair × pixel) float64 slab of the cache-resident passes (the complete-pixel lane and
# the temporal coherence): each slab is read from memory once and then stays in the CPU caches.
_SLAB_BYTES = 1 << 20
_TWO_PI = 2.0 * np.pi
# A validity pattern shared by at least this many unweighted pixels gets its own pinv operator
# (one SVD ≈ the cost of the banded solve for a few hundred pixels).
_MIN_PATTERN_PIXELS = 256
# Pattern operators kept per call (bounded so pathological inputs cannot blow memory).
_MAX_PATTERN_CACHE = 64
# L1 (IRLS) stopping rule (see _Context._irls_l1): δ, which floors |r| in the reweighting
# s/max(|r|, δ), starts at L1_DELTA_START and drops 10× whenever an iteration gains less than
# L1_STAGE_TOL of the smoothed objective, down to L1_DELTA; there a pixel stops when an iteration
# gains less than L1_TOL (or nothing); at most L1_MAX_ITER iterations.  The smoothed objective is
# within δ·Σs/2 of the L1 objective.
L1_TOL = 3e-5
L1_MAX_ITER = 60
L1_DELTA = 3e-4
L1_DELTA_START = 1e-1
L1_STAGE_TOL = 3e-2
# extrapolation factor of the IRLS step (start, cap); see _Context._irls_l1
L1_EXTRAPOLATE = 1.0
L1_EXTRAPOLATE_MAX = 8.0
NSBAS_MODELS = ("linear", "seasonal")
# screened least squares: the least-squares residuals are screened at this fraction of the threshold
# (see _Context._screen_scale)
ROBUST_SCREEN = 0.5
# ... and, for weighted pixels, at this many standard deviations (√w·|r|, w ≈ 1/σ² for var/fim weights)
ROBUST_Z = 4.0
# default threshold (rad) of the screened least squares (sbts.robust.threshold = auto)
ROBUST_THRESHOLD = 5.0

# pixels per IRLS batch (see _Context.invert_chunk)
_L1_SLAB = 2048
_NSBAS_REFINE = 2


@dataclass(frozen=True)
class NsbasModel:
    """The NSBAS temporal constraint (López-Quiroz et al. 2009; Doin et al. 2011).

    ``gamma`` is the constraint weight relative to the pixel's mean pair weight: the rows
    γ·√w̄ (φ_ts(t_k) − M_k p) = 0 for every date join the interferogram rows √w (Aφ_ts − φ),
    with the model M p = c + v t (``linear``) or + a sin 2πt + b cos 2πt (``seasonal``).
    """

    gamma: float = 1e-4
    model: str = "linear"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.gamma) and self.gamma > 0):
            raise ValueError(f"NSBAS gamma must be a positive number, got {self.gamma}")
        if self.model not in NSBAS_MODELS:
            raise ValueError(f"NSBAS model {self.model!r} is not one of {', '.join(NSBAS_MODELS)}")


def nsbas_design(tbase, model: str) -> np.ndarray:
    """(num_date, q) temporal model of the NSBAS constraint: [1, t] or [1, t, sin 2πt, cos 2πt]."""
    t = np.asarray(tbase, dtype=np.float64)
    cols = [np.ones_like(t), t]
    if model == "seasonal":
        cols += [np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)]
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class InversionResult:
    """Result of :func:`invert_block` for one block of pixels."""

    timeseries: np.ndarray  # (num_date, npix) float32, radians, first date = 0
    temporal_coherence: np.ndarray  # (npix,) float32
    num_inv_ifgram: np.ndarray  # (npix,) int16 — number of interferograms used per pixel
    # (npix,) int16 — intervals between consecutive dates spanned by no used pair (network gaps)
    num_gap: np.ndarray | None = None
    # (num_date, num_date, npix) float32, rad² — covariance of the time series from the pair phase
    # variances (when ``variance`` is given); NaN on pixels left empty
    covariance: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# design matrices
# --------------------------------------------------------------------------------------------
def design_matrix_phase(date1_index, date2_index, num_date: int) -> np.ndarray:
    """A (num_pair, num_date−1): −1 at date1, +1 at date2, first-date column removed."""
    d1 = np.asarray(date1_index, dtype=np.intp)
    d2 = np.asarray(date2_index, dtype=np.intp)
    m = d1.size
    A = np.zeros((m, int(num_date)), dtype=np.float64)
    rows = np.arange(m)
    A[rows, d1] = -1.0
    A[rows, d2] = 1.0
    return A[:, 1:]


def design_matrix_velocity(date1_index, date2_index, tbase) -> np.ndarray:
    """B (num_pair, num_date−1): B[i, k] = t_{k+1} − t_k for the intervals k between date1 and date2.

    Pairs given out of time order get the negative sign (phase of date2 − date1).
    """
    d1 = np.asarray(date1_index, dtype=np.intp)
    d2 = np.asarray(date2_index, dtype=np.intp)
    t = np.asarray(tbase, dtype=np.float64)
    dt = np.diff(t)
    k = np.arange(dt.size)
    lo, hi = np.minimum(d1, d2), np.maximum(d1, d2)
    cover = (k[None, :] >= lo[:, None]) & (k[None, :] < hi[:, None])
    sign = np.where(d2 >= d1, 1.0, -1.0)[:, None]
    return cover * dt[None, :] * sign


def _ts_from_velocity_matrix(dt: np.ndarray) -> np.ndarray:
    """(n−1, n−1) lower-triangular C with ts[1:] = C v, C[k, j] = Δt_j for j ≤ k."""
    return np.tril(np.ones((dt.size, dt.size))) * dt[None, :]


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------
def invert_block(
    phase: np.ndarray,
    date1_index: np.ndarray,
    date2_index: np.ndarray,
    tbase: np.ndarray,
    weight: np.ndarray | None = None,
    min_norm_velocity: bool = True,
    min_redundancy: float = 1.0,
    rcond: float = 1e-5,
    residual_norm: str = "L2",
    nsbas: NsbasModel | None = None,
    variance: np.ndarray | None = None,
    robust: float | None = None,
    float64: bool = False,
) -> InversionResult:
    """Invert a block of unwrapped interferogram phases for the phase time series.

    Parameters
    ----------
    phase : (num_pair, npix) phases in radians; NaN = missing (the caller turns no-data 0 into NaN).
    date1_index, date2_index : (num_pair,) indices into the sorted date list, date2 > date1.
    tbase : (num_date,) years since the first date, strictly increasing.
    weight : (num_pair, npix) weights w (not square roots), or None for ordinary least squares.
        Pairs with a non-finite or non-positive weight are dropped like NaN phases.
    min_norm_velocity : minimum-norm velocity (classic SBAS, default) or minimum-norm phase;
        they differ only for pixels whose network is disconnected.
    min_redundancy : a pixel is left empty (zeros, coherence 0, count 0) when any date other than
        the first (reference) one is touched by fewer valid pairs than this (MintPy's rule on the
        columns of the reduced design matrix).
    rcond : relative singular-value cutoff of the least-squares solve (``scipy.linalg.lstsq`` cond).
        Applied exactly on the per-pattern operators; on the normal-equation path structural rank
        deficiencies are handled exactly and the conditioning is far from 1/rcond in practice.
    residual_norm : ``"L2"`` (least squares) or ``"L1"``: minimise Σ √w |φ − Aφ_ts| per pixel by
        iteratively reweighted least squares started from the L2 solution (stopping rule:
        :data:`L1_TOL`, :data:`L1_MAX_ITER`; see docs/inversion.md).
    nsbas : the NSBAS constraint for pixels whose network has gaps (None: minimum-norm solution).
        Pixels with a connected network are solved without it (the constraint changes them by
        O(γ²), below float32).
    variance : (num_pair, npix) phase variance σ² (rad²) of each pair (decorrelation noise), or None.
        When given, the covariance of the estimated time series is propagated: Σ_ts = H diag(σ²) Hᵀ
        with H the pixel's linear estimator (weighted, minimum-norm or NSBAS); for ``weight = 1/σ²``
        and a connected network that is (AᵀWA)⁻¹.  For L1 it is the L2 covariance times π/2 (the
        asymptotic variance ratio of the L1 and L2 estimators under Gaussian noise).
    robust : threshold τ (rad) of the screened least squares (``sbts.robust``), or None (off).
        Least squares as above; a pixel with a used pair whose residual r passes the screen
        (|r| > :data:`ROBUST_SCREEN` · τ and, weighted, √w·|r| > :data:`ROBUST_Z`) is re-fitted by
        L1 (the IRLS of ``residual_norm = "L1"``), the pairs whose L1 residual exceeds τ (a 2π
        unwrapping error leaves ≈ 2π) are dropped and the rest fitted by least squares again.
        A drop that would open a gap in the pixel's network or break ``min_redundancy`` is not
        made (that pixel keeps its least-squares solution).  Pixels that do not pass the screen
        keep the least-squares solution exactly.  Only with ``residual_norm = "L2"``.  The
        covariance and the number of used pairs are those of the final fit.
    float64 : return the time series in float64, as solved (for what is kept of it beside the
        float32 output: the exact update's store, see :mod:`sbts.core.inversion.incremental`);
        its float32 cast is the float32 result bit for bit.

    Returns
    -------
    InversionResult with timeseries (num_date, npix) float32 (first date 0), temporal coherence
    (npix,) float32, number of used interferograms (npix,) int16 and number of gaps (npix,) int16.
    """
    if residual_norm not in ("L1", "L2"):
        raise ValueError(f"residual_norm must be L1 or L2, got {residual_norm!r}")
    if robust is not None and (residual_norm != "L2" or not robust > 0):
        raise ValueError(f"robust must be a positive threshold (rad) with residual_norm L2, got {robust!r}")
    phase = np.asarray(phase)
    d1 = np.asarray(date1_index)
    d2 = np.asarray(date2_index)
    t = np.asarray(tbase, dtype=np.float64)
    _validate(phase, d1, d2, t, weight)
    d1 = d1.astype(np.intp)
    d2 = d2.astype(np.intp)
    m, npix = phase.shape
    n = t.size
    if weight is not None:
        weight = np.asarray(weight)

    ts_out = np.zeros((n, npix), dtype=np.float64 if float64 else np.float32)
    tcoh_out = np.zeros(npix, dtype=np.float32)
    ninv_out = np.zeros(npix, dtype=np.int16)
    gap_out = np.zeros(npix, dtype=np.int16)
    cov_out = None
    if variance is not None:
        variance = np.asarray(variance)
        if variance.shape != phase.shape:
            raise ValueError(f"variance shape {variance.shape} differs from phase shape {phase.shape}")
        cov_out = np.full((n, n, npix), np.nan, dtype=np.float32)
    if npix == 0 or m == 0:
        return InversionResult(ts_out, tcoh_out, ninv_out, gap_out, cov_out)

    ctx = _Context(d1, d2, t, min_norm_velocity, float(min_redundancy), float(rcond), residual_norm, nsbas,
                   robust)
    rest = None  # all pixels
    flagged = []  # screened least squares: the pixels whose residuals went beyond the screen
    if (weight is None and variance is None and ctx.full_network_ok and residual_norm == "L2"
            and not (nsbas and ctx.full_gaps)):
        rest, flag = ctx.solve_complete(phase, ts_out, tcoh_out, ninv_out)
        if flag.size:
            flagged.append(flag)
        gap_out[:] = ctx.full_gaps
        if rest.size == npix:
            rest = None
    total = npix if rest is None else rest.size
    chunk = ctx.chunk_size(weighted=weight is not None, covariance=variance is not None)
    for start in range(0, total, chunk):
        cols = slice(start, min(start + chunk, total)) if rest is None else rest[start:start + chunk]
        w_chunk = None if weight is None else weight[:, cols]
        v_chunk = None if variance is None else variance[:, cols]
        ts, tcoh, ninv, ngap, cov, flag = ctx.invert_chunk(phase[:, cols], w_chunk, v_chunk)
        if cov_out is not None:
            cov_out[:, :, cols] = cov
        ts_out[1:, cols] = ts
        tcoh_out[cols] = tcoh
        ninv_out[cols] = ninv
        gap_out[cols] = ngap
        if flag is not None and flag.size:
            flagged.append(start + flag if rest is None else rest[start + flag])
    if flagged:
        # all flagged pixels of the block together: the L1 iterations cost per pass, not per pixel
        _refit_flagged(ctx, np.concatenate(flagged), phase, weight, variance, chunk,
                       ts_out, tcoh_out, ninv_out, cov_out)
    return InversionResult(ts_out, tcoh_out, ninv_out, gap_out, cov_out)


def _refit_flagged(ctx, flagged, phase, weight, variance, chunk, ts_out, tcoh_out, ninv_out, cov_out) -> None:
    """Second pass of the screened least squares on the flagged pixels, outputs updated in place."""
    refitted = dropped = 0
    for start in range(0, flagged.size, chunk):
        cols = flagged[start:start + chunk]
        ph = phase[:, cols]
        wt = None if weight is None else weight[:, cols]
        drop = ctx.cycle_errors(ph, wt, ts_out[1:, cols])
        sel = np.flatnonzero(drop.any(axis=0))
        if not sel.size:
            continue
        c = cols[sel]
        ts, tcoh, ninv, _, cov, _ = ctx.invert_chunk(
            ph[:, sel], None if wt is None else wt[:, sel], None if variance is None else variance[:, c],
            drop=drop[:, sel])
        ts_out[1:, c] = ts
        tcoh_out[c] = tcoh
        ninv_out[c] = ninv
        if cov_out is not None:
            cov_out[:, :, c] = cov
        refitted += sel.size
        dropped += int(np.count_nonzero(drop))
    logger.debug("screened least squares: %d pixel(s) beyond %.3g rad, %d re-fitted without %d pair(s)",
                 flagged.size, ctx.robust_screen, refitted, dropped)


def _used_pairs(phase, weight) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(φ float64 copy, valid (m, k), w float64 copy or None): a pair is used where its phase is
    finite and, weighted, its weight positive and finite."""
    phi = np.array(phase, dtype=np.float64)
    valid = np.isfinite(phi)
    if weight is None:
        return phi, valid, None
    w = np.array(weight, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        valid &= (w > 0) & (w < np.inf)  # NaN compares False
    return phi, valid, w


def _validate(phase, d1, d2, t, weight) -> None:
    if phase.ndim != 2:
        raise ValueError(f"phase must be 2-D (num_pair, npix), got shape {phase.shape}")
    m = phase.shape[0]
    if d1.shape != (m,) or d2.shape != (m,):
        raise ValueError(f"date1_index/date2_index must have shape ({m},), got {d1.shape} and {d2.shape}")
    if t.ndim != 1 or t.size < 2:
        raise ValueError("tbase must be 1-D with at least 2 dates")
    if not np.all(np.diff(t) > 0):
        raise ValueError("tbase must be strictly increasing")
    if m and not (np.issubdtype(d1.dtype, np.integer) and np.issubdtype(d2.dtype, np.integer)):
        raise ValueError("date indices must be integers")
    if m and (d1.min() < 0 or d2.max() >= t.size or np.any(d2 <= d1)):
        raise ValueError("date indices must satisfy 0 <= date1 < date2 < num_date")
    if weight is not None and np.shape(weight) != phase.shape:
        raise ValueError(f"weight shape {np.shape(weight)} differs from phase shape {phase.shape}")


# --------------------------------------------------------------------------------------------
# implementation
# --------------------------------------------------------------------------------------------
class _Context:
    """Network constants shared by all chunks of one call, plus the per-pattern operator cache."""

    def __init__(self, d1, d2, t, min_norm_velocity, min_redundancy, rcond, residual_norm="L2", nsbas=None,
                 robust=None):
        self.d1, self.d2, self.t = d1, d2, t
        self.m, self.n = d1.size, t.size
        self.dt = np.diff(t)
        self.velocity = bool(min_norm_velocity)
        self.min_redundancy = min_redundancy
        self.rcond = rcond
        self.bw = int((d2 - d1).max())
        self.A = design_matrix_phase(d1, d2, self.n)
        self.G = design_matrix_velocity(d1, d2, t) if self.velocity else self.A
        self.C = _ts_from_velocity_matrix(self.dt)
        self._ops: dict[bytes, np.ndarray] = {}
        self.groups = self._span_groups()
        # redundancy of the full network (the pixels with all pairs valid)
        full_count = np.bincount(d1, minlength=self.n) + np.bincount(d2, minlength=self.n)
        self.full_network_ok = bool((full_count[1:] >= min_redundancy).all())
        self.l1 = residual_norm == "L1"
        self.l1_iterations = 0  # most IRLS iterations any chunk needed (diagnostics)
        self.robust = None if robust is None else float(robust)
        # LS residuals are screened at a fraction of τ: a pair off by one cycle leaves 2π(1 − h) in
        # the LS residual (h: its leverage), ≈ 2π in the L1 residual
        self.robust_screen = 0.0 if robust is None else ROBUST_SCREEN * float(robust)
        self.nsbas = nsbas
        self.M = nsbas_design(t, nsbas.model) if nsbas is not None else None
        # cover[i, k]: pair i spans the interval between dates k and k+1
        k = np.arange(self.n - 1)
        self.cover = ((k[None, :] >= d1[:, None]) & (k[None, :] < d2[:, None])).astype(np.float32)
        self.full_gaps = int(np.count_nonzero(self.cover.sum(axis=0) == 0))

    def _span_groups(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
        """(pair, date1, date2) index arrays of the pairs grouped by span date2 − date1.

        Within a group a date is date1 of at most one pair and date2 of at most one pair, so
        per-date sums over a group are fancy-indexed additions without repeated indices.
        ``None`` when a pair is repeated.
        """
        d1, d2 = self.d1, self.d2
        if np.unique(d1 * self.n + d2).size < self.m:
            return None
        span = d2 - d1
        rows = [np.flatnonzero(span == a) for a in np.unique(span)]
        return [(r, d1[r], d2[r]) for r in rows]

    def _redundancy(self, valid) -> np.ndarray:
        """(n, k) number of valid pairs touching each date."""
        count = np.zeros((self.n, valid.shape[1]), dtype=np.int32)
        if self.groups is None:
            for i in range(self.m):
                count[self.d1[i]] += valid[i]
                count[self.d2[i]] += valid[i]
            return count
        for rows, g1, g2 in self.groups:
            v = valid[rows]
            count[g1] += v
            count[g2] += v
        return count

    def chunk_size(self, weighted: bool, covariance: bool = False) -> int:
        per_pix = 8 * (6 * self.m + self.n * (self.bw + 4))
        if covariance:
            per_pix += 8 * 4 * self.n * self.n
        return int(np.clip(_CHUNK_BYTES // per_pix, 256, 1 << 16))

    def slab_width(self) -> int:
        return int(np.clip(_SLAB_BYTES // (8 * self.m), 16, 1 << 14))

    # ---------------------------------------------------------------- complete pixels, in cache
    def solve_complete(self, phase, ts_out, tcoh_out, ninv_out) -> tuple[np.ndarray, np.ndarray]:
        """Unweighted pixels with every pair valid, slab by slab; returns the indices of the others
        and, with ``robust``, of the solved pixels whose residuals pass the screen.

        Most pixels of a stack use every pair, so they share one operator (the full network's
        minimum-norm inverse): per slab of columns, one cast, one BLAS product and the coherence,
        all on data that stays in the CPU caches.  Outputs are written into the ``*_out`` arrays.
        """
        m, npix = phase.shape
        op = self._pattern_operator(np.ones(m, dtype=bool))
        width = self.slab_width()
        phi = np.empty((m, width))
        tsf = np.zeros((self.n, width))  # date 0 stays 0
        ones = np.ones(m)
        work = _CoherenceWork(m, width)
        others, flagged = [], []
        screen = None if self.robust is None else self._screen_scale(None)
        if screen is not None:
            screen.max_scaled = np.zeros(width)
        for s0 in range(0, npix, width):
            s1 = min(s0 + width, npix)
            k = s1 - s0
            P, TS = phi[:, :k], tsf[:, :k]
            P[...] = phase[:, s0:s1]
            complete = np.isfinite(ones @ P)  # any NaN/inf makes the column sum non-finite
            if not complete.any():
                others.append(np.arange(s0, s1))
                continue
            with np.errstate(invalid="ignore", over="ignore"):  # incomplete columns are discarded
                TS[1:] = op @ P
                coh = self._coherence_sum(P, TS, None, None, work,
                                          None if screen is None else screen.slab(0, k)) / m
            if screen is not None:
                flagged.append(s0 + np.flatnonzero(complete & (screen.slab(0, k)[1] > 1.0)))
            if complete.all():
                ts_out[1:, s0:s1] = TS[1:]
                tcoh_out[s0:s1] = coh
                ninv_out[s0:s1] = m
            else:
                idx = np.flatnonzero(complete)
                ts_out[1:, s0 + idx] = TS[1:, idx]
                tcoh_out[s0 + idx] = coh[idx]
                ninv_out[s0 + idx] = m
                others.append(s0 + np.flatnonzero(~complete))
        none = np.zeros(0, dtype=np.intp)
        return (np.concatenate(others) if others else none), (np.concatenate(flagged) if flagged else none)

    # ---------------------------------------------------------------- chunk driver
    def invert_chunk(self, phase, weight, variance=None, drop=None):
        """Solve a chunk of pixels: (ts (n−1, k) float64, tcoh, ninv, ngap, cov, flagged).

        ``drop`` (m, k) bool: pairs left out of the solve (the screened least squares' second
        pass) but kept in the temporal coherence.  ``flagged``: with ``robust``, the indices of
        the pixels whose residuals go beyond the screen (first pass), else None.
        """
        m, n = self.m, self.n
        k = phase.shape[1]
        phi, valid, w = _used_pairs(phase, weight)
        coh_phi = coh_invalid = None
        if drop is not None:  # the coherence sees every used pair, the solve not the dropped ones
            coh_invalid = ~valid
            coh_phi = np.where(coh_invalid, 0.0, phi)
            coh_num = m - np.count_nonzero(coh_invalid, axis=0)
            valid &= ~drop
        invalid = ~valid
        np.copyto(phi, 0.0, where=invalid)
        num_used = m - np.count_nonzero(invalid, axis=0)
        full = num_used == m

        # MintPy's redundancy rule: every column of the reduced A (dates 1..n−1) needs enough pairs.
        ok = full & self.full_network_ok
        part = np.flatnonzero(~full)
        if part.size:
            count = self._redundancy(valid[:, part])
            ok[part] = (count[1:] >= self.min_redundancy).all(axis=0) & (num_used[part] > 0)

        # a pixel with every pair has the full network's gaps: the coverage product only for the others
        gaps = np.full(k, self.full_gaps, dtype=np.intp)
        if part.size:
            gaps[part] = self._num_gaps(valid[:, part])
        nsb = ok & (gaps > 0) if self.nsbas is not None else np.zeros(k, dtype=bool)
        todo = np.flatnonzero(ok & ~nsb)
        if w is None and todo.size and drop is None:  # second pass: per pixel, whatever its chunk
            ts, todo = self._solve_patterns(phi, valid, full, ok & ~nsb, todo)
        else:
            ts = np.zeros((n - 1, k), dtype=np.float64)
        if w is not None:
            np.copyto(w, 0.0, where=invalid)
        if todo.size:
            if w is None:
                wsub = valid[:, todo] if todo.size < k else valid  # bool: phi is 0 where False
            else:
                wsub = w[:, todo] if todo.size < k else w
            ts[:, todo] = self._solve_normal(phi[:, todo] if todo.size < k else phi, wsub)
        if nsb.any():
            cols = np.flatnonzero(nsb)
            wn = valid[:, cols].astype(np.float64) if w is None else w[:, cols]
            ts[:, cols] = self._solve_nsbas(phi[:, cols], wn)
        if self.l1:
            cols = np.flatnonzero(ok)
            if cols.size:
                # in slabs of pixels whose (pair × pixel) arrays stay in the CPU caches: the
                # iterations make tens of passes over them (pixels are independent: same result)
                for c0 in range(0, cols.size, _L1_SLAB):
                    cc = cols[c0:c0 + _L1_SLAB]
                    s = valid[:, cc].astype(np.float64) if w is None else np.sqrt(w[:, cc])
                    ts[:, cc] = self._irls_l1(phi[:, cc], s, ts[:, cc], nsb[cc])
        flagged = screen = None
        if self.robust is not None and drop is None:
            screen = self._screen_scale(w)
        if drop is None:
            tcoh = self._temporal_coherence(phi, invalid, ts, num_used, screen)
            if screen is not None:
                assert screen.max_scaled is not None  # filled by the coherence pass
                flagged = np.flatnonzero(ok & (screen.max_scaled > 1.0))
        else:  # a dropped pair is off by a cycle: its wrapped residual is as small as a used pair's,
            # so the temporal coherence (MintPy's definition) keeps it
            tcoh = self._temporal_coherence(coh_phi, coh_invalid, ts, coh_num)
        tcoh[~ok] = 0.0
        ts[:, ~ok] = 0.0
        ninv = np.where(ok, num_used, 0).astype(np.int16)
        ngap = np.where(ok, gaps, 0).astype(np.int16)
        cov = None
        if variance is not None:
            cov = np.full((n, n, k), np.nan, dtype=np.float32)
            cols = np.flatnonzero(ok)
            if cols.size:
                wt = valid[:, cols].astype(np.float64) if w is None else w[:, cols]
                var = np.where(valid[:, cols], np.asarray(variance[:, cols], dtype=np.float64), 0.0)
                c = self._covariance(wt, var, gaps[cols] > 0, nsb[cols])
                if self.l1:
                    c *= np.pi / 2
                cov[1:, 1:, cols] = c.transpose(1, 2, 0)
                cov[0, :, cols] = 0.0
                cov[:, 0, cols] = 0.0
        return ts, tcoh, ninv, ngap, cov, flagged  # cast by the caller's output array

    # ---------------------------------------------------------------- covariance
    def _dense_laplacian(self, w) -> np.ndarray:
        """(k, n−1, n−1) AᵀWA for weights w (m, k): the grounded weighted Laplacian, O(m) vector ops."""
        m, k = w.shape
        n1 = self.n - 1
        N = np.zeros((k, n1, n1))
        diag = np.zeros((n1, k))
        for i in range(m):
            u2 = self.d2[i] - 1
            diag[u2] += w[i]
            if self.d1[i] > 0:
                u1 = self.d1[i] - 1
                diag[u1] += w[i]
                N[:, u1, u2] -= w[i]
                N[:, u2, u1] -= w[i]
        N[:, np.arange(n1), np.arange(n1)] = diag.T
        return N

    def _covariance(self, w, var, singular, nsb) -> np.ndarray:
        """(k, n−1, n−1) covariance H diag(σ²) Hᵀ of each pixel's estimate (w = 0 on dropped pairs).

        Connected pixels: H = N⁻¹AᵀW with N = AᵀWA, so Σ = N⁻¹(Aᵀ W diag(σ²) W A)N⁻¹, dense and
        batched.  Pixels with gaps (minimum-norm or NSBAS estimate): H is built column by column by
        solving for unit phases e_i with the same solver (linear in the phases), m solves per pixel.
        """
        m, k = w.shape
        n1 = self.n - 1
        out = np.empty((k, n1, n1))
        reg = np.flatnonzero(~singular)
        step = max(1, int(_CHUNK_BYTES // (8 * 5 * n1 * n1)))
        for s0 in range(0, reg.size, step):
            idx = reg[s0:s0 + step]
            wi, vi = w[:, idx], var[:, idx]
            N = self._dense_laplacian(wi)
            # w = 1/σ² on every used pair (var weights): Σ = N⁻¹; decided per pixel, so that a
            # pixel's result does not depend on its neighbours in the batch
            inverse = np.all((np.abs(wi * vi - 1.0) <= 1e-5) | (wi <= 0), axis=0)
            if inverse.any():
                out[idx[inverse]] = np.linalg.inv(N[inverse])
            if not inverse.all():
                g = ~inverse
                B = self._dense_laplacian(wi[:, g] * wi[:, g] * vi[:, g])  # AᵀW diag(σ²) WA
                X = np.linalg.solve(N[g], B)  # N⁻¹B
                out[idx[g]] = np.linalg.solve(N[g], X.transpose(0, 2, 1))  # N⁻¹(N⁻¹B)ᵀ = N⁻¹BN⁻¹
        sing = np.flatnonzero(singular)
        step = max(1, int(_CHUNK_BYTES // (8 * m * (4 * m + 2 * n1))))
        eye = np.eye(m)
        for s0 in range(0, sing.size, step):
            idx = sing[s0:s0 + step]
            b = idx.size
            phi = np.tile(eye, b)  # (m, b·m): pixel j's unit phases in columns j·m … j·m+m−1
            wr = np.repeat(w[:, idx], m, axis=1)
            H = self._solve_ls(phi, wr, np.repeat(nsb[idx], m))  # (n−1, b·m)
            H = H.reshape(n1, b, m).transpose(1, 0, 2)  # (b, n−1, m)
            out[idx] = np.matmul(H * var[:, idx].T[:, None, :], H.transpose(0, 2, 1))
        return out

    # ---------------------------------------------------------------- screened least squares
    def _residual(self, phi, xf) -> np.ndarray:
        """(m, k) φ − Aφ_ts for ``xf`` (n, k), the time series with the first date (0)."""
        r = phi - xf[self.d2]
        r += xf[self.d1]
        return r

    def cycle_errors(self, phase, weight, ts) -> np.ndarray:
        """(m, k) pairs to drop: used pairs whose L1 residual exceeds τ (the screened least squares).

        The L1 fit (IRLS, as for ``residual_norm = "L1"``, same weights √w) starts from the
        least-squares solution ``ts`` (n−1, k).  A pixel's drops are all cancelled when they would
        open a gap in its network or break the redundancy rule: an error on a pair nothing else
        constrains cannot be told from signal.
        """
        assert self.robust is not None
        tau = self.robust
        phi, valid, w = _used_pairs(phase, weight)
        s = valid.astype(np.float64) if w is None else np.sqrt(np.where(valid, w, 0.0))
        np.copyto(phi, 0.0, where=~valid)
        gaps = self._num_gaps(valid)
        nsb = gaps > 0 if self.nsbas is not None else np.zeros(phi.shape[1], dtype=bool)
        drop = np.zeros(phi.shape, dtype=bool)
        for c0 in range(0, phi.shape[1], _L1_SLAB):
            cc = slice(c0, min(c0 + _L1_SLAB, phi.shape[1]))
            x1 = self._irls_l1(phi[:, cc], s[:, cc], np.asarray(ts[:, cc], dtype=np.float64), nsb[cc])
            d = np.abs(self._residual(phi[:, cc], np.vstack([np.zeros((1, x1.shape[1])), x1]))) > tau
            d &= valid[:, cc]
            drop[:, cc] = d
        keep = valid & ~drop
        allowed = self._num_gaps(keep) == gaps
        allowed &= (self._redundancy(keep)[1:] >= self.min_redundancy).all(axis=0)
        drop[:, ~allowed] = False
        return drop

    # ---------------------------------------------------------------- gaps, NSBAS, L1
    def _num_gaps(self, valid) -> np.ndarray:
        """(k,) number of intervals between consecutive dates that no valid pair spans."""
        coverage = self.cover.T @ valid.astype(np.float32)  # exact small integers in float32
        return np.count_nonzero(coverage == 0, axis=0)

    def _solve_ls(self, phi, w, nsb, grouped=False) -> np.ndarray:
        """Weighted least squares for each pixel: NSBAS where ``nsb``, minimum norm elsewhere."""
        if not nsb.any():
            return self._solve_normal(phi, w, grouped)
        x = np.empty((self.n - 1, phi.shape[1]))
        plain = np.flatnonzero(~nsb)
        if plain.size:
            x[:, plain] = self._solve_normal(phi[:, plain], w[:, plain], grouped)
        if plain.size < phi.shape[1]:
            cols = np.flatnonzero(nsb)
            x[:, cols] = self._solve_nsbas(phi[:, cols], w[:, cols])
        return x

    def _solve_nsbas(self, phi, w) -> np.ndarray:
        """NSBAS solution of each pixel: least squares of the stacked system, batched.

        Unknowns z = [φ_ts(t_1..t_{n−1}), p]; rows √w_i (Aφ_ts − φ)_i for the pairs and
        g (φ_ts(t_k) − M_k p) for every date k (φ_ts(t_0) = 0), g = γ·√(mean of the used weights).
        Solved by the normal equations plus :data:`_NSBAS_REFINE` steps of iterative refinement on
        the residual of the stacked system (corrected semi-normal equations, Björck 1996 §2.9): the
        normal matrix has the squared condition of the system (g² is ~1e-8 of the pair weights),
        the refinement brings the error back to that of a QR solution at a fraction of its cost
        (numpy's batched QR is ~500× slower than a batched Cholesky-class solve here).
        """
        assert self.nsbas is not None and self.M is not None
        m, k = phi.shape
        n1, q = self.n - 1, self.M.shape[1]
        used = np.count_nonzero(w > 0, axis=0)
        g = self.nsbas.gamma * np.sqrt(w.sum(axis=0) / np.maximum(used, 1))  # (k,)
        ident = np.vstack([np.zeros((1, n1)), np.eye(n1)])  # (n, n−1): φ_ts(t_k) from the unknowns
        rows, cols = m + self.n, n1 + q
        out = np.empty((n1, k))
        step = max(1, int(_CHUNK_BYTES // (8 * 3 * rows * cols)))
        for s0 in range(0, k, step):
            sl = slice(s0, min(s0 + step, k))
            kk = sl.stop - sl.start
            sw = np.sqrt(w[:, sl]).T  # (kk, m)
            S = np.zeros((kk, rows, cols))
            S[:, :m, :n1] = sw[:, :, None] * self.A[None]
            gg = g[sl][:, None, None]
            S[:, m:, :n1] = gg * ident[None]
            S[:, m:, n1:] = -gg * self.M[None]
            b = np.zeros((kk, rows))
            b[:, :m] = sw * phi[:, sl].T
            St = S.transpose(0, 2, 1)
            N = np.matmul(St, S)
            z = np.linalg.solve(N, np.matmul(St, b[..., None]))
            for _ in range(_NSBAS_REFINE):  # refinement on the stacked system's residual
                r = b[..., None] - np.matmul(S, z)
                z += np.linalg.solve(N, np.matmul(St, r))
            out[:, sl] = z[:, :n1, 0].T
        return out

    def _l1_objective(self, phi, s, xf, delta) -> tuple[np.ndarray, np.ndarray]:
        """(k,) Huber-smoothed Σ s·h_δ(φ − Aφ_ts) and the (m, k) residual; ``xf`` (n, k) with date 0.

        h_δ(r) = |r| + max(δ − |r|, 0)²/(2δ), i.e. (r² + δ²)/(2δ) below δ: within δ/2 of |r|, and
        the function an IRLS step with weights s/max(|r|, δ) cannot increase (majorisation–minimisation).
        """
        r = self._residual(phi, xf)
        a = np.abs(r)
        f = np.einsum("mk,mk->k", s, a)
        np.subtract(delta, a, out=a)
        np.maximum(a, 0.0, out=a)
        a *= a
        f += np.einsum("mk,mk->k", s, a) / (2 * delta)
        return f, r

    def _irls_l1(self, phi, s, x, nsb) -> np.ndarray:
        """Minimise Σ s|φ − Aφ_ts| per pixel by IRLS from ``x`` (pixels freeze as they converge).

        Each iteration solves the weighted least squares with weights s/max(|r|, δ), all active
        pixels at once; it minimises a majoriser of the Huber-smoothed objective Σ s·h_δ(r), so that
        objective never rises.  The step is then extrapolated along its own direction (factor β per
        pixel, doubled while it pays, back to 1 when it does not): the extrapolated point is kept
        when it gains more than the stage's tolerance, otherwise the better of it and the plain
        step, so the objective still never rises and the stopping tests below always see the
        plain step's gain (IRLS for L1 converges linearly and its steps are too short along the
        slow directions).  δ follows a continuation per pixel: it starts at
        ``L1_DELTA_START`` rad and is divided by 10 each time an iteration lowers the smoothed
        objective by less than ``L1_STAGE_TOL`` of itself, down to :data:`L1_DELTA`; there a pixel
        stops when an iteration gains less than :data:`L1_TOL` of the objective (or nothing).
        :data:`L1_MAX_ITER` bounds the iterations.  A pixel keeps its best iterate.  Pixels are
        independent, so the result does not depend on how they are grouped into blocks.
        """
        n1, k = x.shape
        out = x.copy()
        # the active pixels' arrays, compacted when enough pixels have stopped
        active = np.arange(k)
        running = np.ones(k, dtype=bool)
        P, S, N = phi, s, nsb
        X = np.vstack([np.zeros((1, k)), x])  # (n, k) with date 0
        delta = np.full(k, L1_DELTA_START)
        beta = np.full(k, L1_EXTRAPOLATE)
        obj, r = self._l1_objective(P, S, X, delta)
        iterations = 0
        for _ in range(L1_MAX_ITER):
            iterations += 1
            u = np.abs(r)
            np.maximum(u, delta, out=u)
            np.divide(S, u, out=u)
            xn = np.vstack([np.zeros((1, active.size)), self._solve_ls(P, u, N, grouped=True)])
            xe = xn - X
            xe *= beta
            xe += xn
            on, rn = self._l1_objective(P, S, xe, delta)
            # the extrapolated point is kept where it improves on the best iterate by more than
            # the stage's tolerance; elsewhere the plain IRLS step (which cannot increase the
            # objective) is evaluated, β reset, and the stopping tests use its gain
            tol = np.where(delta <= L1_DELTA, L1_TOL, L1_STAGE_TOL)
            ext = obj - on > tol * on
            beta = np.where(ext, np.minimum(2 * beta, L1_EXTRAPOLATE_MAX), L1_EXTRAPOLATE)
            back = np.flatnonzero(~ext)
            if back.size:
                xb = xn[:, back]
                ob, rb = self._l1_objective(P[:, back], S[:, back], xb, delta[back])
                take = ob < on[back]
                if take.any():
                    tb = back[take]
                    on[tb] = ob[take]
                    rn[:, tb] = rb[:, take]
                    xe[:, tb] = xb[:, take]
            xn = xe
            better = on < obj
            gain = np.where(better, (obj - on) / np.maximum(on, 1e-300), 0.0)
            np.copyto(X, xn, where=better)
            np.copyto(r, rn, where=better)
            obj = np.where(better, on, obj)
            at_floor = delta <= L1_DELTA
            stage_done = gain <= np.where(at_floor, L1_TOL, L1_STAGE_TOL)
            stop = stage_done & at_floor & running
            lower = np.flatnonzero(stage_done & ~at_floor)
            if lower.size:  # next stage: smaller δ, objective re-evaluated at the best iterate
                delta[lower] = np.maximum(delta[lower] / 10, L1_DELTA)
                obj[lower], _ = self._l1_objective(P[:, lower], S[:, lower], X[:, lower], delta[lower])
                beta[lower] = L1_EXTRAPOLATE
            if stop.any():
                out[:, active[stop]] = X[1:, stop]
                running &= ~stop
                nrun = np.count_nonzero(running)
                if not nrun:
                    break
                # stopped pixels are carried along (their output is already written) until enough
                # of them make compacting the arrays worth its copies
                if nrun <= 0.8 * running.size:
                    keep = running
                    active = active[keep]
                    running = running[keep]
                    P, S, N, X, r = P[:, keep], S[:, keep], N[keep], X[:, keep], r[:, keep]
                    delta, obj, beta = delta[keep], obj[keep], beta[keep]
        if running.any():
            out[:, active[running]] = X[1:, running]
            logger.info("L1 inversion: %d of %d pixels reached %d iterations before the stopping rule",
                        np.count_nonzero(running), k, L1_MAX_ITER)
        logger.debug("L1 inversion: %d IRLS iterations", iterations)
        self.l1_iterations = max(self.l1_iterations, iterations)
        return out

    # ---------------------------------------------------------------- unweighted: shared patterns
    def _pattern_operator(self, pattern: np.ndarray) -> np.ndarray:
        """(n−1, m_valid) operator mapping the valid phases to the time series, lstsq min-norm."""
        key = np.packbits(pattern).tobytes()
        op = self._ops.get(key)
        if op is None:
            pinv = np.linalg.pinv(self.G[pattern], rcond=self.rcond)
            op = self.C @ pinv if self.velocity else pinv
            if len(self._ops) < _MAX_PATTERN_CACHE:
                self._ops[key] = op
        return op

    def _solve_patterns(self, phi, valid, full, ok, todo):
        """Solve pixels whose validity pattern is frequent.

        Returns the (n−1, k) time series and the indices left for the normal-equation path.
        """
        k = phi.shape[1]
        op_full = self._pattern_operator(np.ones(self.m, dtype=bool))
        sel_full = full & ok
        nfull = np.count_nonzero(sel_full)
        if nfull > k // 2:  # one product over the whole chunk beats gathering columns
            ts = op_full @ phi
        else:
            ts = np.zeros((self.n - 1, k))
            if nfull:
                ts[:, sel_full] = op_full @ phi[:, sel_full]
        todo = todo[~full[todo]]
        if todo.size < _MIN_PATTERN_PIXELS:
            return ts, todo
        packed = np.packbits(valid[:, todo], axis=0)  # (ceil(m/8), ntodo)
        keys = np.ascontiguousarray(packed.T).view(np.dtype((np.void, packed.shape[0]))).ravel()
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        frequent = np.flatnonzero(counts >= _MIN_PATTERN_PIXELS)
        done = np.zeros(todo.size, dtype=bool)
        for g in frequent:
            members = np.flatnonzero(inverse == g)
            sel = todo[members]
            pattern = valid[:, todo[first[g]]]
            ts[:, sel] = self._pattern_operator(pattern) @ phi[pattern][:, sel]
            done[members] = True
        return ts, todo[~done]

    # ---------------------------------------------------------------- normal equations (banded GTH)
    def _assemble(self, phi, w, O, g, y, grouped=False) -> None:  # noqa: E741 - O: the off-diagonal bands
        """Add the weighted Laplacian (O, g: banded, grounded at date 0) and y = AᵀWφ.

        ``w`` is float weights (0 on dropped pairs), or bool validity for unweighted pixels, in
        which case ``phi`` is already 0 on dropped pairs and Wφ = φ.  ``grouped``: one fancy-indexed
        addition per span group instead of one per pair (same values up to the order in which
        the diagonal and right-hand-side terms are summed; used by the L1 iterations).
        """
        weighted = w.dtype != bool
        if grouped and self.groups is not None and weighted:
            wphi = w * phi
            for rows, g1, g2 in self.groups:
                span = g2[0] - g1[0]
                y[g2 - 1] += wphi[rows]
                first = g1 == 0
                if first.any():
                    g[g2[first] - 1] += w[rows[first]]
                rest = ~first
                if rest.any():
                    r = rows[rest]
                    O[g1[rest] - 1, span] += w[r]
                    y[g1[rest] - 1] -= wphi[r]
            return
        for i in range(self.m):
            wphi = w[i] * phi[i] if weighted else phi[i]
            u2 = self.d2[i] - 1
            y[u2] += wphi
            if self.d1[i] == 0:
                g[u2] += w[i]
            else:
                u1 = self.d1[i] - 1
                O[u1, u2 - u1] += w[i]
                y[u1] -= wphi

    def _solve_normal(self, phi, w, grouped=False) -> np.ndarray:
        """Weighted min-norm solution for each pixel, (m, k) inputs (w = 0 / False on dropped pairs)."""
        n1, b, k = self.n - 1, self.bw, phi.shape[1]
        rows = n1 + 1  # one spare row: slices u+1:u+bu+1 stay in bounds
        O = np.zeros((rows, b + 1, k))  # noqa: E741 - O[u, a]: weight linking unknown u and u + a (a ≥ 1)
        g = np.zeros((rows, k))  # weight linking unknown u to the first (grounded) date
        y = np.zeros((rows, k))  # right-hand side AᵀWφ, then forward-substituted
        self._assemble(phi, w, O, g, y, grouped)

        # LDLᵀ by GTH elimination: O[u, 1:] ← multipliers r = O/p, piv[u] = p.
        # Near the end fewer than b unknowns remain: bu = min(b, n1−1−u) trims the padding, so
        # that b = n−2 costs a dense elimination (n³/6 per pixel), not n·b²/2.
        piv = np.zeros((n1, k))
        for u in range(n1):
            bu = min(b, n1 - 1 - u)
            row = O[u, 1:bu + 1]  # (bu, k) weights to u+1..u+bu in the current Schur complement
            p = row.sum(axis=0) + g[u]
            piv[u] = p
            inv = np.divide(1.0, p, out=np.zeros_like(p), where=p > 0)
            r = row * inv
            for a in range(1, bu):
                O[u + a, 1:bu - a + 1] += row[a - 1] * r[a:]
            g[u + 1:u + bu + 1] += r * g[u]
            y[u + 1:u + bu + 1] += r * y[u]
            y[u] *= inv
            O[u, 1:bu + 1] = r
        x = np.zeros((rows, k))
        for u in range(n1 - 1, -1, -1):
            bu = min(b, n1 - 1 - u)
            x[u] = y[u] + np.einsum("ak,ak->k", O[u, 1:bu + 1], x[u + 1:u + bu + 1])
        x = x[:n1]

        singular = (piv == 0).any(axis=0)
        if singular.any():
            s = np.flatnonzero(singular)
            logger.debug("%d of %d pixels have a disconnected network (minimum-norm %s)",
                         s.size, k, "velocity" if self.velocity else "phase")
            x[:, s] = self._min_norm_projection(x[:, s], O[:n1, 1:, s], piv[:, s])
        return x

    @staticmethod
    def _component_roots(R) -> np.ndarray:
        """Root (last-eliminated unknown) of each unknown's connected group, from the elimination tree."""
        n1, b, k = R.shape
        root = np.empty((n1, k), dtype=np.intp)
        cols = np.arange(k)
        for u in range(n1 - 1, -1, -1):
            linked = R[u] > 0
            has = linked.any(axis=0)
            parent = u + 1 + np.argmax(linked, axis=0)
            parent = np.minimum(parent, n1 - 1)
            root[u] = np.where(has, root[parent, cols], u)
        return root

    def _min_norm_projection(self, x, R, piv) -> np.ndarray:
        """Project particular solutions of singular pixels onto the minimum-norm solution."""
        n1, k = x.shape
        root = self._component_roots(R)
        cols = np.arange(k)
        floating = piv[root, cols[None, :]] == 0  # unknown belongs to a group not tied to date 0
        if not self.velocity:
            # Null space = indicators of the floating groups: remove each group's mean.
            idx = (root * k + cols[None, :])[floating]
            sums = np.bincount(idx, weights=x[floating], minlength=n1 * k)
            cnt = np.bincount(idx, minlength=n1 * k)
            x = x.copy()
            x[floating] -= sums[idx] / cnt[idx]
            return x
        # Velocity form: null space of B = {D⁻¹Δ(1_C)}; remove the projection of v on it.
        is_root = (piv == 0)
        rank = np.cumsum(is_root, axis=0) - 1  # group number of each floating root, per pixel
        ngroup = is_root.sum(axis=0)
        out = np.empty_like(x)
        cmax_all = int(ngroup.max())
        # sub-batches bound the (k, n, groups) indicator array
        step = max(1, int(_CHUNK_BYTES // (8 * 4 * (n1 + 1) * max(cmax_all, 1))))
        for s0 in range(0, k, step):
            sl = slice(s0, min(s0 + step, k))
            out[:, sl] = self._velocity_projection(x[:, sl], root[:, sl], floating[:, sl],
                                                   rank[:, sl], ngroup[sl])
        return out

    def _velocity_projection(self, x, root, floating, rank, ngroup) -> np.ndarray:
        n1, k = x.shape
        c = int(ngroup.max())
        dt = self.dt
        ts = np.concatenate([np.zeros((1, k)), x], axis=0)  # (n, k) with date 0
        v = (np.diff(ts, axis=0) / dt[:, None]).T  # (k, n−1)
        ind = np.zeros((k, n1 + 1, c))
        uu, pp = np.nonzero(floating)
        ind[pp, uu + 1, rank[root[uu, pp], pp]] = 1.0
        Z = np.diff(ind, axis=1) / dt[None, :, None]  # (k, n−1, c)
        ZtZ = np.einsum("kjc,kjd->kcd", Z, Z)
        empty = np.arange(c)[None, :] >= ngroup[:, None]
        ZtZ[:, np.arange(c), np.arange(c)] += empty  # padded groups: identity, zero coefficient
        alpha = np.linalg.solve(ZtZ, np.einsum("kjc,kj->kc", Z, v)[..., None])[..., 0]
        v = v - np.einsum("kjc,kc->kj", Z, alpha)
        return np.cumsum(v * dt[None, :], axis=1).T

    # ---------------------------------------------------------------- quality
    def _screen_scale(self, w) -> _Screen:
        """The screen of the screened least squares for a chunk (weights ``w``, None: unweighted).

        A pair passes the screen when its least-squares residual r has |r| > ``ROBUST_SCREEN``·τ
        and, for weighted pixels, √w·|r| > ``ROBUST_Z`` (with var or fim weights, w ≈ 1/σ²: the
        residual in units of its decorrelation noise); i.e. when |r|·min(1/(ROBUST_SCREEN·τ),
        √w/ROBUST_Z) > 1.  A pixel none of whose used pairs passes keeps the least-squares solution
        (the estimator's definition, not an approximation), so only the others (a few in a
        thousand on a clean stack; the pixels an unwrapping error touches) pay for the L1 fit.
        A pair off by one cycle leaves 2π(1 − h) in the least-squares residual (h: its leverage,
        (n−1)/m on average): at the default τ = 5 rad the screen sees errors on pairs of leverage
        up to 1 − 2.5/2π ≈ 0.6.
        """
        inv_a = 1.0 / self.robust_screen
        if w is None:
            return _Screen(inv_a)
        scale = np.sqrt(w)
        scale *= 1.0 / ROBUST_Z
        np.minimum(scale, inv_a, out=scale)
        return _Screen(scale)

    def _temporal_coherence(self, phi, invalid, ts, num_used, screen=None) -> np.ndarray:
        """γ_t = |Σ exp(j(φ − Aφ_ts))| / M over the used pairs (unweighted residual), per pixel.

        ``screen`` (:class:`_Screen`), if given, receives each pixel's largest scaled |residual|
        over the used pairs (see :meth:`_screen_scale`), read in the same cache-resident pass.
        """
        if screen is not None:
            screen.max_scaled = np.zeros(phi.shape[1])
        m, k = phi.shape
        width = self.slab_width()
        work = _CoherenceWork(m, min(width, k))
        out = np.zeros(k, dtype=np.float32)
        tsf = np.zeros((self.n, min(width, k)))
        for s0 in range(0, k, width):
            s1 = min(s0 + width, k)
            TS = tsf[:, :s1 - s0]
            TS[1:] = ts[:, s0:s1]
            total = self._coherence_sum(phi[:, s0:s1], TS, invalid[:, s0:s1], m - num_used[s0:s1], work,
                                        None if screen is None else screen.slab(s0, s1))
            with np.errstate(invalid="ignore", divide="ignore"):
                out[s0:s1] = total / num_used[s0:s1]
        return out

    def _coherence_sum(self, P, TS, invalid, num_invalid, work: _CoherenceWork, screen=None) -> np.ndarray:
        """|Σ_used pairs exp(j·res)| for one cache-sized slab; float64 (k,).

        ``P`` (m, k) phases, ``TS`` (n, k) time series with the first date (0).  Pairs flagged in
        ``invalid`` (``num_invalid`` per column) get residual 0 and their cos(0) = 1 is taken back
        out of the sum; the caller divides by the number of used pairs.  The residual is formed and
        wrapped to [−π, π] in float64; the trigonometry then runs in float32 (vectorised; the
        float32 rounding of a wrapped residual is ≤ 1.2e-7 rad, below what the float32 output
        resolves), summed in float64.  ``screen`` = (scale, out), if given: out (k,) receives
        max |res|·scale per column.
        """
        k = P.shape[1]
        res, tmp, r32, c32 = work.views(k)
        np.subtract(P, TS[self.d2], out=res)
        res += TS[self.d1]
        if invalid is not None:
            np.copyto(res, 0.0, where=invalid)
        if screen is not None:
            scale, out = screen
            np.abs(res, out=tmp)
            tmp *= scale
            np.fmax.reduce(tmp, axis=0, out=out)
        # within ±π wrapping is the identity: skipping it then changes no bit of the result
        if not (np.fmax.reduce(res, axis=None) < np.pi and np.fmin.reduce(res, axis=None) > -np.pi):
            np.multiply(res, 1.0 / _TWO_PI, out=tmp)
            np.rint(tmp, out=tmp)
            tmp *= _TWO_PI
            res -= tmp
        r32[...] = res
        np.cos(r32, out=c32)
        csum = np.add.reduce(c32, axis=0, dtype=np.float64)
        if invalid is not None:
            csum -= num_invalid
        np.sin(r32, out=c32)
        ssum = np.add.reduce(c32, axis=0, dtype=np.float64)
        return np.hypot(csum, ssum)


class _Screen:
    """Scale (scalar or (m, k)) of the screened least squares' test and the per-pixel maximum."""

    def __init__(self, scale):
        self.scale = scale
        self.max_scaled: np.ndarray | None = None

    def slab(self, s0: int, s1: int):
        assert self.max_scaled is not None
        scale = self.scale if np.ndim(self.scale) == 0 else self.scale[:, s0:s1]
        return scale, self.max_scaled[s0:s1]


class _CoherenceWork:
    """Reusable slab buffers of the temporal coherence (fresh large arrays cost page faults).

    Views are contiguous (m, k) whatever k, so that the column sums add the pairs in the same
    order for every slab width: results do not depend on how pixels were split into blocks.
    """

    def __init__(self, m: int, width: int):
        self.m = m
        self.res = np.empty(m * width)
        self.tmp = np.empty(m * width)
        self.r32 = np.empty(m * width, dtype=np.float32)
        self.c32 = np.empty(m * width, dtype=np.float32)

    def views(self, k: int):
        size = self.m * k
        return tuple(b[:size].reshape(self.m, k) for b in (self.res, self.tmp, self.r32, self.c32))
