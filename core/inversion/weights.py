"""Coherence → inversion weights for the SBAS network inversion.

The weighted inversion solves ``(W^½ G) x = W^½ φ`` with one weight per interferogram and pixel.
The weights come from the spatial coherence γ of each interferogram:

* ``var`` – inverse phase variance of a multilooked distributed scatterer, σ²_φ(γ, L), computed
  by numerical integration of the phase PDF of Lee et al. (1994) / Tough, Blacknell & Quegan
  (1995, eq. 66) / Hanssen (2001, eq. 4.2.23) over [−π, π];
* ``fim`` – Fisher information of the phase, 2Lγ²/(1−γ²) (Seymour & Cumming 1994);
* ``coh`` – the coherence itself (Perissin & Wang 2012);
* ``no``  – ones (ordinary least squares, Berardino et al. 2002).

The variance integral is evaluated once per number of looks on a coherence grid (lookup table,
cached) and interpolated, which makes the conversion a cheap vector operation.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from math import lgamma

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "WEIGHT_METHODS",
    "MAX_LOOKS",
    "COHERENCE_EPSILON",
    "phase_pdf_ds",
    "phase_variance_ds",
    "coherence_to_weight",
    "number_of_looks",
]

#: Valid values of ``method`` in :func:`coherence_to_weight`.
WEIGHT_METHODS = ("var", "fim", "coh", "no")
#: Looks are capped here: beyond it the PDF is already close to Gaussian and the sum gets long.
MAX_LOOKS = 80
#: Coherence floor applied before the conversion (no pair gets a zero or absurdly small weight).
COHERENCE_EPSILON = 0.05
#: Coherence ceiling for ``var`` and ``fim`` (both diverge at γ = 1).
COHERENCE_MAX = 1.0 - 1e-3
#: Ratio resolution/pixel spacing used to turn ALOOKS·RLOOKS into independent looks (Sentinel-1 IW).
LOOKS_RESOLUTION_RATIO = 1.94

# Coherence grid of the lookup table: 0..1 by 0.005, refined near 1 where σ²_φ drops steeply.
_LUT_STEP = 0.005


def _lut_coherence_grid() -> np.ndarray:
    base = np.linspace(0.0, 1.0, int(round(1.0 / _LUT_STEP)) + 1)
    fine = 1.0 - 10.0 ** (-np.arange(10, 25) / 4.0)  # 1 − 10^-2.5 … 1 − 10^-6
    fine = fine[fine > 1.0 - _LUT_STEP]
    return np.unique(np.concatenate([base, fine]))


def _check_looks(looks) -> int:
    L = int(round(float(looks)))
    if L < 1:
        raise ValueError(f"number of looks must be >= 1, got {looks!r}")
    return min(L, MAX_LOOKS)


def phase_pdf_ds(phase, coherence, looks: int) -> np.ndarray:
    """PDF of the interferometric phase of an L-look distributed scatterer (Tough et al. 1995 eq. 66).

    With β = γ·cos φ::

        pdf = (1−γ²)^L / 2π · { Γ(2L−1) / (Γ(L)² 2^{2(L−1)}) · [(2L−1) β (π/2 + asin β) / (1−β²)^{L+½}
                                                              + 1 / (1−β²)^L]
                               + 1/(2(L−1)) Σ_{r=0}^{L−2} Γ(L−½)/Γ(L−½−r) · Γ(L−1−r)/Γ(L−1)
                                                          · (1 + (2r+1)β²) / (1−β²)^{r+2} }

    Evaluated without overflow by writing (1−γ²)^L/(1−β²)^k = s^k (1−γ²)^{L−k}, s = (1−γ²)/(1−β²) ≤ 1,
    and the Gamma ratios through ``math.lgamma`` (scalars of L only: scipy.special, ~0.5 s to import,
    is not needed).  ``phase`` and ``coherence`` broadcast; γ must be < 1.
    Not capped in looks (the cap belongs to the weight conversion).
    """
    L = int(looks)
    if L < 1:
        raise ValueError(f"number of looks must be >= 1, got {looks!r}")
    phi = np.asarray(phase, dtype=np.float64)
    g = np.asarray(coherence, dtype=np.float64)
    beta = g * np.cos(phi)
    one_m_g2 = 1.0 - g * g
    one_m_b2 = (1.0 - beta) * (1.0 + beta)
    s = one_m_g2 / one_m_b2
    # arccos(−β) = π/2 + arcsin(β), better conditioned near β = −1.
    lead = np.exp(lgamma(2 * L - 1) - 2.0 * lgamma(L) - 2.0 * (L - 1) * np.log(2.0))
    sL = s**L
    bracket = lead * ((2 * L - 1) * beta * np.arccos(-beta) * sL / np.sqrt(one_m_b2) + sL)
    if L > 1:
        acc = np.zeros(np.broadcast(phi, g).shape)
        b2 = beta * beta
        s_pow = s * s  # s^{r+2}
        for r in range(L - 1):
            coef = np.exp(lgamma(L - 0.5) - lgamma(L - 0.5 - r) + lgamma(L - 1 - r) - lgamma(L - 1))
            acc += coef * (1.0 + (2 * r + 1) * b2) * s_pow * one_m_g2 ** (L - r - 2)
            s_pow = s_pow * s
        bracket = bracket + acc / (2.0 * (L - 1))
    return bracket / (2.0 * np.pi)


@functools.cache
def _gauss_legendre_phase_nodes() -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes/weights on [0, π]: Gauss–Legendre on geometrically growing panels.

    The PDF is sharply peaked at φ = 0 when γ → 1 (width ~ √((1−γ²)/2L)), so panels start at 1e-8
    and grow by a constant ratio; 16 nodes per panel integrate the smooth pieces to ~1e-14.
    """
    x, w = np.polynomial.legendre.leggauss(16)
    edges = np.concatenate([[0.0], np.geomspace(1e-8, np.pi, 72)])
    a, b = edges[:-1, None], edges[1:, None]
    nodes = (0.5 * (b - a) * x + 0.5 * (b + a)).ravel()
    weights = (0.5 * (b - a) * w).ravel()
    return nodes, weights


