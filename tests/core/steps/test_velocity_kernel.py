"""``fit_pixels`` against a per-pixel least squares, across slab boundaries and with awkward pixels.

``fit_pixels`` solves every column with one pseudo-inverse and forms the residuals slab by slab;
each pixel must still get what ``np.linalg.lstsq`` of its own valid dates gives.  Tolerance 1e-9
relative (coefficients, residue) and 1e-8 (covariance): the kernel and lstsq take different but
equally stable routes (pseudo-inverse or normal equations vs SVD), so they agree to ~1e-12 here.
"""

from __future__ import annotations

import numpy as np
import pytest

from sbts.core.steps import velocity


def _reference(G, Y):
    n, k = G.shape
    P = Y.shape[1]
    coef = np.full((k, P), np.nan)
    cov = np.full((P, k, k), np.nan)
    residue = np.full(P, np.nan)
    nv = np.isfinite(Y).sum(axis=0)
    for p in range(P):
        ok = np.isfinite(Y[:, p])
        g = G[ok]
        if ok.sum() < k or np.linalg.matrix_rank(g) < k:
            continue
        x = np.linalg.lstsq(g, Y[ok, p], rcond=None)[0]
        rss = float(np.sum((Y[ok, p] - g @ x) ** 2))
        coef[:, p] = x
        residue[p] = np.sqrt(rss)
        if ok.sum() > k:
            cov[p] = np.linalg.inv(g.T @ g) * rss / (ok.sum() - k)
    return coef, cov, residue, nv


@pytest.mark.parametrize("slab", [5, 4096])
def test_fit_pixels_matches_per_pixel_lstsq(monkeypatch, slab):
    monkeypatch.setattr(velocity, "_SLAB", slab)
    rng = np.random.default_rng(3)
    n, P = 24, 37
    t = np.sort(rng.uniform(0, 3, n))
    G = np.column_stack([np.ones(n), t, np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)])
    Y = G @ rng.normal(0, 0.01, (4, P)) + rng.normal(0, 1e-3, (n, P))
    Y[3, 2] = np.nan  # one date missing
    Y[:, 6] = np.nan  # no data
    Y[:-3, 9] = np.nan  # 3 dates for 4 terms: undetermined
    Y[:-4, 10] = np.nan  # exactly determined: no Std
    Y[5, 12] = np.inf  # a non-finite value counts as missing
    fit = velocity.fit_pixels(G, Y)
    coef, cov, residue, nv = _reference(G, Y)
    np.testing.assert_array_equal(fit.num_valid, nv)
    np.testing.assert_allclose(fit.coef, coef, rtol=1e-9, atol=1e-14)
    # an exactly determined pixel (10) has no residual: both give rounding, whose size depends on the
    # route (normal equations: ~cond(G)²·ε of the data; 1.7e-14 against lstsq's 3e-17 with one
    # BLAS build); the others' residues (noise, ~4e-3) must agree to 1e-9
    exact = nv == G.shape[1]
    assert exact[10] and np.all(fit.residue[exact] <= 1e-9 * np.sqrt(np.nansum(Y[:, exact] ** 2, axis=0)))
    np.testing.assert_allclose(fit.residue[~exact], residue[~exact], rtol=1e-9, atol=1e-14)
    ok = ~np.isnan(cov)
    assert np.array_equal(ok, ~np.isnan(fit.cov))
    np.testing.assert_allclose(fit.cov[ok], cov[ok], rtol=1e-8, atol=1e-20)


def test_finite_counts_exact_when_the_sum_overflows(monkeypatch):
    """Valid dates are counted from each pixel's sum, and date by date where it is not finite: a
    finite series whose sum overflows is still complete, inf and NaN still missing."""
    monkeypatch.setattr(velocity, "_SLAB", 3)
    Y = np.ones((6, 8))
    Y[:, 1] = 1e308  # sum overflows to inf
    Y[:3, 2], Y[3:, 2] = 1e308, -1e308  # partial sums overflow, both signs
    Y[2, 4] = np.inf
    Y[[0, 5], 5] = np.nan
    Y[1, 6], Y[2, 6] = np.inf, -np.inf  # sum NaN
    complete, nv = velocity._finite_counts(Y)
    np.testing.assert_array_equal(nv, [6, 6, 6, 6, 5, 4, 4, 6])
    np.testing.assert_array_equal(complete, nv == 6)
