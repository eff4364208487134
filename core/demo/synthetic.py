"""Seeded, physically plausible synthetic SBAS stack with known truth.

This is the built-in demo dataset (``sbts demo``) and the ground truth of many tests.  Everything
is pure numpy (no file I/O) and fully determined by ``seed``: every physical component draws from
its own child of ``np.random.SeedSequence(seed)``, so switching one component off (e.g. the
troposphere) leaves all the others bit-identical.

One module per physical component holds its physics (docstring) and its function:

==========================================  ================================================
:mod:`sbts.core.demo.scene`                 grid, terrain (DEM), radar geometry, land cover
:mod:`sbts.core.demo.water_shadow`          the lake, radar shadow, the lake's phase
:mod:`sbts.core.demo.acquisitions`          dates, baselines, orbit-error ramps, pair network
:mod:`sbts.core.demo.deformation`           subsidence bowl, uplift, annual term
:mod:`sbts.core.demo.dem_error`             DEM-error patches and their phase term
:mod:`sbts.core.demo.troposphere`           turbulent and stratified delay
:mod:`sbts.core.demo.decorrelation`         true coherence and DS phase noise
:mod:`sbts.core.demo.reference`             the stable, coherent reference pixel
:mod:`sbts.core.demo.unwrapping`            per-pair constants, unwrapping errors, components
==========================================  ================================================

Their parameters are grouped in :mod:`sbts.core.demo.specs` (SceneSpec, AcquisitionSpec,
NetworkSpec, DeformationSpec, AtmosphereSpec, NoiseSpec, UnwrappingSpec);
:func:`make_synthetic_stack` takes them as flat keywords, :func:`build_synthetic_stack` as a
:class:`~sbts.core.demo.specs.SyntheticSpec`.

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
  minus its value at the reference pixel.  Land phase is never exactly 0 (MintPy's no-data).

Attributes (``attrs``, all strings, MintPy root attributes)
------------------------------------------------------------
WAVELENGTH, ALOOKS (2), RLOOKS (8), NCORRLOOKS (= ``looks``), PLATFORM (Sen), ORBIT_DIRECTION,
HEADING, RANGE_PIXEL_SIZE (2.33 m × RLOOKS), AZIMUTH_PIXEL_SIZE (14.0 m × ALOOKS), STARTING_RANGE
(min slant range of the scene), EARTH_RADIUS, HEIGHT, CENTER_LINE_UTC, X_FIRST, Y_FIRST, X_STEP,
Y_STEP, X_UNIT, Y_UNIT (degrees), EPSG (4326), LENGTH, WIDTH, ANTENNA_SIDE (-1), POLARIZATION (VV),
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
from typing import Any

import numpy as np

from sbts.core.demo import acquisitions as _acq
from sbts.core.demo import (
    decorrelation,
    deformation,
    dem_error,
    reference,
    scene,
    troposphere,
    unwrapping,
    water_shadow,
)
from sbts.core.demo.decorrelation import simulate_ds_phase
from sbts.core.demo.dem_error import dem_error_timeseries
from sbts.core.demo.fields import (
    DAYS_PER_YEAR,
    S1_ALTITUDE,
    S1_AZIMUTH_PIXEL,
    S1_RANGE_PIXEL,
    SENTINEL1_WAVELENGTH,
    freeze,
    power_law_screen,
)
from sbts.core.demo.specs import SceneSpec, SyntheticSpec
from sbts.core.demo.unwrapping import UnwrapError

__all__ = [
    "SyntheticStack",
    "SyntheticTruth",
    "SyntheticSpec",
    "UnwrapError",
    "make_synthetic_stack",
    "build_synthetic_stack",
    "pair_phase_from_timeseries",
    "dem_error_timeseries",
    "simulate_ds_phase",
    "power_law_screen",
    "SENTINEL1_WAVELENGTH",
]

logger = logging.getLogger(__name__)

# Child-seed slots: fixed so that a component's random stream never depends on
# which other components are enabled.
_STREAMS = (
    "dates", "bperp", "terrain", "landcover", "deformation", "dem_error",
    "turbulence", "stratified", "ramps", "wetness", "noise", "water",
    "unwrap", "offset", "lake",
)


@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """Known truth of a synthetic stack (the physics: the component modules, see the module docstring).

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
        return np.array([(d - d0).days for d in self.dates], dtype=np.float64) / DAYS_PER_YEAR

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


