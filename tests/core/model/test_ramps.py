"""The ramp-fitting kernel (sbts.core.model.ramps): exact recovery, noise, NaN, blocks, one joint solve."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sbts.core.io.blocks import Block
from sbts.core.model import ramps
from sbts.core.model.ramps import (
    RAMP_KINDS,
    design_matrix_ramp,
    evaluate_ramps,
    evaluate_ramps_at,
    fit_ramps,
    fit_ramps_samples,
    num_coefficients,
)

SHAPE = (30, 40)


def _coeffs(kind: str, n: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.05, size=(n, num_coefficients(kind)))


@pytest.mark.parametrize("kind", RAMP_KINDS)
def test_known_ramp_recovered_exactly(kind):
    coeffs = _coeffs(kind)
    stack = evaluate_ramps(coeffs, SHAPE, kind, dtype=np.float64)
    mask = np.zeros(SHAPE, bool)
    mask[::3, ::2] = True
    got = fit_ramps(stack, mask, kind)
    assert got.shape == coeffs.shape
    np.testing.assert_allclose(got, coeffs, atol=1e-10)


@pytest.mark.parametrize("kind", ["linear", "quadratic"])
def test_ramp_with_noise_within_tolerance(kind):
    coeffs = _coeffs(kind, n=6, seed=1)
    rng = np.random.default_rng(2)
    stack = evaluate_ramps(coeffs, SHAPE, kind, dtype=np.float64) + rng.normal(0, 1e-3, (6, *SHAPE))
    got = fit_ramps(stack, None, kind)
    # the ramp itself (what is removed) is the meaningful quantity: compare surfaces
    diff = evaluate_ramps(got, SHAPE, kind, dtype=np.float64) - evaluate_ramps(coeffs, SHAPE, kind, dtype=np.float64)
    assert np.abs(diff).max() < 1e-3


def test_columns_follow_documented_order():
    G = design_matrix_ramp((2, 4), "quadratic")
    # pixel (row 1, col 2) of a 2×4 image: x = 2/4, y = 1/2
    np.testing.assert_allclose(G[1 * 4 + 2], [1, 0.5, 0.5, 0.25, 0.25, 0.25])
    assert design_matrix_ramp((2, 4), "linear_range").shape == (8, 2)
    np.testing.assert_allclose(design_matrix_ramp((2, 4), "linear_azimuth")[4], [1, 0.5])
    np.testing.assert_allclose(design_matrix_ramp((2, 4), "quadratic_azimuth")[4], [1, 0.5, 0.25])
    np.testing.assert_allclose(design_matrix_ramp((2, 4), "quadratic_range")[3], [1, 0.75, 0.5625])


def test_design_matrix_from_coordinates_matches_grid():
    grid = design_matrix_ramp(SHAPE, "quadratic")
    y, x = np.array([0, 5, 29]), np.array([0, 7, 39])
    pts = design_matrix_ramp((y, x), "quadratic", shape=SHAPE)
    np.testing.assert_allclose(pts, grid[y * SHAPE[1] + x])


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown ramp kind"):
        design_matrix_ramp(SHAPE, "cubic")


def test_nan_pixels_of_one_date_leave_the_others_exact():
    coeffs = _coeffs("linear", n=3)
    stack = evaluate_ramps(coeffs, SHAPE, "linear", dtype=np.float64)
    stack[1, :10, :] = np.nan
    got = fit_ramps(stack, None, "linear")
    np.testing.assert_allclose(got, coeffs, atol=1e-10)


def test_date_without_enough_valid_pixels_is_nan(caplog, monkeypatch):
    # the CLI (configure_logging) stops "sbts" records reaching the root logger; caplog listens there
    monkeypatch.setattr(logging.getLogger("sbts"), "propagate", True)
    coeffs = _coeffs("quadratic", n=3)
    stack = evaluate_ramps(coeffs, SHAPE, "quadratic", dtype=np.float64)
    stack[2] = np.nan
    stack[2, 0, :3] = 1.0  # 3 pixels for 6 unknowns
    got = fit_ramps(stack, None, "quadratic")
    assert np.isnan(got[2]).all()
    np.testing.assert_allclose(got[:2], coeffs[:2], atol=1e-10)
    assert "undetermined" in caplog.text


def test_all_complete_dates_share_one_solve(monkeypatch):
    """One factorisation of the design matrix serves every complete date (QR once; lstsq only for a
    rank-deficient design)."""
    calls = []
    real = np.linalg.qr

    def counting(*args, **kwargs):
        calls.append(np.shape(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(ramps.np.linalg, "qr", counting)
    coeffs = _coeffs("linear", n=8)
    stack = evaluate_ramps(coeffs, SHAPE, "linear", dtype=np.float64)
    got = fit_ramps(stack, None, "linear")
    assert len(calls) == 1 and calls[0] == (SHAPE[0] * SHAPE[1], 3)
    np.testing.assert_allclose(got, coeffs, atol=1e-10)


def test_shared_solve_equals_lstsq_and_falls_back_when_rank_deficient():
    """The QR solve agrees with numpy's SVD lstsq to 1e-12 relative (float64 rounding); samples on one
    image row make a quadratic design rank-deficient: lstsq's minimum-norm answer, no division by ~0."""
    rng = np.random.default_rng(3)
    y, x = rng.integers(0, SHAPE[0], 500), rng.integers(0, SHAPE[1], 500)
    values = rng.normal(0, 0.01, (5, 500))
    for kind in ("linear", "quadratic"):
        G = ramps.design_matrix_ramp((y, x), kind, shape=SHAPE)
        ref = np.linalg.lstsq(G, values.T, rcond=None)[0].T
        got = ramps.fit_ramps_samples(values, y, x, SHAPE, kind)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    y1 = np.full(500, 7)
    G = ramps.design_matrix_ramp((y1, x), "quadratic", shape=SHAPE)
    ref = np.linalg.lstsq(G, values.T, rcond=None)[0].T
    got = ramps.fit_ramps_samples(values, y1, x, SHAPE, "quadratic")
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


