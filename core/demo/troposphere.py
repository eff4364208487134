"""Tropospheric delay of the synthetic stack (truth.troposphere_*, m, displacement sign, relative to date 0).

* Turbulent: per date an isotropic power-law screen, 2-D spectrum ∝ (k² + k0²)^(−11/6) (3-D
  Kolmogorov turbulence below the ~2 km scale: structure function ∝ r^(5/3), spectrum ∝ k^(−11/3);
  Hanssen 2001 §4.7; outer scale 1/k0 = 20 km), synthesised by FFT on a 2× padded grid (no
  periodic wrap), zero mean, spatial std exactly ``turbulence_std`` (default 1 cm); the date
  ``truth.noisy_date_index`` gets ``noisy_date_factor`` (3×) that std.  That is about 0.2 mm
  between neighbouring pixels for a 1 cm screen, as real troposphere, so spatial unwrapping and
  bridging see smooth fields.
* Stratified: ``K(t)·height`` with K (m/m) = a seasonal cycle of amplitude ``stratified_std/2`` plus
  N(0, ``stratified_std``) (default 1e-5 m/m, i.e. ~1 cm per km of relief), multiplied by the DEM
  ``height``.  ``truth.troposphere_coefficient`` = K(t) − K(t0) (per date, m/m).

Both arrays hold screen(t) − screen(t0) (so the turbulent std per date is ≈ √2 × ``turbulence_std``,
≈ √10 × on the noisy date): an absolute delay δ enters the displacement sign as −δ (as MintPy's
``ERA5.h5`` does; corrected = ts − tropo).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sbts.core.demo.fields import power_law_screen
from sbts.core.demo.scene import PixelGrid
from sbts.core.demo.specs import AtmosphereSpec


@dataclass(frozen=True, eq=False)
class Troposphere:
    turbulent: np.ndarray  # (n, L, W) float64 m
    stratified: np.ndarray  # (n, L, W) float64 m
    coefficient: np.ndarray  # (n,) float64 m/m, K(t) − K(t0)
    noisy_date_index: int


def turbulence(grid: PixelGrid, num_date: int, spec: AtmosphereSpec,
               rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(n, L, W) turbulent screens relative to date 0, and the index of the noisy date."""
    noisy_idx = int(rng.integers(max(1, num_date // 4), max(2, 3 * num_date // 4)))
    turb_abs = power_law_screen(rng, num_date, grid.shape, (grid.dy_m, grid.dx_m),
                                exponent=11.0 / 3.0) * spec.turbulence_std
    turb_abs[noisy_idx] *= spec.noisy_date_factor
    return turb_abs - turb_abs[0], noisy_idx


def stratified_delay(decimal_year: np.ndarray, dem: np.ndarray, spec: AtmosphereSpec,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(n, L, W) height-proportional delay relative to date 0, and its coefficient K(t) − K(t0)."""
    std = spec.stratified_std
    k_abs = (0.5 * std * np.cos(2 * np.pi * (decimal_year - 0.6))
             + std * rng.standard_normal(decimal_year.size))
    k_rel = k_abs - k_abs[0]
    return k_rel[:, None, None] * dem[None], k_rel


def troposphere(grid: PixelGrid, decimal_year: np.ndarray, dem: np.ndarray, spec: AtmosphereSpec,
                turbulence_rng: np.random.Generator, stratified_rng: np.random.Generator) -> Troposphere:
    """Turbulent and stratified delays (each from its own random stream)."""
    turb, noisy_idx = turbulence(grid, decimal_year.size, spec, turbulence_rng)
    strat, k_rel = stratified_delay(decimal_year, dem, spec, stratified_rng)
    return Troposphere(turb, strat, k_rel, noisy_idx)
