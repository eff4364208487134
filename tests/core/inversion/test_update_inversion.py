"""Exact incremental inversion (issue 18 §2): a 60-date stack inverted with the factor stored, one
acquisition (3 new pairs) appended, the update equals a full inversion of the 61-date stack.

Numbers: the reference is the engine's full inversion of the whole stack (the solver's own paths:
per-pattern pseudo-inverse unweighted, banded LDLᵀ weighted).  The update solves in float64 from a
Cholesky factor, so both agree to float64 rounding × the network's condition number; the outputs
are float32 metres, so the tolerance is a few float32 ulps of the largest displacement
(2e-6 relative) and 1e-5 on the temporal coherence (its float32 trigonometry)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.inversion import incremental
from sbts.core.inversion.engine import InversionOptions, invert_network
from sbts.core.io.products import StackWriter, TimeSeries
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo, Reference
from sbts.core.model.pairs import Pairs

L, W, N0 = 24, 30, 60
SIG_ATTR = "SBTS_INPUT_SIGNATURE"


@pytest.fixture(autouse=True)
def always_update(monkeypatch):
    """These tests are about the update itself: it runs whatever its cost against a full inversion
    (the choice between the two is tested in test_the_cheaper_of_update_and_full_inversion_runs)."""
    monkeypatch.setattr(incremental, "UPDATE_COST_RATIO", {"unweighted": 0.0, "weighted": 0.0})


def _network(num_date: int):
    return [(i, j) for i in range(num_date) for j in range(i + 1, min(num_date, i + 4))]


@pytest.fixture(scope="module")
def data():
    """Truth with a trend and noise; 4 % of the phases missing (0 = no data), coherence 0.2–0.95."""
    rng = np.random.default_rng(18)
    n = N0 + 1
    days = np.cumsum(np.r_[0, rng.choice([6, 12], n - 1)])
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in days]
    truth = np.cumsum(rng.normal(0, 0.8, (n, L, W)), axis=0)
    truth -= truth[0]
    pairs = _network(n)
    phase = np.stack([truth[j] - truth[i] for i, j in pairs]) + rng.normal(0, 0.4, (len(pairs), L, W))
    phase[rng.random(phase.shape) < 0.04] = 0.0
    phase[:, 3, 4] = np.where(phase[:, 3, 4] == 0, 0.5, phase[:, 3, 4])  # the reference pixel has data
    last = np.array([j for i, j in pairs])
    phase[last == N0 - 1, 10, 10] = 0.0  # old last date without data: not in the factor, redone from all pairs
    phase[last == N0, 11, 11] = 0.0  # the new date without data: empty in both
    coh = rng.uniform(0.2, 0.95, phase.shape)
    return dates, pairs, phase.astype(np.float32), coh.astype(np.float32)


def _write(path: Path, data, num_date: int, signature: str) -> Path:
    dates, pairs, phase, coh = data
    idx = [k for k, (i, j) in enumerate(pairs) if j < num_date]
    p = Pairs(tuple(dates[pairs[k][0]] for k in idx), tuple(dates[pairs[k][1]] for k in idx),
              np.zeros(len(idx)), None)
    meta = Metadata(grid=Grid(L, W, GeoGrid(-99.0, 19.5, 0.01, -0.01)), radar=RadarInfo(wavelength=0.0555),
                    reference=Reference(y=3, x=4)).with_extra(**{SIG_ATTR: signature, "NCORRLOOKS": "9"})
    path.parent.mkdir(parents=True, exist_ok=True)
    with StackWriter(path, meta, p, ["unwrapPhase", "coherence"]) as w:
        w.write("unwrapPhase", phase[idx], None)
        w.write("coherence", coh[idx], None)
    return path


def _appended(wd: Path, data, old_sig="old", new_sig="new") -> Path:
    """What ``sbts load`` leaves after an append: the whole stack and its record naming the old one."""
    stack = _write(wd / "inputs/ifgramStack.h5", data, N0 + 1, new_sig)
    record = {"signature": new_sig, "update": {"old_signature": old_sig}}
    (wd / "inputs/ifgramStack_load.json").write_text(json.dumps(record))
    return stack


def _opts(weight: str) -> InversionOptions:
    return InversionOptions(weight_func=weight, min_temp_coh=0.0, min_num_pixel=0, water_mask_file=None)


def _read(wd: Path):
    ts = TimeSeries(wd / "timeseries.h5").read_dates()
    with h5py.File(wd / "temporalCoherence.h5", "r") as f:
        tcoh = f["temporalCoherence"][()]
    with h5py.File(wd / "numInvIfgram.h5", "r") as f:
        num = f["mask"][()]
    return ts, tcoh, num


@pytest.mark.parametrize("weight", ["no", "var", "coh"])
def test_update_equals_full_inversion(data, tmp_path, weight, caplog):
    upd, full = tmp_path / "upd", tmp_path / "full"
    stack = _write(upd / "inputs/ifgramStack.h5", data, N0, "old")
    invert_network(stack, upd, _opts(weight), update_store=True, max_memory=0.002)
    assert incremental.store_path(upd).exists()
    _appended(upd, data)
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    invert_network(upd / "inputs/ifgramStack.h5", upd, _opts(weight), update_store=True, max_memory=0.002)
    assert "inversion updated" in caplog.text and "full inversion" not in caplog.text

    exact, redone, empty = (int(v) for v in re.search(
        r"updated: (\d+) pixel\(s\) updated, (\d+) inverted from all their pairs, (\d+) left empty",
        caplog.text).groups())
    # (10, 10) had no pair on the old last date: inverted from the pairs the store kept; (11, 11) has none
    # on the new date: left empty without reading its early pairs
    assert exact + redone + empty == L * W and exact >= 0.9 * L * W and redone >= 1 and empty >= 1
    invert_network(_appended(full, data), full, _opts(weight))
    ts_u, tc_u, num_u = _read(upd)
    ts_f, tc_f, num_f = _read(full)
    assert ts_u.shape == (N0 + 1, L, W)
    scale = np.abs(ts_f).max()
    np.testing.assert_allclose(ts_u, ts_f, rtol=0, atol=2e-6 * scale)
    np.testing.assert_allclose(tc_u, tc_f, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(num_u, num_f)
    assert num_u[11, 11] == 0 and num_u[10, 10] > 0
    # the store was moved on: it is that of the whole stack (a second append builds on it)
    with h5py.File(incremental.store_path(upd), "r") as f:
        info = json.loads(f.attrs["SBTS_UPDATE_STORE"])
        assert f["x"].shape[0] == 2 * 3 + incremental.STORE_AHEAD  # the dates the next update needs
    assert info["stack_signature"] == "new" and len(info["dates"]) == N0 + 1
    assert info["frozen"] == N0 - 3 - incremental.WINDOW_MARGIN


def test_update_falls_back_to_full_inversion(data, tmp_path, caplog):
    """A stack reloaded (not appended to), or another weighting: full inversion, said in the log."""
    wd = tmp_path / "wd"
    stack = _write(wd / "inputs/ifgramStack.h5", data, N0, "old")
    invert_network(stack, wd, _opts("no"), update_store=True)
    _appended(wd, data, old_sig="something else")
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("no"), update_store=True)
    assert "full inversion" in caplog.text and "reloaded" in caplog.text
    caplog.clear()
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True)
    assert "options" in caplog.text and "inversion updated" not in caplog.text
    # a stack without the loader's signature (written by another tool) cannot be told from another
    unsigned = tmp_path / "unsigned"
    invert_network(_write(unsigned / "inputs/ifgramStack.h5", data, N0, ""), unsigned, _opts("no"), update_store=True)
    _appended(unsigned, data, old_sig="", new_sig="")
    caplog.clear()
    invert_network(unsigned / "inputs/ifgramStack.h5", unsigned, _opts("no"), update_store=True)
    assert "no load signature" in caplog.text and "inversion updated" not in caplog.text


def _chain(n: int, k: int, seed: int, neighbours: int = 3):
    rng = np.random.default_rng(seed)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, min(n, i + 1 + neighbours))]
    d1, d2 = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    truth = np.cumsum(rng.normal(0, 1, (n, k)), axis=0)
    truth -= truth[0]
    phase = truth[d2] - truth[d1] + rng.normal(0, 0.3, (len(pairs), k))
    weight = rng.uniform(0.5, 30, phase.shape)
    return d1, d2, phase, weight


@pytest.mark.parametrize("neighbours,weighted", [(2, True), (3, True), (5, True), (3, False)])
def test_window_solve_with_the_kept_dates_fixed_is_the_full_solution(neighbours, weighted):
    """Array level, against an independent reference (numpy lstsq of the whole weighted system):
    old solution held before the window, the window re-solved; the window equals the full solution
    of old + new pairs within 1e-6 rad once its margin is wide, and for every margin the kept dates
    really move (full vs old) by no more than the first window dates do — the maximum-principle bound
    the update tests pixel by pixel."""
    n, k = 40, 30
    d1, d2, phase, weight = _chain(n, k, seed=neighbours, neighbours=neighbours)
    if not weighted:  # unit weights; a few pixels miss pairs (the others share one factor)
        weight = np.ones_like(phase)
        phase[np.random.default_rng(1).random(phase.shape) < 0.02] = np.nan
    old = d2 < n - 1

    def lstsq(rows, num):
        A = np.zeros((rows.sum(), num - 1))
        idx = np.flatnonzero(rows)
        A[np.arange(idx.size), d2[idx] - 1] = 1
        has1 = d1[idx] > 0
        A[np.flatnonzero(has1), d1[idx][has1] - 1] = -1
        out = np.zeros((num, k))
        for p in range(k):
            use = np.isfinite(phase[idx, p])
            sw = np.sqrt(weight[idx, p])[use]
            out[1:, p] = np.linalg.lstsq(A[use] * sw[:, None], phase[idx, p][use] * sw, rcond=None)[0]
        return out

    x_old, x_new = lstsq(old, n - 1), lstsq(np.ones_like(old), n)
    for margin in (2, 4, 8, 30):
        start = max(1, n - 1 - neighbours - margin)
        lo = max(0, start - neighbours)
        win = d2 >= start
        xw, ok, red = incremental.solve_window(phase[win], weight[win] if weighted else None, d1[win], d2[win], start,
                                          x_old[lo:start], lo, n)
        assert ok.all()
        moved = np.abs(xw[:neighbours] - x_old[start:start + neighbours]).max(axis=0)
        kept_change = np.abs(x_new[:start] - x_old[:start]).max(axis=0)
        assert (kept_change <= moved * (1 + 1e-9) + 1e-12).all()
        err = np.abs(xw - x_new[start:]).max(axis=0)
        assert (err <= 2 * moved + 1e-12).all()  # the window's own error is of the same order
        if margin == 30:
            np.testing.assert_allclose(xw, x_new[start:], rtol=0, atol=1e-6)


def test_window_flags_a_new_date_without_pairs():
    n, k = 20, 6
    d1, d2, phase, weight = _chain(n, k, seed=1)
    phase[d2 == n - 1, 2] = np.nan  # pixel 2: the new date has no valid pair
    start = 10
    win = d2 >= start
    _, ok, red = incremental.solve_window(phase[win], weight[win], d1[win], d2[win], start, np.zeros((3, k)), 7, n)
    assert not ok[2] and ok[[0, 1, 3, 4, 5]].all()
    assert not red[2] and red[[0, 1, 3, 4, 5]].all()  # what fails is the redundancy: the solver leaves it empty


def test_killed_update_leaves_previous_products_and_the_rerun_completes(data, tmp_path, monkeypatch, caplog):
    """Interrupted in the middle of its blocks: the 60-date products and store stay as they were, no
    partial file is left; the rerun updates.  Interrupted after the products took their new names
    but before the store did (the store is renamed last; simulated by restoring the old store and
    one old product): the rerun updates again from the old store and the new products' early dates,
    with the same result.  Both end equal to a full inversion."""
    wd, full = tmp_path / "wd", tmp_path / "full"
    stack = _write(wd / "inputs/ifgramStack.h5", data, N0, "old")
    invert_network(stack, wd, _opts("var"), update_store=True, max_memory=0.002)
    before = {p.name: p.read_bytes() for p in wd.glob("*.h5")}
    _appended(wd, data)
    calls = {"n": 0}
    real = incremental.residual_sums

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # in the second block
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(incremental, "residual_sums", dying)
    with pytest.raises(KeyboardInterrupt):
        invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
    assert calls["n"] == 3
    assert {p.name: p.read_bytes() for p in wd.glob("*.h5")} == before
    assert not [p for p in wd.iterdir() if ".part" in p.name or p.name.endswith(".tmp")]
    monkeypatch.setattr(incremental, "residual_sums", real)
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
    invert_network(_appended(full, data), full, _opts("var"))
    ts_f = _read(full)[0]
    first = _read(wd)[0]
    np.testing.assert_allclose(first, ts_f, rtol=0, atol=2e-6 * np.abs(ts_f).max())

    # killed between the products' renames and the store's
    incremental.store_path(wd).write_bytes(before[incremental.STORE_FILE])
    (wd / "temporalCoherence.h5").write_bytes(before["temporalCoherence.h5"])
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
    assert "inversion updated" in caplog.text and "full inversion" not in caplog.text
    again = _read(wd)[0]
    np.testing.assert_array_equal(again, first)


def test_update_after_reference_date_and_twice(data, tmp_path, caplog):
    """The chain re-references timeseries.h5 to another date (reference_date): the update brings its
    early dates back to the first date.  A second append builds on the first update's store (its
    sparse pixels included).  Both equal full inversions."""
    from sbts.core.steps.refdate import reference_date

    dates, pairs, phase, coh = data
    wd = tmp_path / "wd"
    n1 = N0 - 1  # 59 dates, then 60, then 61
    sub = lambda n: (dates, pairs, phase, coh)  # noqa: E731
    stack = _write(wd / "inputs/ifgramStack.h5", sub(n1), n1, "s59")
    invert_network(stack, wd, _opts("coh"), update_store=True, max_memory=0.002)
    reference_date([wd / "timeseries.h5"], dates[20].strftime("%Y%m%d"))
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    for num, old_sig, sig in ((N0, "s59", "s60"), (N0 + 1, "s60", "s61")):
        _write(wd / "inputs/ifgramStack.h5", data, num, sig)
        (wd / "inputs/ifgramStack_load.json").write_text(
            json.dumps({"signature": sig, "update": {"old_signature": old_sig}}))
        invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("coh"), update_store=True, max_memory=0.002)
        full = tmp_path / f"full{num}"
        invert_network(_write(full / "inputs/ifgramStack.h5", data, num, sig), full, _opts("coh"))
        ts_u, tc_u, num_u = _read(wd)
        ts_f, tc_f, num_f = _read(full)
        np.testing.assert_allclose(ts_u, ts_f, rtol=0, atol=2e-6 * np.abs(ts_f).max())
        np.testing.assert_allclose(tc_u, tc_f, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(num_u, num_f)
    assert caplog.text.count("inversion updated") == 2 and "full inversion" not in caplog.text
    # (10, 10) was left empty by the first update (its date 59 had no pair), and inverted from all its
    # pairs by the second (59 → 60 has data); (11, 11) is left empty by the second, its early pairs not read
    assert "0 inverted from all their pairs, 1 left empty" in caplog.text
    assert "1 inverted from all their pairs, 1 left empty" in caplog.text
    with h5py.File(incremental.store_path(wd), "r") as f:
        assert f["exact"][11, 11] == 0 and 11 * W + 11 not in f["sparse/pixel"][()]


def test_pair_between_old_dates_means_a_full_inversion(data, tmp_path, caplog):
    """A late pair between two old dates changes rows of the factor that are kept: full inversion."""
    dates, pairs, phase, coh = data
    late = next(k for k, (i, j) in enumerate(pairs) if j == i + 3 and j < N0)
    wd = tmp_path / "wd"
    without = [k for k in range(len(pairs)) if k != late]
    sub = (dates, [pairs[k] for k in without], phase[without], coh[without])
    stack = _write(wd / "inputs/ifgramStack.h5", sub, N0, "old")
    invert_network(stack, wd, _opts("var"), update_store=True)
    _appended(wd, data)
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True)
    assert "new pair(s) between old dates" in caplog.text and "inversion updated" not in caplog.text


@pytest.mark.parametrize("change", [{"residual_norm": "L1"}, {"nsbas": True}, {"calc_cov": True}])
def test_update_store_is_refused_where_the_update_would_not_be_exact(data, tmp_path, change):
    """The stored factor updates the L2 solution only: with L1, NSBAS or the covariance the key is refused
    (one line naming it) before anything is written, instead of updating a different solution."""
    from dataclasses import replace

    from sbts.core.errors import TemplateError

    wd = tmp_path / "wd"
    stack = _write(wd / "inputs/ifgramStack.h5", data, N0, "old")
    with pytest.raises(TemplateError, match="updateStore"):
        invert_network(stack, wd, replace(_opts("no"), **change), update_store=True)
    assert not (wd / "timeseries.h5").exists() and not incremental.store_path(wd).exists()


def test_appending_many_dates_at_once_widens_the_window(data, tmp_path, caplog):
    """45 dates, +11 at once, then +5: the first update re-solves the margin and the 11 dates; the
    second cannot start its window 11 dates later than the first (the store keeps STORE_AHEAD dates
    past the first window's start), so it re-solves a wider window.  Both equal full inversions."""
    wd = tmp_path / "wd"
    invert_network(_write(wd / "inputs/ifgramStack.h5", data, 45, "s45"), wd, _opts("var"), update_store=True)
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    for num, old_sig in ((56, "s45"), (N0 + 1, "s56")):
        sig = f"s{num}"
        _write(wd / "inputs/ifgramStack.h5", data, num, sig)
        (wd / "inputs/ifgramStack_load.json").write_text(
            json.dumps({"signature": sig, "update": {"old_signature": old_sig}}))
        invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
        full = tmp_path / f"full{num}"
        invert_network(_write(full / "inputs/ifgramStack.h5", data, num, sig), full, _opts("var"))
        ts_u, tc_u, num_u = _read(wd)
        ts_f, tc_f, num_f = _read(full)
        np.testing.assert_allclose(ts_u, ts_f, rtol=0, atol=2e-6 * np.abs(ts_f).max())
        np.testing.assert_allclose(tc_u, tc_f, rtol=0, atol=1e-5)
        np.testing.assert_array_equal(num_u, num_f)
    solved = [int(v) for v in re.findall(r"re-solving the last (\d+) dates", caplog.text)]
    assert "full inversion" not in caplog.text
    # the first window: margin + bandwidth + 11 new dates; the second starts where the store reaches
    first_start = 45 - 3 - incremental.WINDOW_MARGIN
    assert solved == [incremental.WINDOW_MARGIN + 3 + 11, N0 + 1 - (first_start + incremental.STORE_AHEAD)]


def test_short_stack_update_re_solves_every_date(data, tmp_path, caplog):
    """A stack shorter than the window (20 → 21 dates): nothing is held fixed, no early pair exists,
    and the update still equals a full inversion."""
    wd = tmp_path / "wd"
    invert_network(_write(wd / "inputs/ifgramStack.h5", data, 20, "s20"), wd, _opts("var"), update_store=True)
    _write(wd / "inputs/ifgramStack.h5", data, 21, "s21")
    (wd / "inputs/ifgramStack_load.json").write_text(json.dumps({"signature": "s21", "update": {"old_signature": "s20"}}))
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True)
    assert "re-solving the last 20 dates" in caplog.text and "full inversion" not in caplog.text
    full = tmp_path / "full"
    invert_network(_write(full / "inputs/ifgramStack.h5", data, 21, "s21"), full, _opts("var"))
    ts_f = _read(full)[0]
    np.testing.assert_allclose(_read(wd)[0], ts_f, rtol=0, atol=2e-6 * np.abs(ts_f).max())


