"""Acquisitions of the synthetic stack: dates, perpendicular baselines, orbit-error ramps, pair network.

Dates lie on the 12-day Sentinel-1A repeat grid, ``num_date`` of them spread over ``span_years``
(default 2 yr ⇒ 24-day mean sampling, gaps of 12–60 days as in real S1A-only stacks; the first and
last grid slots are always used).  Perpendicular baselines ``bperp`` (m, per date, first date 0)
scatter ≈ N(0, 60 m), clipped to ±150 m.

Pairs join each date to its next ``num_neighbor`` dates (default 4); pairs with
``|Δbperp| > max_perp_baseline`` are dropped except sequential pairs, which are always kept so the
network is one connected component (≈ 100 pairs for 30 dates).  Pair perpendicular baseline =
``bperp[date2] − bperp[date1]``.

Ramps (truth.ramps, m): per-date planes ``a·(x/W − ½) + b·(y/L − ½)`` with a, b ~ N(0,
ramp_amplitude), relative to date 0.  Default ``ramp_amplitude = 0`` (Sentinel-1 orbits are
precise), i.e. all zeros.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

from sbts.core.demo.fields import DAYS_PER_YEAR, REPEAT_DAYS
from sbts.core.demo.scene import PixelGrid
from sbts.core.demo.specs import AcquisitionSpec, NetworkSpec


@dataclass(frozen=True, eq=False)
class Acquisitions:
    """The dates (three time axes) and the perpendicular baseline of each."""

    dates: tuple[_dt.date, ...]
    days: np.ndarray  # (n,) float64 days since the first date
    years: np.ndarray  # (n,) float64 years since the first date (days / 365.25)
    decimal_year: np.ndarray  # (n,) float64 years since 2000-01-01
    bperp: np.ndarray  # (n,) float32 m, first date 0


def acquisition_dates(rng: np.random.Generator, num_date: int, start_date: _dt.date,
                      span_years: float) -> tuple[_dt.date, ...]:
    """``num_date`` dates on the 12-day repeat grid, spread over ``span_years``."""
    num_slot = max(num_date, int(round(span_years * DAYS_PER_YEAR / REPEAT_DAYS)) + 1)
    slots = np.round(np.linspace(0, num_slot - 1, num_date)).astype(int)
    if num_date > 2 and num_slot > num_date:
        # jitter interior dates by one repeat cycle, keeping them strictly increasing
        for i in range(1, num_date - 1):
            cand = slots[i] + int(rng.integers(-1, 2))
            if slots[i - 1] < cand < slots[i + 1]:
                slots[i] = cand
    return tuple(start_date + _dt.timedelta(days=int(REPEAT_DAYS * s)) for s in slots)


def acquisitions(spec: AcquisitionSpec, date_rng: np.random.Generator,
                 bperp_rng: np.random.Generator) -> Acquisitions:
    """The dates (``dates`` stream) and baselines (``bperp`` stream) of ``spec``."""
    dates = acquisition_dates(date_rng, spec.num_date, spec.start_date, spec.span_years)
    days = np.array([(d - dates[0]).days for d in dates], dtype=np.float64)
    years = days / DAYS_PER_YEAR
    dec_year = np.array([(d - _dt.date(2000, 1, 1)).days for d in dates], np.float64) / DAYS_PER_YEAR
    bperp = np.clip(bperp_rng.normal(0.0, 60.0, spec.num_date), -150.0, 150.0)
    bperp[0] = 0.0
    return Acquisitions(dates, days, years, dec_year, bperp.astype(np.float32))


def pair_network(bperp: np.ndarray, spec: NetworkSpec) -> tuple[np.ndarray, np.ndarray]:
    """(date1_index, date2_index) int64 of the sequential small-baseline network; sequential pairs
    are always kept (connectivity)."""
    bperp = np.asarray(bperp, np.float64)
    n = bperp.size
    d1, d2 = [], []
    for i in range(n):
        for j in range(i + 1, min(n, i + 1 + spec.num_neighbor)):
            if j == i + 1 or abs(bperp[j] - bperp[i]) <= spec.max_perp_baseline:
                d1.append(i)
                d2.append(j)
    return np.array(d1, dtype=np.int64), np.array(d2, dtype=np.int64)


def orbital_ramps(grid: PixelGrid, num_date: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """(n, L, W) float64 m: one plane per date from its orbit error, relative to date 0."""
    ab = rng.normal(0.0, 1.0, (num_date, 2)) * amplitude
    u = grid.xx / (grid.width - 1) - 0.5
    v = grid.yy / (grid.length - 1) - 0.5
    ramps = ab[:, 0, None, None] * u[None] + ab[:, 1, None, None] * v[None]
    ramps -= ramps[0]
    return ramps
