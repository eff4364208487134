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
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.inversion import incremental
from sbts.core.inversion.engine import InversionOptions, invert_network
from sbts.core.inversion.kernel import invert_block
from sbts.core.io.products import StackWriter, TimeSeries
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo, Reference
from sbts.core.model.pairs import Pairs

L, W, N0 = 24, 30, 60
SIG_ATTR = "SBTS_INPUT_SIGNATURE"


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
    import re

    exact, redone = (int(v) for v in re.search(r"updated: (\d+) pixel\(s\) from the stored factor, (\d+)",
                                                 caplog.text).groups())
    assert exact + redone == L * W and exact >= 0.9 * L * W and redone >= 2
    invert_network(_appended(full, data), full, _opts(weight))
    ts_u, tc_u, num_u = _read(upd)
    ts_f, tc_f, num_f = _read(full)
    assert ts_u.shape == (N0 + 1, L, W)
    scale = np.abs(ts_f).max()
    np.testing.assert_allclose(ts_u, ts_f, rtol=0, atol=2e-6 * scale)
    np.testing.assert_allclose(tc_u, tc_f, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(num_u, num_f)
    assert num_u[11, 11] == 0 and num_u[10, 10] > 0
    # the stored factor was moved on: it is the factor of the whole stack (a second append would build on it)
    with h5py.File(incremental.store_path(upd), "r") as f:
        info = json.loads(f.attrs["SBTS_FACTOR"])
    assert info["stack_signature"] == "new" and len(info["dates"]) == N0 + 1


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


def test_pixel_whose_last_date_was_unconstrained_is_inverted_from_all_pairs():
    """Array level: a pixel whose old last date had no valid pair is not in the factor (flagged);
    the others extend to the kernel's answer."""
    rng = np.random.default_rng(0)
    n, k = 12, 50
    pairs = _network(n)
    d1, d2 = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    truth = np.cumsum(rng.normal(0, 1, (n, k)), axis=0)
    truth -= truth[0]
    phase = truth[d2] - truth[d1] + rng.normal(0, 0.1, (len(pairs), k))
    phase[d2 == n - 2, 0] = np.nan  # pixel 0: date n−2 has no pair among the old ones
    weight = rng.uniform(0.5, 2, phase.shape)
    old = d2 < n - 1
    state = incremental.factorize(phase[old], weight[old], d1[old], d2[old], n - 1)
    assert not state.exact[0] and state.exact[1:].all()
    new = incremental.extend(state, phase[~old], weight[~old], d1[~old], d2[~old], n)
    assert not new.exact[0] and new.exact[1:].all()
    ref = invert_block(phase, d1, d2, np.arange(n) / 30.0, weight=weight).timeseries
    x = incremental.solve(new)
    np.testing.assert_allclose(x[:, 1:], ref[1:, 1:], rtol=0, atol=1e-5 * np.abs(ref).max())


def test_killed_update_leaves_previous_products_and_the_rerun_completes(data, tmp_path, monkeypatch, caplog):
    """Interrupted in the middle of its blocks: the 60-date products and factor stay as they were, no
    partial file is left; the rerun updates.  Interrupted after the factor took its new name but
    before the time series did (simulated by restoring the old time series): the rerun solves from
    the moved-on factor.  Both end equal to a full inversion."""
    wd, full = tmp_path / "wd", tmp_path / "full"
    stack = _write(wd / "inputs/ifgramStack.h5", data, N0, "old")
    invert_network(stack, wd, _opts("var"), update_store=True, max_memory=0.002)
    before = {p.name: p.read_bytes() for p in wd.glob("*.h5")}
    _appended(wd, data)
    calls = {"n": 0}
    real = incremental.temporal_coherence

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(incremental, "temporal_coherence", dying)
    with pytest.raises(KeyboardInterrupt):
        invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
    assert calls["n"] == 2
    assert {p.name: p.read_bytes() for p in wd.glob("*.h5")} == before
    assert not [p for p in wd.iterdir() if ".part" in p.name or p.name.endswith(".tmp")]
    monkeypatch.setattr(incremental, "temporal_coherence", real)
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
    invert_network(_appended(full, data), full, _opts("var"))
    ts_f = _read(full)[0]
    np.testing.assert_allclose(_read(wd)[0], ts_f, rtol=0, atol=2e-6 * np.abs(ts_f).max())

    (wd / "timeseries.h5").write_bytes(before["timeseries.h5"])  # the factor moved on, the series did not
    caplog.set_level(logging.INFO, logger="sbts.core.inversion.incremental")
    invert_network(wd / "inputs/ifgramStack.h5", wd, _opts("var"), update_store=True, max_memory=0.002)
    assert "0 new pair(s), 1 new date(s) on the stored factor" not in caplog.text
    assert "inversion updated" in caplog.text
    ts_u = _read(wd)[0]
    assert ts_u.shape[0] == N0 + 1
    np.testing.assert_allclose(ts_u, ts_f, rtol=0, atol=2e-6 * np.abs(ts_f).max())


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
