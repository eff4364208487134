"""Tests of the synthetic SBAS stack: determinism, structure, sign conventions, noise statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import gammaln, hyp2f1

from sbts.core.demo.synthetic import (
    SENTINEL1_WAVELENGTH,
    dem_error_timeseries,
    make_synthetic_stack,
    pair_phase_from_timeseries,
    simulate_ds_phase,
)

SMALL = dict(shape=(48, 64), num_date=14)
IDEAL = dict(phase_noise=False, turbulence_std=0.0, stratified_std=0.0, dem_error=0.0,
             with_unwrap_errors=False)


def ds_phase_pdf(phi, gamma, looks):
    """Multilook DS phase PDF (Lee et al. 1994), for an independent check of the simulator."""
    b = gamma * np.cos(phi)
    t1 = (np.exp(gammaln(looks + 0.5) - gammaln(looks)) * (1 - gamma ** 2) ** looks * b
          / (2 * np.sqrt(np.pi) * (1 - b * b) ** (looks + 0.5)))
    t2 = (1 - gamma ** 2) ** looks / (2 * np.pi) * hyp2f1(looks, 1, 0.5, b * b)
    return t1 + t2


def ds_phase_var(gamma, looks):
    return quad(lambda p: p * p * ds_phase_pdf(p, gamma, looks), -np.pi, np.pi, limit=200)[0]


@pytest.fixture(scope="module")
def default_stack_timed():
    tic = time.perf_counter()
    stack = make_synthetic_stack()
    return stack, time.perf_counter() - tic


@pytest.fixture(scope="module")
def default_stack(default_stack_timed):
    return default_stack_timed[0]


# ---------------------------------------------------------------------------
def test_determinism():
    a = make_synthetic_stack(**SMALL, seed=7)
    b = make_synthetic_stack(**SMALL, seed=7)
    c = make_synthetic_stack(**SMALL, seed=8)
    assert a.dates == b.dates
    for name in ("date1_index", "date2_index", "bperp", "unwrap_phase", "coherence", "conn_comp",
                 "height", "incidence_angle", "slant_range_distance", "water_mask", "shadow_mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("deformation", "velocity", "dem_error", "troposphere_turbulent", "pair_offset"):
        np.testing.assert_array_equal(getattr(a.truth, name), getattr(b.truth, name), err_msg=name)
    assert a.truth.reference_yx == b.truth.reference_yx
    assert a.attrs == b.attrs
    assert not np.array_equal(a.bperp, c.bperp)
    assert a.unwrap_phase.shape != c.unwrap_phase.shape or not np.array_equal(a.unwrap_phase,
                                                                               c.unwrap_phase)
    assert not np.array_equal(a.truth.troposphere_turbulent, c.truth.troposphere_turbulent)


def test_components_are_independent_streams():
    """Switching the troposphere off leaves every other random component unchanged."""
    a = make_synthetic_stack(**SMALL, seed=5)
    b = make_synthetic_stack(**SMALL, seed=5, turbulence_std=0.0, stratified_std=0.0)
    np.testing.assert_array_equal(a.truth.deformation, b.truth.deformation)
    np.testing.assert_array_equal(a.coherence, b.coherence)
    np.testing.assert_array_equal(a.truth.pair_offset, b.truth.pair_offset)
    assert not b.truth.troposphere_turbulent.any()


def test_shapes_dtypes_and_attrs(default_stack_timed):
    s, elapsed = default_stack_timed
    assert elapsed < 3.0
    n, m, (length, width) = s.num_date, s.num_pair, (120, 150)
    assert n == 30 and 90 <= m <= 115
    assert list(s.dates) == sorted(s.dates) and len(set(s.dates)) == n
    gaps = np.diff([d.toordinal() for d in s.dates])
    assert np.all(gaps % 12 == 0) and gaps.max() <= 72
    assert 1.8 < s.years[-1] < 2.2
    for name, shape, dtype in [
        ("unwrap_phase", (m, length, width), np.float32), ("coherence", (m, length, width), np.float32),
        ("conn_comp", (m, length, width), np.int16), ("height", (length, width), np.float32),
        ("incidence_angle", (length, width), np.float32), ("azimuth_angle", (length, width), np.float32),
        ("slant_range_distance", (length, width), np.float32), ("water_mask", (length, width), np.bool_),
        ("shadow_mask", (length, width), np.bool_), ("bperp", (n,), np.float32),
        ("date1_index", (m,), np.int64), ("date2_index", (m,), np.int64),
    ]:
        arr = getattr(s, name)
        assert arr.shape == shape and arr.dtype == dtype, name
        assert not arr.flags.writeable, name
    t = s.truth
    for name in ("deformation", "troposphere_turbulent", "troposphere_stratified", "ramps"):
        arr = getattr(t, name)
        assert arr.shape == (n, length, width) and arr.dtype == np.float32
        assert not arr[0].any(), f"{name} is relative to the first date"
    for name in ("velocity", "seasonal_amplitude", "dem_error"):
        assert getattr(t, name).shape == (length, width)
    assert s.latitude is None and s.longitude is None
    # geometry plausibility (Sentinel-1 IW, ascending, right-looking)
    assert 30 < s.incidence_angle.min() and s.incidence_angle.max() < 46
    assert 8.0e5 < s.slant_range_distance.min() and s.slant_range_distance.max() < 9.0e5
    np.testing.assert_allclose(s.azimuth_angle, 90.0 - float(s.attrs["HEADING"]), atol=1e-4)
    assert 0.0 <= s.height.min() and s.height.max() <= 2000.0 and np.ptp(s.height) > 1000.0
    assert 0 < s.shadow_mask.sum() < 0.01 * s.shadow_mask.size
    # attributes: all strings, the MintPy root set
    for key in ("WAVELENGTH", "ALOOKS", "RLOOKS", "NCORRLOOKS", "PLATFORM", "ORBIT_DIRECTION", "HEADING",
                "RANGE_PIXEL_SIZE", "AZIMUTH_PIXEL_SIZE", "STARTING_RANGE", "EARTH_RADIUS", "HEIGHT",
                "X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP", "X_UNIT", "Y_UNIT", "EPSG", "LENGTH", "WIDTH",
                "ANTENNA_SIDE", "CENTER_LINE_UTC", "PROCESSOR"):
        assert isinstance(s.attrs[key], str), key
    assert all(isinstance(v, str) for v in s.attrs.values())
    assert float(s.attrs["WAVELENGTH"]) == SENTINEL1_WAVELENGTH
    assert (int(s.attrs["LENGTH"]), int(s.attrs["WIDTH"])) == (length, width)
    assert float(s.attrs["Y_STEP"]) < 0 < float(s.attrs["X_STEP"])
    assert 19.3 < s.lat_axis.mean() < 19.6 and -99.3 < s.lon_axis.mean() < -99.0
    assert s.attrs["PROCESSOR"] == "sbts-synthetic" and s.attrs["ANTENNA_SIDE"] == "-1"
    assert len(s.date12_list) == m and s.date12_list[0].count("_") == 1


def test_descending_geometry():
    s = make_synthetic_stack(**SMALL, orbit_direction="DESCENDING")
    assert s.attrs["ORBIT_DIRECTION"] == "DESCENDING"
    assert -110 < s.azimuth_angle.mean() < -95 and -170 < float(s.attrs["HEADING"]) < -160


def test_network_connected_and_baselines(default_stack):
    s = default_stack
    d1, d2 = s.date1_index, s.date2_index
    assert np.all(d1 < d2)
    assert len(set(zip(d1.tolist(), d2.tolist()))) == s.num_pair
    parent = list(range(s.num_date))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(d1, d2):
        parent[find(int(i))] = find(int(j))
    assert len({find(i) for i in range(s.num_date)}) == 1
    assert s.bperp[0] == 0 and np.abs(s.bperp).max() <= 150
    long = (d2 - d1) > 1
    assert np.all(np.abs(s.pair_bperp[long]) <= 150 + 1e-3)
    assert np.all(d2 - d1 <= 4)


def test_sign_convention_ideal():
    """No noise/atmosphere/DEM error/unwrap errors: φ = −4π/λ·(d2 − d1) + per-pair constant."""
    s = make_synthetic_stack(**SMALL, seed=11, **IDEAL)
    land = s.water_mask
    expected = pair_phase_from_timeseries(s.truth.deformation.astype(np.float64), s.date1_index,
                                          s.date2_index, float(s.attrs["WAVELENGTH"]))
    # remove per-pair constant offsets without using the truth: reference to a land pixel
    ry, rx = s.truth.reference_yx
    obs = s.unwrap_phase.astype(np.float64)
    obs_ref = obs - obs[:, ry, rx][:, None, None]
    exp_ref = expected - expected[:, ry, rx][:, None, None]
    np.testing.assert_allclose(obs_ref[:, land], exp_ref[:, land], atol=2e-3)
    # and with the known offsets
    np.testing.assert_allclose((obs - s.truth.pair_offset[:, None, None])[:, land], expected[:, land],
                               atol=2e-3)
    # offsets switched off: raw phase equals the model
    s0 = make_synthetic_stack(**SMALL, seed=11, pair_offsets=False, **IDEAL)
    np.testing.assert_allclose(s0.unwrap_phase[:, land], expected[:, land], atol=2e-3)


def test_all_components_consistent_with_phase():
    """Noise-free phase equals the pair phase of the summed truth (tropo, DEM error, ramps on)."""
    s = make_synthetic_stack(**SMALL, seed=2, phase_noise=False, with_unwrap_errors=False,
                             ramp_amplitude=0.01)
    land = s.water_mask
    assert np.abs(s.truth.ramps).max() > 1e-3
    expected = pair_phase_from_timeseries(s.truth_timeseries(), s.date1_index, s.date2_index)
    obs = s.unwrap_phase.astype(np.float64) - s.truth.pair_offset[:, None, None]
    np.testing.assert_allclose(obs[:, land], expected[:, land], atol=2e-3)


def test_dem_error_sign():
    """Positive Δz with positive pair B⊥ gives negative phase (range decrease)."""
    s = make_synthetic_stack(**SMALL, seed=4, phase_noise=False, turbulence_std=0.0, stratified_std=0.0,
                             with_unwrap_errors=False, pair_offsets=False, bowl_rate=0.0,
                             uplift_rate=0.0, seasonal_amplitude=0.0, dem_error=40.0)
    dz = s.truth.dem_error
    assert dz.max() == pytest.approx(40.0) and dz.min() == pytest.approx(-24.0)
    pos = dz > 0
    bp = s.pair_bperp.astype(np.float64)
    mean_pos = s.unwrap_phase[:, pos].mean(axis=1)
    big = np.abs(bp) > 20
    assert np.all(np.sign(mean_pos[big]) == -np.sign(bp[big]))
    geom = 1.0 / (s.slant_range_distance[pos] * np.sin(np.deg2rad(s.incidence_angle[pos])))
    expected = -4 * np.pi / SENTINEL1_WAVELENGTH * 40.0 * bp[:, None] * geom[None]
    np.testing.assert_allclose(s.unwrap_phase[:, pos], expected, atol=1e-4)
    ts = dem_error_timeseries(dz, s.bperp, s.slant_range_distance, s.incidence_angle)
    assert ts.shape == (s.num_date,) + s.shape and not ts[0].any()


def test_bowl_subsidence(default_stack):
    s = default_stack
    t = s.truth
    by, bx = t.bowl_center_yx
    assert s.water_mask[by, bx]
    assert t.velocity[by, bx] == pytest.approx(-0.25, abs=1e-6)
    assert t.velocity.min() == pytest.approx(-0.25, abs=1e-6)
    assert 0 < t.velocity.max() <= 0.0051
    # last date: ~2 years of −25 cm/yr, negative (away from the satellite)
    assert t.deformation[-1, by, bx] < -0.4
    ry, rx = t.reference_yx
    assert abs(t.velocity[ry, rx]) < 0.002
    # seasonal amplitude: a few mm to 1 cm
    assert 0.001 < t.seasonal_amplitude.min() and t.seasonal_amplitude.max() <= 0.01
    # MintPy sign: subsidence → positive phase (after referencing), on noise-free data
    s0 = make_synthetic_stack(**IDEAL, pair_offsets=False)
    phase = s0.unwrap_phase[:, by, bx] - s0.unwrap_phase[:, ry, rx]
    longer = (s0.date2_index - s0.date1_index) >= 2
    dt_years = s0.years[s0.date2_index] - s0.years[s0.date1_index]
    assert np.all(phase[longer & (dt_years > 0.1)] > 0)
    custom = make_synthetic_stack(**SMALL, bowl_rate=-0.1)
    assert custom.truth.velocity.min() == pytest.approx(-0.1, abs=1e-6)


def test_coherence_range_and_lake(default_stack):
    s = default_stack
    land = s.water_mask
    assert 0.0 <= s.coherence.min() and s.coherence.max() <= 1.0
    assert (~land).sum() > 0.01 * land.size
    assert s.coherence[:, ~land].mean() < 0.2
    assert s.coherence[:, land].mean() > 0.5
    ry, rx = s.truth.reference_yx
    assert land[ry, rx] and not s.shadow_mask[ry, rx]
    assert s.coherence[:, ry, rx].min() > 0.6
    # decorrelation with temporal baseline, averaged over land
    dt = s.years[s.date2_index] - s.years[s.date1_index]
    mean_coh = s.coherence[:, land].mean(axis=1)
    assert np.corrcoef(dt, mean_coh)[0, 1] < -0.3
    sample = make_synthetic_stack(**SMALL, reported_coherence="sample")
    assert 0.0 <= sample.coherence.min() and sample.coherence.max() <= 1.0
    water = ~sample.water_mask
    # the sample estimate is biased high at low coherence (≈ 0.3 for 8 looks)
    assert 0.2 < sample.coherence[:, water].mean() < 0.4
    assert not np.array_equal(sample.coherence, sample.truth.coherence_true)


def test_water_and_conn_comp(default_stack):
    s = default_stack
    land = s.water_mask
    assert np.all(s.conn_comp[:, ~land] == 0)
    assert np.all(s.conn_comp[:, land] >= 1)
    assert set(np.unique(s.conn_comp)) <= {0, 1, 2}
    assert not np.any(s.unwrap_phase[:, land] == 0)
    nodata_pairs = np.all(s.unwrap_phase[:, ~land] == 0, axis=1)
    assert 0 < nodata_pairs.sum() < s.num_pair
    noisy = s.unwrap_phase[~nodata_pairs][:, ~land]
    assert np.abs(noisy).max() <= np.pi + 1e-6 and noisy.std() > 1.5  # uniform: π/√3 ≈ 1.81


def test_unwrap_errors_are_integer_cycles():
    kw = dict(SMALL, seed=9)
    with_err = make_synthetic_stack(**kw)
    without = make_synthetic_stack(**kw, with_unwrap_errors=False)
    errors = with_err.truth.unwrap_errors
    assert 2 <= len(errors) <= 4
    land = with_err.water_mask
    diff = with_err.unwrap_phase.astype(np.float64) - without.unwrap_phase
    expected = np.zeros_like(diff)
    ry, rx = with_err.truth.reference_yx
    for pair_index, cycles, mask in errors:
        assert cycles != 0 and isinstance(cycles, int)
        assert mask.any() and not (mask & ~land).any() and not mask[ry, rx]
        expected[pair_index][mask] = 2 * np.pi * cycles
        np.testing.assert_array_equal(with_err.conn_comp[pair_index] == 2, mask)
    np.testing.assert_allclose(diff[:, land], expected[:, land], atol=1e-3)
    k = diff[:, land] / (2 * np.pi)
    np.testing.assert_allclose(k, np.round(k), atol=1e-3)
    err_pairs = {e.pair_index for e in errors}
    others = [i for i in range(with_err.num_pair) if i not in err_pairs]
    assert not np.any(with_err.conn_comp[others] == 2)


def test_ds_simulator_matches_theory():
    rng = np.random.default_rng(0)
    for gamma, looks in [(0.9, 8), (0.5, 5), (0.95, 1)]:
        phase, coh = simulate_ds_phase(np.full(100_000, gamma), looks, rng, return_coherence=True)
        assert np.var(phase) == pytest.approx(ds_phase_var(gamma, looks), rel=0.03)
        assert np.all((coh >= 0) & (coh <= 1 + 1e-12))
    # sample coherence vs brute-force L-look estimate
    gamma, looks, n = 0.5, 5, 50_000
    a = (rng.standard_normal((n, looks)) + 1j * rng.standard_normal((n, looks))) / np.sqrt(2)
    b = (rng.standard_normal((n, looks)) + 1j * rng.standard_normal((n, looks))) / np.sqrt(2)
    z2 = gamma * a + np.sqrt(1 - gamma ** 2) * b
    brute = np.abs((a * z2.conj()).sum(1)) / np.sqrt((abs(a) ** 2).sum(1) * (abs(z2) ** 2).sum(1))
    _, coh = simulate_ds_phase(np.full(n, gamma), looks, rng, return_coherence=True)
    assert coh.mean() == pytest.approx(brute.mean(), abs=0.01)


def test_stack_phase_noise_matches_coherence():
    """Residual phase (obs − truth − offset − unwrap errors) has the DS variance of its γ."""
    s = make_synthetic_stack(shape=(64, 80), num_date=16, seed=1)
    looks = int(s.attrs["NCORRLOOKS"])
    land = s.water_mask & ~s.shadow_mask
    model = pair_phase_from_timeseries(s.truth_timeseries(), s.date1_index, s.date2_index)
    resid = s.unwrap_phase.astype(np.float64) - model - s.truth.pair_offset[:, None, None]
    for pair_index, cycles, mask in s.truth.unwrap_errors:
        resid[pair_index][mask] -= 2 * np.pi * cycles
    resid, gamma = resid[:, land], s.truth.coherence_true[:, land].astype(np.float64)
    assert np.abs(resid).max() <= np.pi + 1e-3
    np.testing.assert_array_equal(s.coherence, s.truth.coherence_true)  # default: true γ reported
    checked = 0
    for lo, hi in [(0.85, 0.95), (0.6, 0.7), (0.3, 0.4)]:
        sel = (gamma >= lo) & (gamma < hi)
        if sel.sum() < 3000:
            continue
        grid = np.linspace(lo, hi, 11)
        theo = np.interp(gamma[sel], grid, [ds_phase_var(g, looks) for g in grid])
        assert np.mean(resid[sel] ** 2) == pytest.approx(theo.mean(), rel=0.08), (lo, hi)
        checked += 1
    assert checked >= 2


def test_noisy_date_has_strongest_turbulence(default_stack):
    t = default_stack.truth
    std = t.troposphere_turbulent.std(axis=(1, 2))
    assert int(np.argmax(std)) == t.noisy_date_index != 0
    others = np.delete(std, [0, t.noisy_date_index])
    # a k^(-11/3) screen puts most variance in a few large-scale modes, so the scene std of one
    # date scatters widely around its expectation: 3x turbulence shows as > 1.4x the worst other date
    assert std[t.noisy_date_index] > 1.4 * others.max()
    assert 0.008 < np.median(others) < 0.02  # √2 × 1 cm: difference of two 1-cm screens
    k = t.troposphere_coefficient
    assert k[0] == 0 and 2e-6 < np.abs(k).max() < 1e-4
    np.testing.assert_allclose(t.troposphere_stratified,
                               k[:, None, None] * default_stack.height[None], rtol=1e-5, atol=1e-7)


def test_arguments_validated():
    with pytest.raises(ValueError):
        make_synthetic_stack(shape=(8, 8))
    with pytest.raises(ValueError):
        make_synthetic_stack(**SMALL, orbit_direction="LEFT")