@functools.cache
def _variance_lut(looks: int) -> tuple[np.ndarray, np.ndarray]:
    """(coherence grid, σ²_φ on it) for ``looks`` looks; read-only arrays, cached per L."""
    grid = _lut_coherence_grid()
    nodes, qw = _gauss_legendre_phase_nodes()
    var = np.zeros_like(grid)
    inner = grid < 1.0
    # Rows of coherence in chunks to bound the (ncoh, nphi) temporaries.
    idx = np.flatnonzero(inner)
    for start in range(0, idx.size, 64):
        sl = idx[start:start + 64]
        pdf = phase_pdf_ds(nodes[None, :], grid[sl, None], looks)
        var[sl] = 2.0 * (pdf * (nodes * nodes * qw)[None, :]).sum(axis=1)  # symmetric in φ
    var[~inner] = 0.0
    # Zero-coherence limit is exact: uniform phase.
    var[grid == 0.0] = np.pi**2 / 3.0
    grid.setflags(write=False)
    var.setflags(write=False)
    logger.debug("phase variance LUT built for L=%d (%d coherence nodes)", looks, grid.size)
    return grid, var


@functools.cache
def _log_variance(looks: int) -> tuple[np.ndarray, np.ndarray]:
    """(−log(1−γ), log σ²) on the LUT nodes below γ = 1."""
    grid, var = _variance_lut(looks)
    return -np.log1p(-grid[:-1]), np.log(var[:-1])


