"""quick_overview after appended acquisitions (issue 18): the kept sums plus the new pairs' rates and
the new triplets give, bit for bit, what a scan of every pair gives; anything else scans every pair.

The stacks are written as the loader writes them: pairs sorted by (date1, date2), so the pairs of a
new date sit between old ones, and the appended stack carries the signature of the one it extends
(``SBTS_INPUT_SIGNATURE``; the loader's record names the old one).
"""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pytest

from sbts.core.config.compute import ComputeOptions
from sbts.core.inversion import closure
from sbts.core.io.products import StackWriter
from sbts.core.io.workdir import WorkDir
from sbts.core.model.metadata import Grid, Metadata, RadarInfo
from sbts.core.model.pairs import Pairs
from sbts.core.steps import averages
from sbts.core.steps import overview_update as ou

SHAPE = (30, 24)
DATES = ["20200101", "20200113", "20200125", "20200206", "20200218", "20200301", "20200313"]


def _network(dates):
    """Each date with the next three, sorted by (date1, date2) as the loader sorts."""
    return sorted(f"{a}_{b}" for i, a in enumerate(dates) for b in dates[i + 1:i + 4])


def _phase(date12, seed=3):
    """Phase per pair from a per-date series (so closures are mostly zero), no-data and an
    unwrapping error; a pair's values depend only on its dates (an appended stack repeats them)."""
    rng = np.random.default_rng(seed)
    series = {d: rng.normal(0, 2, SHAPE) for d in DATES}
    out = []
    for name in date12:
        a, b = name.split("_")
        noise = np.random.default_rng(int(a + b[4:]) % 2**32).normal(0, 0.3, SHAPE)
        layer = (series[b] - series[a] + noise).astype(np.float32)
        layer[np.random.default_rng(int(b)).random(SHAPE) < 0.05] = 0  # no-data
        layer[3, 4] = layer[3, 4] or 0.1  # data at the reference pixel
        if name == "20200125_20200206":
            layer[4:9, 5:12] += 2 * np.pi  # an unwrapping error: non-zero integer closures
        out.append(layer)
    return np.stack(out)


def _write(wd: WorkDir, date12, signature: str, old_signature: str | None = None, keep=None, ref=(3, 4)):
    """The stack the loader would write (and its record of what it appended)."""
    wd.inputs.mkdir(parents=True, exist_ok=True)
    meta = Metadata(grid=Grid(*SHAPE), radar=RadarInfo(wavelength=0.0555)).with_reference(y=ref[0], x=ref[1])
    meta = meta.with_extra(SBTS_INPUT_SIGNATURE=signature)
    phase = _phase(date12)
    coherence = np.stack([np.random.default_rng(int(d[:8] + d[13:])).uniform(0, 1, SHAPE) for d in date12])
    coherence[:, 0, :3] = np.nan
    conncomp = (phase != 0).astype(np.int16)
    conncomp[:, 7, 7] = [0 if d.endswith("20200313") else 1 for d in date12]  # unwrapped until the new date
    with StackWriter(wd.stack, meta, Pairs.from_date12(date12, keep=keep),
                     {"unwrapPhase": np.float32, "coherence": np.float32, "connectComponent": np.int16}) as w:
        w.write("unwrapPhase", phase, None)
        w.write("coherence", coherence.astype(np.float32), None)
        w.write("connectComponent", conncomp, None)
    record = {"signature": signature}
    if old_signature is not None:
        record["update"] = {"old_signature": old_signature}
    (wd.inputs / "ifgramStack_load.json").write_text(json.dumps(record))


def _products(root):
    out = {}
    for name, key in (("avgPhaseVelocity.h5", "velocity"), ("numTriNonzeroIntAmbiguity.h5", "mask")):
        with h5py.File(root / name) as f:
            out[name] = f[key][()]
    out["stats"] = (root / closure.TRIPLET_STATS_FILE).read_text()
    return out


def _assert_same(a, b):
    for name in ("avgPhaseVelocity.h5", "numTriNonzeroIntAmbiguity.h5"):
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert a["stats"] == b["stats"]
    if "sums" in a and "sums" in b:  # the float64 sums, not only the float32 mean: the same additions
        for name in ("rateSum", "rateCount", "closureCount", "tripletValid", "tripletNonzero"):
            np.testing.assert_array_equal(a["sums"][name], b["sums"][name], err_msg=name)
        for name in ("tripletSum", "tripletSumSq"):  # summed over other blocks for the old triplets
            np.testing.assert_allclose(a["sums"][name], b["sums"][name], rtol=1e-12, atol=1e-9, err_msg=name)


def _sums(root):
    with h5py.File(ou.store_path(root)) as f:
        return {n: f[n][()] for n in f}


def _full(tmp_path, date12, compute, **kw):
    """A scan of every pair in a fresh work directory, with the store and without it (the same
    products); with its stored sums."""
    products = []
    for name, store in (("full", True), ("plain", False)):
        wd = WorkDir(tmp_path / name)
        _write(wd, date12, "new", **kw)
        averages.quick_overview(wd, compute, update_store=store)
        assert ou.store_path(wd.root).exists() == store
        products.append(_products(wd.root))
    _assert_same(*products)
    return products[0] | {"sums": _sums(tmp_path / "full")}


