"""Batched SBAS inversion against an independent per-pixel lstsq reference.

Tolerance: the kernel computes in float64 and returns float32, so its outputs carry a relative
rounding error of ~6e-8 of each value plus the float64 solve error (~1e-16·cond, negligible here);
the reference is float64.  Comparisons use rtol = 1e-6 and an atol of 1e-6 × the data magnitude
(time-series values that happen to be near zero only carry the float32 error of their neighbours).
"""

import numpy as np
import pytest
import scipy.linalg
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sbts.core.inversion import kernel as solver_mod
from sbts.core.inversion.kernel import (
    InversionResult,
    design_matrix_phase,
    design_matrix_velocity,
    invert_block,
)
from sbts.core.inversion.weights import coherence_to_weight


# ------------------------------------------------------------------------------------------
# independent reference: one scipy lstsq per pixel, as MintPy's estimate_timeseries does
# ------------------------------------------------------------------------------------------
def reference(phase, d1, d2, t, weight=None, velocity=True, min_redundancy=1.0, rcond=1e-5):
    m, npix = phase.shape
    n = t.size
    A = np.zeros((m, n))
    A[np.arange(m), d1] = -1
    A[np.arange(m), d2] = 1
    A = A[:, 1:]
    B = np.array([[t[k + 1] - t[k] if d1[i] <= k < d2[i] else 0.0 for k in range(n - 1)] for i in range(m)])
    ts = np.zeros((n, npix))
    tcoh = np.zeros(npix)
    num = np.zeros(npix, dtype=int)
    for p in range(npix):
        y = phase[:, p].astype(np.float64)
        w = np.ones(m) if weight is None else weight[:, p].astype(np.float64)
        keep = np.isfinite(y) & np.isfinite(w) & (w > 0)
        if keep.sum() == 0 or np.count_nonzero(A[keep], axis=0).min() < min_redundancy:
            continue
        sw = np.sqrt(w[keep])
        G = B[keep] if velocity else A[keep]
        x = scipy.linalg.lstsq(G * sw[:, None], y[keep] * sw, cond=rcond)[0]
        ts[1:, p] = np.cumsum(x * np.diff(t)) if velocity else x
        res = y[keep] - A[keep] @ ts[1:, p]
        tcoh[p] = np.abs(np.exp(1j * res).sum()) / keep.sum()
        num[p] = keep.sum()
    return ts, tcoh, num