def phase_variance_ds(coherence: np.ndarray, looks: int) -> np.ndarray:
    """Phase variance σ²_φ (rad²) of a multilooked distributed scatterer, for each coherence.

    σ²_φ = ∫_{−π}^{π} φ² pdf(φ; γ, L) dφ, from a lookup table (coherence step 0.005, refined close
    to 1) interpolated linearly in log σ² against −log(1−γ) (relative error < 1e-3 between nodes,
    ~1e-12 on them).  γ = 0 gives π²/3 (uniform phase), γ = 1 gives 0.  Coherence is
    clipped to [0, 1]; NaN stays NaN.  Looks are capped at 80.  Returns float64.
    """
    L = _check_looks(looks)
    grid, var = _variance_lut(L)
    coh = np.asarray(coherence, dtype=np.float64)
    c = np.clip(coh, 0.0, 1.0)
    # Interpolate log σ² against −log(1−γ): both smooth there, also where σ² ∝ (1−γ²) drops by
    # decades inside one 0.005 coherence bin.  The last interval, ending at σ²(1) = 0, linearly.
    xgrid, logvar = _log_variance(L)
    last = c > grid[-2]
    with np.errstate(divide="ignore"):
        x = -np.log1p(-np.where(last, grid[-2], c))
    out = np.exp(np.interp(x, xgrid, logvar))
    if np.any(last):
        out = np.where(last, np.interp(c, grid[-2:], var[-2:]), out)
    out = np.where(np.isnan(coh), np.nan, out)
    return out if out.ndim else out[()]


def coherence_to_weight(coherence: np.ndarray, method: str, looks: int) -> np.ndarray:
    """Inversion weight w (not its square root) from spatial coherence, float32.

    NaN coherence counts as 0; coherence is floored at 0.05 so that no valid pair is dropped
    or gets an absurdly small weight (MintPy's convention).  ``var`` and ``fim`` diverge at
    γ = 1, so coherence is also capped at 1 − 1e-3 for both.
    """
    method_l = str(method).lower()
    if method_l not in WEIGHT_METHODS:
        raise ValueError(f"unknown weight method {method!r}; valid methods are {', '.join(WEIGHT_METHODS)}")
    coh = np.array(coherence, dtype=np.float64)  # copy
    if method_l == "no":
        return np.ones(coh.shape, dtype=np.float32)
    coh[np.isnan(coh)] = 0.0
    np.clip(coh, COHERENCE_EPSILON, 1.0, out=coh)
    if method_l == "coh":
        w = coh
    elif method_l == "fim":
        L = _check_looks(looks)
        g = np.minimum(coh, COHERENCE_MAX)
        g2 = g * g
        w = 2.0 * L * g2 / (1.0 - g2)
    else:  # var
        w = 1.0 / phase_variance_ds(np.minimum(coh, COHERENCE_MAX), looks)
    return np.asarray(w, dtype=np.float32)


_FAST_NODES = 1 << 16


_FAST_LOW = np.float32(COHERENCE_EPSILON)  # the coherence clipped to [floor, cap] in float32
_FAST_HIGH = np.float32(COHERENCE_MAX)


