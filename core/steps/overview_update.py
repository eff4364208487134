"""The sums behind the network steps, kept so that an appended acquisition is added, not rescanned.

modify_network's mean coherence is one number per pair (:func:`pair_coherence`); reference_point's
maps are a per-pixel sum and an AND over the kept pairs (:func:`reference_maps`); quick_overview's
products are sums over the kept pairs and triplets:

- the stacking velocity (``avgPhaseVelocity.h5``) is the mean of per-pair rates: a float64 total and
  a count per pixel;
- T_int (``numTriNonzeroIntAmbiguity.h5``) counts, per pixel, the triplets with a non-zero integer
  closure;
- the triplet statistics (``closurePhaseTriplets.txt``) are per-triplet sums over the pixels.

An appended acquisition adds pairs that end on a new, later date, and the triplets that contain
them; it changes no term of an old pair or triplet as long as the old pairs, their keep flags, the
reference point, the wavelength and the land mask are those of the stored sums.  With the sums kept
in ``quickOverviewUpdate.h5`` (16 bytes a pixel and 32 a triplet) the update reads only the pairs of
the new triplets and the new rate pairs.  Each pixel's rate total continues from its stored value,
adding the new pairs in the order a full scan adds them (by second date: the new pairs come last),
so the stacking velocity and T_int are bit-identical to a full scan's.  (A float64 sum of a few
hundred float32 rates is exact in practice whatever the order; the order makes it so always.)  The
per-triplet sums of the old triplets were added over other blocks than a full scan of the longer
stack would use: float64 noise, far below the statistics' four printed decimals.

:func:`plan` says what to scan (or why everything must be), :func:`write_store` keeps the sums of
the products just written.  The store is written after the products and renamed into place last:
killed in between, the rerun finds the stored sums of the previous stack and updates again.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.inversion.engine import mask_token
from sbts.core.io.h5 import open_h5, write_h5
from sbts.core.io.load_record import stack_signature, why_not_same_or_appended

logger = logging.getLogger(__name__)

STORE_FILE = "quickOverviewUpdate.h5"
STORE_TYPE = "quickOverviewUpdate"
INFO_ATTR = "SBTS_OVERVIEW_STORE"


@dataclass(frozen=True)
class Terms:
    """What a quick_overview scan of the stack is made of.

    Attributes
    ----------
    index : numpy.ndarray
        Stack positions of the rate pairs (kept, with data at the reference point).
    ref_phase, scale : numpy.ndarray
        Per rate pair: the phase at the reference point and the factor to m/year (float32).
    tri : numpy.ndarray
        The kept triplets, (n, 3) stack positions (:func:`sbts.core.inversion.closure.triplet_indices`).
    key : dict
        What the sums depend on besides the pairs: dataset, reference point, wavelength, land mask.
    """

    index: np.ndarray
    ref_phase: np.ndarray
    scale: np.ndarray
    tri: np.ndarray
    key: dict


@dataclass(frozen=True)
class Plan:
    """An update: scan the triplets ``tri_rows`` (rows of ``Terms.tri``) and add the rate pairs
    ``rate_rows`` (positions in ``Terms.index``) to the stored sums."""

    tri_rows: np.ndarray
    rate_rows: np.ndarray
    old_rows: np.ndarray  # rows of Terms.tri the store has, in its order
    store: Path


def store_path(work_dir: str | os.PathLike) -> Path:
    return Path(work_dir) / STORE_FILE


def _pair_keys(stack) -> list[str]:
    return [f"{d}:{int(k)}" for d, k in zip(stack.pairs.date12, stack.pairs.keep)]


def _tri_keys(stack, tri: np.ndarray) -> list[str]:
    names = stack.pairs.date12
    return [f"{names[a]},{names[b]},{names[c]}" for a, b, c in tri]


def read_info(path: Path, file_type: str = STORE_TYPE) -> dict | None:
    try:
        with open_h5(path) as f:
            if str(f.attrs.get("FILE_TYPE", "")) != file_type:
                return None
            return json.loads(str(f.attrs[INFO_ATTR]))
    except Exception:  # noqa: BLE001 - missing, partial or foreign: no update
        return None


def plan(work_dir: Path, stack, terms: Terms) -> Plan | None:
    """The update of the stored sums to the stack, or None (with the reason logged) when the
    products must be scanned whole."""
    path = store_path(work_dir)
    info = read_info(path)
    if info is None:
        logger.info("quick_overview: no %s to update from; scanning every pair", STORE_FILE)
        return None
    new = _new_pairs(stack, info)
    why = new if isinstance(new, str) else _why_not(stack, terms, info, new)
    if why:
        logger.info("quick_overview: scanning every pair (%s)", why)
        return None
    position = {k: i for i, k in enumerate(_tri_keys(stack, terms.tri))}
    old_rows = np.array([position[k] for k in info["triplets"]], np.int64)
    return Plan(np.flatnonzero(new[terms.tri].any(axis=1)) if terms.tri.size else np.zeros(0, np.int64),
                np.flatnonzero(new[terms.index]), old_rows, path)


def _same_stack(stack, info: dict) -> str:
    """Why the stack is not the one a store was written from, or one appended to it ("" when it is)."""
    if tuple(info.get("shape", ())) != tuple(stack.shape):
        return "the stack's size changed"
    return why_not_same_or_appended(stack.path, str(info.get("signature", "")))


def _new_pairs(stack, info: dict) -> np.ndarray | str:
    """Which pairs of the stack the store has not seen (bool per pair), or why it cannot be updated."""
    why = _same_stack(stack, info)
    if why:
        return why
    old = list(info.get("pairs", []))
    seen = {k.split(":")[0] for k in old}
    names = stack.pairs.date12
    new = np.array([d not in seen for d in names], bool)
    if [k for k, n in zip(_pair_keys(stack), new) if not n] != old:
        return "the stored pairs or their keep flags are not those of the stack"
    last = max((k.split(":")[0].split("_")[1] for k in old), default="")
    between = [d for d, n in zip(names, new) if n and d.split("_")[1] <= last]
    if between:
        return f"{len(between)} new pair(s) end on or before the last stored date ({between[0]} ...)"
    return new


def _why_not(stack, terms: Terms, info: dict, new: np.ndarray) -> str:
    """Why the stored sums cannot be moved on to the stack ("" when they can)."""
    if info.get("key") != terms.key:
        return "the dataset, reference point, wavelength or land mask changed since the sums were kept"
    names = stack.pairs.date12
    if [names[i] for i in terms.index if not new[i]] != info.get("rate_pairs"):
        return "the pairs with data at the reference point changed"
    old_tri = ~new[terms.tri].any(axis=1) if terms.tri.size else np.zeros(0, bool)
    if _tri_keys(stack, terms.tri[old_tri]) != info.get("triplets"):
        return "the triplets of the stored pairs changed"
    if old_tri.all() and new[terms.index].any():
        return "the new pairs form no triplet"
    return ""


def stored_sums(p: Plan, block) -> tuple[np.ndarray, np.ndarray]:
    """The stored rate total and count of one block, float64 (the start of its update)."""
    with open_h5(p.store) as f:
        return (np.asarray(f["rateSum"][block.slices], np.float64),
                np.asarray(f["rateCount"][block.slices], np.float64))


def stored_closure(p: Plan) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The stored T_int and the per-triplet sums (valid, non-zero, Σc, Σc²) of the old triplets."""
    with open_h5(p.store) as f:
        return (np.asarray(f["closureCount"][()], np.int32),
                tuple(np.asarray(f[name][()]) for name in ("tripletValid", "tripletNonzero", "tripletSum",
                                                          "tripletSumSq")))


