"""Exact update of the network inversion when new acquisitions are appended (issue 18).

With the dates in time order, the normal matrix of a pixel, N = AᵀWA of the phase form (first date
removed), is the weighted Laplacian of its network: banded, bandwidth B = max(date2 − date1) in date
indices.  Its Cholesky factor N = LLᵀ is banded too, and row i of L depends only on the rows ≤ i of
N.  New dates appended at the end, with pairs that join them to the last old dates, change N only
from the first old date r a new pair touches: the rows < r of L (and of y = L⁻¹AᵀWφ) stay as they
are, and the factorisation and forward substitution simply *resume* at row r with

    N'[i, j] = (L Lᵀ)[i, j] + ΔN[i, j],     b'[i] = (L y)[i] + Δb[i]     (i ≥ r),

where ΔN, Δb come from the new pairs only (their phase and coherence: nothing else is read to
update the factor).  A back substitution Lᵀx = y then gives every date of the new solution — all
dates move, because the new pairs tie the last old dates together.  The result is the weighted
least-squares solution of all pairs, the same as a full inversion up to float64 rounding.

The factor lives in :data:`STORE_FILE` next to ``timeseries.h5``: per pixel ``(n−1)·(B+2)`` float64
values (the band of L and y) plus one flag — for 60 dates and B = 3, 2.4 kB a pixel (2.4 GB per
million pixels), about 1.6× the phase + coherence of a 3-pair-per-date stack.  A pixel whose factor
cannot be extended exactly — network disconnected, a date below ``minRedundancy``, or outside the
land mask — is flagged and inverted from all its pairs by :func:`sbts.core.inversion.kernel.invert_block`
during the update (and refactorised, so the next update is exact again).

The temporal coherence depends on the residual of every pair under the new solution, so an
update reads the phase of every kept pair once (not the coherence of the old pairs, which only the
weights of a full inversion need); it solves nothing per pair.

A whole-stack condition that makes the update inexact falls back to a full inversion with a log
line: other inversion options, reference point or land mask; a pair (kept or dropped) between old
dates added or an old pair dropped; another observation dataset than the loaded ``unwrapPhase``;
the stack's old pairs not the ones the factor was built from (see
:func:`sbts.core.steps.load.read_update_record`, whose record the loader writes beside the stack).
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

logger = logging.getLogger(__name__)

STORE_FILE = "inversionFactor.h5"
STORE_TYPE = "inversionFactor"
_LOAD_RECORD = "ifgramStack_load.json"  # written by the loader beside the stack
_PIVOT_TOL = 1e-9  # a pivot below this fraction of its diagonal: numerically rank deficient

__all__ = ["STORE_FILE", "UPDATE_ATTR", "FactorState", "normal_equations", "factorize", "extend", "solve",
           "temporal_coherence", "store_path"]


# ------------------------------------------------------------------------------------ arrays
@dataclass
class FactorState:
    """The banded Cholesky factor of a block of pixels.

    ``band[i, t, p]`` = L[i, i − t] of pixel p (t = 0 the diagonal), ``y`` = L⁻¹ b, ``exact`` the
    pixels whose factor is that of their full-rank normal matrix."""

    band: np.ndarray  # (n−1, B+1, k) float64
    y: np.ndarray  # (n−1, k) float64
    exact: np.ndarray  # (k,) bool

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
    state = FactorState(np.zeros_like(nband), np.zeros((num_date - 1, k)), _redundant(count, min_redundancy))
    _resume(state.band, state.y, state.exact, nband, rhs, 0)
    return state


def extend(state: FactorState, phase: np.ndarray, weight: np.ndarray | None, d1, d2, num_date: int,
           min_redundancy: float = 1.0) -> FactorState:
    """The factor after adding the pairs ``d1``→``d2`` (indices into the new date list, whose first
    dates are the old ones) to a factor of ``state.band.shape[0] + 1`` dates.

    New pairs must end on a new date (a pair between old dates changes rows the factor keeps).
    The pixels a new date is not redundant enough for lose their ``exact`` flag."""
    d1, d2 = np.asarray(d1, np.intp), np.asarray(d2, np.intp)
    n0 = state.band.shape[0] + 1
    if d1.size and (d2 < n0).any():
        raise ValueError("a new pair between old dates cannot be added to the factor")
    k = state.y.shape[1]
    bw0 = state.bandwidth
    bw = max(bw0, int((d2 - d1).max()) if d1.size else 0)
    touched = [a - 1 for a in d1.tolist() if a > 0]
    start = min(touched + [n0 - 1])
    band = np.zeros((num_date - 1, bw + 1, k))
    band[:n0 - 1, :bw0 + 1] = state.band
    y = np.zeros((num_date - 1, k))
    y[:n0 - 1] = state.y
    # rows ≥ start of the old N and b, rebuilt from the factor: N = L Lᵀ, b = L y
    nband, rhs, count = normal_equations(phase, weight, d1, d2, num_date, bw, first_row=start)
    for i in range(start, n0 - 1):
        r = i - start
        for s in range(0, min(bw0, i) + 1):
            # N[i, i−s] = Σ_t L[i, i−t] L[i−s, i−t], t = s..bw0
            acc = np.zeros(k)
            for t in range(s, min(bw0, i) + 1):
                acc += band[i, t] * band[i - s, t - s]
            nband[r, s] += acc
        acc = np.zeros(k)
        for t in range(0, min(bw0, i) + 1):
            acc += band[i, t] * y[i - t]
        rhs[r] += acc
    exact = state.exact.copy()
    if num_date > n0:
        exact &= (count[n0:] >= min_redundancy).all(axis=0)
    band[start:] = 0.0
    y[start:] = 0.0
    out = FactorState(band, y, exact)
    _resume(out.band, out.y, out.exact, nband, rhs, start)
    return out


def solve(state: FactorState) -> np.ndarray:
    """x (n−1, k) from Lᵀx = y (back substitution); zeros where not ``exact``."""
    band, y = state.band, state.y
    rows, bw = band.shape[0], state.bandwidth
    x = np.zeros_like(y)
    for i in range(rows - 1, -1, -1):
        acc = y[i].copy()
        for t in range(1, min(bw, rows - 1 - i) + 1):
            acc -= band[i + t, t] * x[i + t]
        x[i] = acc / band[i, 0]
    x[:, ~state.exact] = 0.0
    return x


def temporal_coherence(phase: np.ndarray, ts: np.ndarray, d1, d2, slab: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Temporal coherence |Σ exp(j(φ − Ax))| / M over the used pairs (Pepe & Lanari 2006) and M.

    ``ts`` (n, k) with the first date (0); ``phase`` NaN = not used.  The residual is formed and
    wrapped in float64, its cosine and sine taken in float32 and summed in float64 (as the solver
    does), slab by slab of pixels so that the work arrays stay in the CPU caches."""
    d1, d2 = np.asarray(d1, np.intp), np.asarray(d2, np.intp)
    k = phase.shape[1]
    tcoh = np.zeros(k)
    num = np.zeros(k, np.int64)
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
        csum = np.cos(r32).sum(axis=0, dtype=np.float64) - nbad
        ssum = np.sin(r32).sum(axis=0, dtype=np.float64)
        used = P.shape[0] - nbad
        num[s0:s1] = used
        tcoh[s0:s1] = np.hypot(csum, ssum) / np.maximum(used, 1)
    return tcoh, num


