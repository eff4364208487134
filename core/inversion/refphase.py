"""The phase of the reference pixel: the one place that reads it and says what a gap there means.

Interferograms are relative in space: every use of the phase subtracts its value at the reference
pixel (REF_Y/REF_X).  Where that value is missing (0 or NaN: no data) the pair cannot be
referenced, and each use says what follows, through ``policy``:

``"error"``
    the inversion: a pair it cannot reference would bias the whole time series, so the run stops
    and names the pairs (choose another reference point or drop them);
``"drop"``
    the stacking velocity: the pairs are left out of the average (named in a warning); no pair
    left is an error;
``"zero"``
    the closure-phase counts: the pair is used unreferenced (its reference phase taken as 0) and
    the number of such pairs is logged, since an integer closure is unaffected by a common offset
    of well-unwrapped pairs.

A reference point outside the image is an error for "error" and "drop" and a warning (no
referencing) for "zero"; a stack without one gives ``None`` (the caller decides).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sbts.core.errors import DataError, InputError
from sbts.core.io.blocks import Block

logger = logging.getLogger(__name__)

POLICIES = ("error", "drop", "zero")


@dataclass(frozen=True)
class ReferencePhase:
    """The reference phase of pairs ``index`` (float64; 0 where ``usable`` is False)."""

    values: np.ndarray
    usable: np.ndarray  # bool per pair: the reference pixel has data


def reference_phase(stack, dataset: str, index: np.ndarray, policy: str,
                    point: tuple[int, int] | None = None) -> ReferencePhase | None:
    """The phase of ``dataset`` at the reference pixel (``point``, else the stack's REF_Y/REF_X) for
    the pairs ``index``, with the gaps handled by ``policy`` (see the module doc); ``None`` when there
    is no reference point."""
    if policy not in POLICIES:
        raise ValueError(f"policy {policy!r}: one of {POLICIES}")
    index = np.asarray(index)
    length, width = stack.shape
    if point is None:
        ref = stack.metadata.reference
        if not ref.has_point:
            return None
        point = (ref.y, ref.x)
    y, x = point
    if not (0 <= y < length and 0 <= x < width):
        if policy == "zero":
            logger.warning("%s: REF_Y/REF_X = %s/%s outside the image; phase not referenced", stack.path.name, y, x)
            return ReferencePhase(np.zeros(index.size), np.zeros(index.size, bool))
        if policy == "drop":
            raise InputError(f"{stack.path}: REF_Y/REF_X = {y}/{x} is outside the {length}×{width} image")
        raise DataError(f"reference pixel ({y}, {x}) is outside the {length}×{width} image")
    value = stack.read(dataset, Block(y, y + 1, x, x + 1), index=index).reshape(-1).astype(np.float64)
    bad = ~np.isfinite(value) | (value == 0)
    values = np.where(bad, 0.0, value)
    if bad.any():
        date12 = stack.pairs.date12
        names = [date12[i] for i in index[bad]]
        if policy == "error":
            raise DataError(f"reference pixel (y={y}, x={x}) has no data (0/NaN) in {len(names)} kept "
                            f"interferogram(s), e.g. {', '.join(names[:3])}; choose another with "
                            "mintpy.reference.yx or let sbts choose (remove REF_Y/REF_X)")
        if policy == "drop":
            if bad.all():
                raise DataError(f"{stack.path}: the reference pixel has no data in any kept pair; choose another "
                                "reference point")
            logger.warning("%d kept pair(s) have no data at the reference pixel and are left out: %s",
                           int(bad.sum()), ", ".join(names[:5]))
        else:
            logger.warning("%s: %d pair(s) have no data at the reference pixel; not referenced",
                           stack.path.name, int(bad.sum()))
    return ReferencePhase(values, ~bad)


__all__ = ["ReferencePhase", "reference_phase", "POLICIES"]
