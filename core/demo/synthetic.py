"""Seeded, physically plausible synthetic SBAS stack with known truth.

This is the built-in demo dataset (``sbts demo``) and the ground truth of many
tests.  Everything is pure numpy (no file I/O) and fully determined by ``seed``:
every physical component draws from its own child of
``np.random.SeedSequence(seed)``, so switching one component off (e.g. the
troposphere) leaves all the others bit-identical.

Sign conventions (MintPy, see ``shared/reference/mintpy.md`` §0)
------------------------------------------------------------------
* Time series ``d(t)`` (m): LOS displacement, **positive toward the satellite**
  (range decrease), relative to the first date (``d(t0) = 0``).
* Interferogram ``unwrap_phase`` (rad) for the pair (t1, t2), t1 < t2::

      φ12 = −4π/λ · (d(t2) − d(t1)) + noise + c12 + 2π·k12·R12

  i.e. positive phase = motion **away** from the satellite.  ``c12`` is an
  arbitrary per-pair constant (unwrapping fixes the phase only up to a
  constant), ``k12·R12`` an optional unwrapping error (integer cycles on a
  region R12).  ``phase2range = −λ/(4π)``.
* Every truth time-series component (deformation, troposphere, ramps, the DEM
  error term) is expressed in this displacement sign and relative to the first
  date; ``SyntheticStack.truth_timeseries()`` sums them.  What an SBAS
  inversion referenced at ``truth.reference_yx`` should recover is that sum
  minus its value at the reference pixel.

Scene (geocoded, WGS84, ``EPSG=4326``)
--------------------------------------
A 3-arcsec grid (≈ 87 m E-W × 93 m N-S) centred near Mexico City: a flat
sedimentary basin (≈ 250 m; the absolute level is lowered so the DEM spans
0–2000 m) with a ridge in the south-west (up to ≈ 1800 m; relief is scaled down for
scenes smaller than 10 km so slopes stay plausible), a few hills, one
small steep volcanic plug (casts a few shadow pixels) and mild fractal
roughness that grows with relief.  A lake (irregular ellipse, north-east) is the
water body: ``water_mask`` is False there (MintPy: True = land).  The geometry
is radar-like although geocoded: ``latitude``/``longitude`` are ``None``; the
grid is given by ``X_FIRST/Y_FIRST/X_STEP/Y_STEP`` (pixel-corner convention,
``Y_STEP < 0``).

Acquisition geometry (spherical Earth, Sentinel-1 IW, right-looking)
--------------------------------------------------------------------
Platform altitude ``HEIGHT`` = 693 km, local ``EARTH_RADIUS`` of WGS84 at the
scene latitude.  The ground look direction is ``HEADING + 90°`` (clockwise from
north); each pixel's ground-range offset along it sets the Earth angle α, and
with the pixel height h::

    r = sqrt((Re+h)² + (Re+H)² − 2(Re+h)(Re+H)cos α),   sin θ = (Re+H) sin α / r

giving ``slant_range_distance`` r (≈ 850 km) and ``incidence_angle`` θ (≈ 37°,
≈ 1° across the scene; S1 IW covers 30–46°).  ``HEADING`` ≈ −12.7° (ascending)
or −167.3° (descending), clockwise from north.  ``azimuth_angle`` follows
MintPy/ISCE: azimuth of the ground→satellite LOS vector measured from north,
anti-clockwise positive, ``= 90° − HEADING`` wrapped to (−180, 180]:
≈ **+102.7° for ascending** (the satellite lies WSW of the pixel) and
≈ −102.7° for descending.  Shadow is computed by ray casting along image rows
(approximating the range direction by the E-W axis, 13° off): a pixel is
shadowed if terrain nearer the radar rises above the ray at elevation 90° − θ.
Layover/foreshortening are not modelled beyond a coherence loss on steep slopes.

Acquisitions and network
------------------------
Dates lie on the 12-day Sentinel-1A repeat grid, ``num_date`` of them spread
over ``span_years`` (default 2 yr ⇒ 24-day mean sampling, gaps of 12–60 days
as in real S1A-only stacks; the first and last grid slots are always used).  Perpendicular baselines
``bperp`` (m, per date, first date 0) scatter ≈ N(0, 60 m), clipped to ±150 m.
Pairs join each date to its next ``num_neighbor`` dates (default 4); pairs with
``|Δbperp| > max_perp_baseline`` are dropped except sequential pairs, which are
always kept so the network is one connected component (≈ 100 pairs for 30
dates).  Pair perpendicular baseline = ``bperp[date2] − bperp[date1]``.

Deformation (truth.deformation, m, LOS, + toward satellite)
-----------------------------------------------------------
``d(t) = v·Δt + A·[cos 2π(T(t) − p) − cos 2π(T(t0) − p)]`` with Δt in years
(days/365.25), T the decimal year.  ``v`` (truth.velocity, m/yr): a rotated,
elongated Gaussian subsidence bowl whose centre pixel (truth.bowl_center_yx)
has exactly ``bowl_rate`` (default −0.25 m/yr LOS ≈ −0.31 m/yr vertical; the
LOS value is specified because that is what InSAR sees), plus a broad weak
uplift (``uplift_rate``, default +5 mm/yr peak) tapered to zero inside the bowl.
``A`` (truth.seasonal_amplitude, m): annual term, ``seasonal_amplitude``
(default 8 mm) in the basin down to 30 % of it on the ridge; it peaks toward the
satellite at year fraction ``p`` (truth.seasonal_peak, default 0.7 ≈ mid
September, end of the rainy season).

DEM error (truth.dem_error, m)
------------------------------
``Δz = h_true − h_DEM`` (``height`` is the DEM *with* this error): one patch
of ``+dem_error`` (default 30 m, e.g. new buildings) and one of
``−0.6·dem_error`` (an excavation).  Derivation: a point Δz above the DEM
surface, at the same range, sits at a larger look angle, i.e. displaced by
Δz/sin θ perpendicular to the LOS in the direction of increasing look angle.
For a secondary antenna displaced by B⊥ in that same direction the range
changes by −B⊥·Δz/(r sin θ) (a range *decrease*), hence the displacement-sign
contribution::

    d_dem(t) = +Δz · B⊥(t) / (r · sin θ)     (exactly MintPy's dem_error.py model)
    φ_dem,12 = −4π/λ · Δz · (B⊥(t2) − B⊥(t1)) / (r sin θ)

So a positive DEM error and a positive pair baseline give a negative phase.
B⊥(t) = ``bperp[t]`` (first date 0), r = ``slant_range_distance``,
θ = ``incidence_angle``.  ``truth.dem_error`` is therefore what MintPy's
``demErr.h5`` should estimate.

Troposphere (truth.troposphere_*, m, displacement sign, relative to date 0)
---------------------------------------------------------------------------
* Turbulent: per date an isotropic power-law screen, 2-D spectrum
  ∝ (k² + k0²)^(−4/3) (Kolmogorov −8/3 slope, outer scale 1/k0 = 20 km),
  synthesised by FFT on a 2× padded grid (no periodic wrap), zero mean, spatial
  std exactly ``turbulence_std`` (default 1 cm); the date
  ``truth.noisy_date_index`` gets ``noisy_date_factor`` (3×) that std.
* Stratified: ``K(t)·height`` with K (m/m) = a seasonal cycle of amplitude
  ``stratified_std/2`` plus N(0, ``stratified_std``) (default 1e-5 m/m, i.e.
  ~1 cm per km of relief), multiplied by the DEM ``height``.
  ``truth.troposphere_coefficient`` = K(t) − K(t0) (per date, m/m).
Both arrays hold screen(t) − screen(t0) (so the turbulent std per date is
≈ √2 × ``turbulence_std``, ≈ √10 × on the noisy date): an absolute delay δ enters the
displacement sign as −δ (as MintPy's ``ERA5.h5`` does; corrected = ts − tropo).

Ramps (truth.ramps, m)
----------------------
Per-date planes ``a·(x/W − ½) + b·(y/L − ½)`` with a, b ~ N(0, ramp_amplitude),
relative to date 0.  Default ``ramp_amplitude = 0`` (Sentinel-1 orbits are
precise), i.e. all zeros.

Decorrelation and phase noise
-----------------------------
True coherence per pair and pixel::

    γ = [(γ0 − γ∞)·exp(−Δt/τ) + γ∞] · (1 − |ΔB⊥|/B⊥,crit) · w12

with land-cover maps: built-up land γ0 ≈ 0.95, γ∞ ≈ 0.7, τ ≈ 200 d; vegetation
patches and forest above ≈ 900 m γ0 ≈ 0.8, γ∞ ≈ 0.1, τ ≈ 40 d; steep slopes
lose up to 0.35 of γ0 and γ∞.  ``B⊥,crit = λ·B_r·r·tan θ / c`` (S1 range
bandwidth 56.5 MHz ⇒ ≈ 6.6 km).  ``w12 = 1 − veg·(1 − w1·w2)`` with random
per-date wetness factors w ∈ [0.8, 1] (rain decorrelates vegetation).  Lake
pixels: γ ~ U(0.05, 0.15); shadow pixels γ = 0.05.
Phase noise has the exact distributed-scatterer statistics of an L-look
interferogram (L = ``looks``): the phase of Σ_k z1k·z2k* for circular complex
Gaussian z with correlation γ.  It is drawn through an exact reduction
(``simulate_ds_phase``): Σ|z1|² ~ Gamma(L), the cross term is conditionally
circular Gaussian, so 3–4 draws per sample replace 4L.
``coherence`` reports the true γ by default (``reported_coherence="true"``, so
coherence-based weights match the simulated noise exactly) or the sample
estimate |Σz1z2*|/√(Σ|z1|²Σ|z2|²) from the same L looks (``"sample"``;
biased high at low γ: ≈ 0.3 over the lake for L = 8).
``attrs['NCORRLOOKS'] = looks`` (and ALOOKS·RLOOKS/1.94 ≈ 8 as well).

Water, connected components, unwrapping errors, offsets
-------------------------------------------------------
* Lake: ``conn_comp = 0``; phase is uniform noise, or exactly 0 (MintPy
  no-data) in a random ``water_nodata_fraction`` of the pairs.  Land phase is
  never exactly 0.
* ``conn_comp`` = 1 on land; in ``num_unwrap_errors`` (default 3) random pairs a
  compact land blob is its own component (= 2) and carries ``2π·k`` extra phase,
  k ∈ {±1, ±2}; listed in ``truth.unwrap_errors`` as
  ``UnwrapError(pair_index, cycles, mask)``.
* ``truth.pair_offset`` (rad, (m,)): the per-pair constant c12 ~ U(−2π, 2π).
* ``truth.reference_yx``: a coherent (built-up, flat), nearly stable land pixel
  away from edges, the lake, DEM-error patches and unwrapping-error blobs.

Attributes (``attrs``, all strings, MintPy root attributes)
------------------------------------------------------------
WAVELENGTH, ALOOKS (2), RLOOKS (8), NCORRLOOKS, PLATFORM (Sen), ORBIT_DIRECTION,
HEADING, RANGE_PIXEL_SIZE (2.33 m × RLOOKS), AZIMUTH_PIXEL_SIZE (14.0 m ×
ALOOKS), STARTING_RANGE (min slant range of the scene), EARTH_RADIUS, HEIGHT,
CENTER_LINE_UTC, X_FIRST, Y_FIRST, X_STEP, Y_STEP, X_UNIT, Y_UNIT (degrees),
EPSG (4326), LENGTH, WIDTH, ANTENNA_SIDE (-1), POLARIZATION (VV),
PROCESSOR (sbts-synthetic).  No FILE_TYPE/REF_* (set by whoever writes files).

Arrays of the returned stack are read-only (it is shared by tests): copy before
modifying.  Default size (120 × 150, 30 dates, ≈ 100 pairs) generates in well
under a second.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from scipy.ndimage import maximum_filter

__all__ = [
    "SyntheticStack",
    "SyntheticTruth",
    "UnwrapError",
    "make_synthetic_stack",
    "pair_phase_from_timeseries",
    "dem_error_timeseries",
    "simulate_ds_phase",
    "power_law_screen",
    "SENTINEL1_WAVELENGTH",
]

logger = logging.getLogger(__name__)

SENTINEL1_WAVELENGTH = 0.05546576  # m, C band (5.405 GHz)
_S1_RANGE_PIXEL = 2.329562  # m, single-look slant-range spacing (IW)
_S1_AZIMUTH_PIXEL = 14.0  # m, single-look azimuth spacing (IW, approx.)
_S1_RANGE_BANDWIDTH = 56.5e6  # Hz (IW2)
_S1_ALTITUDE = 693_000.0  # m
_SPEED_OF_LIGHT = 299_792_458.0
_REPEAT_DAYS = 12
_DAYS_PER_YEAR = 365.25
_WGS84_A = 6_378_137.0
_WGS84_B = 6_356_752.314245

# Child-seed slots: fixed so that a component's random stream never depends on
# which other components are enabled.
_STREAMS = (
    "dates", "bperp", "terrain", "landcover", "deformation", "dem_error",
    "turbulence", "stratified", "ramps", "wetness", "noise", "water",
    "unwrap", "offset", "lake",
)


class UnwrapError(NamedTuple):
    """An unwrapping error: ``cycles``·2π added to ``mask`` in pair ``pair_index``."""

    pair_index: int
    cycles: int
    mask: np.ndarray  # (L, W) bool


@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """Known truth of a synthetic stack (see the module docstring for the physics).

    All (n, L, W) components are metres in displacement sign (+ toward the
    satellite) and relative to the first date (index 0 is all zeros).
    """

    deformation: np.ndarray  # (n, L, W) float32 m
    velocity: np.ndarray  # (L, W) float32 m/yr
    seasonal_amplitude: np.ndarray  # (L, W) float32 m
    seasonal_peak: float  # year fraction of the annual maximum toward the satellite
    dem_error: np.ndarray  # (L, W) float32 m, h_true − h_DEM
    troposphere_turbulent: np.ndarray  # (n, L, W) float32 m
    troposphere_stratified: np.ndarray  # (n, L, W) float32 m
    troposphere_coefficient: np.ndarray  # (n,) float64 m/m, K(t) − K(t0)
    ramps: np.ndarray  # (n, L, W) float32 m
    unwrap_errors: tuple[UnwrapError, ...]
    pair_offset: np.ndarray  # (m,) float64 rad, per-pair constant phase
    coherence_true: np.ndarray  # (m, L, W) float32, the γ used to simulate noise
    reference_yx: tuple[int, int]
    bowl_center_yx: tuple[int, int]
    noisy_date_index: int


@dataclass(frozen=True, eq=False)
class SyntheticStack:
    """A geocoded small-baseline interferogram stack plus geometry, attributes and truth."""

    dates: tuple[_dt.date, ...]
    date1_index: np.ndarray  # (m,) int64
    date2_index: np.ndarray  # (m,) int64
    bperp: np.ndarray  # (n,) float32 m, first date 0
    unwrap_phase: np.ndarray  # (m, L, W) float32 rad
    coherence: np.ndarray  # (m, L, W) float32
    conn_comp: np.ndarray  # (m, L, W) int16
    height: np.ndarray  # (L, W) float32 m (DEM, contains truth.dem_error)
    incidence_angle: np.ndarray  # (L, W) float32 deg
    azimuth_angle: np.ndarray  # (L, W) float32 deg
    slant_range_distance: np.ndarray  # (L, W) float32 m
    latitude: np.ndarray | None  # None: geocoded, see attrs
    longitude: np.ndarray | None
    water_mask: np.ndarray  # (L, W) bool, True = land
    shadow_mask: np.ndarray  # (L, W) bool, True = shadow
    attrs: dict[str, str]
    truth: SyntheticTruth

    # -- convenience -------------------------------------------------------
    @property
    def num_date(self) -> int:
        return len(self.dates)

    @property
    def num_pair(self) -> int:
        return int(self.date1_index.size)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.height.shape)  # type: ignore[return-value]

    @property
    def date_list(self) -> list[str]:
        """Dates as ``YYYYMMDD`` strings (MintPy ``date`` dataset)."""
        return [d.strftime("%Y%m%d") for d in self.dates]

    @property
    def date12_list(self) -> list[str]:
        """Pairs as ``YYYYMMDD_YYYYMMDD`` (date1 < date2)."""
        ds = self.date_list
        return [f"{ds[i]}_{ds[j]}" for i, j in zip(self.date1_index, self.date2_index)]

    @property
    def pair_bperp(self) -> np.ndarray:
        """(m,) float32 pair perpendicular baseline bperp[date2] − bperp[date1] (m)."""
        return (self.bperp[self.date2_index] - self.bperp[self.date1_index]).astype(np.float32)

    @property
    def years(self) -> np.ndarray:
        """(n,) time since the first date in years (days / 365.25)."""
        d0 = self.dates[0]
        return np.array([(d - d0).days for d in self.dates], dtype=np.float64) / _DAYS_PER_YEAR

    @property
    def lat_axis(self) -> np.ndarray:
        """(L,) latitude of pixel centres (deg)."""
        y0, dy = float(self.attrs["Y_FIRST"]), float(self.attrs["Y_STEP"])
        return y0 + (np.arange(self.shape[0]) + 0.5) * dy

    @property
    def lon_axis(self) -> np.ndarray:
        """(W,) longitude of pixel centres (deg)."""
        x0, dx = float(self.attrs["X_FIRST"]), float(self.attrs["X_STEP"])
        return x0 + (np.arange(self.shape[1]) + 0.5) * dx

    def truth_timeseries(self, *, deformation: bool = True, troposphere: bool = True,
                         dem_error: bool = True, ramps: bool = True) -> np.ndarray:
        """(n, L, W) float64 m: sum of the chosen truth components (relative to date 0).

        Not spatially referenced: subtract the value at ``truth.reference_yx``
        to compare with an inversion referenced there.
        """
        t = self.truth
        out = np.zeros(t.deformation.shape, dtype=np.float64)
        if deformation:
            out += t.deformation
        if troposphere:
            out += t.troposphere_turbulent
            out += t.troposphere_stratified
        if dem_error:
            out += dem_error_timeseries(t.dem_error, self.bperp, self.slant_range_distance,
                                        self.incidence_angle)
        if ramps:
            out += t.ramps
        return out


# ---------------------------------------------------------------------------
# public helpers
# ---------------------------------------------------------------------------
def pair_phase_from_timeseries(timeseries: np.ndarray, date1_index: np.ndarray,
                               date2_index: np.ndarray,
                               wavelength: float = SENTINEL1_WAVELENGTH) -> np.ndarray:
    """Interferometric phase (rad, MintPy sign) of pairs from a displacement time series.

    ``φ12 = −4π/λ · (d[date2] − d[date1])``; ``timeseries`` (n, ...) in metres,
    positive toward the satellite.  Returns (m, ...) in the input float dtype.
    """
    ts = np.asarray(timeseries)
    if not np.issubdtype(ts.dtype, np.floating):
        ts = ts.astype(np.float64)
    scale = ts.dtype.type(-4.0 * np.pi / wavelength)
    return scale * (ts[np.asarray(date2_index)] - ts[np.asarray(date1_index)])


def dem_error_timeseries(dem_error: np.ndarray, bperp: np.ndarray,
                         slant_range: np.ndarray, incidence_deg: np.ndarray) -> np.ndarray:
    """(n, L, W) float64 m: ``Δz·B⊥(t)/(r·sin θ)`` — MintPy's DEM-error model, + toward satellite."""
    geom = np.asarray(dem_error, np.float64) / (
        np.asarray(slant_range, np.float64) * np.sin(np.deg2rad(np.asarray(incidence_deg, np.float64))))
    return np.asarray(bperp, np.float64)[:, None, None] * geom[None]


