"""Triplets, closure phase, integer ambiguities, T_int and the HiGHS integer solver (sbts.core.inversion.closure)."""

from __future__ import annotations

import itertools

import h5py
import numpy as np
import pytest

from sbts.core.demo.run import write_synthetic_files
from sbts.core.demo.synthetic import make_synthetic_stack
from sbts.core.inversion.closure import (
    NUM_TRI_FILE,
    TRIPLET_STATS_FILE,
    ambiguity_objective,
    closure_phase,
    integer_ambiguity,
    num_nonzero_integer_closure,
    solve_integer_ambiguity,
    triplet_indices,
    triplets,
    wrap,
    write_num_nonzero_integer_closure,
)
from sbts.core.io.blocks import Block
from sbts.core.model.pairs import Pairs
from sbts.core.steps.reference import set_reference

SHAPE = (60, 80)
NUM_DATE = 16


def write_clean_stack(folder, seed=0, **kwargs):
    """A noise-free synthetic stack (injected errors kept) in MintPy layout, referenced; returns the model."""
    s = make_synthetic_stack(shape=SHAPE, num_date=NUM_DATE, seed=seed, phase_noise=False, **kwargs)
    write_synthetic_files(folder, s)
    set_reference(folder / "ifgramStack.h5", *s.truth.reference_yx)
    return s


# ---------------------------------------------------------------------------- triplets
def _hand_network(keep=None):
    # dates 0..3: pairs 01, 12, 02, 23, 13, 03 (all six) in a deliberately unsorted order
    names = ["20200101_20200113", "20200113_20200125", "20200101_20200125",
             "20200125_20200206", "20200113_20200206", "20200101_20200206"]
    return Pairs.from_date12(names, keep=keep)


def test_triplet_matrix_on_hand_made_network():
    pairs = _hand_network()
    C = triplets(pairs).toarray()
    expected = np.array([
        # 01  12  02  23  13  03
        [1, 1, -1, 0, 0, 0],   # 0-1-2
        [1, 0, 0, 0, 1, -1],   # 0-1-3
        [0, 0, 1, 1, 0, -1],   # 0-2-3
        [0, 1, 0, 1, -1, 0],   # 1-2-3
    ])
    np.testing.assert_array_equal(C, expected)
    # a time series never has closure: C·A = 0
    i1, i2 = pairs.indices()
    A = np.zeros((len(pairs), 4))
    A[np.arange(len(pairs)), i1] = -1
    A[np.arange(len(pairs)), i2] = 1
    np.testing.assert_array_equal(C @ A, 0)


def test_dropped_pairs_remove_their_triplets():
    keep = np.ones(6, bool)
    keep[2] = False  # 20200101_20200125
    pairs = _hand_network(keep)
    idx = triplet_indices(pairs)
    np.testing.assert_array_equal(idx, [[0, 4, 5], [1, 3, 4]])
    C = triplets(pairs)
    assert C.shape == (2, 6) and not C[:, 2].toarray().any()
    assert triplet_indices(pairs, kept_only=False).shape == (4, 3)


def test_integer_ambiguity_and_wrap():
    two_pi = 2 * np.pi
    closure = np.array([0.1, -0.2, two_pi + 0.2, -two_pi - 3.0, 3.5, -2 * two_pi + 0.1, np.nan])
    np.testing.assert_array_equal(integer_ambiguity(closure), [0, 0, 1, -1, 1, -2, 0])
    w = wrap(np.linspace(-20, 20, 101))
    assert np.all((w >= -np.pi) & (w < np.pi))


