"""The sums behind quick_overview, kept so that an appended acquisition is added, not rescanned.

quick_overview's products are sums over the kept pairs and triplets:

- the stacking velocity (``avgPhaseVelocity.h5``) is the mean of per-pair rates: a float64 total and
  a count per pixel;
- T_int (``numTriNonzeroIntAmbiguity.h5``) counts, per pixel, the triplets with a non-zero integer
  closure;
- the triplet statistics (``closurePhaseStats.txt``) are per-triplet sums over the pixels.

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

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sbts.core.io.h5 import open_h5, write_h5

logger = logging.getLogger(__name__)

STORE_FILE = "quickOverviewUpdate.h5"
STORE_TYPE = "quickOverviewUpdate"
INFO_ATTR = "SBTS_OVERVIEW_STORE"
_STACK_SIGNATURE_ATTR = "SBTS_INPUT_SIGNATURE"  # the loader's content key of the stack's source files


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


def mask_token(mask: np.ndarray | None) -> str:
    return "none" if mask is None else hashlib.sha1(np.packbits(mask).tobytes()).hexdigest()


def _pair_keys(stack) -> list[str]:
    return [f"{d}:{int(k)}" for d, k in zip(stack.pairs.date12, stack.pairs.keep)]


def _tri_keys(stack, tri: np.ndarray) -> list[str]:
    names = stack.pairs.date12
    return [f"{names[a]},{names[b]},{names[c]}" for a, b, c in tri]


def _signature(stack_path: Path) -> str:
    from sbts.core.io.h5 import read_attrs

    return str(read_attrs(stack_path).get(_STACK_SIGNATURE_ATTR, ""))


def _appended_to(stack_path: Path) -> str | None:
    """The signature of the stack the last load appended to (None: loaded whole)."""
    from sbts.core.steps.load import read_update_record

    update = read_update_record(stack_path)
    return None if update is None else update.get("old_signature")


def read_info(path: Path) -> dict | None:
    try:
        with open_h5(path) as f:
            if str(f.attrs.get("FILE_TYPE", "")) != STORE_TYPE:
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


def _new_pairs(stack, info: dict) -> np.ndarray | str:
    """Which pairs of the stack the store has not seen (bool per pair), or why it cannot be updated."""
    if tuple(info.get("shape", ())) != tuple(stack.shape):
        return "the stack's size changed"
    signature = _signature(stack.path)
    if signature != info.get("signature") and _appended_to(stack.path) != info.get("signature"):
        return "the stack was reloaded (not appended to) since the sums were kept"
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
    info = {"key": terms.key, "shape": list(stack.shape), "signature": _signature(stack.path),
            "pairs": _pair_keys(stack), "rate_pairs": [stack.pairs.date12[i] for i in terms.index],
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


__all__ = ["Terms", "Plan", "plan", "write_store", "drop_store", "stored_sums", "stored_closure", "store_path",
           "mask_token", "STORE_FILE", "STORE_TYPE"]
