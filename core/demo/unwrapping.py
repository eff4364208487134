"""What phase unwrapping leaves in the synthetic stack: per-pair constants, cycle errors, components.

* ``truth.pair_offset`` (rad, (m,)): the per-pair constant c12 ~ U(−2π, 2π) (unwrapping fixes the
  phase only up to a constant).
* ``conn_comp`` = 1 on land, 0 on the lake; in ``num_unwrap_errors`` (default 3) random pairs a
  compact land blob is its own component (= 2) and carries ``2π·k`` extra phase, k ∈ {±1, ±2};
  listed in ``truth.unwrap_errors`` as ``UnwrapError(pair_index, cycles, mask)``.  The blobs keep
  clear of the lake, of each other and of the reference pixel (a crowded small scene may overlap,
  never on the reference).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sbts.core.demo.fields import blob, dilate, freeze
from sbts.core.demo.reference import edge_margin
from sbts.core.demo.specs import UnwrappingSpec


class UnwrapError(NamedTuple):
    """An unwrapping error: ``cycles``·2π added to ``mask`` in pair ``pair_index``."""

    pair_index: int
    cycles: int
    mask: np.ndarray  # (L, W) bool


def pair_offsets(num_pair: int, spec: UnwrappingSpec, rng: np.random.Generator) -> np.ndarray:
    """(m,) float64 rad: the constant of each pair (zeros when switched off)."""
    return rng.uniform(-2 * np.pi, 2 * np.pi, num_pair) if spec.pair_offsets else np.zeros(num_pair)


def connected_components(num_pair: int, water: np.ndarray) -> np.ndarray:
    """(m, L, W) int16: one component (1) on land, 0 on the lake, for every pair."""
    land = ~water
    conn = np.where(land, 1, 0).astype(np.int16)
    return np.broadcast_to(conn, (num_pair,) + water.shape).copy()


def add_unwrap_errors(phase: np.ndarray, conn: np.ndarray, water: np.ndarray, reference_yx: tuple[int, int],
                      spec: UnwrappingSpec, rng: np.random.Generator) -> tuple[UnwrapError, ...]:
    """Add 2π·k on a land blob to a few pairs (``phase`` and ``conn`` in place); the errors made."""
    errors: list[UnwrapError] = []
    if not (spec.with_unwrap_errors and spec.num_unwrap_errors > 0):
        return ()
    num_pair, length, width = phase.shape
    land = ~water
    near_water = dilate(water, edge_margin(water.shape))
    ref_y, ref_x = reference_yx
    n_err = min(spec.num_unwrap_errors, num_pair)
    pair_ids = np.sort(rng.choice(num_pair, n_err, replace=False))
    r = max(3.0, 0.09 * min(length, width))
    taken = np.zeros((length, width), bool)
    for pid in pair_ids:
        region = None
        for _ in range(200):
            cy = rng.uniform(r + 1, length - r - 2)
            cx = rng.uniform(r + 1, width - r - 2)
            shape = blob((length, width), cy, cx, r * rng.uniform(0.8, 1.2), r * rng.uniform(0.8, 1.2), rng,
                         roughness=0.2)
            if (np.hypot(cy - ref_y, cx - ref_x) > 1.5 * r + 3 and not (shape & near_water).any()
                    and not (shape & taken).any()):
                region = shape & land
                break
        if region is None:  # crowded small scene: accept overlap, still avoid the reference
            region = shape & land
            region[max(0, ref_y - 2): ref_y + 3, max(0, ref_x - 2): ref_x + 3] = False
        taken |= region
        cycles = int(rng.choice([-2, -1, 1, 2], p=[0.15, 0.35, 0.35, 0.15]))
        phase[pid][region] += 2 * np.pi * cycles
        conn[pid][region] = 2
        errors.append(UnwrapError(int(pid), cycles, freeze(region)))
    return tuple(errors)