def write_store(work_dir: Path, stack, terms: Terms, rate_sum: np.ndarray, rate_count: np.ndarray,
                closure_count: np.ndarray, sums: tuple[np.ndarray, ...]) -> Path:
    """Keep the sums of the products just written (16 bytes a pixel, 32 a triplet)."""
    date12 = stack.pairs.date12
    info = {"key": terms.key, "shape": list(stack.shape), "signature": stack_signature(stack.path),
            "pairs": _pair_keys(stack), "rate_pairs": [date12[i] for i in terms.index],
            "triplets": _tri_keys(stack, terms.tri)}
    n_valid, n_nonzero, s1, s2 = sums
    path = write_h5(store_path(work_dir), {"FILE_TYPE": STORE_TYPE, INFO_ATTR: json.dumps(info)},
                    {"rateSum": rate_sum.astype(np.float64), "rateCount": rate_count.astype(np.int32),
                     "closureCount": closure_count.astype(np.int32),
                     "tripletValid": np.asarray(n_valid, np.int64), "tripletNonzero": np.asarray(n_nonzero, np.int64),
                     "tripletSum": np.asarray(s1, np.float64), "tripletSumSq": np.asarray(s2, np.float64)})
    logger.info("kept the quick_overview sums in %s (%.0f bytes a pixel)", path.name,
                path.stat().st_size / max(1, rate_sum.size))
    return path


