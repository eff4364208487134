"""The DEM-error kernel (``_correct_block``) against an independent per-pixel least squares.

The kernel folds the fit into a few matrix products over contiguous slabs (Frisch–Waugh–Lovell,
precomputed linear maps); this checks it against the plain formulation, one ``np.linalg.lstsq`` per
pixel of the full design matrix [B⊥, polynomial, step], for shared and per-pixel B⊥, with and
without the phase-velocity fit, excluded dates, and invalid pixels (NaN date, all zero, no geometry)
in slabs that are solved whole or gathered.

Tolerance: the outputs are float32 roundings of float64 results that differ from the reference by
float64 rounding only (~1e-16 m), so each value must be within one float32 ulp of the float64
reference (plus 1e-13 for values that are 0 up to rounding, e.g. a residual at the reference date).
"""

from __future__ import annotations

import numpy as np
import pytest

from sbts.core.io.blocks import Block
from sbts.plugins.corrections import dem_error

L, W, N = 9, 13, 20


def _inputs(rng, per_pixel_b: bool):
    years = np.cumsum(rng.uniform(0.02, 0.1, N))
    years -= years[0]
    b1 = rng.normal(0, 80, N)
    b1 -= b1[3]  # relative to a reference date
    b = b1[:, None, None] * (1 + 0.1 * rng.random((1, L, W))) if per_pixel_b else b1
    step = (years >= years[N // 2]).astype(np.float64)
    shared = np.column_stack([years ** k for k in range(3)] + [step])
    bb = b if per_pixel_b else b[:, None, None]
    deform = (shared @ rng.normal(0, 0.01, (4, L * W))).reshape(N, L, W)
    data = (bb * rng.normal(0, 1e-4, (L, W)) + deform
            + rng.normal(0, 2e-3, (N, L, W)))
    data = data.astype(np.float32)
    r = 850e3 + 30.0 * rng.random((L, W))
    s = np.sin(np.deg2rad(30 + 10 * rng.random((L, W))))
    data[5, 1, 2] = np.nan  # one NaN date
    data[:, 2, 7] = 0  # no data
    data[:, 6, :] = 0  # a row outside the processed area: a slab of 7 mostly invalid (gathered)
    data[:, 7, :4] = np.nan
    r[4, 4] = np.nan  # no geometry (its data left as is, -0.0 included)
    data[0, 4, 4] = -0.0
    s[3, 9] = np.nan
    return data, b, shared, years, r, s


def _reference(data, b, shared, years, keep, velocity, r, s):
    """Per-pixel lstsq of the plain model; invalid pixels unchanged, residual and Δz 0."""
    y_all = data.reshape(N, -1).astype(np.float64)
    b_all = np.broadcast_to(b.reshape(N, -1) if b.ndim > 1 else b[:, None], y_all.shape)
    out, res, dz = y_all.copy(), np.zeros_like(y_all), np.zeros(y_all.shape[1])
    k = np.flatnonzero(keep)
    dt = np.diff(years[k])
    for p in range(y_all.shape[1]):
        y, bp = y_all[:, p], b_all[:, p]
        if not (np.isfinite(y).all() and np.any(y != 0) and np.isfinite(r.flat[p]) and np.isfinite(s.flat[p])):
            continue
        g = np.column_stack([bp, shared[:, 1:] if velocity else shared])
        gk, yk = g[k], y[k]
        if velocity:
            gk, yk = np.diff(gk, axis=0) / dt[:, None], np.diff(yk) / dt
        x = np.linalg.lstsq(gk, yk, rcond=None)[0]
        model = g @ x
        if velocity:
            model += np.mean((y - model)[k])
        out[:, p] = y - bp * x[0]
        res[:, p] = y - model
        dz[p] = x[0] * r.flat[p] * s.flat[p]
    return out.reshape(data.shape), res.reshape(data.shape), dz.reshape(L, W)


def _assert_float32_of(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == np.float32
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    ok = ~np.isnan(expected)
    a, e = actual[ok].astype(np.float64), expected[ok]
    tol = np.spacing(np.abs(e).astype(np.float32)).astype(np.float64) + 1e-13
    assert np.all(np.abs(a - e) <= tol), float(np.max(np.abs(a - e) / tol))


@pytest.mark.parametrize("slab", [7, 4096])
@pytest.mark.parametrize("velocity", [False, True])
@pytest.mark.parametrize("per_pixel_b", [False, True])
def test_block_matches_per_pixel_lstsq(per_pixel_b, velocity, slab):
    data, b, shared, years, r, s = _inputs(np.random.default_rng(7), per_pixel_b)
    keep = np.ones(N, bool)
    keep[[4, 11]] = False  # excluded dates: out of the fit, corrected like the others
    expected = _reference(data, b, shared, years, keep, velocity, r, s)
    fit = dem_error._FitOperator(shared, keep, years, velocity)
    given = data.copy()
    out, res, dz = dem_error._correct_block(given, b, fit, (r, s), Block(0, L, 0, W), slab)
    assert out is given  # corrected in place
    for actual, want in zip((out, res, dz), expected):
        _assert_float32_of(actual, want)
    # invalid pixels: the data bit for bit, residual and Δz exactly 0
    bad = np.zeros((L, W), bool)
    bad[1, 2] = bad[2, 7] = bad[4, 4] = bad[3, 9] = True
    bad[6, :] = True
    bad[7, :4] = True
    np.testing.assert_array_equal(out[:, bad].view(np.int32), data[:, bad].view(np.int32))
    assert np.signbit(out[0, 4, 4])  # -0.0 kept
    assert not res[:, bad].any() and not dz[bad].any()
    assert np.abs(dz[~bad]).min() > 0


def test_no_baseline_spread_fits_no_dem_error():
    """Equal baselines (after the reference) cannot separate a DEM error: Δz = 0, series unchanged."""
    data, _, shared, years, r, s = _inputs(np.random.default_rng(8), False)
    fit = dem_error._FitOperator(shared, np.ones(N, bool), years, False)
    given = data.copy()
    out, res, dz = dem_error._correct_block(given, np.zeros(N), fit, (r, s), Block(0, L, 0, W))
    assert not dz.any()
    np.testing.assert_array_equal(out, data)
    assert np.isfinite(res).all()