def assert_matches(result, ref, tcoh_atol=2e-6):
    ts, tcoh, num = ref
    scale = max(1.0, np.abs(ts).max())
    np.testing.assert_allclose(result.timeseries, ts, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(result.temporal_coherence, tcoh, rtol=1e-6, atol=tcoh_atol)
    np.testing.assert_array_equal(result.num_inv_ifgram, num)


def network(n, span, extra=(), skip=lambda i, j: False):
    pairs = {(i, j) for i in range(n) for j in range(i + 1, min(i + span + 1, n)) if not skip(i, j)}
    pairs |= set(extra)
    pairs = sorted(pairs)
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def tbase_irregular(rng, n):
    t = np.concatenate([[0.0], np.cumsum(rng.choice([6, 12, 12, 24, 36], n - 1) / 365.25)])
    return t


def synthetic(rng, d1, d2, n, npix, noise=0.4):
    truth = np.cumsum(rng.normal(0, 1.5, (n, npix)), axis=0)
    truth -= truth[0]
    phase = truth[d2] - truth[d1] + rng.normal(0, noise, (d1.size, npix))
    return truth, phase


def components(d1, d2, n, keep):
    """Number of connected components of the valid network (with date 0) — test bookkeeping only."""
    g = coo_matrix((np.ones(keep.sum()), (d1[keep], d2[keep])), shape=(n, n))
    return connected_components(g, directed=False)[0]


# ------------------------------------------------------------------------------------------
def test_design_matrices():
    d1, d2 = np.array([0, 0, 1, 2]), np.array([1, 2, 3, 3])
    t = np.array([0.0, 0.1, 0.3, 0.6])
    A = design_matrix_phase(d1, d2, 4)
    np.testing.assert_array_equal(A, [[1, 0, 0], [0, 1, 0], [-1, 0, 1], [0, -1, 1]])
    B = design_matrix_velocity(d1, d2, t)
    np.testing.assert_allclose(B, [[0.1, 0, 0], [0.1, 0.2, 0], [0, 0.2, 0.3], [0, 0, 0.3]])
    # A·ts = B·v for ts = cumulated v·Δt
    v = np.array([1.0, -2.0, 0.5])
    ts = np.cumsum(v * np.diff(t))
    np.testing.assert_allclose(A @ ts, B @ v)


@pytest.mark.parametrize("velocity", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_connected_full_data(velocity, weighted):
    rng = np.random.default_rng(1)
    n = 15
    d1, d2 = network(n, 3)
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, 120)
    phase = phase.astype(np.float32)
    w = rng.uniform(0.05, 50, phase.shape).astype(np.float32) if weighted else None
    res = invert_block(phase, d1, d2, t, weight=w, min_norm_velocity=velocity)
    assert isinstance(res, InversionResult)
    assert res.timeseries.dtype == np.float32 and res.timeseries.shape == (n, 120)
    assert res.temporal_coherence.dtype == np.float32 and res.num_inv_ifgram.dtype == np.int16
    assert np.all(res.timeseries[0] == 0)
    assert_matches(res, reference(phase, d1, d2, t, w, velocity))


@pytest.mark.parametrize("velocity", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_random_missing_pairs(velocity, weighted):
    """Per-pixel missing pairs; some pixels lose connectivity; a frequent non-full pattern too."""
    rng = np.random.default_rng(2)
    n, npix = 14, 700
    d1, d2 = network(n, 2)
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    phase[rng.random(phase.shape) < 0.18] = np.nan
    phase[:, :20] = phase[:, 20:40]  # a few repeated random patterns
    shared = np.isin(np.arange(d1.size), [3, 11])
    phase[np.ix_(shared, np.arange(400, 700))] = np.nan  # 300 pixels share one pattern (pinv path)
    phase[~shared, 400:700] = synthetic(rng, d1, d2, n, 300)[1][~shared]
    w = rng.uniform(0.1, 10, phase.shape) if weighted else None
    ref = reference(phase, d1, d2, t, w, velocity)
    kept = ref[2] > 0
    ncomp = np.array([components(d1, d2, n, np.isfinite(phase[:, p])) for p in range(npix)])
    assert np.count_nonzero(kept & (ncomp > 1)) >= 20  # disconnected but inverted pixels exist
    assert np.count_nonzero(~kept) >= 5  # and pixels left empty by the redundancy rule
    assert_matches(invert_block(phase, d1, d2, t, weight=w, min_norm_velocity=velocity), ref)


@pytest.mark.parametrize("weighted", [False, True])
def test_disconnected_network_both_forms(weighted):
    """Two sub-networks (a gap in the acquisitions): min-norm velocity ≠ min-norm phase."""
    rng = np.random.default_rng(3)
    n, npix = 16, 150
    d1, d2 = network(n, 3, skip=lambda i, j: (i < 7) != (j < 7))
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    phase[rng.random(phase.shape) < 0.05] = np.nan
    w = rng.uniform(0.1, 10, phase.shape) if weighted else None
    assert components(d1, d2, n, np.ones(d1.size, bool)) == 2
    rv = invert_block(phase, d1, d2, t, weight=w, min_norm_velocity=True)
    rp = invert_block(phase, d1, d2, t, weight=w, min_norm_velocity=False)
    assert_matches(rv, reference(phase, d1, d2, t, w, True))
    assert_matches(rp, reference(phase, d1, d2, t, w, False))
    # the first sub-network is grounded (identical), the second differs between the two forms
    np.testing.assert_allclose(rv.timeseries[:7], rp.timeseries[:7], rtol=1e-5, atol=1e-5)
    assert np.abs(rv.timeseries[7:] - rp.timeseries[7:]).max() > 0.1
    # min-norm phase: the floating sub-network has zero mean
    ok = rp.num_inv_ifgram > 0
    np.testing.assert_allclose(rp.timeseries[7:, ok].mean(axis=0), 0, atol=1e-5)


@pytest.mark.parametrize("method", ["var", "fim", "coh", "no"])
@pytest.mark.parametrize("velocity", [True, False])
def test_weights_from_coherence(method, velocity):
    rng = np.random.default_rng(4)
    n, npix = 12, 150
    d1, d2 = network(n, 3, extra=[(0, 11), (2, 9)])
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    coh = rng.uniform(0.0, 1.0, phase.shape)
    coh[rng.random(coh.shape) < 0.02] = np.nan
    phase[rng.random(phase.shape) < 0.1] = np.nan
    w = coherence_to_weight(coh, method, 9)
    ref = reference(phase, d1, d2, t, w, velocity)
    assert_matches(invert_block(phase, d1, d2, t, weight=w, min_norm_velocity=velocity), ref)


def test_zero_or_invalid_weight_drops_pair():
    rng = np.random.default_rng(5)
    n, npix = 10, 80
    d1, d2 = network(n, 3)
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    w = rng.uniform(0.5, 2, phase.shape)
    w[rng.random(w.shape) < 0.1] = 0.0
    w[rng.random(w.shape) < 0.05] = np.nan
    res = invert_block(phase, d1, d2, t, weight=w)
    assert_matches(res, reference(phase, d1, d2, t, w))
    assert res.num_inv_ifgram.min() < d1.size


@pytest.mark.parametrize("weighted", [False, True])
def test_min_redundancy(weighted):
    rng = np.random.default_rng(6)
    n, npix = 10, 200
    d1, d2 = network(n, 3)
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    phase[rng.random(phase.shape) < 0.12] = np.nan
    phase[(d1 == 5) | (d2 == 5), :10] = np.nan  # date 5 unobserved: empty for any redundancy ≥ 1
    w = rng.uniform(0.5, 2, phase.shape) if weighted else None
    for mr in (1.0, 2.0, 2.5):
        ref = reference(phase, d1, d2, t, w, min_redundancy=mr)
        res = invert_block(phase, d1, d2, t, weight=w, min_redundancy=mr)
        assert_matches(res, ref)
        empty = ref[2] == 0
        assert empty.any() and (~empty).any()
        assert np.all(res.timeseries[:, empty] == 0) and np.all(res.temporal_coherence[empty] == 0)
    # MintPy's rule looks at the columns of the reduced A: the first date is not checked.
    phase2 = phase.copy()
    phase2[:, :] = synthetic(rng, d1, d2, n, npix)[1]
    phase2[d1 == 0, 0] = np.nan
    res = invert_block(phase2, d1, d2, t, weight=w)
    assert res.num_inv_ifgram[0] == d1.size - np.count_nonzero(d1 == 0)  # date 0 unobserved, kept
    assert_matches(res, reference(phase2, d1, d2, t, w))


def test_all_nan_pixels():
    rng = np.random.default_rng(7)
    n, npix = 8, 30
    d1, d2 = network(n, 2)
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    phase[:, ::3] = np.nan
    for w in (None, np.ones_like(phase)):
        for mr in (1.0, 0.0):
            res = invert_block(phase, d1, d2, t, weight=w, min_redundancy=mr)
            assert np.all(res.timeseries[:, ::3] == 0)
            assert np.all(res.temporal_coherence[::3] == 0) and np.all(res.num_inv_ifgram[::3] == 0)
            assert np.all(np.isfinite(res.timeseries)) and np.all(np.isfinite(res.temporal_coherence))
            assert_matches(res, reference(phase, d1, d2, t, w))


@pytest.mark.parametrize("velocity", [True, False])
def test_large_bandwidth_network(velocity):
    """Pairs spanning the whole stack: the band covers the full matrix (dense elimination)."""
    rng = np.random.default_rng(8)
    n, npix = 20, 200
    d1, d2 = network(n, 2, extra=[(0, 19), (1, 18), (3, 15), (5, 17), (2, 12)])
    assert (d2 - d1).max() == n - 1
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    phase[rng.random(phase.shape) < 0.15] = np.nan
    w = rng.uniform(0.05, 20, phase.shape)
    for weight in (w, None):
        ref = reference(phase, d1, d2, t, weight, velocity)
        assert_matches(invert_block(phase, d1, d2, t, weight=weight, min_norm_velocity=velocity), ref)


@pytest.mark.parametrize("weighted", [False, True])
def test_recovers_truth_noise_free(weighted):
    rng = np.random.default_rng(9)
    n, npix = 25, 300
    d1, d2 = network(n, 4, extra=[(0, 24), (3, 20)])
    t = tbase_irregular(rng, n)
    truth, phase = synthetic(rng, d1, d2, n, npix, noise=0.0)
    phase[rng.random(phase.shape) < 0.05] = np.nan  # stays connected: span-4 network
    w = rng.uniform(0.1, 10, phase.shape) if weighted else None
    for velocity in (True, False):
        res = invert_block(phase, d1, d2, t, weight=w, min_norm_velocity=velocity)
        scale = np.abs(truth).max()
        np.testing.assert_allclose(res.timeseries, truth, rtol=1e-6, atol=1e-6 * scale)
        np.testing.assert_allclose(res.temporal_coherence, 1.0, atol=1e-6)
        np.testing.assert_array_equal(res.num_inv_ifgram, np.isfinite(phase).sum(axis=0))


def test_temporal_coherence_hand_computed():
    """Triangle 0-1-2 with closure misfit ε: LS residual is (−ε/3)(1, 1, −1) on (01, 12, 02)."""
    d1, d2 = np.array([0, 0, 1]), np.array([1, 2, 2])  # pairs 01, 02, 12
    t = np.array([0.0, 0.1, 0.2])
    eps = 0.9
    phase = np.array([[1.0], [2.0 + eps], [1.0]])
    res = invert_block(phase, d1, d2, t)
    a = eps / 3
    expected = np.sqrt(9 * np.cos(a) ** 2 + np.sin(a) ** 2) / 3  # |2e^{ja}+e^{-ja}|/3
    assert res.temporal_coherence[0] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(res.timeseries[:, 0], [0, 1 + a, 2 + 2 * a], rtol=1e-6)
    assert res.num_inv_ifgram[0] == 3


def test_multiple_chunks(monkeypatch):
    """Force many internal chunks (and the slab loop of the coherence) — same numbers."""
    rng = np.random.default_rng(10)
    n, npix = 12, 1100
    d1, d2 = network(n, 3)
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    phase[:, rng.random(npix) < 0.3] = np.nan
    phase[rng.random(phase.shape) < 0.05] = np.nan
    w = rng.uniform(0.1, 10, phase.shape)
    whole = [invert_block(phase, d1, d2, t, weight=x) for x in (None, w)]
    monkeypatch.setattr(solver_mod, "_CHUNK_BYTES", 1)
    chunked = [invert_block(phase, d1, d2, t, weight=x) for x in (None, w)]
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(a.timeseries, b.timeseries, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a.temporal_coherence, b.temporal_coherence, atol=1e-6)
        np.testing.assert_array_equal(a.num_inv_ifgram, b.num_inv_ifgram)
    assert_matches(chunked[1], reference(phase, d1, d2, t, w))


def test_complete_pixel_lane_slabs(monkeypatch):
    """The cache-resident lane for complete pixels, over many slabs of every width.

    Complete and incomplete pixels interleaved (NaN and ±inf mark missing pairs), large residuals
    in some slabs only (the wrap is skipped where it is the identity): same numbers as the
    per-pixel reference, and bit-identical results whatever the slab width, since block
    boundaries must not change a result.
    """
    rng = np.random.default_rng(12)
    n, npix = 14, 700
    d1, d2 = network(n, 3)
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix, noise=0.3)
    phase[:, 300:340] += rng.normal(0, 6.0, (d1.size, 40))  # residuals beyond ±π in a few slabs
    holes = rng.random(npix) < 0.2
    phase[rng.integers(0, d1.size, holes.sum()), np.flatnonzero(holes)] = np.nan
    phase[3, 5], phase[4, 6] = np.inf, -np.inf
    ref = reference(phase, d1, d2, t)
    results = []
    for slab_bytes in (1 << 20, 8 * d1.size * 37, 8 * d1.size * 16):
        monkeypatch.setattr(solver_mod, "_SLAB_BYTES", slab_bytes)
        results.append(invert_block(phase, d1, d2, t))
        assert_matches(results[-1], ref)
    for other in results[1:]:
        np.testing.assert_array_equal(other.timeseries, results[0].timeseries)
        np.testing.assert_array_equal(other.temporal_coherence, results[0].temporal_coherence)
    assert results[0].num_inv_ifgram[5] == d1.size - 1 and results[0].num_inv_ifgram[6] == d1.size - 1


def test_repeated_pair():
    """A pair listed twice (two interferograms of the same dates) counts twice, like lstsq."""
    rng = np.random.default_rng(13)
    n, npix = 8, 300
    d1, d2 = network(n, 2)
    d1, d2 = np.append(d1, [2, 0]), np.append(d2, [4, 1])  # (2, 4) and (0, 1) repeated
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix)
    phase[rng.random(phase.shape) < 0.1] = np.nan
    w = rng.uniform(0.5, 5, phase.shape)
    for weight in (None, w):
        assert_matches(invert_block(phase, d1, d2, t, weight=weight, min_redundancy=2),
                       reference(phase, d1, d2, t, weight, min_redundancy=2))


