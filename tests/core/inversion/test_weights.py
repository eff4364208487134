"""Coherence → weight conversion: the phase-variance LUT against independent computations."""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import spence

from sbts.core.inversion import weights as wmod
from sbts.core.inversion.weights import (
    coherence_to_weight,
    coherence_to_weight_fast,
    number_of_looks,
    phase_pdf_ds,
    phase_variance_ds,
)


def _quad_variance(gamma, looks, moment=2):
    """σ²_φ by adaptive quadrature of the PDF (independent of the LUT's fixed Gauss rule)."""
    f = lambda p: p**moment * phase_pdf_ds(p, gamma, looks)  # noqa: E731
    width = np.sqrt(max(1.0 - gamma**2, 1e-12) / (2 * looks))  # where the peak bends
    pts = sorted({min(np.pi / 2, c * width) for c in (0.3, 1.0, 3.0, 10.0)})
    return 2.0 * quad(f, 0.0, np.pi, points=pts, epsabs=0.0, epsrel=1e-11, limit=200)[0]


def _single_look_variance(gamma):
    """Closed form for L = 1 (Bamler & Hartl 1998; Hanssen 2001): π²/3 − π asin γ + asin²γ − Li₂(γ²)/2."""
    a = np.arcsin(gamma)
    return np.pi**2 / 3 - np.pi * a + a**2 - spence(1.0 - gamma**2) / 2.0  # Li₂(z) = spence(1 − z)


@pytest.mark.parametrize("looks", [1, 3, 20])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9])
def test_pdf_is_normalised(gamma, looks):
    assert _quad_variance(gamma, looks, moment=0) == pytest.approx(1.0, abs=1e-9)


# On LUT nodes the only error is the fixed Gauss–Legendre rule (~1e-12); between nodes it is the
# interpolation (log σ² vs −log(1−γ)), measured < 6e-4 over L = 1..80 → 1e-3.
@pytest.mark.parametrize(
    "gamma,looks,rtol",
    [
        (0.3, 1, 1e-9), (0.75, 4, 1e-9), (0.95, 20, 1e-9), (0.99, 80, 1e-8), (0.9999, 9, 1e-8),
        (0.1234, 1, 1e-3), (0.4321, 5, 1e-3), (0.8765, 20, 1e-3), (0.9876, 80, 1e-3), (0.9978, 5, 1e-3),
    ],
)
def test_lut_matches_quadrature(gamma, looks, rtol):
    assert phase_variance_ds(gamma, looks) == pytest.approx(_quad_variance(gamma, looks), rel=rtol)


def test_single_look_closed_form():
    on_nodes = np.array([0.005, 0.2, 0.5, 0.8, 0.9, 0.99])
    np.testing.assert_allclose(phase_variance_ds(on_nodes, 1), _single_look_variance(on_nodes), rtol=1e-9)
    off_nodes = np.linspace(0.0013, 0.9987, 97)
    np.testing.assert_allclose(phase_variance_ds(off_nodes, 1), _single_look_variance(off_nodes), rtol=1e-3)


def test_multilook_monte_carlo():
    """L-look circular-Gaussian pairs with correlation γ (seeded).

    With N = 200 000 samples the relative standard error of the sample variance of φ is
    √((E φ⁴ − σ⁴)/N)/σ² ≈ 0.4 % here; 2 % is ~5 standard errors, while a wrong L or a wrong
    PDF term moves σ² by far more (L=4 vs 5 differ by ~20 %).
    """
    rng = np.random.default_rng(12345)
    L, gamma, N = 4, 0.6, 200_000

    def cgauss(shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)

    z1 = cgauss((N, L))
    z2 = gamma * z1 + np.sqrt(1 - gamma**2) * cgauss((N, L))
    phi = np.angle((z1 * np.conj(z2)).sum(axis=1))
    mc = np.mean(phi**2)
    assert phase_variance_ds(gamma, L) == pytest.approx(mc, rel=0.02)
    assert abs(phase_variance_ds(gamma, L + 1) / mc - 1) > 0.1


def test_limits():
    for L in (1, 7, 80, 500):
        assert phase_variance_ds(0.0, L) == pytest.approx(np.pi**2 / 3, rel=1e-12)
        assert phase_variance_ds(1e-4, L) == pytest.approx(np.pi**2 / 3, rel=1e-3)
        assert phase_variance_ds(1.0, L) == 0.0
        assert phase_variance_ds(1 - 1e-9, L) < 1e-6
    assert np.isnan(phase_variance_ds(np.nan, 5))
    assert phase_variance_ds(np.array([[0.5]]), 5).shape == (1, 1)


def test_monotone_in_coherence_and_looks():
    g = np.linspace(0, 1, 2001)
    prev = None
    for L in (1, 2, 5, 10, 30, 80):
        v = phase_variance_ds(g, L)
        assert np.all(np.diff(v) < 0)
        if prev is not None:
            assert np.all(v[1:-1] < prev[1:-1])
        prev = v


def test_looks_capped_at_80():
    g = np.array([0.3, 0.7, 0.95])
    np.testing.assert_array_equal(phase_variance_ds(g, 200), phase_variance_ds(g, 80))
    with pytest.raises(ValueError):
        phase_variance_ds(g, 0)