def drop_store(work_dir: Path) -> None:
    """Remove sums that no longer go with the products (written without them)."""
    path = store_path(work_dir)
    if path.exists():
        path.unlink()
        logger.info("removed %s (it no longer goes with the quick_overview products)", path.name)


# ---------------------------------------------------------------------------- modify_network's means
NET_STORE_FILE = "modifyNetworkUpdate.h5"
NET_STORE_TYPE = "modifyNetworkUpdate"


def pair_coherence(stack, mask: np.ndarray | None, aoi, max_memory: float, work_dir: Path,
                   force: bool = False, workers: int = 1, cluster: str | None = None) -> np.ndarray:
    """The mean coherence of every pair over the mask ∩ AOI (modify_network's), keeping them in
    ``modifyNetworkUpdate.h5``: after an append only the new pairs are averaged.

    A pair's mean depends on its own layer only, so the kept means of the old pairs are what a
    pass over every pair gives, up to the order its blocks are added in (float64 noise: the
    block sizes follow the number of pairs).
    """
    from sbts.core.steps.network import spatial_average_coherence

    path = Path(work_dir) / NET_STORE_FILE
    names = stack.pairs.date12
    key = {"mask": mask_token(mask), "aoi": None if aoi is None else [aoi.row_start, aoi.row_stop, aoi.col_start,
                                                                       aoi.col_stop]}
    info = None if force else read_info(path, NET_STORE_TYPE)
    why = "no " + NET_STORE_FILE if info is None else _network_why_not(stack, info, key)
    if why:
        if not force:
            logger.info("modify_network: averaging the coherence of every pair (%s)", why)
        coherence = spatial_average_coherence(stack, mask, aoi, max_memory, workers=workers, cluster=cluster)
    else:
        with open_h5(path) as f:
            stored = dict(zip(info["pairs"], np.asarray(f["coherence"][()], np.float64)))
        new = np.array([d not in stored for d in names], bool)
        logger.info("modify_network: averaging the coherence of %d new pair(s), %d kept", int(new.sum()),
                    int((~new).sum()))
        coherence = np.full(len(names), np.nan)
        coherence[~new] = [stored[d] for d, n in zip(names, new) if not n]
        if new.any():
            coherence[new] = spatial_average_coherence(stack, mask, aoi, max_memory, index=np.flatnonzero(new),
                                                       workers=workers, cluster=cluster)
    info = {"key": key, "shape": list(stack.shape), "signature": stack_signature(stack.path), "pairs": names}
    write_h5(path, {"FILE_TYPE": NET_STORE_TYPE, INFO_ATTR: json.dumps(info)}, {"coherence": coherence})
    return coherence


def _network_why_not(stack, info: dict, key: dict) -> str:
    if info.get("key") != key:
        return "the mask or the area changed"
    why = _same_stack(stack, info)
    if why:
        return why
    if not set(info.get("pairs", [])) <= set(stack.pairs.date12):
        return "pairs of the kept means are no longer in the stack"
    return ""


# ---------------------------------------------------------------------------- reference_point's maps
REF_STORE_FILE = "referencePointUpdate.h5"
REF_STORE_TYPE = "referencePointUpdate"