def simulate_ds_phase(gamma: np.ndarray, looks: int, rng: np.random.Generator, *,
                      return_coherence: bool = False):
    """Phase (rad) of an L-look distributed-scatterer interferogram with true coherence γ.

    Exact in distribution to ``angle(Σ_k z1k·conj(z2k))`` with (z1k, z2k)
    iid circular complex Gaussian pairs of unit power and correlation γ:
    writing S = Σ|z1k|² ~ Gamma(L, 1), the sum equals √S·(γ√S + √(1−γ²)·c)
    with c ~ CN(0, 1) independent of S, and Σ|z2k|² = |γ√S + √(1−γ²)c|² +
    (1−γ²)·G with G ~ Gamma(L−1, 1).  That costs 3 (4 with coherence) draws
    per sample instead of 4L.  Returns phase, or (phase, sample coherence).
    """
    if looks < 1:
        raise ValueError("looks must be >= 1")
    g = np.clip(np.asarray(gamma, dtype=np.float64), 0.0, 1.0)
    s_look = np.sqrt(rng.standard_gamma(float(looks), size=g.shape))
    sig = np.sqrt(1.0 - g * g)
    re = g * s_look + sig * rng.standard_normal(g.shape) * np.sqrt(0.5)
    im = sig * rng.standard_normal(g.shape) * np.sqrt(0.5)
    phase = np.arctan2(im, re)
    if not return_coherence:
        return phase
    u2 = re * re + im * im
    rest = rng.standard_gamma(float(looks - 1), size=g.shape) if looks > 1 else np.zeros(g.shape)
    coh = np.sqrt(u2 / (u2 + sig * sig * rest))
    return phase, coh


