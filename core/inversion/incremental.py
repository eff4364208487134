"""Exact update of the network inversion when new acquisitions are appended (issue 18).

With the dates in time order, the normal matrix of a pixel, N = AᵀWA of the phase form (first date
removed), is the weighted Laplacian of its network, banded with bandwidth B = max(date2 − date1) in
date indices.  New dates appended at the end, with pairs that join them to the last old dates, add
to N and b = AᵀWφ only in their rows.  The change of the solution, δ = x' − x, solves N'δ = r with
r nonzero only on those rows, and r carries no net force on the old dates (the new date is free),
so δ is a dipole's response on a Laplacian: it decays geometrically away from the new dates
(measured ×0.45 a date for 3 pairs a date; 3.8e-2 rad at the last old date, 9.5e-7 rad 15 dates
back).

So the update re-solves a *window*, the last dates from ``WINDOW_MARGIN`` dates before the first
one a new pair touches, with the dates before it held fixed (a pair from a fixed date becomes a pair
from one grounded date whose phase carries that date's value: :func:`solve_window`).  This is not
an approximation taken on trust: on a weighted Laplacian with positive weights the harmonic
extension obeys the maximum principle, so the change the kept dates would have undergone is
bounded by how far the first re-solved dates moved.  A pixel whose first ``B`` window dates moved
more than ``WINDOW_TOL`` (1e-6 rad, float32 noise of a series of ~20 rad) is inverted from all its
pairs instead — so is a pixel whose window is not connected to its boundary, and one whose
network was not connected before (its stored solution is the
solver's minimum-norm one).  Everything is float64; the result is the weighted least-squares
solution of all pairs to within ``WINDOW_TOL``.

The temporal coherence |Σ exp(jr)|/M needs every pair's residual; the pairs that end before the
window have fixed residuals, so the store keeps their Σ cos r, Σ sin r and count per pixel and an
update reads only the pairs that end in the window (plus, once, those between the old and the new
window start).

:data:`STORE_FILE` next to ``timeseries.h5`` holds per pixel the float64 phase of the
``2B + STORE_AHEAD`` dates around the next window's start (its boundary, the dates of the pairs it
adds to the sums, and its first dates for the boundary test), the two sums, the count and an exact
flag: for 3 pairs a date (3 + 3 + 8)·8 + 29 ≈ 141 B a pixel (0.14 GB per million pixels), a tenth
of the phase and coherence of a 60-date stack, the same for any number of dates.  The pixels it
cannot update from the window (a network not connected, or a date under ``minRedundancy``: the
solver's answer is then not the least-squares one) keep their early pairs in the store
(``sparse/``), so their update does not read the early pairs of the stack either.  A pixel that a
window date without enough pairs leaves empty (the solver's rule, decided by the window alone) is
left empty without reading anything more, until it has data again; other pixels that fail are read
from the stack, only their image rows.  The early dates of the new ``timeseries.h5`` are copied
from the previous one (brought back to the first date if ``reference_date`` moved it).

A whole-stack condition that makes the update inexact falls back to a full inversion with a log
line: other inversion options, reference point or land mask; a pair (kept or dropped) between old
dates added or an old pair dropped; a new pair starting before the stored window; an
observation dataset that does not hold the loaded phase, now or when the store was written (an
unwrapping-error correction that changed a pair; one that changed none maps onto ``unwrapPhase``:
:func:`holds_loaded_phase`); the stack's old pairs not the ones the store
was built from (see :func:`sbts.core.io.load_record.why_not_same_or_appended`, whose record the loader
writes beside the stack); a ``timeseries.h5`` that does not start with the stored dates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sbts.core.io.load_record import stack_signature, why_not_same_or_appended

logger = logging.getLogger(__name__)

STORE_FILE = "inversionUpdate.h5"
STORE_TYPE = "inversionUpdate"
#: dates re-solved before the first date a new pair touches.  The change decays ×~0.45 a date in
#: the median, slower for some weightings: with var weights from coherence U(0.25, 0.95) and 3 pairs
#: a date (bench/bench_update.py), 1.6 % of the pixels fail the WINDOW_TOL test with 20 dates,
#: 6e-5 with 26, 1e-6 with 32
WINDOW_MARGIN = 32
#: dates the store keeps after the next window start: appends of more dates at once re-solve a wider window
STORE_AHEAD = 8
#: largest move (rad) of the first re-solved dates for which the kept dates count as unchanged
WINDOW_TOL = 1e-6
#: what an update costs per pair it reads, relative to a full inversion per pair (the full inversion
#: writes the store in the same pass, so the two give the same products and the same store; the
#: cheaper one runs).  Measured with bench/bench_update.py (1000², 60 → 61 dates, 2 cores): unweighted,
#: the full solver applies one shared operator to every complete pixel (4.1 s for 108 pairs against
#: 3.1 s for 173: 2.1×); weighted both factor each pixel (5.9 s against 7.3 s: 1.3×).  So an update runs
#: when it reads fewer than 1/2.1 (unweighted) or 1/1.3 (weighted) of the pairs: a long stack, not a
#: short one whose window is every date.
UPDATE_COST_RATIO = {"unweighted": 2.1, "weighted": 1.3}
_SLAB = 8192  # pixels solved together: few enough that the band and the loops' temporaries stay in the CPU caches, enough that numpy's per-call cost is small (2048: 25 % slower, 16384: 15 %)
_PIVOT_TOL = 1e-9  # a pivot below this fraction of its diagonal: numerically rank deficient

__all__ = ["STORE_FILE", "UPDATE_ATTR", "WINDOW_MARGIN", "WINDOW_TOL", "FactorState", "normal_equations",
           "factorize", "solve", "factor_solve", "solve_window", "residual_sums", "temporal_coherence", "store_path"]


# ------------------------------------------------------------------------------------ arrays
@dataclass
class FactorState:
    """The banded Cholesky factor of a block of pixels.

    ``band[i, t, p]`` = L[i, i − t] of pixel p (t = 0 the diagonal), ``y`` = L⁻¹ b, ``exact`` the
    pixels whose factor is that of their full-rank normal matrix."""

    band: np.ndarray  # (n−1, B+1, k) float64
    y: np.ndarray  # (n−1, k) float64
    exact: np.ndarray  # (k,) bool
    redundant: np.ndarray | None = None  # (k,) bool: every date but the first has min_redundancy pairs

    @property
    def bandwidth(self) -> int:
        return self.band.shape[1] - 1


def _valid_weights(phase: np.ndarray, weight: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(w, wφ, valid) in float64 with zeros where a pair is not used (NaN phase, weight ≤ 0)."""
    phi = np.asarray(phase, np.float64)
    valid = np.isfinite(phi)
    if weight is None:
        w = valid.astype(np.float64)
    else:
        w = np.asarray(weight, np.float64)
        with np.errstate(invalid="ignore"):
            valid &= (w > 0) & (w < np.inf)
        w = np.where(valid, w, 0.0)
    return w, np.where(valid, phi, 0.0) * w, valid