@pytest.mark.parametrize("memory, workers", [(4.0, 1), (2e-5, 1), (2e-5, 2)])
def test_update_after_an_appended_date_equals_a_scan_of_every_pair(tmp_path, caplog, memory, workers):
    """One block, many blocks, a pool of two: the velocity and T_int are the same bits, the
    statistics the same text; the update read only the new pairs and their triplets' pairs."""
    compute = ComputeOptions(max_memory=memory, num_worker=workers)
    old, new = _network(DATES[:-1]), _network(DATES)
    assert [d for d in new if d not in old] != new[-len(new) + len(old):]  # new pairs sit between old ones
    wd = WorkDir(tmp_path / "upd")
    _write(wd, old, "old")
    averages.quick_overview(wd, compute, update_store=True)
    assert ou.store_path(wd.root).is_file()
    _write(wd, new, "new", old_signature="old")
    caplog.set_level(logging.INFO, logger="sbts")
    averages.quick_overview(wd, compute, update_store=True)
    added = [r.getMessage() for r in caplog.records if "to the kept sums" in r.getMessage()]
    n_new = len(new) - len(old)
    n_new_tri = sum(1 for t in closure.triplet_indices(Pairs.from_date12(new)) if any(new[i] not in old for i in t))
    assert added == [f"quick_overview: adding {n_new} new pair rate(s) and {n_new_tri} new triplet(s) to the "
                     "kept sums"], added
    _assert_same(_products(wd.root) | {"sums": _sums(wd.root)}, _full(tmp_path, new, compute))
    with h5py.File(wd.root / "numTriNonzeroIntAmbiguity.h5") as f:
        assert f["mask"][()].max() > 0  # the test has non-zero closures to count


def test_the_store_holds_16_bytes_a_pixel_and_goes_away_without_the_switch(tmp_path):
    wd = WorkDir(tmp_path / "w")
    _write(wd, _network(DATES), "s")
    averages.quick_overview(wd, ComputeOptions(), update_store=True)
    with h5py.File(ou.store_path(wd.root)) as f:
        per_pixel = sum(f[n].dtype.itemsize * (f[n].size // (SHAPE[0] * SHAPE[1]))
                        for n in ("rateSum", "rateCount", "closureCount"))
    assert per_pixel == 16
    averages.quick_overview(wd, ComputeOptions(), update_store=False)
    assert not ou.store_path(wd.root).exists()  # it would no longer go with the products


@pytest.mark.parametrize("change, reason", [
    ("reloaded", "reloaded (not appended to)"),
    ("unsigned", "no load signature"),
    ("keep", "keep flags"),
    ("reference", "reference point"),
    ("between", "end on or before the last stored date"),
])
def test_anything_but_an_append_scans_every_pair(tmp_path, caplog, change, reason):
    """A stack loaded anew, a dropped old pair, another reference point, a new pair between old
    dates: the stored sums do not hold, every pair is scanned (and the result is a full scan's)."""
    compute = ComputeOptions()
    old = _network(DATES[:-1])
    wd = WorkDir(tmp_path / "upd")
    _write(wd, old, "old")
    averages.quick_overview(wd, compute, update_store=True)
    new, kw, previous, signature = _network(DATES), {}, "old", "new"
    if change == "reloaded":
        previous = None
    elif change == "unsigned":  # written by another tool: the same signature ("") as the stored one
        _write(wd, old, "")
        averages.quick_overview(wd, compute, update_store=True)
        previous = signature = ""
    elif change == "keep":
        kw["keep"] = [d != old[2] for d in new]
    elif change == "reference":
        kw["ref"] = (5, 6)
    else:
        new = sorted(old + ["20200101_20200218"])
    _write(wd, new, signature, old_signature=previous, **kw)
    caplog.set_level(logging.INFO, logger="sbts")
    averages.quick_overview(wd, compute, update_store=True)
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "to the kept sums" in m]
    assert [m for m in messages if m.startswith("quick_overview: scanning every pair") and reason in m], messages
    _assert_same(_products(wd.root), _full(tmp_path, new, compute, **kw))


def test_killed_before_the_store_was_renamed_the_rerun_updates_again(tmp_path, monkeypatch):
    """The products are written before the store: killed in between, the store still holds the old
    stack's sums and the rerun adds the new pairs to them again (not twice); killed after, the
    store holds the new stack's and the rerun writes them as they are."""
    compute = ComputeOptions()
    old, new = _network(DATES[:-1]), _network(DATES)
    wd = WorkDir(tmp_path / "upd")
    _write(wd, old, "old")
    averages.quick_overview(wd, compute, update_store=True)
    _write(wd, new, "new", old_signature="old")

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(ou, "write_store", killed)
        with pytest.raises(KeyboardInterrupt):
            averages.quick_overview(wd, compute, update_store=True)
    averages.quick_overview(wd, compute, update_store=True)
    full = _full(tmp_path, new, compute)
    _assert_same(_products(wd.root) | {"sums": _sums(wd.root)}, full)
    for name in ("avgPhaseVelocity.h5", "numTriNonzeroIntAmbiguity.h5"):
        (wd.root / name).unlink()
    averages.quick_overview(wd, compute, update_store=True)  # nothing new: the stored sums as they are
    _assert_same(_products(wd.root) | {"sums": _sums(wd.root)}, full)