def _store(wd: Path) -> dict:
    with h5py.File(incremental.store_path(wd), "r") as f:
        out = {k: f[k][()] for k in ("x", "preSum", "preNum", "exact")}
        out["info"] = json.loads(f.attrs["SBTS_UPDATE_STORE"])
        pixel = f["sparse/pixel"][()]
        order = np.argsort(pixel)
        out["pixel"] = pixel[order]
        out["phase"] = f["sparse/phase"][()][:, order]
        out["weight"] = f["sparse/weight"][()][:, order] if "sparse/weight" in f else None
    return out


@pytest.mark.parametrize("weight, workers", [("no", 1), ("var", 1), ("var", 2)])
def test_store_made_in_the_inversion_pass_is_the_second_pass_store(data, tmp_path, monkeypatch, weight, workers):
    """The full inversion keeps the solver's float64 solution as the store (no second pass over the
    stack); the reference is the separate pass with its own banded Cholesky factorisation
    (:func:`incremental.build_store`).  Same layout, exact flags, kept early pairs and counts; the
    phases agree to float64 rounding × the network's conditioning (1e-9 rad, a thousandth of the
    update's 1e-6 rad boundary test), the coherence sums likewise."""
    one, two = tmp_path / "pass", tmp_path / "second"
    for wd in (one, two):
        _write(wd / "inputs/ifgramStack.h5", data, N0, "old")
    invert_network(one / "inputs/ifgramStack.h5", one, _opts(weight), update_store=True, max_memory=0.002,
                   num_worker=workers)
    built = []
    real_build = incremental.build_store
    monkeypatch.setattr(incremental.StoreInPass, "applies", staticmethod(lambda task: False))
    monkeypatch.setattr(incremental, "build_store", lambda *a, **k: built.append(1) or real_build(*a, **k))
    invert_network(two / "inputs/ifgramStack.h5", two, _opts(weight), update_store=True, max_memory=0.002)
    assert built
    a, b = _store(one), _store(two)
    assert a["info"] == b["info"]
    np.testing.assert_array_equal(a["exact"], b["exact"])
    assert (~a["exact"]).sum() >= 1 and a["exact"].sum() >= 0.9 * L * W  # (10, 10): no pair on date 59
    np.testing.assert_array_equal(a["pixel"], b["pixel"])
    np.testing.assert_array_equal(a["phase"], b["phase"])
    if weight == "no":
        assert a["weight"] is None and b["weight"] is None
    else:
        np.testing.assert_array_equal(a["weight"], b["weight"])
    ex = a["exact"].astype(bool)
    np.testing.assert_allclose(a["x"][:, ex], b["x"][:, ex], rtol=0, atol=1e-9)
    np.testing.assert_allclose(a["preSum"][:, ex], b["preSum"][:, ex], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(a["preNum"][ex], b["preNum"][ex])
    # and the time series are the solver's, untouched by keeping its float64 solution
    ts_one, ts_two = _read(one)[0], _read(two)[0]
    assert ts_one.tobytes() == ts_two.tobytes()


def test_inversion_killed_with_its_store_resumes_both(data, tmp_path, monkeypatch, caplog):
    """The store is written with the blocks, so an inversion killed half-way resumes the store too:
    the rerun solves only the blocks left, and the store equals an uninterrupted one."""
    from sbts.core.inversion import engine

    ref, wd = tmp_path / "ref", tmp_path / "wd"
    for d in (ref, wd):
        _write(d / "inputs/ifgramStack.h5", data, N0, "old")
    invert_network(ref / "inputs/ifgramStack.h5", ref, _opts("var"), update_store=True, max_memory=0.002)
    real = engine.solve_block
    calls = {"n": 0}

    def flaky(task, block, inputs=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(task, block, inputs)

    monkeypatch.setattr(engine, "solve_block", flaky)
    with pytest.raises(KeyboardInterrupt):
        invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
    assert not incremental.store_path(wd).exists()
    monkeypatch.setattr(engine, "solve_block", real)
    caplog.set_level(logging.INFO, logger="sbts")
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
    assert "resuming" in caplog.text
    a, b = _store(wd), _store(ref)
    for key in ("x", "preSum", "preNum", "exact", "pixel", "phase", "weight"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_cheaper_of_update_and_full_inversion_runs(data, tmp_path, monkeypatch, caplog):
    """With the measured costs, a 60 → 61-date unweighted stack whose update would read 108 of 180
    pairs is inverted in full (cheaper: the full solver shares one operator), a weighted one is
    updated; both end equal to a full inversion, and the store is moved on either way."""
    monkeypatch.setattr(incremental, "UPDATE_COST_RATIO", {"unweighted": 2.1, "weighted": 1.3})
    full = tmp_path / "full"
    invert_network(_appended(full, data), full, _opts("no"))
    for weight, expected in (("no", "full inversion: cheaper than the update"), ("var", "inversion updated")):
        wd = tmp_path / weight
        stack = _write(wd / "inputs/ifgramStack.h5", data, N0, "old")
        invert_network(stack, wd, _opts(weight), update_store=True, max_memory=0.002)
        _appended(wd, data)
        caplog.clear()
        caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
        invert_network(wd / "inputs/ifgramStack.h5", wd, _opts(weight), update_store=True, max_memory=0.002)
        assert expected in caplog.text, weight
        with h5py.File(incremental.store_path(wd), "r") as f:
            info = json.loads(f.attrs["SBTS_UPDATE_STORE"])
        assert info["stack_signature"] == "new" and len(info["dates"]) == N0 + 1
    ts_no, ts_full = _read(tmp_path / "no")[0], _read(full)[0]
    assert ts_no.tobytes() == ts_full.tobytes()  # the same full inversion, bit for bit


@pytest.mark.parametrize("weight", ["no", "var"])
def test_update_in_the_pool_and_on_dask_is_the_same_bits(data, tmp_path, weight, caplog, monkeypatch):
    """The update's blocks run in the pool or on dask (each reads its pairs, its part of the store and
    of the old time series where it runs): products and new store are those of one process, bit for
    bit, sparse pixels in the same order.  (The same blocks: one process with half the budget, as
    each of two workers gets.)  The pairs are read where the blocks run: never in this process with
    the pool or dask (the pool's forked workers record their reads; dask's do not have the
    recorder)."""
    import os
    import shutil

    readers = tmp_path / "readers.txt"
    real_read = incremental._read_pairs

    def recording(*args, **kwargs):
        with open(readers, "a") as f:
            f.write(f"{os.getpid()}\n")
        return real_read(*args, **kwargs)

    base = tmp_path / "base"
    stack = _write(base / "inputs/ifgramStack.h5", data, N0, "old")
    invert_network(stack, base, _opts(weight), update_store=True, max_memory=0.002)
    _appended(base, data)
    runs = {"here": dict(max_memory=0.001), "pool": dict(max_memory=0.002, num_worker=2),
            "dask": dict(max_memory=0.002, num_worker=2, cluster="local")}
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    out = {}
    monkeypatch.setattr(incremental, "_read_pairs", recording)
    for name, kwargs in runs.items():
        wd = tmp_path / name
        shutil.copytree(base, wd)
        caplog.clear()
        readers.write_text("")
        invert_network(wd / "inputs/ifgramStack.h5", wd, _opts(weight), update_store=True, **kwargs)
        pids = set(readers.read_text().split())
        if name == "here":
            assert pids == {str(os.getpid())}
        else:
            assert str(os.getpid()) not in pids and (pids or name == "dask")
        # (10, 10) had no pair on the old last date: inverted from all its pairs, in its block's worker
        assert re.search(r"updated, 1 inverted from all their pairs", caplog.text)
        blocks = int(re.search(r"kept; (\d+) block\(s\)", caplog.text).group(1))
        assert blocks >= 3
        with h5py.File(incremental.store_path(wd), "r") as f:
            store = {k: f[k][()] for k in ("x", "preSum", "preNum", "exact", "sparse/pixel", "sparse/phase")}
        out[name] = (_read(wd), store, blocks)
    (ts, tc, num), store, blocks = out["here"]
    for name in ("pool", "dask"):
        (ts2, tc2, num2), store2, blocks2 = out[name]
        assert blocks2 == blocks
        assert ts2.tobytes() == ts.tobytes() and tc2.tobytes() == tc.tobytes() and num2.tobytes() == num.tobytes()
        for key in store:
            assert store2[key].tobytes() == store[key].tobytes(), (name, key)


def _corrected(stack: Path, changed: dict[int, float]) -> None:
    """``unwrapPhase_phaseClosure`` as the phase-closure correction writes it: the pairs ``changed``
    shifted by their value, or (none changed) a virtual dataset with the loaded phase's values."""
    from sbts.core.io.stack_editor import StackEditor

    layers = np.array(sorted(changed), np.int64)
    with h5py.File(stack, "r") as f:
        values = f["unwrapPhase"][layers] if layers.size else None

    def fill(ds):
        for i, k in enumerate(layers.tolist()):
            ds[i] = np.where(values[i] != 0, values[i] + np.float32(changed[k]), 0)

    StackEditor(stack).write_corrected_copy("unwrapPhase_phaseClosure", "unwrapPhase", layers, fill)


def test_update_of_a_correction_that_changed_no_pair(data, tmp_path, caplog):
    """The inversion of ``unwrapPhase_phaseClosure`` is updated exactly when, before and after the
    append, the correction changed no pair (its dataset then holds the loaded phase, mapped without a
    copy); it is a full inversion, said in the log, when the correction changed a pair after the
    append, or had changed one when the store was written."""
    from dataclasses import replace

    opts = replace(_opts("var"), obs_dataset="unwrapPhase_phaseClosure")
    full = tmp_path / "full"
    _corrected(_appended(full, data), {})
    invert_network(full / "inputs/ifgramStack.h5", full, opts)
    ts_f = _read(full)[0]
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    for name, before, after, updated in (("mapped", {}, {}, True), ("changed_after", {}, {7: 2 * np.pi}, False),
                                         ("changed_before", {7: 2 * np.pi}, {}, False)):
        wd = tmp_path / name
        stack = _write(wd / "inputs/ifgramStack.h5", data, N0, "old")
        _corrected(stack, before)
        invert_network(stack, wd, opts, update_store=True, max_memory=0.002)
        with h5py.File(incremental.store_path(wd), "r") as f:
            assert json.loads(f.attrs["SBTS_UPDATE_STORE"])["loaded_phase"] is (not before)
        _corrected(_appended(wd, data), after)
        caplog.clear()
        invert_network(wd / "inputs/ifgramStack.h5", wd, opts, update_store=True, max_memory=0.002)
        assert ("inversion updated" in caplog.text) is updated, name
        if updated:
            assert incremental.holds_loaded_phase(wd / "inputs/ifgramStack.h5", "unwrapPhase_phaseClosure")
            np.testing.assert_allclose(_read(wd)[0], ts_f, rtol=0, atol=2e-6 * np.abs(ts_f).max())
        else:
            assert "unwrapPhase_phaseClosure is corrected over all pairs" in caplog.text
