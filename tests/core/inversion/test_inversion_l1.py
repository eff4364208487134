"""Weighted L1 network inversion (``mintpy.networkInversion.residualNorm = L1``, issue 17 §1).

Checked against an independent linear-programming solution of the same L1 problem
(``scipy.optimize.linprog``) and, on a synthetic stack with known truth and 2π unwrapping errors,
against the L2 inversion.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from scipy.optimize import linprog

from sbts.core.demo.run import write_synthetic
from sbts.core.inversion.engine import InversionOptions, invert_network
from sbts.core.inversion.kernel import design_matrix_phase, invert_block
from sbts.core.inversion.weights import coherence_to_weight
from sbts.core.io.products import MapProduct, TimeSeries
from sbts.core.steps.reference import set_reference


def _network(n: int = 24, links: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) * 12 / 365.25
    pairs = [(i, j) for i in range(n) for j in range(i + 1, min(i + 1 + links, n))]
    d1 = np.array([p[0] for p in pairs])
    d2 = np.array([p[1] for p in pairs])
    return rng, t, d1, d2


def _stack(npix: int, seed: int = 0, error_fraction: float = 0.05, error_pixels: slice | None = None):
    """Phases (m, npix) from a known time series, coherence-weighted noise and 2π errors.

    Returns (phase, weight, truth (n, npix), d1, d2, t, errors (m, npix) bool).
    """
    rng, t, d1, d2 = _network(seed=seed)
    m = d1.size
    vel = rng.normal(0, 6.0, npix)  # rad/yr
    amp = rng.uniform(0, 1.5, npix)
    truth = vel * t[:, None] + amp * np.sin(2 * np.pi * t[:, None] + rng.uniform(0, 6, npix))
    truth -= truth[0]
    coh = rng.uniform(0.35, 0.9, (m, npix))
    weight = coherence_to_weight(coh, "var", 9).astype(np.float64)
    phase = truth[d2] - truth[d1] + rng.normal(size=(m, npix)) / np.sqrt(weight)
    errors = np.zeros((m, npix), bool)
    if error_pixels is not None:
        # the same few pairs are mis-unwrapped over the whole region (as an unwrapping error does)
        bad = rng.choice(m, max(1, round(error_fraction * m)), replace=False)
        errors[bad, error_pixels] = True
        phase += errors * 2 * np.pi * rng.choice([-1, 1], (m, 1))
    return phase, weight, truth, d1, d2, t, errors


def _lp_l1(A: np.ndarray, phase: np.ndarray, s: np.ndarray) -> float:
    """min Σ s|φ − Ax| as a linear program (x free, e ≥ |φ − Ax|): the optimal objective."""
    m, n1 = A.shape
    c = np.r_[np.zeros(n1), s]
    a_ub = np.block([[-A, -np.eye(m)], [A, -np.eye(m)]])
    res = linprog(c, A_ub=a_ub, b_ub=np.r_[-phase, phase], bounds=[(None, None)] * n1 + [(0, None)] * m,
                  method="highs")
    assert res.status == 0
    return float(res.fun)


def test_l1_reaches_the_linear_programming_optimum():
    phase, weight, _, d1, d2, t, _ = _stack(40, seed=1, error_fraction=0.08, error_pixels=slice(0, 40))
    phase[5, :10] = np.nan  # missing pairs on some pixels: their own network
    phase[17, 5:15] = np.nan
    res = invert_block(phase, d1, d2, t, weight=weight, residual_norm="L1")
    l2 = invert_block(phase, d1, d2, t, weight=weight)
    A = design_matrix_phase(d1, d2, t.size)
    excess, gain = [], []
    for j in range(phase.shape[1]):
        ok = np.isfinite(phase[:, j])
        s = np.sqrt(weight[ok, j])
        f_lp = _lp_l1(A[ok], phase[ok, j], s)
        f_l1 = np.sum(s * np.abs(phase[ok, j] - A[ok] @ res.timeseries[1:, j].astype(np.float64)))
        f_l2 = np.sum(s * np.abs(phase[ok, j] - A[ok] @ l2.timeseries[1:, j].astype(np.float64)))
        excess.append(f_l1 / f_lp - 1)
        gain.append(f_l2 / f_lp - 1)
    # IRLS stops at a smoothing floor δ = 3e-4 rad and a relative gain of 3e-5 (documented): the
    # objective may exceed the LP optimum by ~1e-3 relative (measured: median 1.8e-4, max 7.7e-4);
    # float32 output adds ~1e-7.  L2 is far off (> 2 %).
    assert max(excess) < 3e-3, max(excess)
    assert min(excess) > -1e-6  # never below the optimum (that would be a bug in the check)
    assert np.median(excess) < 5e-4
    assert min(gain) > 0.02
    assert (res.num_inv_ifgram[0], res.num_inv_ifgram[7], res.num_inv_ifgram[20]) == (d1.size - 1, d1.size - 2, d1.size)


def test_l1_unwrapping_errors_leak_much_less_than_l2():
    npix = 4000
    region = slice(0, npix // 2)
    phase, weight, truth, d1, d2, t, _ = _stack(npix, seed=2, error_pixels=region)
    rms, tcoh = {}, {}
    for norm in ("L2", "L1"):
        res = invert_block(phase, d1, d2, t, weight=weight, residual_norm=norm)
        ts = res.timeseries
        err = ts - truth
        rms[norm] = (np.sqrt(np.mean(err[:, region] ** 2)), np.sqrt(np.mean(err[:, npix // 2:] ** 2)))
        tcoh[norm] = res.temporal_coherence
    # temporal coherence from the L1 residuals, recomputed here: |mean exp(j r)| (float32 output)
    ts = invert_block(phase, d1, d2, t, weight=weight, residual_norm="L1").timeseries.astype(np.float64)
    r = phase - (ts[d2] - ts[d1])
    np.testing.assert_allclose(tcoh["L1"], np.abs(np.exp(1j * r).mean(axis=0)), atol=2e-6)
    # a pair off by 2π wraps to a small L1 residual: the error region stays coherent with L1
    assert tcoh["L1"][region].mean() > tcoh["L2"][region].mean() + 0.05
    (l2_bad, l2_clean), (l1_bad, l1_clean) = rms["L2"], rms["L1"]
    assert l2_bad > 1.8 * l2_clean  # the leak L2 suffers (issue: about 2×)
    assert l1_bad < 1.2 * l1_clean  # issue 17 target
    # clean pixels: L1 gives up some efficiency under Gaussian noise (for a location estimate the
    # median's standard deviation is √(π/2) ≈ 1.25× the mean's); measured 1.19×
    assert l1_clean < 1.3 * l2_clean
    assert l1_bad < 0.7 * l2_bad


def test_l1_does_not_depend_on_how_pixels_are_grouped():
    phase, weight, _, d1, d2, t, _ = _stack(600, seed=3, error_pixels=slice(100, 400))
    phase[3, ::7] = np.nan
    whole = invert_block(phase, d1, d2, t, weight=weight, residual_norm="L1")
    parts = [invert_block(phase[:, s], d1, d2, t, weight=weight[:, s], residual_norm="L1")
             for s in (slice(0, 150), slice(150, 151), slice(151, 600))]
    np.testing.assert_array_equal(whole.timeseries, np.concatenate([p.timeseries for p in parts], axis=1))
    np.testing.assert_array_equal(whole.temporal_coherence,
                                  np.concatenate([p.temporal_coherence for p in parts]))


def test_l1_same_in_internal_slabs(monkeypatch):
    """The IRLS runs in cache-sized slabs of pixels: any slab size gives the same bits."""
    import sbts.core.inversion.kernel as kernel

    phase, weight, _, d1, d2, t, _ = _stack(500, seed=7, error_pixels=slice(0, 250))
    phase[4, ::5] = np.nan
    whole = invert_block(phase, d1, d2, t, weight=weight, residual_norm="L1")
    monkeypatch.setattr(kernel, "_L1_SLAB", 37)
    slabs = invert_block(phase, d1, d2, t, weight=weight, residual_norm="L1")
    np.testing.assert_array_equal(whole.timeseries, slabs.timeseries)
    np.testing.assert_array_equal(whole.temporal_coherence, slabs.temporal_coherence)


def test_l1_unweighted_and_disconnected_pixels():
    """Unweighted L1 and a pixel whose network falls apart still give the minimum-norm L1 fit."""
    phase, _, truth, d1, d2, t, _ = _stack(30, seed=4)
    cut = (d1 < 12) & (d2 >= 12)
    phase[cut, :5] = np.nan  # pixels 0..4: two pieces
    res = invert_block(phase, d1, d2, t, residual_norm="L1", min_norm_velocity=False)
    l2 = invert_block(phase, d1, d2, t, min_norm_velocity=False)
    # min-norm phase: each floating piece has zero mean in both (same null space handling)
    piece = res.timeseries[12:, :5]
    np.testing.assert_allclose(piece.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(l2.timeseries[12:, :5].mean(axis=0), 0, atol=1e-5)
    # connected pixels: the fit is close to the truth (noise ~0.3 rad per pair)
    assert np.sqrt(np.mean((res.timeseries[:, 5:] - truth[:, 5:]) ** 2)) < 0.5


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("syn_l1")
    write_synthetic(d, seed=5, shape=(30, 40), num_date=14)
    with h5py.File(d / "truth.h5", "r") as f:
        ry, rx = int(f.attrs["REF_Y"]), int(f.attrs["REF_X"])
    set_reference(d / "ifgramStack.h5", ry, rx)
    return d / "ifgramStack.h5"


def test_l1_engine_same_in_blocks_and_processes(synthetic, tmp_path):
    opts = InversionOptions(weight_func="var", min_num_pixel=0, residual_norm="L1")
    runs = {}
    for label, kwargs in {"single": dict(max_memory=4.0), "blocks": dict(max_memory=0.0005),
                          "processes": dict(max_memory=0.001, num_worker=2)}.items():
        wd = tmp_path / label
        wd.mkdir()
        out = invert_network(synthetic, wd, opts, force=True, **kwargs)
        runs[label] = (TimeSeries(out.timeseries).read_dates(),
                       MapProduct(out.temporal_coherence).read("temporalCoherence"))
        with h5py.File(out.timeseries, "r") as f:
            assert f.attrs["mintpy.networkInversion.residualNorm"] == "L1"
    for label in ("blocks", "processes"):
        for a, b in zip(runs["single"], runs[label]):
            np.testing.assert_array_equal(a, b, err_msg=label)
    l2 = invert_network(synthetic, tmp_path / "l2", InversionOptions(weight_func="var", min_num_pixel=0))
    assert not np.array_equal(runs["single"][0], TimeSeries(l2.timeseries).read_dates())


def test_stopping_rule_and_iteration_count(monkeypatch, caplog):
    """Consistent data: each δ stage gains nothing, so one iteration per stage (0.1 → 0.01 → 1e-3 →
    3e-4 rad) and a stop at the floor; noisy data stop within L1_MAX_ITER, and a smaller cap is
    obeyed and reported."""
    import logging

    import sbts.core.inversion.kernel as kernel

    phase, weight, truth, d1, d2, t, _ = _stack(50, seed=6)
    exact = truth[d2] - truth[d1]
    ctx = kernel._Context(d1, d2, t, True, 1.0, 1e-5, "L1")
    x0 = ctx._solve_normal(exact, weight)
    x = ctx._irls_l1(exact, np.sqrt(weight), x0, np.zeros(50, bool))
    assert ctx.l1_iterations == 4
    np.testing.assert_allclose(x, truth[1:], atol=1e-9)
    ctx = kernel._Context(d1, d2, t, True, 1.0, 1e-5, "L1")
    ctx._irls_l1(phase, np.sqrt(weight), ctx._solve_normal(phase, weight), np.zeros(50, bool))
    assert 4 < ctx.l1_iterations <= kernel.L1_MAX_ITER
    monkeypatch.setattr(kernel, "L1_MAX_ITER", 3)
    with caplog.at_level(logging.INFO, logger="sbts.core.inversion.kernel"):
        ctx = kernel._Context(d1, d2, t, True, 1.0, 1e-5, "L1")
        ctx._irls_l1(phase, np.sqrt(weight), ctx._solve_normal(phase, weight), np.zeros(50, bool))
    assert ctx.l1_iterations == 3
    assert "reached 3 iterations" in caplog.text
