"""Decorrelation covariance of the time series and ``uncertaintyQuantification = covariance`` (issue 17 §3).

The propagated covariance is checked against the closed form (AᵀWA)⁻¹ for ``var`` weights, against
Monte-Carlo realisations of the decorrelation noise for the other estimators (unweighted, ``fim``,
minimum norm across a gap, NSBAS), and through the velocity fit by the coverage of the reported 1σ.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.demo.run import write_synthetic
from sbts.core.inversion.engine import InversionOptions, invert_network
from sbts.core.inversion.kernel import NsbasModel, design_matrix_phase, invert_block
from sbts.core.inversion.weights import coherence_to_weight
from sbts.core.io.products import TimeSeries
from sbts.core.steps.reference import set_reference
from sbts.core.steps.velocity import fit_pixels, fit_time_functions, propagate_covariance, read_covariance


def _network(n=16, gap_after=None):
    t = np.arange(n) * 12 / 365.25
    pairs = [(i, j) for i in range(n) for j in range(i + 1, min(i + 4, n))
             if gap_after is None or not (i <= gap_after < j)]
    d1, d2 = np.array(pairs).T
    return t, d1, d2


def _realisations(t, d1, d2, count, seed=0, looks=9):
    """``count`` noisy copies of one pixel (fixed coherences): phase, σ², truth (n,)."""
    rng = np.random.default_rng(seed)
    coh = rng.uniform(0.3, 0.9, d1.size)
    var = 1.0 / coherence_to_weight(coh, "var", looks).astype(np.float64)
    truth = 6.0 * t + 0.8 * np.sin(2 * np.pi * t)
    phase = (truth[d2] - truth[d1])[:, None] + rng.normal(size=(d1.size, count)) * np.sqrt(var)[:, None]
    return phase, np.repeat(var[:, None], count, axis=1), coh, truth


def test_var_weights_give_the_inverse_normal_matrix():
    t, d1, d2 = _network()
    phase, var, coh, _ = _realisations(t, d1, d2, 5)
    phase[4, 2] = np.nan  # a pixel with a pair missing
    w = 1.0 / var
    res = invert_block(phase, d1, d2, t, weight=w, variance=var)
    A = design_matrix_phase(d1, d2, t.size)
    for j in range(5):
        ok = np.isfinite(phase[:, j])
        expected = np.linalg.inv(A[ok].T @ (w[ok, j, None] * A[ok]))
        got = res.covariance[1:, 1:, j].astype(np.float64)
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=1e-7 * np.abs(expected).max())
        assert (res.covariance[0, :, j] == 0).all() and (res.covariance[:, 0, j] == 0).all()


@pytest.mark.parametrize("case", ["no", "fim", "gap-min-norm", "gap-nsbas"])
def test_propagated_covariance_matches_monte_carlo(case):
    gap = 7 if case.startswith("gap") else None
    t, d1, d2 = _network(gap_after=gap)
    count = 4000
    phase, var, coh, _ = _realisations(t, d1, d2, count, seed=1)
    weight = None if case == "no" else np.repeat(
        coherence_to_weight(coh, "fim" if case == "fim" else "var", 9).astype(np.float64)[:, None], count, axis=1)
    nsbas = NsbasModel() if case == "gap-nsbas" else None
    res = invert_block(phase, d1, d2, t, weight=weight, variance=var, nsbas=nsbas, min_norm_velocity=False)
    sample = np.cov(res.timeseries.astype(np.float64))
    predicted = res.covariance[:, :, 0].astype(np.float64)
    np.testing.assert_array_equal(res.covariance[:, :, 0], res.covariance[:, :, -1])  # same pixel
    # 4000 realisations: a sample variance has a relative standard error √(2/4000) = 2.2 %
    ratio = np.diag(sample)[1:] / np.diag(predicted)[1:]
    assert np.all(np.abs(ratio - 1) < 0.1), ratio
    assert np.abs(sample - predicted).max() < 0.1 * np.abs(predicted).max()


def test_reported_sigma_covers_the_true_error_68_percent():
    """2000 realisations of decorrelation noise on a fixed truth, through inversion and velocity fit."""
    t, d1, d2 = _network(n=20)
    count = 2000
    phase, var, coh, truth = _realisations(t, d1, d2, count, seed=2)
    w = 1.0 / var
    res = invert_block(phase, d1, d2, t, weight=w, variance=var)
    ts = res.timeseries.astype(np.float64)
    sd = np.sqrt(np.stack([np.diag(res.covariance[:, :, j]) for j in range(count)], axis=1))
    inside = np.abs(ts[1:] - truth[1:, None]) <= sd[1:]
    assert abs(inside.mean() - 0.6827) < 0.03, inside.mean()
    G = np.c_[np.ones_like(t), t]
    fit = fit_pixels(G, ts)
    cov_v = propagate_covariance(G, ts, res.covariance)
    v_err = fit.coef[1] - 6.0 - np.linalg.pinv(G)[1] @ (0.8 * np.sin(2 * np.pi * t))  # the truth's LSQ slope
    cover_cov = np.mean(np.abs(v_err) <= np.sqrt(cov_v[:, 1, 1]))
    cover_residue = np.mean(np.abs(v_err) <= np.sqrt(fit.cov[:, 1, 1]))
    assert abs(cover_cov - 0.6827) < 0.03, cover_cov
    # the residue-based std ignores the correlation of the time-series errors: it misses (measured 0.53)
    assert cover_residue < 0.6, cover_residue


def test_propagation_with_missing_dates_equals_the_explicit_formula():
    rng = np.random.default_rng(3)
    n, P = 12, 6
    t = np.arange(n) / 12
    G = np.c_[np.ones(n), t, np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)]
    L = rng.normal(size=(P, n, n))
    S = np.einsum("pij,pkj->ikp", L, L)  # SPD (n, n, P)
    Y = rng.normal(size=(n, P))
    Y[3, 1] = Y[7, 2] = np.nan
    got = propagate_covariance(G, Y, S)
    for p in range(P):
        ok = np.isfinite(Y[:, p])
        H = np.linalg.pinv(G[ok])
        np.testing.assert_allclose(got[p], H @ S[np.ix_(ok, ok, [p])][..., 0] @ H.T, rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("syn_cov")
    write_synthetic(d, seed=7, shape=(20, 24), num_date=12)
    with h5py.File(d / "truth.h5", "r") as f:
        ry, rx = int(f.attrs["REF_Y"]), int(f.attrs["REF_X"])
    set_reference(d / "ifgramStack.h5", ry, rx)
    return d / "ifgramStack.h5"


def test_engine_writes_the_covariance_and_velocity_uses_it(synthetic, tmp_path):
    opts = InversionOptions.from_template(Template({"mintpy.timeFunc.uncertaintyQuantification": "covariance",
                                                    "mintpy.networkInversion.minNumPixel": "0"}))
    assert opts.calc_cov
    covs = {}
    for label, kwargs in {"single": dict(max_memory=4.0), "processes": dict(max_memory=0.0005, num_worker=2)}.items():
        wd = tmp_path / label
        wd.mkdir()
        out = invert_network(synthetic, wd, opts, force=True, **kwargs)
        assert out.decor_cov == wd / "timeseriesDecorCov.h5"
        with h5py.File(out.decor_cov, "r") as f:
            covs[label] = f["timeseries"][()]
            assert f.attrs["UNIT"] == "m^2" and f["date"].shape == (covs[label].shape[0],)
    np.testing.assert_array_equal(covs["single"], covs["processes"])
    cov = covs["single"]
    ts_file = tmp_path / "single" / "timeseries.h5"
    ts = TimeSeries(ts_file)
    ry, rx = ts.metadata.reference.y, ts.metadata.reference.x
    assert (cov[:, :, ry, rx] == 0).all()
    y, x = 5, 7
    diag = np.diagonal(cov[:, :, y, x])
    assert np.all(diag[1:] > 0) and np.all(np.isfinite(diag))
    assert np.sqrt(diag[1:]).max() < 0.05  # a few mm to cm for a C-band synthetic
    vel = fit_time_functions(ts_file, Template({"mintpy.timeFunc.uncertaintyQuantification": "covariance"}),
                             tmp_path / "velocity.h5", work_dir=tmp_path / "single")
    with h5py.File(vel, "r") as f:
        vstd = f["velocityStd"][()]
        assert f.attrs["mintpy.timeFunc.timeSeriesCovFile"] == "timeseriesDecorCov.h5"
    n = cov.shape[0]
    G = np.c_[np.ones(n), np.asarray([(d - ts.dates[0]).days / 365.25 for d in ts.dates])]
    H = np.linalg.pinv(G)[1]
    expected = np.sqrt(H @ cov[:, :, y, x].astype(np.float64) @ H)
    np.testing.assert_allclose(vstd[y, x], expected, rtol=1e-5)  # float32 output
    # re-referenced in date (reference_date step): Σ' = Σ − Σ[:, r] − Σ[r, :] + Σ[r, r]
    from sbts.core.io.blocks import Block

    block = Block(y, y + 1, x, x + 1)
    r = 4
    with h5py.File(ts_file, "r+") as f:
        f.attrs["REF_DATE"] = ts.date_strings[r]
    moved = read_covariance(tmp_path / "single" / "timeseriesDecorCov.h5", TimeSeries(ts_file), list(range(n)),
                            block)[:, :, 0]
    C = cov[:, :, y, x].astype(np.float64)
    J = np.eye(n)
    J[:, r] -= 1.0
    np.testing.assert_allclose(moved, J @ C @ J.T, rtol=1e-10, atol=1e-20)
    assert moved[r, r] == 0


def test_sbts_run_with_l1_nsbas_and_covariance(tmp_path):
    """The whole chain with the three options: the extra outputs are the step's outputs, the
    velocity Std comes from the covariance, and a rerun skips every step."""
    from sbts.core.workflow.runner import run_workflow

    write_synthetic(tmp_path / "synthetic", seed=1, shape=(30, 36), num_date=10)
    (tmp_path / "sbts.cfg").write_text(
        "mintpy.load.processor = mintpy\nmintpy.load.unwFile = synthetic/ifgramStack.h5\n"
        "mintpy.load.demFile = synthetic/geometryGeo.h5\nmintpy.networkInversion.minNumPixel = 10\n"
        "mintpy.networkInversion.residualNorm = L1\nsbts.nsbas = yes\n"
        "mintpy.timeFunc.uncertaintyQuantification = covariance\nmintpy.save.kmz = no\n")
    first = {r.name: r.status for r in run_workflow(tmp_path / "sbts.cfg", end="velocity")}
    assert first["invert_network"] == "ran" and first["velocity"] == "ran"
    for name in ("numGap.h5", "timeseriesDecorCov.h5", "velocity.h5"):
        assert (tmp_path / name).exists(), name
    with h5py.File(tmp_path / "velocity.h5", "r") as f:
        assert f.attrs["mintpy.timeFunc.uncertaintyQuantification"] == "covariance"
        std = f["velocityStd"][()]
    assert np.isfinite(std).mean() > 0.5 and np.nanmax(std) < 0.05  # m/yr
    second = {r.name: r.status for r in run_workflow(tmp_path / "sbts.cfg", end="velocity")}
    assert set(second.values()) <= {"skipped", "disabled"}, second
    (tmp_path / "timeseriesDecorCov.h5").unlink()
    third = {r.name: r.status for r in run_workflow(tmp_path / "sbts.cfg", end="velocity")}
    assert third["invert_network"] == "ran" and third["velocity"] == "ran"


def test_covariance_does_not_depend_on_how_pixels_are_grouped():
    t, d1, d2 = _network(gap_after=None)
    phase, var, coh, _ = _realisations(t, d1, d2, 300, seed=4)
    rng = np.random.default_rng(5)
    w = 1.0 / var
    w[:, 100:200] *= rng.uniform(0.5, 2, (d1.size, 100))  # not 1/σ²: the sandwich formula
    phase[:5, 250:] = np.nan  # gaps: the unit-phase path
    whole = invert_block(phase, d1, d2, t, weight=w, variance=var, nsbas=NsbasModel(), residual_norm="L1")
    parts = [invert_block(phase[:, s], d1, d2, t, weight=w[:, s], variance=var[:, s], nsbas=NsbasModel(),
                          residual_norm="L1") for s in (slice(0, 150), slice(150, 151), slice(151, 300))]
    np.testing.assert_array_equal(whole.covariance, np.concatenate([p.covariance for p in parts], axis=2))
    np.testing.assert_array_equal(whole.timeseries, np.concatenate([p.timeseries for p in parts], axis=1))
    assert (whole.num_gap[250:] > 0).all() and (whole.num_gap[:250] == 0).all()