def reference_maps(workdir, max_memory: float, update_store: bool = False, force: bool = False,
                   workers: int = 1, cluster: str | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """``avgSpatialCoh`` (mean coherence over the kept pairs, None without coherence) and the
    ``maskConnComp`` mask (unwrapped in every kept pair) of the reference_point step.

    Both are sums over the kept pairs (a float64 total and a count, an AND): with ``update_store``
    they are kept in ``referencePointUpdate.h5`` (13 bytes a pixel) and, after an append, only the
    new kept pairs are read and added, in the order a full pass adds them (the same bits).
    """
    from sbts.core.io.products import IfgramStack
    from sbts.core.steps.averages import connected_component_mask, kept_index, temporal_average, valid_in_all_kept

    stack = IfgramStack(workdir.stack)
    index = kept_index(stack)
    path = workdir.root / REF_STORE_FILE
    if not update_store:  # MintPy's two passes, nothing kept
        if path.exists():
            path.unlink()
        coherence = (temporal_average(stack, "coherence", max_memory, workers, cluster) if stack.has("coherence")
                     else None)
        return coherence, connected_component_mask(stack, max_memory, workers, cluster)
    key = {"coherence": stack.has("coherence"),
           "conncomp": "connectComponent" if stack.has("connectComponent") else "unwrapPhase"}
    new = None
    if not force:
        info = read_info(path, REF_STORE_TYPE)
        why = "no " + REF_STORE_FILE if info is None else (
            "the stack's datasets changed" if info.get("key") != key else _new_pairs(stack, info))
        if isinstance(why, str):
            logger.info("reference_point: averaging every kept pair (%s)", why)
        else:
            new = why
    if new is None:
        total, count = (_coherence_sums(stack, index, max_memory, workers=workers, cluster=cluster)
                        if key["coherence"] else (None, None))
        mask = connected_component_mask(stack, max_memory, workers, cluster)
    else:
        add = index[new[index]]
        logger.info("reference_point: adding %d new kept pair(s) to the kept averages", add.size)
        with open_h5(path) as f:
            total = np.asarray(f["cohSum"][()], np.float64) if key["coherence"] else None
            count = np.asarray(f["cohCount"][()], np.float64) if key["coherence"] else None
            mask = np.asarray(f["mask"][()], bool)
        if add.size:
            if key["coherence"]:
                total, count = _coherence_sums(stack, add, max_memory, total, count, workers, cluster)
            mask &= valid_in_all_kept(stack, key["conncomp"], max_memory, index=add, workers=workers, cluster=cluster)
    coherence = None
    if total is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            coherence = np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)
    info = {"key": key, "shape": list(stack.shape), "signature": stack_signature(stack.path), "pairs": _pair_keys(stack)}
    data = {"mask": mask.astype(np.uint8)}
    if total is not None:
        data |= {"cohSum": total, "cohCount": count.astype(np.int32)}
    write_h5(path, {"FILE_TYPE": REF_STORE_TYPE, INFO_ATTR: json.dumps(info)}, data)
    return coherence, mask


def _coherence_sums(stack, index: np.ndarray, max_memory: float, total: np.ndarray | None = None,
                    count: np.ndarray | None = None, workers: int = 1, cluster: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Σ and count of the finite coherence of pairs ``index`` per pixel, continued from ``total``/``count``;
    added by second date then first (:func:`sbts.core.steps.averages._time_order`).

    Each block is read and added to its part of the sums where it runs (here, in the pool or on
    dask): a pixel's sum is continued in the same order wherever, so the same bits."""
    import functools

    from sbts.core.compute.scheduling import memory_per_task, run_blocks, runs_apart
    from sbts.core.compute.task_arrays import task_arrays
    from sbts.core.io.blocks import plan_blocks
    from sbts.core.io.progress import progress
    from sbts.core.steps.averages import _time_order
    from sbts.core.steps.network import _read_coherence

    start = {} if total is None else {"total": total, "count": count}  # sent by file to other processes
    total = np.zeros(stack.shape) if total is None else total
    count = np.zeros(stack.shape) if count is None else count
    order = _time_order(stack, index)
    # the block's coherence, its two sums, and the next block read ahead
    blocks = plan_blocks(stack.shape, index.size * 4 + 32, memory_per_task(max_memory, workers, cluster),
                         stack.chunk_shape("coherence"))
    with task_arrays(start, stack.path, runs_apart(workers, cluster)) as shared:
        results = run_blocks(blocks, functools.partial(_read_coherence, stack, index),
                             functools.partial(_add_layers, shared, order), workers=workers, cluster=cluster)
        for block, (t, c) in progress(results, "average coherence", "block", total=len(blocks)):
            total[block.slices], count[block.slices] = t, c
    return total, count


def _add_layers(shared, order: np.ndarray, block, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A block's sums (from the kept ones in ``shared``, or 0) continued with its pairs in ``order``."""
    if "total" in shared:
        t = np.array(shared["total"][block.slices], np.float64)
        c = np.array(shared["count"][block.slices], np.float64)
    else:
        t, c = np.zeros(block.shape), np.zeros(block.shape)
    for k in order:
        layer = data[k].astype(np.float32, copy=False)
        valid = np.isfinite(layer)
        t += np.where(valid, layer, np.float32(0))
        c += valid
    return t, c


__all__ = ["Terms", "Plan", "plan", "write_store", "drop_store", "stored_sums", "stored_closure", "store_path",
           "pair_coherence", "reference_maps", "STORE_FILE", "STORE_TYPE", "NET_STORE_FILE", "REF_STORE_FILE"]