# ------------------------------------------------------------------------------------ files
def store_path(work_dir: str | os.PathLike) -> Path:
    """The factor store of a work directory (:data:`STORE_FILE`)."""
    return Path(work_dir) / STORE_FILE


def options_digest(prep: Any) -> str:
    """What the factor of the old pairs depends on besides their data: weights, masks, reference, land."""
    from sbts.core.inversion.engine import _mask_token

    o = prep.options
    payload = [o.weight_func, prep.looks if o.weighted else 1, o.mask_dataset, o.mask_threshold, o.min_redundancy,
               o.obs_dataset, list(prep.ref_yx), _mask_token(prep.water)]
    return hashlib.sha256(json.dumps(payload, default=str).encode()).hexdigest()


_INFO_ATTR = "SBTS_FACTOR"
#: attribute of an updated ``timeseries.h5``: what the update did (absent after a full inversion)
UPDATE_ATTR = "SBTS_INVERSION_UPDATE"
_STACK_SIGNATURE_ATTR = "SBTS_INPUT_SIGNATURE"  # the loader's content key of the stack's source files


def _store_bytes_per_pixel(num_pair: int, num_date: int, bandwidth: int) -> float:
    # old and new factor (float64), rhs, solution, the phase of every pair and its float64 residual
    return 8.0 * num_date * (bandwidth + 3) * 3 + num_pair * (4 + 8 + 8 + 4) + 256