@pytest.mark.parametrize("memory", [4.0, 2e-5])
def test_reference_maps_after_an_appended_date_equal_a_pass_over_every_pair(tmp_path, caplog, memory):
    """avgSpatialCoh and maskConnComp of reference_point: the kept sums plus the new pairs equal a
    pass over every kept pair, bit for bit (one block, many blocks); a pixel unwrapped until the new
    date leaves the mask."""
    old, new = _network(DATES[:-1]), _network(DATES)
    wd = WorkDir(tmp_path / "upd")
    _write(wd, old, "old")
    ou.reference_maps(wd, memory, update_store=True)
    _write(wd, new, "new", old_signature="old")
    caplog.set_level(logging.INFO, logger="sbts")
    coherence, mask = ou.reference_maps(wd, memory, update_store=True)
    assert f"reference_point: adding {len(new) - len(old)} new kept pair(s) to the kept averages" in caplog.text
    full = WorkDir(tmp_path / "full")
    _write(full, new, "new")
    coherence_full, mask_full = ou.reference_maps(full, memory, update_store=False)
    assert not (full.root / ou.REF_STORE_FILE).exists()
    np.testing.assert_array_equal(coherence, coherence_full)
    np.testing.assert_array_equal(mask, mask_full)
    assert not mask[7, 7] and np.isnan(coherence[0, :3]).all() and np.isfinite(coherence[1:]).all()


@pytest.mark.parametrize("mode", [dict(workers=2), dict(workers=2, cluster="local")], ids=["pool", "dask"])
def test_reference_maps_update_in_the_pool_and_on_dask_is_the_same(tmp_path, monkeypatch, mode):
    """The kept coherence sums continued by the new pairs block by block in the pool or on dask (the
    kept sums go to the workers by file): the same bits as here, the blocks read there."""
    import os

    old, new = _network(DATES[:-1]), _network(DATES)
    out = {}
    from sbts.core.io.products import IfgramStack

    readers = tmp_path / "readers.txt"
    real = IfgramStack.read

    def recording(self, name, *args, **kwargs):  # inherited by the pool's forked workers, not dask's
        if name == "coherence":
            with open(readers, "a") as f:
                f.write(f"{os.getpid()}\n")
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(IfgramStack, "read", recording)
    for name, kwargs in (("here", {}), ("there", mode)):
        wd = WorkDir(tmp_path / name)
        _write(wd, old, "old")
        ou.reference_maps(wd, 2e-5, update_store=True, **kwargs)
        _write(wd, new, "new", old_signature="old")
        readers.write_text("")
        out[name] = ou.reference_maps(wd, 2e-5, update_store=True, **kwargs)
        pids = set(readers.read_text().split())
        assert (pids == {str(os.getpid())}) if name == "here" else (str(os.getpid()) not in pids)
    for a, b in zip(out["here"], out["there"]):
        assert a.tobytes() == b.tobytes()


def test_network_coherence_after_an_appended_date_averages_only_the_new_pairs(tmp_path, caplog):
    """modify_network's mean coherence per pair: the kept means plus the new pairs' equal a pass over
    every pair (float64 noise: the block sizes follow the number of pairs); another mask or area
    averages every pair again."""
    from sbts.core.io.blocks import Block
    from sbts.core.io.products import IfgramStack
    from sbts.core.steps.network import spatial_average_coherence

    old, new = _network(DATES[:-1]), _network(DATES)
    wd = WorkDir(tmp_path / "upd")
    _write(wd, old, "old")
    mask = np.ones(SHAPE, bool)
    mask[:5] = False
    ou.pair_coherence(IfgramStack(wd.stack), mask, None, 2e-5, wd.root)
    _write(wd, new, "new", old_signature="old")
    caplog.set_level(logging.INFO, logger="sbts")
    stack = IfgramStack(wd.stack)
    got = ou.pair_coherence(stack, mask, None, 2e-5, wd.root)
    n_new = len(new) - len(old)
    assert f"averaging the coherence of {n_new} new pair(s), {len(old)} kept" in caplog.text
    np.testing.assert_allclose(got, spatial_average_coherence(stack, mask, None, 4.0), rtol=1e-12, atol=0)
    caplog.clear()
    aoi = Block(2, 20, 3, 15)
    got = ou.pair_coherence(stack, mask, aoi, 2e-5, wd.root)
    assert "averaging the coherence of every pair (the mask or the area changed)" in caplog.text
    np.testing.assert_allclose(got, spatial_average_coherence(stack, mask, aoi, 4.0), rtol=1e-12, atol=0)