def test_blocks_tile_the_full_evaluation():
    coeffs = _coeffs("quadratic", n=2)
    full = evaluate_ramps(coeffs, SHAPE, "quadratic")
    block = Block(7, 19, 11, 40)
    np.testing.assert_array_equal(evaluate_ramps(coeffs, SHAPE, "quadratic", block), full[:, 7:19, 11:40])
    np.testing.assert_allclose(evaluate_ramps_at(coeffs, 7, 11, SHAPE, "quadratic"), full[:, 7, 11], rtol=1e-6)


def test_samples_api_matches_masked_fit():
    coeffs = _coeffs("linear_range", n=2)
    stack = evaluate_ramps(coeffs, SHAPE, "linear_range", dtype=np.float64)
    y, x = np.array([0, 3, 10, 20]), np.array([1, 30, 5, 39])
    got = fit_ramps_samples(stack[:, y, x], y, x, SHAPE, "linear_range")
    np.testing.assert_allclose(got, coeffs, atol=1e-10)


# ----------------------------------------------------------------------------- RampSums
def _sums(values, mask, kind, row_splits):
    """RampSums over row blocks that end at ``row_splits``."""
    sums = ramps.RampSums(values.shape[0], values.shape[1:], kind)
    edges = [0, *row_splits, values.shape[1]]
    for r0, r1 in zip(edges[:-1], edges[1:]):
        block = Block(r0, r1, 0, values.shape[2])
        sums.add(values[:, r0:r1], mask[r0:r1], block)
    return sums


@pytest.mark.parametrize("kind", RAMP_KINDS)
def test_ramp_sums_equal_lstsq_on_every_sample_with_nan_dates(kind):
    """The normal equations summed row by row give each date's least-squares ramp over its finite
    samples (an independent per-date np.linalg.lstsq on every sample), to 1e-9 relative: float64
    sums of normalised coordinates (the normal matrix's condition number is the design matrix's
    squared, ~1e4 for a quadratic)."""
    rng = np.random.default_rng(4)
    n = 6
    coeffs = _coeffs(kind, n, seed=2)
    values = (evaluate_ramps(coeffs, SHAPE, kind, dtype=np.float64) + rng.normal(0, 0.01, (n,) + SHAPE)).astype(np.float32)
    values[2, 3:9, 5:20] = np.nan  # a date with a hole
    values[4, ::3, ::5] = np.nan
    mask = rng.random(SHAPE) > 0.3
    got = _sums(values, mask, kind, [7, 19]).solve()
    for d in range(n):
        y, x = np.nonzero(mask & np.isfinite(values[d]))
        g = design_matrix_ramp((y, x), kind, shape=SHAPE)
        expected = np.linalg.lstsq(g, values[d, y, x].astype(np.float64), rcond=None)[0]
        np.testing.assert_allclose(got[d], expected, rtol=1e-9, atol=1e-12)


