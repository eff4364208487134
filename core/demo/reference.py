"""The reference pixel of the synthetic stack (truth.reference_yx).

A coherent (built-up, flat), nearly stable land pixel away from the edges, the lake, the DEM-error
patches and the shadow: the pixel a user would give as a GNSS station.  Unwrapping errors
(:mod:`sbts.core.demo.unwrapping`) are then placed away from it.
"""

from __future__ import annotations

import numpy as np

from sbts.core.demo.fields import dilate


def edge_margin(shape: tuple[int, int]) -> int:
    """Pixels kept clear around the lake and along the edges (5 % of the shorter side, ≥ 3)."""
    return max(3, int(0.05 * min(shape)))


def reference_pixel(water: np.ndarray, shadow: np.ndarray, dem_error: np.ndarray, slope_deg: np.ndarray,
                    long_term_coherence: np.ndarray, velocity: np.ndarray) -> tuple[int, int]:
    """(y, x) of the most coherent, most stable candidate (any land pixel if none qualifies)."""
    land = ~water
    margin = edge_margin(water.shape)
    near_water = dilate(water, margin)
    near_dz = dilate(dem_error != 0, 3)
    cand = land & ~near_water & ~near_dz & ~dilate(shadow, 3) & (slope_deg < 8.0)
    cand[:margin] = cand[-margin:] = False
    cand[:, :margin] = cand[:, -margin:] = False
    if not cand.any():
        cand = land.copy()
    score = np.where(cand, long_term_coherence - 20.0 * np.abs(velocity), -np.inf)
    ref_y, ref_x = (int(i) for i in np.unravel_index(np.argmax(score), score.shape))
    return ref_y, ref_x