def power_law_screen(rng: np.random.Generator, num: int, shape: tuple[int, int],
                     pixel_size: tuple[float, float], *, exponent: float = 8.0 / 3.0,
                     outer_scale: float = 20_000.0) -> np.ndarray:
    """(num, L, W) zero-mean, unit-std isotropic random fields with spectrum ∝ (k²+k0²)^(−β/2).

    Generated on a 2× padded grid and cropped, so the field is not periodic.
    ``pixel_size`` = (dy, dx) in metres; ``outer_scale`` in metres.
    """
    length, width = shape
    pl, pw = 2 * length, 2 * width
    ky = np.fft.fftfreq(pl, d=pixel_size[0])
    kx = np.fft.rfftfreq(pw, d=pixel_size[1])
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    amp = (k2 + (1.0 / outer_scale) ** 2) ** (-exponent / 4.0)
    amp[0, 0] = 0.0
    white = rng.standard_normal((num, pl, pw))
    field = np.fft.irfft2(np.fft.rfft2(white) * amp, s=(pl, pw))[:, :length, :width]
    field -= field.mean(axis=(1, 2), keepdims=True)
    std = field.std(axis=(1, 2), keepdims=True)
    return field / np.where(std > 0, std, 1.0)


# ---------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------
def _acquisition_dates(rng, num_date, start_date, span_years):
    """``num_date`` dates on the 12-day repeat grid, spread over ``span_years``."""
    num_slot = max(num_date, int(round(span_years * _DAYS_PER_YEAR / _REPEAT_DAYS)) + 1)
    slots = np.round(np.linspace(0, num_slot - 1, num_date)).astype(int)
    if num_date > 2 and num_slot > num_date:
        # jitter interior dates by one repeat cycle, keeping them strictly increasing
        for i in range(1, num_date - 1):
            cand = slots[i] + int(rng.integers(-1, 2))
            if slots[i - 1] < cand < slots[i + 1]:
                slots[i] = cand
    return tuple(start_date + _dt.timedelta(days=int(_REPEAT_DAYS * s)) for s in slots)


