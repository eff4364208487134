"""What a synthetic stack is made of: its parameters, grouped by physical component.

Each group is a small frozen dataclass whose defaults are the demo's (a 120 × 150 scene near
Mexico City, 30 Sentinel-1 dates over two years).  :class:`SyntheticSpec` holds one of each;
:meth:`SyntheticSpec.from_keywords` maps the flat keywords of
:func:`~sbts.core.demo.synthetic.make_synthetic_stack` (``shape``, ``bowl_rate``, ...) onto the groups,
so tests keep writing ``make_synthetic_stack(shape=(48, 64), turbulence_std=0)``.

Units: rates m/yr LOS (+ toward the satellite); amplitudes, std and DEM error m; ``stratified_std``
m/m; baselines m; angles deg; ``seasonal_peak`` year fraction; ``span_years`` years.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from sbts.core.demo.fields import SENTINEL1_WAVELENGTH


@dataclass(frozen=True)
class SceneSpec:
    """The ground and the radar looking at it: grid, DEM error, viewing geometry, wavelength."""

    shape: tuple[int, int] = (120, 150)  # (rows, columns)
    center_lat_lon: tuple[float, float] = (19.43, -99.13)  # deg
    pixel_size_deg: float = 1.0 / 1200.0  # 3 arcsec
    orbit_direction: Literal["ASCENDING", "DESCENDING"] = "ASCENDING"
    center_incidence: float = 37.0  # deg
    wavelength: float = SENTINEL1_WAVELENGTH  # m
    dem_error: float = 30.0  # m, height of the positive DEM-error patch (the negative one is −0.6×)

    def __post_init__(self) -> None:
        length, width = (int(self.shape[0]), int(self.shape[1]))
        if length < 16 or width < 16:
            raise ValueError("shape must be at least 16 x 16")
        object.__setattr__(self, "shape", (length, width))
        if self.orbit_direction not in ("ASCENDING", "DESCENDING"):
            raise ValueError("orbit_direction must be 'ASCENDING' or 'DESCENDING'")


@dataclass(frozen=True)
class AcquisitionSpec:
    """The acquisitions: how many, when, and the orbit error of each (a planar ramp)."""

    num_date: int = 30
    start_date: _dt.date = _dt.date(2019, 1, 4)
    span_years: float = 2.0
    ramp_amplitude: float = 0.0  # m, std of the per-date ramp coefficients (S1 orbits: none)

    def __post_init__(self) -> None:
        if self.num_date < 3:
            raise ValueError("num_date must be >= 3")


@dataclass(frozen=True)
class NetworkSpec:
    """The small-baseline pair network."""

    num_neighbor: int = 4  # pairs join each date to its next num_neighbor dates
    max_perp_baseline: float = 150.0  # m; sequential pairs are kept regardless


@dataclass(frozen=True)
class DeformationSpec:
    """The ground motion: a subsidence bowl, a broad uplift and an annual term."""

    bowl_rate: float = -0.25  # m/yr LOS at the bowl centre
    uplift_rate: float = 0.005  # m/yr LOS peak
    seasonal_amplitude: float = 0.008  # m in the basin
    seasonal_peak: float = 0.7  # year fraction of the maximum toward the satellite


@dataclass(frozen=True)
class AtmosphereSpec:
    """The troposphere: a turbulent screen per date (one noisy date) and a stratified term."""

    turbulence_std: float = 0.01  # m, spatial std of each date's screen
    noisy_date_factor: float = 3.0  # the noisy date's std over the others'
    stratified_std: float = 1.0e-5  # m/m, std of the delay-height coefficient


@dataclass(frozen=True)
class NoiseSpec:
    """Decorrelation phase noise and the coherence the stack reports."""

    looks: int = 8  # independent looks of the phase-noise simulation (NCORRLOOKS)
    phase_noise: bool = True
    reported_coherence: Literal["true", "sample"] = "true"

    def __post_init__(self) -> None:
        if self.reported_coherence not in ("true", "sample"):
            raise ValueError("reported_coherence must be 'true' or 'sample'")


@dataclass(frozen=True)
class UnwrappingSpec:
    """What phase unwrapping leaves in the data: per-pair constants, cycle errors, no-data water."""

    pair_offsets: bool = True  # a constant per pair, U(−2π, 2π)
    with_unwrap_errors: bool = True
    num_unwrap_errors: int = 3  # pairs with a 2π·k error on a land blob
    water_nodata_fraction: float = 0.3  # pairs whose lake phase is 0 (MintPy no-data)


@dataclass(frozen=True)
class SyntheticSpec:
    """One group of parameters per physical component of the synthetic stack."""

    scene: SceneSpec = field(default_factory=SceneSpec)
    acquisitions: AcquisitionSpec = field(default_factory=AcquisitionSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    deformation: DeformationSpec = field(default_factory=DeformationSpec)
    atmosphere: AtmosphereSpec = field(default_factory=AtmosphereSpec)
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    unwrapping: UnwrappingSpec = field(default_factory=UnwrappingSpec)

    @classmethod
    def keywords(cls) -> dict[str, str]:
        """Every flat keyword and the group (field of this class) it belongs to."""
        return {f.name: group.name for group in fields(cls) for f in fields(_GROUP_TYPES[group.name])}

    @classmethod
    def from_keywords(cls, **keywords: Any) -> SyntheticSpec:
        """The spec from flat keywords (``shape=..., bowl_rate=...``); ``None`` means the default.

        An unknown keyword is a TypeError, as for any Python function.
        """
        owner = cls.keywords()
        unknown = sorted(set(keywords) - set(owner))
        if unknown:
            raise TypeError(f"make_synthetic_stack() got an unexpected keyword argument {unknown[0]!r}")
        grouped: dict[str, dict[str, Any]] = {name: {} for name in _GROUP_TYPES}
        for key, value in keywords.items():
            if value is not None:
                grouped[owner[key]][key] = value
        return cls(**{name: _GROUP_TYPES[name](**values) for name, values in grouped.items()})


_GROUP_TYPES: dict[str, Any] = {
    "scene": SceneSpec, "acquisitions": AcquisitionSpec, "network": NetworkSpec,
    "deformation": DeformationSpec, "atmosphere": AtmosphereSpec, "noise": NoiseSpec,
    "unwrapping": UnwrappingSpec,
}