def make_synthetic_stack(shape: tuple[int, int] | None = None, num_date: int | None = None, seed: int = 0,
                         **keywords: Any) -> SyntheticStack:
    """Build a seeded synthetic SBAS stack with known truth (physics: the component modules).

    Keywords are the fields of the groups of :mod:`sbts.core.demo.specs` (``bowl_rate``,
    ``turbulence_std``, ``orbit_direction``, ...); ``None`` or absent means the default.
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
    return build_synthetic_stack(SyntheticSpec.from_keywords(shape=shape, num_date=num_date, **keywords), seed)


def build_synthetic_stack(spec: SyntheticSpec | None = None, seed: int = 0) -> SyntheticStack:
    """The synthetic stack of ``spec``: each component from its own random stream, then the pair phase.

    The order of the steps below is free between streams but fixed within one (the ``water`` stream
    gives the lake's coherence, then its phase), and the sum of the components keeps its order, so
    that every seed gives the same bits as before the generator was split into components.
    """
    tic = time.perf_counter()
    spec = spec or SyntheticSpec()
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    rngs = {name: np.random.default_rng(ss) for name, ss in zip(_STREAMS, children)}
    sc = spec.scene

    acq = _acq.acquisitions(spec.acquisitions, rngs["dates"], rngs["bperp"])
    d1, d2 = _acq.pair_network(acq.bperp, spec.network)
    num_pair = d1.size

    grid = scene.pixel_grid(sc)
    relief = scene.terrain(grid, rngs["terrain"])
    water = water_shadow.lake(grid.shape, rngs["lake"])
    h_true = scene.with_lake(relief, water)
    geometry = scene.radar_geometry(grid, sc, h_true)
    shadow = water_shadow.radar_shadow(h_true, geometry.incidence, grid.dx_m,
                                       far_range_increasing_x=(sc.orbit_direction == "ASCENDING"), water=water)
    cover = scene.land_cover(grid, h_true, water, rngs["landcover"])

    deform = deformation.deformation(grid, spec.deformation, acq, water, cover, rngs["deformation"])
    dz = dem_error.dem_error_patches(grid.shape, sc.dem_error, water, shadow, rngs["dem_error"])
    height_dem = dem_error.dem_with_error(h_true, dz)
    tropo = troposphere.troposphere(grid, acq.decimal_year, height_dem, spec.atmosphere,
                                    rngs["turbulence"], rngs["stratified"])
    ramps = _acq.orbital_ramps(grid, acq.bperp.size, spec.acquisitions.ramp_amplitude, rngs["ramps"])

    # total displacement-sign time series → pair phase
    dem_ts = dem_error_timeseries(dz, acq.bperp, geometry.slant_range, geometry.incidence)
    total = deform.timeseries + tropo.turbulent + tropo.stratified + ramps + dem_ts
    phase = pair_phase_from_timeseries(total, d1, d2, sc.wavelength)  # float64 (m, L, W)
    del total

    coherence = decorrelation.true_coherence(acq, d1, d2, geometry, cover, water, shadow, sc.wavelength,
                                             rngs["wetness"], rngs["water"])
    coh_out = decorrelation.add_phase_noise(phase, coherence.gamma, spec.noise, rngs["noise"])

    offsets = unwrapping.pair_offsets(num_pair, spec.unwrapping, rngs["offset"])
    phase += offsets[:, None, None]
    ref_yx = reference.reference_pixel(water, shadow, dz, geometry.slope_deg, coherence.long_term,
                                       deform.velocity)
    conn = unwrapping.connected_components(num_pair, water)
    errors = unwrapping.add_unwrap_errors(phase, conn, water, ref_yx, spec.unwrapping, rngs["unwrap"])
    water_shadow.lake_phase(phase, water, spec.unwrapping.water_nodata_fraction, rngs["water"])

    land = ~water
    phase32 = phase.astype(np.float32)
    del phase
    zero_land = (phase32 == 0) & land[None]
    if zero_land.any():  # 0 means no-data in MintPy: nudge accidental zeros on land
        phase32[zero_land] = np.float32(1e-6)

    f32 = np.float32
    truth = SyntheticTruth(
        deformation=freeze(deform.timeseries.astype(f32)),
        velocity=freeze(deform.velocity.astype(f32)),
        seasonal_amplitude=freeze(deform.seasonal_amplitude.astype(f32)),
        seasonal_peak=float(spec.deformation.seasonal_peak),
        dem_error=freeze(dz.astype(f32)),
        troposphere_turbulent=freeze(tropo.turbulent.astype(f32)),
        troposphere_stratified=freeze(tropo.stratified.astype(f32)),
        troposphere_coefficient=freeze(tropo.coefficient.astype(np.float64)),
        ramps=freeze(ramps.astype(f32)),
        unwrap_errors=errors,
        pair_offset=freeze(offsets.astype(np.float64)),
        coherence_true=freeze(coherence.gamma.astype(f32)),
        reference_yx=ref_yx,
        bowl_center_yx=deform.bowl_center_yx,
        noisy_date_index=tropo.noisy_date_index,
    )
    stack = SyntheticStack(
        dates=acq.dates,
        date1_index=freeze(d1),
        date2_index=freeze(d2),
        bperp=freeze(acq.bperp),
        unwrap_phase=freeze(phase32),
        coherence=freeze(coh_out),
        conn_comp=freeze(conn),
        height=freeze(height_dem.astype(f32)),
        incidence_angle=freeze(geometry.incidence.astype(f32)),
        azimuth_angle=freeze(geometry.azimuth.astype(f32)),
        slant_range_distance=freeze(geometry.slant_range.astype(f32)),
        latitude=None,
        longitude=None,
        water_mask=freeze(land.copy()),
        shadow_mask=freeze(shadow),
        attrs=stack_attributes(sc, grid, geometry, spec.noise.looks),
        truth=truth,
    )
    logger.info("synthetic stack: %d dates, %d pairs, %dx%d pixels, seed %d, %.2f s",
                len(acq.dates), num_pair, grid.length, grid.width, seed, time.perf_counter() - tic)
    return stack


def stack_attributes(sc: SceneSpec, grid: scene.PixelGrid, geometry: scene.RadarGeometry,
                     looks: int) -> dict[str, str]:
    """MintPy's root attributes of the synthetic stack (all strings)."""
    alooks, rlooks = 2, 8
    utc = 2160.0 if sc.orbit_direction == "ASCENDING" else 45360.0  # ~18:00 / 06:00 local solar
    return {
        "WAVELENGTH": repr(float(sc.wavelength)),
        "ALOOKS": str(alooks),
        "RLOOKS": str(rlooks),
        "NCORRLOOKS": str(int(looks)),
        "PLATFORM": "Sen",
        "ORBIT_DIRECTION": sc.orbit_direction,
        "HEADING": repr(float(geometry.heading)),
        "RANGE_PIXEL_SIZE": repr(round(S1_RANGE_PIXEL * rlooks, 6)),
        "AZIMUTH_PIXEL_SIZE": repr(round(S1_AZIMUTH_PIXEL * alooks, 6)),
        "STARTING_RANGE": repr(round(float(geometry.slant_range.min()), 3)),
        "EARTH_RADIUS": repr(round(grid.earth_radius, 3)),
        "HEIGHT": repr(S1_ALTITUDE),
        "CENTER_LINE_UTC": repr(utc),
        "X_FIRST": repr(float(grid.x_first)),
        "Y_FIRST": repr(float(grid.y_first)),
        "X_STEP": repr(float(grid.x_step)),
        "Y_STEP": repr(float(grid.y_step)),
        "X_UNIT": "degrees",
        "Y_UNIT": "degrees",
        "EPSG": "4326",
        "LENGTH": str(grid.length),
        "WIDTH": str(grid.width),
        "ANTENNA_SIDE": "-1",
        "POLARIZATION": "VV",
        "PROCESSOR": "sbts-synthetic",
    }