def test_large_phase_values_coherence():
    """Residual wrapping keeps the float32 trigonometry accurate for phases of hundreds of rad."""
    rng = np.random.default_rng(11)
    n, npix = 10, 60
    d1, d2 = network(n, 3)
    t = tbase_irregular(rng, n)
    _, phase = synthetic(rng, d1, d2, n, npix, noise=0.8)
    phase += 300.0 * (d2 - d1)[:, None]
    assert_matches(invert_block(phase, d1, d2, t), reference(phase, d1, d2, t), tcoh_atol=1e-6)


def test_input_validation():
    d1, d2 = np.array([0, 1]), np.array([1, 2])
    t = np.array([0.0, 0.1, 0.2])
    ph = np.zeros((2, 4))
    with pytest.raises(ValueError):
        invert_block(ph, np.array([1, 1]), np.array([0, 2]), t)  # date2 <= date1
    with pytest.raises(ValueError):
        invert_block(ph, d1, d2, np.array([0.0, 0.2, 0.1]))
    with pytest.raises(ValueError):
        invert_block(ph, d1, d2, t, weight=np.ones((2, 3)))
    with pytest.raises(ValueError):
        invert_block(ph[0], d1, d2, t)
    empty = invert_block(np.zeros((2, 0)), d1, d2, t)
    assert empty.timeseries.shape == (3, 0)