def test_weight_var():
    coh = np.array([np.nan, 0.0, 0.02, 0.05, 0.5, 0.9, 1.0])
    w = coherence_to_weight(coh, "var", 9)
    assert w.dtype == np.float32
    expect = 1.0 / phase_variance_ds(np.array([0.05, 0.05, 0.05, 0.05, 0.5, 0.9, 1 - 1e-3]), 9)
    np.testing.assert_allclose(w, expect, rtol=1e-6)
    assert np.all(np.isfinite(w)) and np.all(np.diff(w[3:]) > 0)


def test_weight_fim_coh_no():
    coh = np.array([[np.nan, 0.0, 0.3], [0.7, 0.9995, 1.0]])
    L = 12
    g = np.clip(np.nan_to_num(coh, nan=0.0), 0.05, 1 - 1e-3)
    np.testing.assert_allclose(coherence_to_weight(coh, "fim", L), 2 * L * g**2 / (1 - g**2), rtol=1e-6)
    np.testing.assert_allclose(coherence_to_weight(coh, "coh", L), np.clip(np.nan_to_num(coh), 0.05, 1), rtol=1e-7)
    no = coherence_to_weight(coh, "no", L)
    assert no.dtype == np.float32 and no.shape == coh.shape and np.all(no == 1)
    assert coherence_to_weight(coh, "FIM", L).dtype == np.float32  # case-insensitive


def test_weight_unknown_method():
    with pytest.raises(ValueError, match=r"'sbas2'.*var, fim, coh, no"):
        coherence_to_weight(np.ones(3), "sbas2", 5)


def test_weight_does_not_modify_input():
    coh = np.array([np.nan, 0.01, 0.5])
    coherence_to_weight(coh, "var", 5)
    assert np.isnan(coh[0]) and coh[1] == 0.01


def test_number_of_looks():
    assert number_of_looks({"NCORRLOOKS": "7.6", "ALOOKS": "3", "RLOOKS": "9"}) == 8
    assert number_of_looks({"ALOOKS": "3", "RLOOKS": "9"}) == round(27 / 1.94)
    assert number_of_looks({"ALOOKS": "1", "RLOOKS": "1"}) == 1
    assert number_of_looks({"NCORRLOOKS": "0.2"}) == 1
    with pytest.raises(ValueError, match="NCORRLOOKS or ALOOKS and RLOOKS"):
        number_of_looks({"ALOOKS": "3"})
    with pytest.raises(ValueError, match="NCORRLOOKS or ALOOKS and RLOOKS"):
        number_of_looks({})


def test_lut_cached():
    a = wmod._variance_lut(6)
    assert wmod._variance_lut(6) is a
    assert not a[1].flags.writeable


@pytest.mark.parametrize("method", ["var", "fim"])
def test_fast_weights_match_exact(method, monkeypatch):
    """The table lookup against the exact conversion.

    Tolerance 1e-4 relative: the table step is 1/2¹⁶ in coherence and the weight's relative slope
    is at most ~1/(1 − γ) ≤ 1e3 below the cap, so linear interpolation errs by ≲ (step·slope)²/8.
    Several slabs (slab size patched small), a non-contiguous input, NaN and out-of-range values.
    """
    monkeypatch.setattr(wmod, "_FAST_SLAB", 1000)
    rng = np.random.default_rng(3)
    coh = rng.uniform(0.0, 1.0, (7, 1234)).astype(np.float32)
    coh[0, :20] = np.linspace(0.99, 1.0, 20)  # up to and past the 1 − 1e-3 cap
    coh[1, :4] = [np.nan, -0.5, 1.5, np.inf]
    view = coh[:, ::2]  # not contiguous
    fast = coherence_to_weight_fast(view, method, 9)
    exact = coherence_to_weight(view, method, 9)
    assert fast.dtype == np.float32 and fast.shape == view.shape
    np.testing.assert_allclose(fast, exact, rtol=1e-4)
    np.testing.assert_array_equal(coherence_to_weight_fast(coh, method, 9)[:, ::2], fast)  # slab-independent
    for other in ("coh", "no"):
        np.testing.assert_array_equal(coherence_to_weight_fast(view, other, 9), coherence_to_weight(view, other, 9))
    with pytest.raises(ValueError, match="unknown weight method"):
        coherence_to_weight_fast(view, "sbas2", 9)


def _float32_between(a: float, b: float) -> np.ndarray:
    """Every float32 value from ``a`` to ``b``."""
    return np.arange(np.float32(a).view(np.int32), np.float32(b).view(np.int32) + 1, dtype=np.int32).view(np.float32)


@pytest.mark.parametrize("method", ["var", "fim"])
@pytest.mark.parametrize("looks", [1, 9, 80])
def test_fast_weights_at_the_floor_and_the_cap(method, looks):
    """Every float32 coherence around the 0.05 floor and from 0.998 past the 0.999 cap to 1, and a
    2·10⁶-point grid: within 1e-4 of the exact weight (the table's interpolation error, (step ·
    relative slope)²/8 ≈ 3e-5 next to the cap, where the slope is largest).  The tables once spanned
    the cap's kink with one interval, 4e-3 off there."""
    for coh in (_float32_between(0.049, 0.051), _float32_between(0.998, 1.0),
                np.linspace(0.0, 1.0, 2_000_001, dtype=np.float32)):
        fast = coherence_to_weight_fast(coh, method, looks)
        exact = coherence_to_weight(coh, method, looks)
        np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=0)