# ---------------------------------------------------------------------------- solver
def test_highs_matches_brute_force_on_tiny_network():
    C = triplets(_hand_network())
    rng = np.random.default_rng(3)
    patterns = [-(C @ u) for u in ([0, 1, 0, 0, 0, 0], [0, 0, 0, 2, 0, -1], [1, 0, 0, 0, 0, 0])]
    patterns += [rng.integers(-2, 3, C.shape[0]) for _ in range(6)]  # mostly inconsistent closures
    patterns += [patterns[0], np.zeros(C.shape[0], int)]  # duplicates and zero: solved once / skipped
    c_int = np.array(patterns)
    U = solve_integer_ambiguity(C, c_int, batch=4)
    grid = np.array(list(itertools.product(range(-2, 3), repeat=6)))
    Cd = C.toarray()
    for c, u in zip(c_int, U):
        cost = np.abs(grid).sum(1) + 100 * np.abs(grid @ Cd.T + c).sum(1)
        assert ambiguity_objective(C, c, u) == pytest.approx(cost.min())
    np.testing.assert_array_equal(U[0], [0, 1, 0, 0, 0, 0])  # a single wrong pair is found
    np.testing.assert_array_equal(U[-2], U[0])
    np.testing.assert_array_equal(U[-1], 0)


# ---------------------------------------------------------------------------- T_int
def test_nonzero_closure_map_noise_free(tmp_path):
    s = write_clean_stack(tmp_path)
    stack_path = tmp_path / "ifgramStack.h5"
    T = num_nonzero_integer_closure(stack_path, max_memory=1e-4, mask=s.water_mask)  # many blocks
    tri = triplet_indices(Pairs.from_indices(list(s.dates), s.date1_index, s.date2_index))
    err_any = np.zeros(SHAPE, bool)
    for _pid, _cycles, region in s.truth.unwrap_errors:
        err_any |= region
    assert np.all(T[~err_any] == 0)
    for pid, _cycles, region in s.truth.unwrap_errors:
        n_with_pair = int(np.any(tri == pid, axis=1).sum())
        assert n_with_pair > 0
        assert np.all(T[region] >= n_with_pair) and np.median(T[region]) == n_with_pair

    h5, txt = write_num_nonzero_integer_closure(stack_path, tmp_path, max_memory=1e-4)
    assert h5 == tmp_path / NUM_TRI_FILE and txt == tmp_path / TRIPLET_STATS_FILE
    with h5py.File(h5, "r") as f:
        np.testing.assert_array_equal(f["mask"][()], T)  # water from geometryGeo.h5 beside the stack
        assert f.attrs["FILE_TYPE"] == "mask"
    lines = [ln for ln in txt.read_text().splitlines() if not ln.startswith("#")]
    assert len(lines) == tri.shape[0]
    fields = lines[0].split()
    assert len(fields) == 7 and abs(float(fields[4])) < 1e-3  # noise-free: mean wrapped closure ≈ 0


def test_closure_phase_block_matches_full(tmp_path):
    write_clean_stack(tmp_path)
    full = closure_phase(tmp_path / "ifgramStack.h5")
    block = Block(10, 25, 30, 61)
    part = closure_phase(tmp_path / "ifgramStack.h5", block)
    np.testing.assert_array_equal(part, full[(slice(None),) + block.slices])


@pytest.mark.parametrize("mode", [dict(num_worker=2), dict(num_worker=2, cluster="local")], ids=["pool", "dask"])
def test_ambiguity_batches_in_the_pool_and_on_dask_are_the_same(tmp_path, monkeypatch, mode):
    """The batches of distinct closure patterns are solved where they are sent (the pool's forked
    workers record it), with the same solutions as here: the batches depend on ``batch`` alone."""
    import os

    from sbts.core.inversion import closure as closure_mod

    C = triplets(_hand_network())
    rng = np.random.default_rng(5)
    c_int = np.array([-(C @ rng.integers(-1, 2, C.shape[1])) for _ in range(40)]
                     + [rng.integers(-2, 3, C.shape[0]) for _ in range(20)])
    here = solve_integer_ambiguity(C, c_int, batch=4)
    who = tmp_path / "who.txt"
    real = closure_mod._AmbiguityMilp.solve

    def recording(self, rows):
        with open(who, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real(self, rows)

    monkeypatch.setattr(closure_mod._AmbiguityMilp, "solve", recording)
    there = solve_integer_ambiguity(C, c_int, batch=4, **mode)
    np.testing.assert_array_equal(there, here)
    pids = set(who.read_text().split()) if who.exists() else set()
    assert str(os.getpid()) not in pids  # solved in the workers (dask's do not have the recorder)
    if "cluster" not in mode:
        assert pids