@functools.cache
def _weight_table(method: str, looks: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights on a uniform coherence grid of 2¹⁶ intervals, for :func:`coherence_to_weight_fast`:
    (the weight at each node, the step to the next node), float32, each gathered contiguously (two
    float32 gathers and contiguous arithmetic are ~1.5× faster than one complex64 gather whose
    halves are then strided views).

    The weight is flat below the coherence floor and above the cap, and the lookup clips the
    coherence to both first; in the interval holding the floor (the cap) the node outside the clipped
    range takes the value that continues the chord from the floor (the cap) to the interval's other
    node, so the interpolation never spans the kink.  The grid step is a power of two, so the
    position in the table is exact in float32.
    """
    grid = np.arange(_FAST_NODES + 1, dtype=np.float64) / _FAST_NODES
    table = coherence_to_weight(grid, method, looks).astype(np.float64)
    low = int(np.floor(float(_FAST_LOW) * _FAST_NODES))  # the interval [low, low + 1] holds the floor
    high = int(np.floor(float(_FAST_HIGH) * _FAST_NODES))  # [high, high + 1] the cap
    for end, outer, inner in ((float(_FAST_LOW), low, low + 1), (float(_FAST_HIGH), high + 1, high)):
        w_end = float(coherence_to_weight(np.array([end]), method, looks)[0])
        chord = (table[inner] - w_end) / (grid[inner] - end)
        table[outer] = w_end + chord * (grid[outer] - end)
    table = np.append(table, table[-1]).astype(np.float32)  # guard node: coherence 1 has a zero step
    return np.ascontiguousarray(table[:-1]), np.diff(table)


_FAST_SLAB = 1 << 16  # values per slab: the work buffers stay in the CPU caches


def coherence_to_weight_fast(coherence: np.ndarray, method: str, looks: int) -> np.ndarray:
    """:func:`coherence_to_weight` for large blocks: linear interpolation in a uniform table, float32.

    The exact conversion costs tens of ns per value (logs, exps, a non-uniform search); this one
    a few, slab by slab.  The table step (1.5e-5 in coherence) keeps the relative error below
    1e-4 everywhere, also at the floor and the cap, whose kinks no table interval spans (measured on
    a 2·10⁶-point grid and on every float32 coherence around the floor and from 0.998 to 1: see the
    tests), far below the uncertainty of the coherence itself.
    """
    method_l = str(method).lower()
    if method_l in ("no", "coh"):
        return coherence_to_weight(coherence, method_l, looks)
    if method_l not in WEIGHT_METHODS:
        raise ValueError(f"unknown weight method {method!r}; valid methods are {', '.join(WEIGHT_METHODS)}")
    values, steps = _weight_table(method_l, _check_looks(looks))
    coh = np.ascontiguousarray(coherence, dtype=np.float32)
    flat = coh.reshape(-1)
    out = np.empty(coh.shape, dtype=np.float32)
    out_flat = out.reshape(-1)
    size = min(_FAST_SLAB, flat.size)
    x = np.empty(size, dtype=np.float32)
    lower = np.empty(size, dtype=np.float32)
    index = np.empty(size, dtype=np.intp)
    gathered = np.empty(size, dtype=np.float32)  # np.take into a kept buffer: ~40 % faster than values[ix]
    for s0 in range(0, flat.size, _FAST_SLAB):
        s1 = min(s0 + _FAST_SLAB, flat.size)
        k = s1 - s0
        xs, fl, ix, node = x[:k], lower[:k], index[:k], gathered[:k]
        np.fmax(flat[s0:s1], _FAST_LOW, out=xs)  # NaN (weighted as coherence 0) and below: the floor
        np.minimum(xs, _FAST_HIGH, out=xs)
        xs *= np.float32(_FAST_NODES)
        np.floor(xs, out=fl)
        ix[...] = fl
        xs -= fl  # fraction within the interval
        w = out_flat[s0:s1]
        np.take(steps, ix, out=w)
        w *= xs
        np.take(values, ix, out=node)
        w += node
    return out


def number_of_looks(attrs: Mapping[str, str]) -> int:
    """Number of independent looks L for the coherence → weight conversion.

    ``NCORRLOOKS`` when present, else ALOOKS·RLOOKS/1.94 (Sentinel-1 IW resolution/spacing ratio),
    rounded, at least 1.
    """
    ncorr = attrs.get("NCORRLOOKS")
    if ncorr not in (None, ""):
        value = float(ncorr)
    else:
        alooks, rlooks = attrs.get("ALOOKS"), attrs.get("RLOOKS")
        if alooks in (None, "") or rlooks in (None, ""):
            raise ValueError(
                "coherence-based weighting needs NCORRLOOKS or ALOOKS and RLOOKS in the stack attributes "
                "to know the number of looks; add them to the metadata or use weight function 'no'"
            )
        value = float(alooks) * float(rlooks) / LOOKS_RESOLUTION_RATIO
    if not np.isfinite(value):
        raise ValueError(f"invalid number of looks in the stack attributes: {value!r}")
    return max(1, int(round(value)))