def _network(bperp, num_neighbor, max_perp_baseline):
    """Sequential small-baseline network; sequential pairs always kept (connectivity)."""
    n = bperp.size
    d1, d2 = [], []
    for i in range(n):
        for j in range(i + 1, min(n, i + 1 + num_neighbor)):
            if j == i + 1 or abs(bperp[j] - bperp[i]) <= max_perp_baseline:
                d1.append(i)
                d2.append(j)
    return np.array(d1, dtype=np.int64), np.array(d2, dtype=np.int64)


def _local_earth_radius(lat_deg):
    """Geocentric radius of the WGS84 ellipsoid at latitude (m)."""
    p = np.deg2rad(lat_deg)
    a, b = _WGS84_A, _WGS84_B
    num = (a * a * np.cos(p)) ** 2 + (b * b * np.sin(p)) ** 2
    den = (a * np.cos(p)) ** 2 + (b * np.sin(p)) ** 2
    return float(np.sqrt(num / den))


def _gauss(dy, dx, sy, sx, angle=0.0):
    """Rotated anisotropic Gaussian of offsets (dy, dx) in metres."""
    ca, sa = np.cos(angle), np.sin(angle)
    u = ca * dx + sa * dy
    v = -sa * dx + ca * dy
    return np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))


def _blob(shape, cy, cx, ry, rx, rng, roughness=0.15):
    """Irregular elliptical region (bool) centred at (cy, cx) pixels."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    theta = np.arctan2(yy - cy, xx - cx)
    rr = np.hypot((yy - cy) / max(ry, 1e-9), (xx - cx) / max(rx, 1e-9))
    ph = rng.uniform(0, 2 * np.pi, 3)
    wobble = 1.0 + roughness * (np.sin(2 * theta + ph[0]) * 0.6 + np.sin(3 * theta + ph[1]) * 0.4
                                + np.sin(5 * theta + ph[2]) * 0.2)
    return rr <= wobble


def _shadow(height, incidence_deg, pixel_x, far_range_increasing_x):
    """Radar shadow by ray casting along rows (range ≈ E-W)."""
    h = height.astype(np.float64)
    if not far_range_increasing_x:
        h = h[:, ::-1]
        inc = incidence_deg[:, ::-1]
    else:
        inc = incidence_deg
    tan_elev = np.tan(np.deg2rad(90.0 - inc.astype(np.float64)))
    x = np.arange(h.shape[1]) * pixel_x
    # x' < x blocks the ray to x if h(x') > h(x) + (x − x')·tan(elevation)
    g = h + x[None, :] * tan_elev
    prev_max = np.maximum.accumulate(np.concatenate([np.full((h.shape[0], 1), -np.inf), g[:, :-1]],
                                                    axis=1), axis=1)
    mask = prev_max > g
    return mask if far_range_increasing_x else mask[:, ::-1]


def _freeze(a):
    if isinstance(a, np.ndarray):
        a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------
# main entry
# ---------------------------------------------------------------------------
def make_synthetic_stack(
    shape: tuple[int, int] = (120, 150),
    num_date: int = 30,
    seed: int = 0,
    *,
    wavelength: float = SENTINEL1_WAVELENGTH,
    looks: int = 8,
    orbit_direction: Literal["ASCENDING", "DESCENDING"] = "ASCENDING",
    start_date: _dt.date = _dt.date(2019, 1, 4),
    span_years: float = 2.0,
    center_lat_lon: tuple[float, float] = (19.43, -99.13),
    pixel_size_deg: float = 1.0 / 1200.0,
    center_incidence: float = 37.0,
    num_neighbor: int = 4,
    max_perp_baseline: float = 150.0,
    bowl_rate: float = -0.25,
    uplift_rate: float = 0.005,
    seasonal_amplitude: float = 0.008,
    seasonal_peak: float = 0.7,
    dem_error: float = 30.0,
    turbulence_std: float = 0.01,
    noisy_date_factor: float = 3.0,
    stratified_std: float = 1.0e-5,
    ramp_amplitude: float = 0.0,
    phase_noise: bool = True,
    with_unwrap_errors: bool = True,
    num_unwrap_errors: int = 3,
    pair_offsets: bool = True,
    water_nodata_fraction: float = 0.3,
    reported_coherence: Literal["true", "sample"] = "true",
) -> SyntheticStack:
    """Build a seeded synthetic SBAS stack with known truth (physics: module docstring).

    Units: ``bowl_rate``/``uplift_rate`` m/yr LOS (+ toward the satellite);
    ``seasonal_amplitude``, ``turbulence_std``, ``ramp_amplitude`` m;
    ``dem_error`` m (peak of the positive patch); ``stratified_std`` m/m;
    ``max_perp_baseline`` m; ``center_incidence`` deg; ``pixel_size_deg`` deg;
    ``seasonal_peak`` year fraction.  ``looks`` is the number of independent
    looks L of the phase-noise simulation (also written as NCORRLOOKS).

    Switch-offs for exact tests: ``phase_noise=False``, ``turbulence_std=0``,
    ``stratified_std=0``, ``dem_error=0``, ``with_unwrap_errors=False``,
    ``pair_offsets=False`` (then the land phase equals −4π/λ·Δd exactly).
    """
    tic = time.perf_counter()
    length, width = (int(shape[0]), int(shape[1]))
    if length < 16 or width < 16:
        raise ValueError("shape must be at least 16 x 16")
    if num_date < 3:
        raise ValueError("num_date must be >= 3")
    if orbit_direction not in ("ASCENDING", "DESCENDING"):
        raise ValueError("orbit_direction must be 'ASCENDING' or 'DESCENDING'")
    if reported_coherence not in ("true", "sample"):
        raise ValueError("reported_coherence must be 'true' or 'sample'")
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    rngs = {name: np.random.default_rng(ss) for name, ss in zip(_STREAMS, children)}

    # --- dates, baselines, network ------------------------------------------
    dates = _acquisition_dates(rngs["dates"], num_date, start_date, span_years)
    days = np.array([(d - dates[0]).days for d in dates], dtype=np.float64)
    years = days / _DAYS_PER_YEAR
    dec_year = np.array([(d - _dt.date(2000, 1, 1)).days for d in dates], np.float64) / _DAYS_PER_YEAR
    bperp = np.clip(rngs["bperp"].normal(0.0, 60.0, num_date), -150.0, 150.0)
    bperp[0] = 0.0
    bperp = bperp.astype(np.float32)
    d1, d2 = _network(bperp.astype(np.float64), num_neighbor, max_perp_baseline)
    num_pair = d1.size

    # --- grid and pixel sizes ----------------------------------------------
    lat_c, lon_c = center_lat_lon
    y_step, x_step = -pixel_size_deg, pixel_size_deg
    y_first = lat_c - 0.5 * length * y_step
    x_first = lon_c - 0.5 * width * x_step
    earth_radius = _local_earth_radius(lat_c)
    dy_m = np.deg2rad(pixel_size_deg) * earth_radius
    dx_m = dy_m * np.cos(np.deg2rad(lat_c))
    yy, xx = np.mgrid[:length, :width].astype(np.float64)
    ym = (yy - (length - 1) / 2.0) * dy_m  # metres, + southward (row direction)
    xm = (xx - (width - 1) / 2.0) * dx_m  # metres, + eastward
    ext = min(length * dy_m, width * dx_m)
    rng_t = rngs["terrain"]

    # --- terrain (true heights) ---------------------------------------------
    floor = 250.0
    h = np.full((length, width), floor)
    # ridge along the SW: line through (u, v) = (0, 0.45) and (0.5, 1.0) of the scene
    p0 = np.array([-(width - 1) / 2.0 * dx_m, (0.45 - 0.5) * (length - 1) * dy_m])
    p1 = np.array([0.0, 0.5 * (length - 1) * dy_m])
    dvec = (p1 - p0) / np.linalg.norm(p1 - p0)
    dist = (xm - p0[0]) * dvec[1] - (ym - p0[1]) * dvec[0]
    along = (xm - p0[0]) * dvec[0] + (ym - p0[1]) * dvec[1]
    relief_scale = min(1.0, ext / 10_000.0)  # keep slopes plausible on small test scenes
    ridge_amp = 1350.0 * relief_scale * (1.0 + 0.15 * np.sin(2 * np.pi * along / (0.6 * ext) + rng_t.uniform(0, 2 * np.pi)))
    h += ridge_amp * np.exp(-0.5 * (dist / (0.11 * ext)) ** 2)
    # a few rounded hills (away from the basin centre)
    for cy, cx in ((0.15, 0.2), (0.8, 0.85), (0.1, 0.5)):
        oy = (cy + rng_t.uniform(-0.05, 0.05) - 0.5) * (length - 1) * dy_m
        ox = (cx + rng_t.uniform(-0.05, 0.05) - 0.5) * (width - 1) * dx_m
        s = rng_t.uniform(0.04, 0.07) * ext
        h += rng_t.uniform(200.0, 450.0) * relief_scale * _gauss(ym - oy, xm - ox, s, s)
    # a small steep volcanic plug: slopes > 90° − θ cast radar shadow
    cone_y = int(round((0.32 + rng_t.uniform(-0.03, 0.03)) * (length - 1)))
    cone_x = int(round((0.22 + rng_t.uniform(-0.03, 0.03)) * (width - 1)))
    h += 450.0 * _gauss(ym - ym[cone_y, cone_x], xm - xm[cone_y, cone_x], 1.3 * dy_m, 1.3 * dx_m)
    relief = np.clip((h - floor) / 1000.0, 0.0, 1.0)
    h += (8.0 + 25.0 * relief) * power_law_screen(rng_t, 1, (length, width), (dy_m, dx_m),
                                                 exponent=3.0, outer_scale=5.0 * ext)[0]

    # --- lake ---------------------------------------------------------------
    rng_l = rngs["lake"]
    lake_cy = (0.27 + rng_l.uniform(-0.03, 0.03)) * (length - 1)
    lake_cx = (0.76 + rng_l.uniform(-0.03, 0.03)) * (width - 1)
    water = _blob((length, width), lake_cy, lake_cx, 0.12 * length, 0.11 * width, rng_l)
    h[water] = floor - 2.0
    h_true = np.clip(h, 0.0, 2000.0)

    # --- geometry -----------------------------------------------------------
    heading = -12.7 if orbit_direction == "ASCENDING" else -167.3
    look_az = np.deg2rad(heading + 90.0)  # ground look direction, clockwise from north
    ground_range = xm * np.sin(look_az) + (-ym) * np.cos(look_az)  # north = −ym
    rs = earth_radius + _S1_ALTITUDE
    th_c = np.deg2rad(center_incidence)
    alpha_c = th_c - np.arcsin(earth_radius * np.sin(th_c) / rs)
    alpha = alpha_c + ground_range / earth_radius
    rp = earth_radius + h_true
    slant = np.sqrt(rp ** 2 + rs ** 2 - 2.0 * rp * rs * np.cos(alpha))
    inc = np.rad2deg(np.arcsin(np.clip(rs * np.sin(alpha) / slant, -1.0, 1.0)))
    az_angle = (90.0 - heading + 180.0) % 360.0 - 180.0
    azimuth = np.full((length, width), az_angle)
    shadow = _shadow(h_true, inc, dx_m, far_range_increasing_x=(orbit_direction == "ASCENDING"))
    shadow &= ~water
    gy, gx = np.gradient(h_true, dy_m, dx_m)
    slope_deg = np.rad2deg(np.arctan(np.hypot(gy, gx)))

    # --- land cover ---------------------------------------------------------
    patches = power_law_screen(rngs["landcover"], 1, (length, width), (dy_m, dx_m),
                               exponent=3.5, outer_scale=ext)[0]
    veg = np.clip((patches - np.quantile(patches, 0.72)) / 0.6, 0.0, 1.0)
    veg = np.maximum(veg, np.clip((h_true - 800.0) / 400.0, 0.0, 1.0))
    veg[water] = 0.0
    basin = np.clip(1.0 - (h_true - floor) / 400.0, 0.0, 1.0)

    # --- deformation --------------------------------------------------------
    rng_d = rngs["deformation"]
    for _ in range(100):  # bowl centre on land (not in the lake)
        by = int(round((0.52 + rng_d.uniform(-0.06, 0.06)) * (length - 1)))
        bx = int(round((0.45 + rng_d.uniform(-0.06, 0.06)) * (width - 1)))
        if not water[by, bx]:
            break
    bowl_angle = rng_d.uniform(0, np.pi)
    bowl = _gauss(ym - ym[by, bx], xm - xm[by, bx], 0.13 * ext, 0.19 * ext, bowl_angle)
    uy = (0.15 + rng_d.uniform(-0.05, 0.05)) * (length - 1)
    ux = (0.2 + rng_d.uniform(-0.05, 0.05)) * (width - 1)
    uplift = _gauss(yy - uy, xx - ux, 0.45 * length, 0.45 * width) * (1.0 - bowl)
    velocity = bowl_rate * bowl + uplift_rate * uplift
    season_amp = seasonal_amplitude * (0.3 + 0.7 * np.maximum(basin, 0.7 * bowl))
    season = np.cos(2 * np.pi * (dec_year - seasonal_peak))
    deformation = (years[:, None, None] * velocity[None]
                   + (season - season[0])[:, None, None] * season_amp[None])

    # --- DEM error patches (rectangles, e.g. new buildings / an excavation) --
    rng_z = rngs["dem_error"]
    dz = np.zeros((length, width))
    for value in (dem_error, -0.6 * dem_error):
        hy, hx = max(2, int(0.05 * length)), max(2, int(0.06 * width))
        for _ in range(200):
            cy = int(rng_z.integers(hy + 2, length - hy - 2))
            cx = int(rng_z.integers(hx + 2, width - hx - 2))
            box = (slice(cy - hy - 2, cy + hy + 3), slice(cx - hx - 2, cx + hx + 3))
            if not water[box].any() and not np.any(dz[box]) and not shadow[box].any():
                break
        dz[cy - hy: cy + hy + 1, cx - hx: cx + hx + 1] = value
    height_dem = np.clip(h_true - dz, 0.0, None)

    # --- troposphere --------------------------------------------------------
    rng_tb = rngs["turbulence"]
    noisy_idx = int(rng_tb.integers(max(1, num_date // 4), max(2, 3 * num_date // 4)))
    # 3-D Kolmogorov turbulence (structure function ∝ r^(5/3), spectrum ∝ k^(−11/3); Hanssen 2001 §4.7)
    # below the ~2 km scale of the scene: ~0.2 mm between neighbouring pixels for a 1 cm screen,
    # as real troposphere, so spatial unwrapping and bridging see smooth fields
    turb_abs = power_law_screen(rng_tb, num_date, (length, width), (dy_m, dx_m),
                                exponent=11.0 / 3.0) * turbulence_std
    turb_abs[noisy_idx] *= noisy_date_factor
    turb = turb_abs - turb_abs[0]
    k_abs = (0.5 * stratified_std * np.cos(2 * np.pi * (dec_year - 0.6))
             + stratified_std * rngs["stratified"].standard_normal(num_date))
    k_rel = k_abs - k_abs[0]
    strat = k_rel[:, None, None] * height_dem[None]

    # --- orbital ramps ------------------------------------------------------
    ab = rngs["ramps"].normal(0.0, 1.0, (num_date, 2)) * ramp_amplitude
    u = xx / (width - 1) - 0.5
    v = yy / (length - 1) - 0.5
    ramps = ab[:, 0, None, None] * u[None] + ab[:, 1, None, None] * v[None]
    ramps -= ramps[0]

    # --- total displacement-sign time series → pair phase ------------------
    dem_ts = dem_error_timeseries(dz, bperp, slant, inc)
    total = deformation + turb + strat + ramps + dem_ts
    phase = pair_phase_from_timeseries(total, d1, d2, wavelength)  # float64 (m, L, W)
    del total

    # --- coherence ----------------------------------------------------------
    slope_loss = 0.35 * np.clip((slope_deg - 10.0) / 30.0, 0.0, 1.0)
    g0 = 0.95 - 0.15 * veg - slope_loss
    ginf = 0.7 * (1.0 - veg) + 0.1 * veg - slope_loss
    ginf = np.clip(ginf, 0.02, None)
    tau = 40.0 + 160.0 * (1.0 - veg)
    dt_pair = days[d2] - days[d1]
    b_crit = wavelength * _S1_RANGE_BANDWIDTH * slant * np.tan(np.deg2rad(inc)) / _SPEED_OF_LIGHT
    wet = rngs["wetness"].uniform(0.8, 1.0, num_date)
    dbp = np.abs(bperp[d2].astype(np.float64) - bperp[d1])
    gamma = ((g0 - ginf)[None] * np.exp(-dt_pair[:, None, None] / tau[None]) + ginf[None])
    gamma *= np.clip(1.0 - dbp[:, None, None] / b_crit[None], 0.0, 1.0)
    gamma *= 1.0 - veg[None] * (1.0 - (wet[d1] * wet[d2])[:, None, None])
    rng_w = rngs["water"]
    gamma[:, water] = rng_w.uniform(0.05, 0.15, (num_pair, int(water.sum())))
    gamma[:, shadow] = 0.05
    gamma = np.clip(gamma, 0.0, 1.0)

    # --- phase noise (exact DS statistics), pair by pair to bound memory ----
    rng_n = rngs["noise"]
    coh_out = np.empty((num_pair, length, width), dtype=np.float32)
    for k in range(num_pair):
        noise, coh_s = simulate_ds_phase(gamma[k], looks, rng_n, return_coherence=True)
        if phase_noise:
            phase[k] += noise
        coh_out[k] = coh_s if reported_coherence == "sample" else gamma[k]

    # --- per-pair constants, unwrapping errors, water, conn comps ----------
    offsets = (rngs["offset"].uniform(-2 * np.pi, 2 * np.pi, num_pair) if pair_offsets
               else np.zeros(num_pair))
    phase += offsets[:, None, None]

    land = ~water
    # reference pixel: built-up, flat, coherent, nearly stable, with margins
    margin = max(3, int(0.05 * min(length, width)))
    near_water = _dilate(water, margin)
    near_dz = _dilate(dz != 0, 3)
    cand = land & ~near_water & ~near_dz & ~_dilate(shadow, 3) & (slope_deg < 8.0)
    cand[:margin] = cand[-margin:] = False
    cand[:, :margin] = cand[:, -margin:] = False
    if not cand.any():
        cand = land.copy()
    score = np.where(cand, ginf - 20.0 * np.abs(velocity), -np.inf)
    ref_y, ref_x = (int(i) for i in np.unravel_index(np.argmax(score), score.shape))

    conn = np.where(land, 1, 0).astype(np.int16)
    conn = np.broadcast_to(conn, (num_pair, length, width)).copy()
    errors: list[UnwrapError] = []
    if with_unwrap_errors and num_unwrap_errors > 0:
        rng_u = rngs["unwrap"]
        n_err = min(num_unwrap_errors, num_pair)
        pair_ids = np.sort(rng_u.choice(num_pair, n_err, replace=False))
        r = max(3.0, 0.09 * min(length, width))
        taken = np.zeros((length, width), bool)
        for pid in pair_ids:
            region = None
            for _ in range(200):
                cy = rng_u.uniform(r + 1, length - r - 2)
                cx = rng_u.uniform(r + 1, width - r - 2)
                blob = _blob((length, width), cy, cx, r * rng_u.uniform(0.8, 1.2),
                             r * rng_u.uniform(0.8, 1.2), rng_u, roughness=0.2)
                if (np.hypot(cy - ref_y, cx - ref_x) > 1.5 * r + 3 and not (blob & near_water).any()
                        and not (blob & taken).any()):
                    region = blob & land
                    break
            if region is None:  # crowded small scene: accept overlap, still avoid the reference
                region = blob & land
                region[max(0, ref_y - 2): ref_y + 3, max(0, ref_x - 2): ref_x + 3] = False
            taken |= region
            cycles = int(rng_u.choice([-2, -1, 1, 2], p=[0.15, 0.35, 0.35, 0.15]))
            phase[pid][region] += 2 * np.pi * cycles
            conn[pid][region] = 2
            errors.append(UnwrapError(int(pid), cycles, _freeze(region)))

    n_water = int(water.sum())
    nodata_pairs = rng_w.random(num_pair) < water_nodata_fraction
    for k in range(num_pair):
        if nodata_pairs[k]:
            phase[k][water] = 0.0
        else:
            phase[k][water] = rng_w.uniform(-np.pi, np.pi, n_water)
    phase32 = phase.astype(np.float32)
    del phase
    zero_land = (phase32 == 0) & land[None]
    if zero_land.any():  # 0 means no-data in MintPy: nudge accidental zeros on land
        phase32[zero_land] = np.float32(1e-6)

    # --- attributes ---------------------------------------------------------
    alooks, rlooks = 2, 8
    utc = 2160.0 if orbit_direction == "ASCENDING" else 45360.0  # ~18:00 / 06:00 local solar
    attrs = {
        "WAVELENGTH": repr(float(wavelength)),
        "ALOOKS": str(alooks),
        "RLOOKS": str(rlooks),
        "NCORRLOOKS": str(int(looks)),
        "PLATFORM": "Sen",
        "ORBIT_DIRECTION": orbit_direction,
        "HEADING": repr(float(heading)),
        "RANGE_PIXEL_SIZE": repr(round(_S1_RANGE_PIXEL * rlooks, 6)),
        "AZIMUTH_PIXEL_SIZE": repr(round(_S1_AZIMUTH_PIXEL * alooks, 6)),
        "STARTING_RANGE": repr(round(float(slant.min()), 3)),
        "EARTH_RADIUS": repr(round(earth_radius, 3)),
        "HEIGHT": repr(_S1_ALTITUDE),
        "CENTER_LINE_UTC": repr(utc),
        "X_FIRST": repr(float(x_first)),
        "Y_FIRST": repr(float(y_first)),
        "X_STEP": repr(float(x_step)),
        "Y_STEP": repr(float(y_step)),
        "X_UNIT": "degrees",
        "Y_UNIT": "degrees",
        "EPSG": "4326",
        "LENGTH": str(length),
        "WIDTH": str(width),
        "ANTENNA_SIDE": "-1",
        "POLARIZATION": "VV",
        "PROCESSOR": "sbts-synthetic",
    }

    f32 = np.float32
    truth = SyntheticTruth(
        deformation=_freeze(deformation.astype(f32)),
        velocity=_freeze(velocity.astype(f32)),
        seasonal_amplitude=_freeze(season_amp.astype(f32)),
        seasonal_peak=float(seasonal_peak),
        dem_error=_freeze(dz.astype(f32)),
        troposphere_turbulent=_freeze(turb.astype(f32)),
        troposphere_stratified=_freeze(strat.astype(f32)),
        troposphere_coefficient=_freeze(k_rel.astype(np.float64)),
        ramps=_freeze(ramps.astype(f32)),
        unwrap_errors=tuple(errors),
        pair_offset=_freeze(offsets.astype(np.float64)),
        coherence_true=_freeze(gamma.astype(f32)),
        reference_yx=(ref_y, ref_x),
        bowl_center_yx=(by, bx),
        noisy_date_index=noisy_idx,
    )
    stack = SyntheticStack(
        dates=dates,
        date1_index=_freeze(d1),
        date2_index=_freeze(d2),
        bperp=_freeze(bperp),
        unwrap_phase=_freeze(phase32),
        coherence=_freeze(coh_out),
        conn_comp=_freeze(conn),
        height=_freeze(height_dem.astype(f32)),
        incidence_angle=_freeze(inc.astype(f32)),
        azimuth_angle=_freeze(azimuth.astype(f32)),
        slant_range_distance=_freeze(slant.astype(f32)),
        latitude=None,
        longitude=None,
        water_mask=_freeze(land.copy()),
        shadow_mask=_freeze(shadow),
        attrs=attrs,
        truth=truth,
    )
    logger.info("synthetic stack: %d dates, %d pairs, %dx%d pixels, seed %d, %.2f s",
                num_date, num_pair, length, width, seed, time.perf_counter() - tic)
    return stack


def _dilate(mask, radius):
    """Binary dilation by a square of half-size ``radius``."""
    if radius <= 0:
        return mask.copy()
    return maximum_filter(mask.astype(np.uint8), size=2 * radius + 1, mode="constant") > 0
