"""The DEM error of the synthetic stack (truth.dem_error, m) and its phase term.

``Δz = h_true − h_DEM`` (``height`` is the DEM *with* this error): one patch of ``+dem_error``
(default 30 m, e.g. new buildings) and one of ``−0.6·dem_error`` (an excavation), on land, away
from shadow and from each other.  Derivation: a point Δz above the DEM surface, at the same range,
sits at a larger look angle, i.e. displaced by Δz/sin θ perpendicular to the LOS in the direction of
increasing look angle.  For a secondary antenna displaced by B⊥ in that same direction the range
changes by −B⊥·Δz/(r sin θ) (a range *decrease*), hence the displacement-sign contribution::

    d_dem(t) = +Δz · B⊥(t) / (r · sin θ)     (exactly MintPy's dem_error.py model)
    φ_dem,12 = −4π/λ · Δz · (B⊥(t2) − B⊥(t1)) / (r sin θ)

So a positive DEM error and a positive pair baseline give a negative phase.  B⊥(t) = ``bperp[t]``
(first date 0), r = ``slant_range_distance``, θ = ``incidence_angle``.  ``truth.dem_error`` is
therefore what MintPy's ``demErr.h5`` should estimate.
"""

from __future__ import annotations

import numpy as np


def dem_error_patches(shape: tuple[int, int], dem_error: float, water: np.ndarray, shadow: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """(L, W) float64 Δz (m): two rectangles, +dem_error and −0.6·dem_error, off water and shadow."""
    length, width = shape
    dz = np.zeros((length, width))
    for value in (dem_error, -0.6 * dem_error):
        hy, hx = max(2, int(0.05 * length)), max(2, int(0.06 * width))
        for _ in range(200):
            cy = int(rng.integers(hy + 2, length - hy - 2))
            cx = int(rng.integers(hx + 2, width - hx - 2))
            box = (slice(cy - hy - 2, cy + hy + 3), slice(cx - hx - 2, cx + hx + 3))
            if not water[box].any() and not np.any(dz[box]) and not shadow[box].any():
                break
        dz[cy - hy: cy + hy + 1, cx - hx: cx + hx + 1] = value
    return dz


def dem_with_error(true_heights: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """(L, W) float64 the DEM a processor would use: true heights minus the DEM error, ≥ 0."""
    return np.clip(true_heights - dz, 0.0, None)


def dem_error_timeseries(dem_error: np.ndarray, bperp: np.ndarray,
                         slant_range: np.ndarray, incidence_deg: np.ndarray) -> np.ndarray:
    """(n, L, W) float64 m: ``Δz·B⊥(t)/(r·sin θ)`` — MintPy's DEM-error model, + toward satellite."""
    geom = np.asarray(dem_error, np.float64) / (
        np.asarray(slant_range, np.float64) * np.sin(np.deg2rad(np.asarray(incidence_deg, np.float64))))
    return np.asarray(bperp, np.float64)[:, None, None] * geom[None]