def _stack_signature(stack_path: Path) -> str:
    from sbts.core.io.h5 import read_attrs

    return str(read_attrs(stack_path).get(_STACK_SIGNATURE_ATTR, ""))


def _update_record(stack_path: Path) -> dict | None:
    """What the loader appended last (``new_pairs``, ``old_signature`` ...), if its record belongs to the stack."""
    try:
        record = json.loads(stack_path.with_name(_LOAD_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("signature") != _stack_signature(stack_path):
        return None
    update = record.get("update")
    return update if isinstance(update, dict) else None


def _weights(task: Any, stack_path: str, block: Any, index: np.ndarray) -> np.ndarray | None:
    if task.weight_func == "no":
        return None
    from sbts.core.inversion.weights import coherence_to_weight_fast
    from sbts.core.io.products import IfgramStack

    coh = IfgramStack(stack_path).read("coherence", block, index).reshape(len(index), -1).astype(np.float32)
    return coherence_to_weight_fast(coh, task.weight_func, task.looks)


def build_store(prep: Any, task: Any, max_memory: float) -> Path:
    """Write :data:`STORE_FILE` for the kept pairs of ``prep`` (after a full inversion)."""
    from sbts.core.inversion.engine import read_block
    from sbts.core.io.blocks import plan_blocks
    from sbts.core.io.h5 import H5Writer
    from sbts.core.io.progress import progress

    d1, d2 = np.asarray(task.date1_index), np.asarray(task.date2_index)
    n = len(task.tbase)
    bw = int((d2 - d1).max())
    shape = prep.stack.shape
    blocks = plan_blocks(shape, _store_bytes_per_pixel(len(d1), n, bw), max_memory)
    info = {"options": options_digest(prep), "stack_signature": _stack_signature(prep.stack_path),
            "pairs": list(prep.kept.date12), "dates": list(prep.kept.date_strings), "bandwidth": bw}
    path = store_path(prep.work_dir)
    logger.info("writing %s: the factor of %d pixels for exact updates (%.1f kB a pixel)", path.name,
                shape[0] * shape[1], (n - 1) * (bw + 2) * 8 / 1e3)
    with H5Writer(path, {"FILE_TYPE": STORE_TYPE, _INFO_ATTR: json.dumps(info)}) as w:
        w.create("factor", shape=((n - 1) * (bw + 1),) + shape, dtype=np.float64)
        w.create("rhs", shape=(n - 1,) + shape, dtype=np.float64)
        w.create("exact", shape=shape, dtype=np.uint8)
        for block in progress(blocks, desc="factor", unit="block"):
            inputs = read_block(task, block)
            weight = _weights(task, task.stack_path, block, np.asarray(task.kept_index))
            state = factorize(inputs.phase, weight, d1, d2, n, task.min_redundancy)
            if inputs.pixel_mask is not None:
                state.exact &= inputs.pixel_mask.reshape(-1)
            _write_state(w, state, block)
    return path


def _write_state(w: Any, state: FactorState, block: Any) -> None:
    h, wd = block.shape
    w.write("factor", state.band.reshape(-1, h, wd), block)
    w.write("rhs", state.y.reshape(-1, h, wd), block)
    w.write("exact", state.exact.reshape(h, wd).astype(np.uint8), block)


def _why_not(prep: Any, info: dict) -> str:
    """Why the factor of ``info`` cannot be extended to the kept pairs of ``prep`` ("" when it can)."""
    if info.get("options") != options_digest(prep):
        return "the inversion options, reference point or land mask changed since the factor was stored"
    if prep.options.obs_dataset != "unwrapPhase":
        return f"{prep.options.obs_dataset} is corrected over all pairs (not appended by the loader)"
    current = _stack_signature(prep.stack_path)
    if current != info.get("stack_signature"):
        update = _update_record(prep.stack_path)
        if update is None or update.get("old_signature") != info.get("stack_signature"):
            return "the stack was reloaded (not appended to) since the factor was stored"
    old_dates, dates = list(info.get("dates", [])), list(prep.kept.date_strings)
    if dates[:len(old_dates)] != old_dates:
        return "the dates of the kept pairs are not the stored ones followed by new dates"
    kept = set(prep.kept.date12)
    dropped = [p for p in info.get("pairs", []) if p not in kept]
    if dropped:
        return f"{len(dropped)} pair(s) of the stored factor are no longer kept ({dropped[0]} ...)"
    old, last = set(info.get("pairs", [])), old_dates[-1] if old_dates else ""
    between = [p for p in prep.kept.date12 if p not in old and p.split("_")[1] <= last]
    if between:
        return f"{len(between)} new pair(s) between old dates ({between[0]} ...)"
    return ""


def update(prep: Any, task: Any, max_memory: float) -> Any:
    """Update ``timeseries.h5`` and its quality maps from the stored factor, or None (logged) when
    the update cannot be exact.  Outputs take their names only when complete (a killed update
    leaves the previous products and factor in place; the rerun starts it again)."""
    import h5py

    from sbts.core.inversion import engine
    from sbts.core.inversion.kernel import invert_block
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
    except (OSError, KeyError, ValueError) as exc:
        logger.info("full inversion: %s is unreadable (%s)", path.name, exc)
        return None
    reason = _why_not(prep, info)
    if reason:
        logger.info("full inversion (the stored factor cannot be updated exactly): %s", reason)
        return None
    d1, d2 = np.asarray(task.date1_index), np.asarray(task.date2_index)
    n, n0, bw0 = len(task.tbase), len(info["dates"]), int(info["bandwidth"])
    kept12 = list(prep.kept.date12)
    pos = {p: k for k, p in enumerate(kept12)}
    old_rows = np.array([pos[p] for p in info["pairs"]], np.intp)
    new_rows = np.array(sorted(set(range(len(kept12))) - set(old_rows.tolist())), np.intp)
    kept_index = np.asarray(task.kept_index)
    bw = max(bw0, int((d2[new_rows] - d1[new_rows]).max()) if new_rows.size else 0)
    shape = prep.stack.shape
    blocks = plan_blocks(shape, _store_bytes_per_pixel(len(kept12), n, bw), max_memory)
    logger.info("updating the inversion exactly: %d new pair(s), %d new date(s) on the stored factor of %d pairs",
                new_rows.size, n - n0, old_rows.size)
    from dataclasses import replace

    phase_task = replace(task, weight_func="no")
    out_meta = engine._output_metadata(prep)
    outputs = prep.outputs
    info_new = {**info, "stack_signature": _stack_signature(prep.stack_path), "pairs": kept12,
                "dates": list(prep.kept.date_strings), "bandwidth": bw}
    counts = [0, 0]
    with h5py.File(path, "r") as old, \
            TimeSeriesWriter(outputs.timeseries, out_meta.replace(file_type="timeseries", unit="m"),
                             prep.kept.date_strings, prep.kept.date_bperp()) as wts, \
            H5Writer(outputs.temporal_coherence, out_meta.replace(file_type="temporalCoherence", unit="1")) as wtc, \
            H5Writer(outputs.num_inv_ifgram, out_meta.replace(file_type="mask", unit="1")) as wnum, \
            H5Writer(path, {"FILE_TYPE": STORE_TYPE, _INFO_ATTR: json.dumps(info_new)}) as wst:
        wtc.create("temporalCoherence", shape=shape, dtype=np.float32)
        wnum.create("mask", shape=shape, dtype=np.float32)
        wst.create("factor", shape=((n - 1) * (bw + 1),) + shape, dtype=np.float64)
        wst.create("rhs", shape=(n - 1,) + shape, dtype=np.float64)
        wst.create("exact", shape=shape, dtype=np.uint8)
        for block in progress(blocks, desc="update", unit="block"):
            h, w = block.shape
            k = h * w
            inputs = engine.read_block(phase_task, block)
            phase = inputs.phase
            land = np.ones(k, bool) if inputs.pixel_mask is None else inputs.pixel_mask.reshape(-1)
            state = FactorState(old["factor"][:, block.rows, block.cols].reshape(n0 - 1, bw0 + 1, k),
                                old["rhs"][:, block.rows, block.cols].reshape(n0 - 1, k),
                                old["exact"][block.rows, block.cols].reshape(k).astype(bool))
            weight_new = _weights(task, task.stack_path, block, kept_index[new_rows]) if new_rows.size else None
            state = extend(state, phase[new_rows], weight_new, d1[new_rows], d2[new_rows], n, task.min_redundancy)
            state.exact &= land
            ts = np.zeros((n, k))
            ts[1:] = solve(state)
            tcoh, num = temporal_coherence(phase, ts, d1, d2)
            redo = np.flatnonzero(land & ~state.exact)
            if redo.size:  # from all pairs: a fresh factor (for the next update too), else the solver
                weight = _weights(task, task.stack_path, block, kept_index)
                wsub = None if weight is None else weight[:, redo]
                fresh = factorize(phase[:, redo], wsub, d1, d2, n, task.min_redundancy)
                good, rest = redo[fresh.exact], redo[~fresh.exact]
                if good.size:
                    ts[1:, good] = solve(fresh)[:, fresh.exact]
                    tcoh[good], num[good] = temporal_coherence(phase[:, good], ts[:, good], d1, d2)
                if rest.size:  # rank deficient or not redundant enough: the solver's own answer
                    res = invert_block(phase[:, rest], d1, d2, np.asarray(task.tbase),
                                       weight=None if weight is None else weight[:, rest],
                                       min_norm_velocity=task.min_norm_velocity, min_redundancy=task.min_redundancy)
                    ts[:, rest], tcoh[rest], num[rest] = res.timeseries, res.temporal_coherence, res.num_inv_ifgram
                state.band[:, :, redo] = 0.0
                state.band[:, :fresh.band.shape[1], redo] = fresh.band[:, :bw + 1]
                state.y[:, redo], state.exact[redo] = fresh.y, fresh.exact & (fresh.bandwidth <= bw)
            off = ~land
            ts[:, off], tcoh[off], num[off] = 0.0, 0.0, 0
            counts[0] += int(np.count_nonzero(land)) - redo.size
            counts[1] += redo.size
            wts.write("timeseries", (ts * task.phase2range).astype(np.float32).reshape(n, h, w), block)
            wtc.write("temporalCoherence", tcoh.astype(np.float32).reshape(h, w), block)
            wnum.write("mask", num.astype(np.float32).reshape(h, w), block)
            _write_state(wst, state, block)
        reliable = engine._finish_outputs(prep, out_meta, wtc, wnum)
        wts.file.attrs[UPDATE_ATTR] = (f"exact update with {new_rows.size} new pair(s), {n - n0} new date(s): "
                                       f"{counts[0]} pixel(s) from the stored factor, {counts[1]} from all their pairs")
    logger.info("inversion updated: %d pixel(s) from the stored factor, %d inverted from all their pairs",
                *counts)
    return replace(outputs, skipped=False, num_reliable_pixels=reliable)