def test_ramp_sums_do_not_depend_on_the_blocks_and_flag_undetermined_dates(caplog):
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, (3,) + SHAPE).astype(np.float32)
    values[1] = np.nan
    values[1, 4, 7:9] = 1.0  # 2 samples for 6 coefficients
    mask = np.ones(SHAPE, bool)
    one = _sums(values, mask, "quadratic", []).solve()
    with caplog.at_level(logging.WARNING, logger="sbts"):
        many = _sums(values, mask, "quadratic", [1, 2, 3, 11, 29]).solve()
    np.testing.assert_array_equal(one, many)  # bit for bit: the rows are added in the same order
    assert np.isnan(many[1]).all() and np.isfinite(many[[0, 2]]).all()
    assert "ramp of date 1: 2 valid pixel(s) for 6 coefficients" in caplog.text


class _ArraySeries:
    """What RampSums.of_series reads from a time series, over arrays (picklable: it goes to the
    workers); each read leaves the reading process's id in ``folder``."""

    def __init__(self, values: np.ndarray, folder) -> None:
        self.values, self.folder = values, str(folder)
        self.dates = list(range(values.shape[0]))
        self.shape = values.shape[1:]
        self.dataset_name = "timeseries"

    def chunk_shape(self, _name):
        return None

    def read_dates(self, block: Block) -> np.ndarray:
        import os
        from pathlib import Path

        Path(self.folder, f"{os.getpid()}_{block.row_start}").touch()
        return self.values[(slice(None),) + block.slices].copy()


def _mask_of(mask: np.ndarray, block: Block) -> np.ndarray:
    return mask[block.slices]


@pytest.mark.parametrize("kind", ["linear", "quadratic"])
def test_ramp_sums_of_a_series_the_same_here_in_the_pool_and_on_dask(tmp_path, kind):
    """The blocks' row terms formed in a pool of 2 or on dask, and added here in row order: the same
    sums, bit for bit, as in one process with other blocks; the reads ran in the workers."""
    import functools
    import os

    rng = np.random.default_rng(6)
    values = rng.normal(0, 1, (5, 60, 40)).astype(np.float32)
    values[3, 10:20, 5:9] = np.nan
    mask = rng.random((60, 40)) > 0.2
    read_mask = functools.partial(_mask_of, mask)
    ways = [("one", {"max_memory": 4.0}), ("pool", {"max_memory": 2e-5, "num_worker": 2})]
    try:
        import dask.distributed  # noqa: F401

        ways.append(("dask", {"max_memory": 2e-5, "num_worker": 2, "cluster": "local"}))
    except ImportError:
        pass
    found = {}
    from sbts.core.compute import scheduling

    try:
        for label, kw in ways:
            folder = tmp_path / label
            folder.mkdir()
            sums, any_mask = ramps.RampSums.of_series(_ArraySeries(values, folder), read_mask, kind, **kw)
            assert any_mask
            found[label] = sums
            pids = {p.name.split("_")[0] for p in folder.iterdir()}
            if label == "one":
                assert len(list(folder.iterdir())) == 1 and pids == {str(os.getpid())}
            else:  # many blocks, read in the workers
                assert len(list(folder.iterdir())) > 4 and str(os.getpid()) not in pids
    finally:
        scheduling.close_clusters()
    for label, sums in found.items():
        for name in ("gram", "rhs", "_nan_gram", "_nan_count"):
            np.testing.assert_array_equal(getattr(sums, name), getattr(found["one"], name), err_msg=f"{label} {name}")
        assert sums.count == found["one"].count == int(mask.sum())
    np.testing.assert_array_equal(found["pool"].solve(), found["one"].solve())
