"""Ground deformation of the synthetic stack (truth.deformation, m, LOS, + toward the satellite).

``d(t) = v·Δt + A·[cos 2π(T(t) − p) − cos 2π(T(t0) − p)]`` with Δt in years (days/365.25), T the
decimal year.  ``v`` (truth.velocity, m/yr): a rotated, elongated Gaussian subsidence bowl whose
centre pixel (truth.bowl_center_yx, on land) has exactly ``bowl_rate`` (default −0.25 m/yr LOS
≈ −0.31 m/yr vertical; the LOS value is specified because that is what InSAR sees), plus a broad
weak uplift (``uplift_rate``, default +5 mm/yr peak) tapered to zero inside the bowl.
``A`` (truth.seasonal_amplitude, m): annual term, ``seasonal_amplitude`` (default 8 mm) in the
basin down to 30 % of it on the ridge; it peaks toward the satellite at year fraction ``p``
(truth.seasonal_peak, default 0.7 ≈ mid September, end of the rainy season).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sbts.core.demo.acquisitions import Acquisitions
from sbts.core.demo.fields import gauss
from sbts.core.demo.scene import LandCover, PixelGrid
from sbts.core.demo.specs import DeformationSpec


@dataclass(frozen=True, eq=False)
class Deformation:
    """The deformation time series and the maps it is made of."""

    timeseries: np.ndarray  # (n, L, W) float64 m, relative to the first date
    velocity: np.ndarray  # (L, W) float64 m/yr
    seasonal_amplitude: np.ndarray  # (L, W) float64 m
    bowl_center_yx: tuple[int, int]


def deformation(grid: PixelGrid, spec: DeformationSpec, acq: Acquisitions, water: np.ndarray,
                cover: LandCover, rng: np.random.Generator) -> Deformation:
    """Subsidence bowl + broad uplift (linear) and an annual term stronger in the basin."""
    length, width, ym, xm, ext = grid.length, grid.width, grid.ym, grid.xm, grid.ext
    for _ in range(100):  # bowl centre on land (not in the lake)
        by = int(round((0.52 + rng.uniform(-0.06, 0.06)) * (length - 1)))
        bx = int(round((0.45 + rng.uniform(-0.06, 0.06)) * (width - 1)))
        if not water[by, bx]:
            break
    bowl_angle = rng.uniform(0, np.pi)
    bowl = gauss(ym - ym[by, bx], xm - xm[by, bx], 0.13 * ext, 0.19 * ext, bowl_angle)
    uy = (0.15 + rng.uniform(-0.05, 0.05)) * (length - 1)
    ux = (0.2 + rng.uniform(-0.05, 0.05)) * (width - 1)
    uplift = gauss(grid.yy - uy, grid.xx - ux, 0.45 * length, 0.45 * width) * (1.0 - bowl)
    velocity = spec.bowl_rate * bowl + spec.uplift_rate * uplift
    season_amp = spec.seasonal_amplitude * (0.3 + 0.7 * np.maximum(cover.basin, 0.7 * bowl))
    season = np.cos(2 * np.pi * (acq.decimal_year - spec.seasonal_peak))
    series = (acq.years[:, None, None] * velocity[None]
              + (season - season[0])[:, None, None] * season_amp[None])
    return Deformation(series, velocity, season_amp, (by, bx))