def normal_equations(phase: np.ndarray, weight: np.ndarray | None, d1: np.ndarray, d2: np.ndarray,
                     num_date: int, bandwidth: int, first_row: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Band of N = AᵀWA and b = AᵀWφ (phase form, first date removed) for the rows ≥ ``first_row``.

    Returns (band (n−1−first_row, B+1, k), b (n−1−first_row, k), count (n, k) valid pairs per date).
    """
    m, k = phase.shape
    rows = num_date - 1 - first_row
    band = np.zeros((rows, bandwidth + 1, k))
    rhs = np.zeros((rows, k))
    count = np.zeros((num_date, k), np.int32)
    w, wphi, valid = _valid_weights(phase, weight)
    for i in range(m):
        a, c = int(d1[i]), int(d2[i])
        count[a] += valid[i]
        count[c] += valid[i]
        ic = c - 1 - first_row
        if ic >= 0:
            band[ic, 0] += w[i]
            rhs[ic] += wphi[i]
        if a > 0:
            ia = a - 1 - first_row
            if ia >= 0:
                band[ia, 0] += w[i]
                rhs[ia] -= wphi[i]
                band[ic, c - a] -= w[i]
    return band, rhs, count


def _resume(band: np.ndarray, y: np.ndarray, exact: np.ndarray, nband: np.ndarray, rhs: np.ndarray,
            start: int) -> None:
    """Factorise rows ``start``.. of L in place from the rows of N (``nband``) and forward-substitute."""
    bw = band.shape[1] - 1
    for r in range(nband.shape[0]):
        i = start + r
        for s in range(min(i, bw), 0, -1):
            j = i - s
            acc = nband[r, s].copy()
            for t in range(s + 1, min(bw, i) + 1):
                acc -= band[i, t] * band[j, t - s]
            band[i, s] = acc / band[j, 0]
        d = nband[r, 0] - np.einsum("tk,tk->k", band[i, 1:], band[i, 1:])
        bad = ~(d > _PIVOT_TOL * nband[r, 0])
        exact &= ~bad
        band[i, 0] = np.sqrt(np.where(bad, 1.0, d))
        acc = rhs[r].copy()
        for t in range(1, min(bw, i) + 1):
            acc -= band[i, t] * y[i - t]
        y[i] = acc / band[i, 0]


def _redundant(count: np.ndarray, min_redundancy: float) -> np.ndarray:
    used = count.sum(axis=0) > 0
    return (count[1:] >= min_redundancy).all(axis=0) & used


def factorize(phase: np.ndarray, weight: np.ndarray | None, d1, d2, num_date: int,
              min_redundancy: float = 1.0) -> FactorState:
    """The factor of every pixel of a block from all its pairs (``phase`` NaN = missing)."""
    d1, d2 = np.asarray(d1, np.intp), np.asarray(d2, np.intp)
    bw = int((d2 - d1).max()) if d1.size else 1
    nband, rhs, count = normal_equations(phase, weight, d1, d2, num_date, bw)
    k = phase.shape[1]
    redundant = _redundant(count, min_redundancy)
    state = FactorState(np.zeros_like(nband), np.zeros((num_date - 1, k)), redundant.copy(), redundant)
    _resume(state.band, state.y, state.exact, nband, rhs, 0)
    return state


def solve(state: FactorState) -> np.ndarray:
    """x (n−1, k) from Lᵀx = y (back substitution); zeros where not ``exact``."""
    x = _back_substitute(state.band, state.y)
    x[:, ~state.exact] = 0.0
    return x


def factor_solve(phase: np.ndarray, weight: np.ndarray | None, d1, d2, num_date: int,
                 min_redundancy: float = 1.0, slab: int = _SLAB) -> tuple[np.ndarray, np.ndarray]:
    """x (n−1, k) of every pixel from its pairs and the exact flags: :func:`factorize` then
    :func:`solve`, slab by slab of pixels so that the band and the pair loop stay in the CPU caches
    (3× faster than whole blocks at a million pixels)."""
    k = phase.shape[1]
    x = np.zeros((num_date - 1, k))
    exact = np.zeros(k, bool)
    for s0 in range(0, k, slab):
        s1 = min(k, s0 + slab)
        state = factorize(phase[:, s0:s1], None if weight is None else weight[:, s0:s1], d1, d2, num_date,
                          min_redundancy)
        x[:, s0:s1] = solve(state)
        exact[s0:s1] = state.exact
    return x, exact


def residual_sums(phase: np.ndarray, ts: np.ndarray, d1, d2, slab: int = 4096
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Σ cos r, Σ sin r and the count of the used pairs, r = wrap(φ − x[d2] + x[d1]).

    ``ts`` (dates, k) indexed by ``d1``/``d2``; ``phase`` NaN = not used.  The residual is formed
    and wrapped in float64, its cosine and sine taken in float32 and summed in float64 (as the
    solver does), slab by slab of pixels so that the work arrays stay in the CPU caches."""
    d1, d2 = np.asarray(d1, np.intp), np.asarray(d2, np.intp)
    k = phase.shape[1]
    csum, ssum = np.zeros(k), np.zeros(k)
    num = np.zeros(k, np.int64)
    if not d1.size:
        return csum, ssum, num
    for s0 in range(0, k, slab):
        s1 = min(k, s0 + slab)
        P = np.asarray(phase[:, s0:s1], np.float64)
        T = ts[:, s0:s1]
        res = P - T[d2]
        res += T[d1]
        invalid = ~np.isfinite(res)
        res[invalid] = 0.0
        res -= np.rint(res * (1.0 / (2 * np.pi))) * (2 * np.pi)
        r32 = res.astype(np.float32)
        nbad = invalid.sum(axis=0)
        csum[s0:s1] = np.cos(r32).sum(axis=0, dtype=np.float64) - nbad
        ssum[s0:s1] = np.sin(r32).sum(axis=0, dtype=np.float64)
        num[s0:s1] = P.shape[0] - nbad
    return csum, ssum, num


def temporal_coherence(phase: np.ndarray, ts: np.ndarray, d1, d2, slab: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Temporal coherence |Σ exp(j(φ − Ax))| / M over the used pairs (Pepe & Lanari 2006) and M."""
    csum, ssum, num = residual_sums(phase, ts, d1, d2, slab)
    return np.hypot(csum, ssum) / np.maximum(num, 1), num


def solve_window(phase: np.ndarray, weight: np.ndarray | None, d1, d2, start: int, fixed: np.ndarray,
                 fixed_start: int, num_date: int, min_redundancy: float = 1.0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least squares of the dates ``start``.. with the earlier dates held at ``fixed``.

    ``phase`` (m, k) are the pairs with ``d2 ≥ start``; ``fixed`` (start − fixed_start, k) the values
    of the dates ``fixed_start .. start−1`` (every ``d1`` below ``start`` must be among them).  A pair
    from a fixed date becomes a pair from one grounded date whose phase carries that date's value,
    so the system is the weighted Laplacian of the window grounded at its boundary (phase form).

    Returns x (num_date − start, k), ``ok``: the window is connected to its boundary and every
    window date has ``min_redundancy`` pairs, and ``redundant``: the latter alone (the pairs that
    touch a window date are all among these, so a pixel not redundant here is one the full
    inversion leaves empty)."""
    d1, d2 = np.asarray(d1, np.intp), np.asarray(d2, np.intp)
    if (d2 < start).any() or (d1 < fixed_start).any():
        raise ValueError("solve_window: a pair ends before the window or starts before the fixed dates")
    ground = np.flatnonzero(d1 < start)
    w1 = np.where(d1 < start, 0, d1 - start + 1)
    w2 = d2 - start + 1
    nw = num_date - start + 1
    k = phase.shape[1]
    x = np.zeros((nw - 1, k))
    ok = np.zeros(k, bool)
    redundant = np.zeros(k, bool)

    def adjusted(cols: Any) -> np.ndarray:
        adj = np.asarray(phase[:, cols], np.float64)
        if ground.size:
            at = d1[ground] - fixed_start
            adj[ground] += fixed[at, cols] if isinstance(cols, slice) else fixed[np.ix_(at, cols)]
        return adj

    rest = np.arange(k)
    if weight is None and k and d1.size:
        # unweighted pixels with every pair share one normal matrix: factorised once, solved for all
        complete = np.flatnonzero(np.isfinite(phase).all(axis=0))
        shared = factorize(np.zeros((d1.size, 1)), None, w1, w2, nw, min_redundancy)
        if complete.size and shared.exact[0]:
            band = shared.band[:, :, 0]
            for c0 in range(0, complete.size, 4 * _SLAB):
                cols = complete[c0:c0 + 4 * _SLAB]
                x[:, cols] = _solve_shared(band, _rhs(adjusted(cols), w1, w2, nw))
            ok[complete] = redundant[complete] = True
            rest = np.flatnonzero(~np.isfinite(phase).all(axis=0))
    for s0 in range(0, rest.size, _SLAB):  # slab by slab: the work arrays stay in the CPU caches
        cols = rest[s0:s0 + _SLAB]
        sl = slice(int(cols[0]), int(cols[-1]) + 1) if cols[-1] - cols[0] + 1 == cols.size else cols
        state = factorize(adjusted(sl), None if weight is None else weight[:, sl], w1, w2, nw, min_redundancy)
        x[:, sl] = solve(state)
        ok[sl] = state.exact
        redundant[sl] = state.redundant
    return x, ok, redundant


def _rhs(phase: np.ndarray, d1: np.ndarray, d2: np.ndarray, num_date: int) -> np.ndarray:
    """b = Aᵀφ of the unweighted phase form (first date removed) for pairs without missing data."""
    rhs = np.zeros((num_date - 1, phase.shape[1]))
    for i in range(d1.size):
        rhs[d2[i] - 1] += phase[i]
        if d1[i] > 0:
            rhs[d1[i] - 1] -= phase[i]
    return rhs


def _solve_shared(band: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x from LLᵀx = rhs with one banded factor (``band[i, t]`` = L[i, i − t]) for every column."""
    rows, bw = band.shape[0], band.shape[1] - 1
    y = np.empty_like(rhs)
    for i in range(rows):
        acc = rhs[i].copy()
        for t in range(1, min(bw, i) + 1):
            acc -= band[i, t] * y[i - t]
        y[i] = acc / band[i, 0]
    return _back_substitute(band, y)


def _back_substitute(band: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x from Lᵀx = y; ``band[i, t]`` = L[i, i − t], per pixel (B+1, k) or one factor for all (B+1,)."""
    rows, bw = band.shape[0], band.shape[1] - 1
    x = np.zeros_like(y)
    for i in range(rows - 1, -1, -1):
        acc = y[i].copy()
        for t in range(1, min(bw, rows - 1 - i) + 1):
            acc -= band[i + t, t] * x[i + t]
        x[i] = acc / band[i, 0]
    return x


# ------------------------------------------------------------------------------------ files
def store_path(work_dir: str | os.PathLike) -> Path:
    """The update store of a work directory (:data:`STORE_FILE`)."""
    return Path(work_dir) / STORE_FILE


def options_digest(prep: Any) -> str:
    """What the stored solution depends on besides the data: weights, masks, reference, land."""
    from sbts.core.inversion.engine import mask_token

    o = prep.options
    payload = [o.weight_func, prep.looks if o.weighted else 1, o.mask_dataset, o.mask_threshold, o.min_redundancy,
               o.obs_dataset, list(prep.ref_yx), mask_token(prep.water)]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


_INFO_ATTR = "SBTS_UPDATE_STORE"
#: attribute of an updated ``timeseries.h5``: what the update did (absent after a full inversion)
UPDATE_ATTR = "SBTS_INVERSION_UPDATE"


def _bandwidth(d1: np.ndarray, d2: np.ndarray) -> int:
    return int((d2 - d1).max()) if d1.size else 1


def _subtask(task: Any, rows: np.ndarray) -> Any:
    """The block task reading only the kept pairs ``rows`` (indices into the kept pairs)."""
    from dataclasses import replace

    pick = lambda seq: None if seq is None else tuple(np.asarray(seq)[rows].tolist())  # noqa: E731
    return replace(task, kept_index=pick(task.kept_index), ref_phase=pick(task.ref_phase),
                   date1_index=pick(task.date1_index), date2_index=pick(task.date2_index))


def _read_pairs(task: Any, block: Any, rows: np.ndarray, pixels: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Phase (NaN = not used), weights (None unweighted) and land mask of the kept pairs ``rows``,
    for every pixel of ``block`` or only ``pixels`` (flat indices in it)."""
    from sbts.core.inversion import engine

    inputs = engine.read_block(_subtask(task, rows), block)
    k = block.shape[0] * block.shape[1]
    land = np.ones(k, bool) if inputs.pixel_mask is None else inputs.pixel_mask.reshape(-1).astype(bool)
    phase, coherence = inputs.phase, inputs.coherence
    if pixels is not None:
        phase, land = phase[:, pixels], land[pixels]
        coherence = None if coherence is None else coherence[:, pixels]
    weight = None
    if task.weight_func != "no" and rows.size:
        from sbts.core.inversion.weights import coherence_to_weight_fast

        assert coherence is not None  # read_block reads it whenever the pairs are weighted
        weight = coherence_to_weight_fast(coherence, task.weight_func, task.looks)
    return phase, weight, land


def _read_pixels(task: Any, block: Any, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """All kept pairs of a few pixels of ``block`` (flat indices, increasing): only the image rows that
    hold them are read, in one selection per dataset."""
    from sbts.core.io.blocks import RowSet

    w = block.shape[1]
    rows = np.unique(pixels // w)
    sub = RowSet(block.row_start + rows, block.col_start, block.col_stop)
    local = np.searchsorted(rows, pixels // w) * w + pixels % w
    phase, weight, _ = _read_pairs(task, sub, np.arange(len(task.kept_index)), local)
    return phase, weight


def _full_pixels(phase: np.ndarray, weight: np.ndarray | None, d1, d2, task: Any, frozen: int, lo: int,
                 end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixels solved from all their pairs: the solver's time series (radians, (n, k)), coherence and
    count, and what the store keeps of them (x of dates lo..end−1, sums of the pairs ending before
    ``frozen``, the exact flag)."""
    from sbts.core.inversion.kernel import invert_block

    n = len(task.tbase)
    res = invert_block(phase, d1, d2, np.asarray(task.tbase), weight=weight,
                       min_norm_velocity=task.min_norm_velocity, min_redundancy=task.min_redundancy)
    ts = np.asarray(res.timeseries, np.float64)
    # exact for the next update: connected and redundant (the full factor's pivots), as the solver saw it
    exact = factor_solve(phase, weight, d1, d2, n, task.min_redundancy)[1]
    early = d2 < frozen
    csum, ssum, num = residual_sums(phase[early], ts, d1[early], d2[early])
    return (ts, np.asarray(res.temporal_coherence, np.float64), np.asarray(res.num_inv_ifgram, np.int64),
            ts[lo:end], np.stack([csum, ssum]), num, exact)


def _store_layout(num_date: int, bandwidth: int) -> tuple[int, int, int]:
    """(frozen, start, end): the dates before ``frozen`` are final; x is kept for ``start .. end−1``
    (what the next update needs: its boundary, the dates of the pairs it adds to the sums, and the
    first dates it re-solves, for appends of up to ``STORE_AHEAD`` dates at once)."""
    frozen = max(1, num_date - bandwidth - WINDOW_MARGIN)
    return frozen, max(0, frozen - bandwidth), min(num_date, frozen + bandwidth + STORE_AHEAD)


def _store_info(prep: Any, bandwidth: int, frozen: int, start: int) -> dict:
    """What a store built from the kept pairs of ``prep`` records of them (checked by the next update)."""
    return {"options": options_digest(prep), "stack_signature": stack_signature(prep.stack_path),
            "pairs": list(prep.kept.date12), "dates": list(prep.kept.date_strings), "bandwidth": bandwidth,
            "frozen": frozen, "start": start, "loaded_phase": holds_loaded_phase(prep.stack_path, prep.options.obs_dataset)}


def holds_loaded_phase(stack_path: str | os.PathLike, name: str) -> bool:
    """Whether the stack's dataset ``name`` holds the loaded phase itself: ``unwrapPhase``, or a
    correction that changed no pair and maps onto it (the same mapping: see
    :meth:`sbts.core.io.stack_editor.StackEditor.write_corrected_copy`).  Such a dataset grows with
    the appended pairs as ``unwrapPhase`` does, so an update of its inversion is exact."""
    if name == "unwrapPhase":
        return True
    import h5py

    from sbts.core.io.stack_parts import mapping_of

    try:
        with h5py.File(stack_path, "r") as f:
            if name not in f or "unwrapPhase" not in f or not f[name].is_virtual:
                return False
            mine, loaded = mapping_of(f[name]), mapping_of(f["unwrapPhase"])
    except OSError:
        return False
    # a mapping onto the stored unwrapPhase of the same file ("."), or the same runs of parts as its
    return mine is not None and mine == loaded


def _write_store_block(w: Any, block: Any, x: np.ndarray, pre: np.ndarray, pre_num: np.ndarray,
                       exact: np.ndarray) -> None:
    h, wd = block.shape
    w.write("x", x.reshape(-1, h, wd), block)
    w.write("preSum", pre.reshape(2, h, wd), block)
    w.write("preNum", pre_num.astype(np.int32).reshape(h, wd), block)
    w.write("exact", exact.astype(np.uint8).reshape(h, wd), block)


def _create_store(path: Path, info: dict, shape: tuple[int, int], num_x: int, signature: str | None = None) -> Any:
    from sbts.core.io.h5 import H5Writer

    w = H5Writer(path, {"FILE_TYPE": STORE_TYPE, _INFO_ATTR: json.dumps(info)}, signature=signature)
    w.__enter__()
    w.create("x", shape=(num_x,) + shape, dtype=np.float64)
    w.create("preSum", shape=(2,) + shape, dtype=np.float64)
    w.create("preNum", shape=shape, dtype=np.int32)
    w.create("exact", shape=shape, dtype=np.uint8)
    return w


class _SparseOut:
    """All early pairs (ending before ``frozen``) of the pixels the window cannot update — a
    disconnected or under-redundant network: their next update solves them from all their pairs
    without reading the stack's early pairs again.  Appended block by block."""

    def __init__(self, w: Any, num_early: int, weighted: bool) -> None:
        f = w.file
        if "sparse/pixel" in f:  # a resumed store: its blocks written so far keep their pixels
            self.pixel, self.phase = f["sparse/pixel"], f["sparse/phase"]
            self.weight = f["sparse/weight"] if weighted else None
            return
        self.pixel = f.create_dataset("sparse/pixel", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,))
        chunks = (max(1, num_early), 1024) if num_early else None
        self.phase = f.create_dataset("sparse/phase", shape=(num_early, 0), maxshape=(num_early, None),
                                      dtype=np.float32, chunks=chunks)
        self.weight = f.create_dataset("sparse/weight", shape=(num_early, 0), maxshape=(num_early, None),
                                       dtype=np.float64, chunks=chunks) if weighted else None

    def add(self, pixels: np.ndarray, phase: np.ndarray, weight: np.ndarray | None) -> None:
        if not pixels.size:
            return
        a, b = self.pixel.shape[0], self.pixel.shape[0] + pixels.size
        self.pixel.resize((b,))
        self.pixel[a:b] = pixels
        self.phase.resize(b, axis=1)
        self.phase[:, a:b] = phase
        if self.weight is not None:
            assert weight is not None
            self.weight.resize(b, axis=1)
            self.weight[:, a:b] = weight


class _SparseIn:
    """The stored early pairs of the pixels of :class:`_SparseOut`, found by block."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.pixel = f["sparse/pixel"][()] if "sparse/pixel" in f else np.zeros(0, np.int64)

    def in_block(self, block: Any, width: int) -> tuple[np.ndarray, np.ndarray]:
        """(flat indices in the block, positions in the store) of the stored pixels of ``block``."""
        r, c = np.divmod(self.pixel, width)
        pos = np.flatnonzero((r >= block.row_start) & (r < block.row_stop) & (c >= block.col_start)
                             & (c < block.col_stop))
        local = (r[pos] - block.row_start) * block.shape[1] + (c[pos] - block.col_start)
        return local, pos

    def read(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = self.f["sparse/phase"].shape[0]
        weighted = "sparse/weight" in self.f
        if not n:  # no early pair (the window starts at the second date): HDF5 cannot select from none
            return np.zeros((0, pos.size), np.float32), np.zeros((0, pos.size)) if weighted else None
        if not pos.size:
            return np.zeros((n, 0), np.float32), None
        phase = self.f["sparse/phase"][:, pos]
        weight = self.f["sparse/weight"][:, pos] if weighted else None
        return phase, weight


def _image_index(block: Any, local: np.ndarray, width: int) -> np.ndarray:
    r, c = np.divmod(local, block.shape[1])
    return (r + block.row_start) * width + c + block.col_start


def _drop_old_factor(work_dir: Path) -> None:
    old = work_dir / "inversionFactor.h5"  # the store of sbts ≤ 2026-12 (a whole factor, 2.4 kB a pixel)
    if old.exists():
        logger.info("removing %s: replaced by %s", old, STORE_FILE)
        old.unlink()


@dataclass
class StoreBlock:
    """What the store keeps of one block, made where the block is solved (see :class:`StoreInPass`)."""

    x: np.ndarray  # (end − start, k) float64 phase of the kept dates
    pre: np.ndarray  # (2, k) Σ cos r, Σ sin r of the pairs ending before ``frozen``
    pre_num: np.ndarray  # (k,) their count
    exact: np.ndarray  # (k,) bool
    sparse_pixel: np.ndarray  # flat indices in the block of the pixels whose early pairs are kept
    sparse_phase: np.ndarray  # (early pairs, s) float32
    sparse_weight: np.ndarray | None  # (early pairs, s) float64


def store_block(phase: np.ndarray, weight: np.ndarray | None, ts: np.ndarray, num_used: np.ndarray,
                num_gap: np.ndarray, d1, d2, layout: tuple[int, int, int]) -> StoreBlock:
    """The store's part of pixels the solver has just inverted (its float64 ``ts`` (n, k), radians,
    first date 0): the same quantities :func:`build_store` computes with its own factorisation.

    A pixel is exact when the solver used it (every date with ``min_redundancy`` ≥ 1 pairs) and its
    network has no gap: a network of dates in time order is connected exactly when every interval
    between consecutive dates is spanned by a used pair, and a connected network with positive
    weights has a positive-definite grounded Laplacian — the factor :func:`factorize` checks by
    its pivots."""
    d1, d2 = np.asarray(d1, np.intp), np.asarray(d2, np.intp)
    frozen, lo, end = layout
    early = np.flatnonzero(d2 < frozen)
    early_phase = phase[early]
    csum, ssum, num = residual_sums(early_phase, ts, d1[early], d2[early])
    exact = (np.asarray(num_used) > 0) & (np.asarray(num_gap) == 0)
    keep = np.flatnonzero(~exact)
    return StoreBlock(np.ascontiguousarray(ts[lo:end]), np.stack([csum, ssum]), num, exact, keep,
                      np.asarray(early_phase[:, keep], np.float32),
                      None if weight is None else np.asarray(weight[np.ix_(early, keep)], np.float64))


class StoreInPass:
    """The store written by the full inversion as it solves its blocks (no second pass over the stack).

    Entered before the products' writers and left after them, so it takes its name last; resumable
    with the inversion's blocks.  The solver's float64 solution is what :func:`build_store`'s own
    factorisation gives, to rounding (≈1e-13 rad): the update's boundary test (1e-6 rad) is far
    above that."""

    def __init__(self, prep: Any, task: Any, signature: str) -> None:
        d1, d2 = np.asarray(task.date1_index, np.intp), np.asarray(task.date2_index, np.intp)
        n = len(task.tbase)
        self.bandwidth = _bandwidth(d1, d2)
        self.layout = _store_layout(n, self.bandwidth)
        frozen, lo, end = self.layout
        self.info = _store_info(prep, self.bandwidth, frozen, lo)
        self.path = store_path(prep.work_dir)
        self.shape = prep.stack.shape
        self.num_early = int((d2 < frozen).sum())
        self.weighted = task.weight_func != "no"
        self.signature = signature
        self.work_dir = prep.work_dir
        self.writer: Any = None
        self.sparse: _SparseOut | None = None

    @staticmethod
    def applies(task: Any) -> bool:
        """The solver's flags tell exactness only when every date needs a pair (minRedundancy ≥ 1)."""
        return task.min_redundancy >= 1

    def __enter__(self) -> StoreInPass:
        frozen, lo, end = self.layout
        logger.info("writing %s for exact updates as the blocks are solved: the last %d dates of every pixel and "
                    "the coherence sums of its earlier pairs (%d B a pixel)", self.path.name, end - lo,
                    8 * (end - lo) + 29)
        self.writer = _create_store(self.path, self.info, self.shape, end - lo, self.signature)
        try:
            self.sparse = _SparseOut(self.writer, self.num_early, self.weighted)
        except BaseException:
            self.writer.__exit__(*__import__("sys").exc_info())
            raise
        return self

    def write(self, block: Any, part: StoreBlock) -> None:
        assert self.sparse is not None
        _write_store_block(self.writer, block, part.x, part.pre, part.pre_num, part.exact)
        self.sparse.add(_image_index(block, part.sparse_pixel, self.shape[1]), part.sparse_phase, part.sparse_weight)

    def __exit__(self, *exc: Any) -> None:
        self.writer.__exit__(*exc)
        if exc[0] is None:
            _drop_old_factor(self.work_dir)


def build_store(prep: Any, task: Any, max_memory: float) -> Path:
    """Write :data:`STORE_FILE` for the kept pairs of ``prep`` (after a full inversion)."""
    from sbts.core.io.blocks import plan_blocks
    from sbts.core.io.progress import progress

    d1, d2 = np.asarray(task.date1_index, np.intp), np.asarray(task.date2_index, np.intp)
    n, m = len(task.tbase), len(d1)
    bw = _bandwidth(d1, d2)
    frozen, lo, end = _store_layout(n, bw)
    shape = prep.stack.shape
    per_pixel = 24.0 * m + 8.0 * n * (2 * bw + 8) + 256
    blocks = plan_blocks(shape, per_pixel, max_memory)
    info = _store_info(prep, bw, frozen, lo)
    path = store_path(prep.work_dir)
    logger.info("writing %s for exact updates: the last %d dates of every pixel and the coherence sums "
                "of its earlier pairs (%d B a pixel)", path.name, end - lo, 8 * (end - lo) + 29)
    early = d2 < frozen
    w = _create_store(path, info, shape, end - lo)
    try:
        sparse = _SparseOut(w, int(early.sum()), task.weight_func != "no")
        all_rows = np.arange(m)
        for block in progress(blocks, desc="update store", unit="block"):
            phase, weight, land = _read_pairs(task, block, all_rows)
            ts = np.zeros((n, phase.shape[1]))
            ts[1:], exact = factor_solve(phase, weight, d1, d2, n, task.min_redundancy)
            early_phase = phase[early]
            csum, ssum, num = residual_sums(early_phase, ts, d1[early], d2[early])
            _write_store_block(w, block, ts[lo:end], np.stack([csum, ssum]), num, exact & land)
            keep = np.flatnonzero(land & ~exact)
            sparse.add(_image_index(block, keep, shape[1]), early_phase[:, keep],
                       None if weight is None else weight[early][:, keep])
    except BaseException:
        w.__exit__(*__import__("sys").exc_info())
        raise
    w.__exit__(None, None, None)
    _drop_old_factor(prep.work_dir)
    return path


def _why_not(prep: Any, info: dict) -> str:
    """Why the store of ``info`` cannot be moved on to the kept pairs of ``prep`` ("" when it can)."""
    if info.get("options") != options_digest(prep):
        return "the inversion options, reference point or land mask changed since the store was written"
    obs = prep.options.obs_dataset
    if not info.get("loaded_phase", obs == "unwrapPhase") or not holds_loaded_phase(prep.stack_path, obs):
        return f"{obs} is corrected over all pairs (not appended by the loader)"
    why = why_not_same_or_appended(prep.stack_path, str(info.get("stack_signature", "")))
    if why:
        return why
    old_dates, dates = list(info.get("dates", [])), list(prep.kept.date_strings)
    if dates[:len(old_dates)] != old_dates:
        return "the dates of the kept pairs are not the stored ones followed by new dates"
    kept = set(prep.kept.date12)
    dropped = [p for p in info.get("pairs", []) if p not in kept]
    if dropped:
        return f"{len(dropped)} pair(s) of the store are no longer kept ({dropped[0]} ...)"
    old, last = set(info.get("pairs", [])), old_dates[-1] if old_dates else ""
    between = [p for p in prep.kept.date12 if p not in old and p.split("_")[1] <= last]
    if between:
        return f"{len(between)} new pair(s) between old dates ({between[0]} ...)"
    first = min((p.split("_")[0] for p in prep.kept.date12 if p not in old), default=None)
    frozen = int(info.get("frozen", 0))
    cut = old_dates[frozen]
    if [p for p in info["pairs"] if p.split("_")[1] < cut] != [p for p in prep.kept.date12 if p.split("_")[1] < cut]:
        return "the early pairs are not in the stored order"
    if first is not None and first < old_dates[frozen]:
        return (f"a new pair starts on {first}, before the stored window (from {old_dates[frozen]}): "
                "the dates before it are final in the store")
    return ""


def _old_series(path: Path, info: dict) -> tuple[list[str], str] | str:
    """The dates and REF_DATE of the time series the store goes with, or why it does not."""
    from sbts.core.io.h5 import read_attrs
    from sbts.core.io.products import TimeSeries

    try:
        dates = list(TimeSeries(path).date_strings)
        ref_date = str(read_attrs(path).get("REF_DATE", dates[0] if dates else ""))
    except Exception as exc:  # noqa: BLE001 - missing or unreadable: recompute
        return f"{path.name} is unreadable ({exc})"
    old = list(info["dates"])
    if dates[:len(old)] != old:
        return f"{path.name} does not start with the stored dates"
    if ref_date not in dates:
        return f"{path.name} has REF_DATE {ref_date}, not one of its dates"
    return dates, ref_date


def _redo_inputs(task: Any, block: Any, redo: np.ndarray, phase: np.ndarray, weight: np.ndarray | None,
                 sparse: _SparseIn, early_rows: np.ndarray, read_rows: np.ndarray, width: int
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """All kept pairs of the pixels ``redo`` of a block: the early pairs of the pixels the store kept
    them for from the store (the rest already read), those of the others from the stack (their image
    rows only: after the boundary test they are few)."""
    m = early_rows.size + read_rows.size
    ph = np.full((m, redo.size), np.nan, np.float32)
    wt = None if weight is None else np.zeros((m, redo.size))
    local, pos = sparse.in_block(block, width)
    stored = np.isin(redo, local)
    if stored.any():
        where = dict(zip(local.tolist(), pos.tolist()))
        cols = np.flatnonzero(stored)
        want = np.array([where[i] for i in redo[cols].tolist()], np.int64)
        order = np.argsort(want)
        sp_phase, sp_weight = sparse.read(want[order])
        back = np.empty_like(order)
        back[order] = np.arange(order.size)
        ph[np.ix_(early_rows, cols)] = sp_phase[:, back]
        ph[np.ix_(read_rows, cols)] = phase[:, redo[cols]]
        if wt is not None:
            assert sp_weight is not None and weight is not None
            wt[np.ix_(early_rows, cols)] = sp_weight[:, back]
            wt[np.ix_(read_rows, cols)] = weight[:, redo[cols]]
    if not stored.all():
        cols = np.flatnonzero(~stored)
        pa, wa = _read_pixels(task, block, redo[cols])
        ph[:, cols] = pa
        if wt is not None:
            wt[:, cols] = wa
    return ph, wt


@dataclass(frozen=True)
class _UpdatePlan:
    """What every block of an update needs; picklable, for the pool and dask."""

    task: Any
    store: str  # the previous store (read only: the new one is written under another name)
    old_ts: str  # the previous timeseries.h5 (idem)
    width: int  # of the image
    d1: np.ndarray  # date indices of the kept pairs
    d2: np.ndarray
    read_rows: np.ndarray  # the kept pairs read (those ending from the stored window on)
    start: int  # first date re-solved
    lo: int  # first stored date
    n: int  # dates now
    n0: int  # dates before
    num_x: int  # dates stored
    frozen: int  # the stored window's start
    new_frozen: int  # the layout of the new store
    new_lo: int
    new_end: int
    ref_pos: int  # the previous time series' reference date (re-referenced to the first one here)

    @property
    def rd1(self) -> np.ndarray:
        return self.d1[self.read_rows]

    @property
    def rd2(self) -> np.ndarray:
        return self.d2[self.read_rows]


def _read_update_inputs(plan: _UpdatePlan, block: Any) -> dict:
    """The pairs of a block (phase, weights, land), its part of the previous store and the previous
    time series' dates that are kept: the I/O of :func:`_update_block`."""
    import h5py

    from sbts.core.io.h5 import direct
    from sbts.core.io.products import TimeSeries

    h, w = block.shape
    k = h * w
    phase, weight, land = _read_pairs(plan.task, block, plan.read_rows)
    with h5py.File(plan.store, "r") as old:
        x_old = direct(old, "x")[:, block.rows, block.cols].reshape(plan.num_x, k)
        pre = direct(old, "preSum")[:, block.rows, block.cols].reshape(2, k)
        pre_num = direct(old, "preNum")[block.rows, block.cols].reshape(k).astype(np.int64)
        exact = direct(old, "exact")[block.rows, block.cols].reshape(k).astype(bool)
        sparse_local = _SparseIn(old).in_block(block, plan.width)[0]
    early = TimeSeries(plan.old_ts).read_dates(block, index=np.arange(plan.start)).reshape(plan.start, k)
    return {"phase": phase, "weight": weight, "land": land, "x_old": x_old, "pre": pre, "pre_num": pre_num,
            "exact": exact, "sparse_local": sparse_local, "early": early}


def _update_block(plan: _UpdatePlan, block: Any, inputs: dict) -> dict:
    """One block of an update: the window re-solved, the boundary test, the pixels that fail it
    inverted from all their pairs, the temporal coherence; the products' and the new store's parts."""
    task, d1, d2, start, lo, n = plan.task, plan.d1, plan.d2, plan.start, plan.lo, plan.n
    rd1, rd2 = plan.rd1, plan.rd2
    win, ext = rd2 >= start, rd2 < start
    bw = _bandwidth(d1, d2)
    h, w = block.shape
    k = h * w
    phase, weight, land, x_old = inputs["phase"], inputs["weight"], inputs["land"], inputs["x_old"]
    exact = inputs["exact"] & land
    X = np.zeros((n - lo, k))
    X[:start - lo] = x_old[:start - lo]
    xw, ok, redundant = solve_window(phase[win], None if weight is None else weight[win], rd1[win], rd2[win],
                                     start, X[:start - lo], lo, n, task.min_redundancy)
    X[start - lo:] = xw
    # the boundary test: how far the first re-solved dates moved bounds how far the kept
    # dates would have (a weighted Laplacian's harmonic extension obeys the maximum principle)
    edge = slice(start - lo, min(start + bw, plan.n0) - lo)
    moved = np.abs(X[edge] - x_old[edge]).max(axis=0) if edge.stop > edge.start else np.zeros(k)
    # a window from the second date keeps only the first, which is 0 by definition: nothing to bound
    near = moved <= WINDOW_TOL if start > 1 else np.ones(k, bool)
    good = exact & ok & near
    # a window date under minRedundancy: the solver leaves the pixel empty.  Its early pairs are
    # read (and kept in the store) only once it has data again, unless the store has them already
    in_sparse = np.zeros(k, bool)
    in_sparse[inputs["sparse_local"]] = True
    empty = land & ~redundant & ~in_sparse
    good &= ~empty
    why = np.array([np.count_nonzero(land & ~exact & ~empty), np.count_nonzero(exact & ~ok & ~empty),
                    np.count_nonzero(exact & ok & ~near)], np.int64)
    c_e, s_e, n_e = residual_sums(phase[ext], X, rd1[ext] - lo, rd2[ext] - lo)
    c_w, s_w, n_w = residual_sums(phase[win], X, rd1[win] - lo, rd2[win] - lo)
    pre_new = inputs["pre"] + np.stack([c_e, s_e])
    num_pre = inputs["pre_num"] + n_e
    num = num_pre + n_w
    tcoh = np.hypot(pre_new[0] + c_w, pre_new[1] + s_w) / np.maximum(num, 1)
    ts = np.zeros((n, k), np.float32)
    early = inputs["early"]
    if plan.ref_pos:  # re-referenced after the inversion (reference_date): back to the first date
        early = (early.astype(np.float64) - early[0]).astype(np.float32)
    ts[:start] = early
    ts[start:] = (X[start - lo:] * task.phase2range).astype(np.float32)
    x_keep = np.ascontiguousarray(X[plan.new_lo - lo:plan.new_end - lo])
    redo = np.flatnonzero(land & ~good & ~empty)
    new_early = d2 < plan.new_frozen
    sparse = (np.zeros(0, np.int64), np.zeros((int(new_early.sum()), 0), np.float32),
              None if weight is None else np.zeros((int(new_early.sum()), 0)))
    if redo.size:  # from all their pairs, the solver's own answer
        import h5py

        with h5py.File(plan.store, "r") as old:
            ph, wt = _redo_inputs(task, block, redo, phase, weight, _SparseIn(old), np.flatnonzero(d2 < plan.frozen),
                                  plan.read_rows, plan.width)
        full = _full_pixels(ph, wt, d1, d2, task, plan.new_frozen, plan.new_lo, plan.new_end)
        ts[:, redo] = (full[0] * task.phase2range).astype(np.float32)
        tcoh[redo], num[redo], x_keep[:, redo] = full[1], full[2], full[3]
        pre_new[:, redo], num_pre[redo], good[redo] = full[4], full[5], full[6]
        keep = np.flatnonzero(~full[6])
        sparse = (_image_index(block, redo[keep], plan.width), ph[new_early][:, keep],
                  None if wt is None else wt[new_early][:, keep])
    off = ~land | empty
    ts[:, off], tcoh[off], num[off] = 0.0, 0.0, 0
    counts = np.array([np.count_nonzero(land & ~empty) - redo.size, redo.size, np.count_nonzero(empty)], np.int64)
    return {"ts": ts, "tcoh": tcoh.astype(np.float32), "num": num.astype(np.float32), "x_keep": x_keep,
            "pre": pre_new, "pre_num": num_pre, "exact": good & land, "sparse_pixel": sparse[0],
            "sparse_phase": sparse[1], "sparse_weight": sparse[2], "counts": counts, "why": why}


def update(prep: Any, task: Any, max_memory: float, num_worker: int = 1, cluster: str | None = None) -> Any:
    """Update ``timeseries.h5`` and its quality maps from the store, or None (logged) when the update
    cannot be exact.  Outputs take their names only when complete, the store last (a killed update
    leaves the previous products and store in place, or new products with the previous store: the
    rerun updates again from it and gets the same result).

    The blocks run here, in the pool (``num_worker``) or on dask (``cluster``): each reads its pairs,
    its part of the previous store and of the previous time series where it runs
    (:func:`_update_block`), and this process writes what they return, in block order, so the
    products and the new store are the same bits whoever computed them."""
    import functools
    from dataclasses import replace

    import h5py

    from sbts.core.compute.scheduling import describe, memory_per_task, run_blocks
    from sbts.core.inversion import engine
    from sbts.core.io.blocks import plan_blocks
    from sbts.core.io.h5 import H5Writer
    from sbts.core.io.products import TimeSeriesWriter
    from sbts.core.io.progress import progress

    path = store_path(prep.work_dir)
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            info = json.loads(f.attrs[_INFO_ATTR])
            num_x = f["x"].shape[0]
    except (OSError, KeyError, ValueError) as exc:
        logger.info("full inversion: %s is unreadable (%s)", path.name, exc)
        return None
    reason = _why_not(prep, info)
    old_series = _old_series(prep.outputs.timeseries, info) if not reason else ""
    if isinstance(old_series, str) or reason:
        logger.info("full inversion (the store cannot be moved on exactly): %s", reason or old_series)
        return None
    old_ts_dates, old_ref_date = old_series
    d1, d2 = np.asarray(task.date1_index, np.intp), np.asarray(task.date2_index, np.intp)
    n, n0 = len(task.tbase), len(info["dates"])
    frozen, lo = int(info["frozen"]), int(info["start"])
    kept12 = list(prep.kept.date12)
    old_set = set(info["pairs"])
    new_rows = np.array([k for k, p in enumerate(kept12) if p not in old_set], np.intp)
    touched = int(d1[new_rows].min()) if new_rows.size else n0 - 1
    bw = _bandwidth(d1, d2)
    reach = lo + num_x - bw  # the stored dates cover the boundary and the moved test up to here
    start = max(frozen, min(touched - WINDOW_MARGIN, reach))  # first date re-solved
    if start > reach:
        logger.info("full inversion (the store cannot be moved on exactly): %d dates appended at once, more than "
                    "the store reaches", n - n0)
        return None
    read_rows = np.flatnonzero(d2 >= frozen)
    if (d1[read_rows] < lo).any():
        logger.info("full inversion (the store cannot be moved on exactly): a pair reaches back before the "
                    "stored dates")
        return None
    kind = "weighted" if task.weight_func != "no" else "unweighted"
    if read_rows.size * UPDATE_COST_RATIO[kind] >= len(kept12):
        logger.info("full inversion: cheaper than the update, which would read %d of the %d pairs (%s, an update "
                    "costs ~%.1f× a full inversion per pair; the store is written in the same pass)",
                    read_rows.size, len(kept12), kind, UPDATE_COST_RATIO[kind])
        return None
    win = d2[read_rows] >= start
    new_frozen, new_lo, new_end = start, max(lo, start - bw), min(n, start + bw + STORE_AHEAD)
    num_win = n - start
    ref_pos = old_ts_dates.index(old_ref_date)
    shape = prep.stack.shape
    per_pixel = (24.0 * read_rows.size + 8.0 * (n - lo) * 3 + 16.0 * num_win * (bw + 3) + 12.0 * n
                 + 8.0 * num_x + 16.0 * len(kept12) + 256)
    blocks = plan_blocks(shape, per_pixel, memory_per_task(max_memory, num_worker, cluster))
    logger.info("updating the inversion: %d new pair(s), %d new date(s); re-solving the last %d dates from "
                "%d pairs, the %d dates before them kept; %d block(s)%s", new_rows.size, n - n0, num_win,
                int(win.sum()), start, len(blocks), describe(num_worker, cluster))
    out_meta = engine._output_metadata(prep)
    outputs = prep.outputs
    info_new = {**info, "stack_signature": stack_signature(prep.stack_path), "pairs": kept12, "loaded_phase": True,
                "dates": list(prep.kept.date_strings), "bandwidth": bw, "frozen": new_frozen, "start": new_lo}
    counts, why = np.zeros(3, np.int64), np.zeros(3, np.int64)
    plan = _UpdatePlan(task=task, store=str(path), old_ts=str(outputs.timeseries), width=shape[1], d1=d1, d2=d2,
                       read_rows=read_rows, start=start, lo=lo, n=n, n0=n0, num_x=num_x, frozen=frozen,
                       new_frozen=new_frozen, new_lo=new_lo, new_end=new_end, ref_pos=ref_pos)
    new_early = d2 < new_frozen
    wst = _create_store(path, info_new, shape, new_end - new_lo)  # entered first: takes its name last
    try:
        sparse_out = _SparseOut(wst, int(new_early.sum()), task.weight_func != "no")
        with TimeSeriesWriter(outputs.timeseries, out_meta.replace(file_type="timeseries", unit="m"),
                              prep.kept.date_strings, prep.kept.date_bperp()) as wts, \
                H5Writer(outputs.temporal_coherence, out_meta.replace(file_type="temporalCoherence", unit="1")) as wtc, \
                H5Writer(outputs.num_inv_ifgram, out_meta.replace(file_type="mask", unit="1")) as wnum:
            wtc.create("temporalCoherence", shape=shape, dtype=np.float32)
            wnum.create("mask", shape=shape, dtype=np.float32)
            # in block order (dask too): the sparse pixels are appended to the store in the same order
            results = run_blocks(blocks, functools.partial(_read_update_inputs, plan),
                                 functools.partial(_update_block, plan), workers=num_worker, cluster=cluster,
                                 ordered=True)
            for block, part in progress(results, desc="update", unit="block", total=len(blocks)):
                h, w = block.shape
                counts += part["counts"]
                why += part["why"]
                wts.write("timeseries", part["ts"].reshape(n, h, w), block)
                wtc.write("temporalCoherence", part["tcoh"].reshape(h, w), block)
                wnum.write("mask", part["num"].reshape(h, w), block)
                _write_store_block(wst, block, part["x_keep"], part["pre"], part["pre_num"], part["exact"])
                sparse_out.add(part["sparse_pixel"], part["sparse_phase"], part["sparse_weight"])
            reliable = engine._finish_outputs(prep, out_meta, wtc, wnum)
            wts.file.attrs[UPDATE_ATTR] = (f"exact update with {new_rows.size} new pair(s), {n - n0} new date(s): "
                                           f"the last {num_win} dates re-solved, {start} kept; {counts[0]} "
                                           f"pixel(s) updated, {counts[1]} inverted from all their pairs, "
                                           f"{counts[2]} left empty (a date without enough pairs)")
    except BaseException:
        wst.__exit__(*__import__("sys").exc_info())
        raise
    wst.__exit__(None, None, None)
    counts, why = counts.tolist(), why.tolist()
    logger.info("inversion updated: %d pixel(s) updated, %d inverted from all their pairs, %d left empty (a date "
                "without enough pairs)", *counts)
    if counts[1]:
        logger.info("inverted from all their pairs: %d pixel(s) without a connected network before, %d whose last "
                    "dates are not connected, %d whose kept dates may move by more than %.0e rad",
                    *why, WINDOW_TOL)
    return replace(outputs, skipped=False, num_reliable_pixels=reliable)
