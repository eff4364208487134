"""Network modification: each drop rule, their union, MST protection, AOI/mask mean coherence."""

from __future__ import annotations

import datetime as dt
import itertools

import h5py
import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.errors import DataError, InputError, TemplateError
from sbts.core.io.blocks import Block
from sbts.core.io.products import IfgramStack, StackWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo
from sbts.core.model.pairs import Pairs
from sbts.core.steps import network


def T(**values) -> Template:
    return Template({f"mintpy.network.{k}": str(v) for k, v in values.items()}, warn_unknown=False)


def network_of(num_date=6, max_conn=3, step_days=12, bperp_dates=None):
    """All pairs up to ``max_conn`` neighbours apart, dates every ``step_days``."""
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=step_days * k) for k in range(num_date)]
    i1, i2 = zip(*[(a, b) for a in range(num_date) for b in range(a + 1, min(num_date, a + max_conn + 1))])
    if bperp_dates is None:
        bperp_dates = np.array([0, 40, -30, 120, 10, -80, 50, 0][:num_date], float)
    return Pairs.from_indices(dates, i1, i2, bperp_dates)


def dropped(report):
    return set(report.reasons)


# ---------------------------------------------------------------------------- the rule table
def test_every_network_key_belongs_to_a_rule_in_mintpy_order():
    from sbts.core.config.template import default_values

    keys = {k.split(".", 2)[2] for k in default_values() if k.startswith("mintpy.network.")}
    in_rules = {key for rule in network.NETWORK_RULES for key in rule.keys}
    assert keys == in_rules | set(network.COHERENCE_AREA_KEYS)
    # coherenceBased builds its spanning tree on what the others keep: it comes last
    assert network.NETWORK_RULES[-1].name == "coherenceBased"
    assert len({rule.name for rule in network.NETWORK_RULES}) == len(network.NETWORK_RULES)


def test_each_rule_reports_under_its_name():
    pairs = network_of()
    t = T(tempBaseMax=30, perpBaseMax=100, connNumMax=2, startDate="20200113", endDate="20200206",
          excludeDate="20200125", excludeDate12="20200113_20200125", excludeIfgIndex="0")
    report = network.select_pairs(pairs, t)
    fired = set(report.counts())
    assert fired == {"tempBaseMax", "perpBaseMax", "connNumMax", "startDate", "endDate", "excludeDate",
                     "excludeDate12", "excludeIfgIndex"}
    for name, why in report.reasons.items():
        assert all(r.split(":", 1)[0] in fired and r.split(":", 1)[1].strip() for r in why), (name, why)


# ---------------------------------------------------------------------------- single rules
def test_no_rule_keeps_all_and_resets_previous_drops():
    pairs = network_of()
    pairs = pairs.with_keep(np.zeros(len(pairs), bool))  # previous run dropped everything
    report = network.select_pairs(pairs, T())
    assert report.keep.all() and report.reasons == {}
    assert report.summary().startswith(f"{len(pairs)} of {len(pairs)} pairs kept")


def test_temp_base_max():
    pairs = network_of()
    report = network.select_pairs(pairs, T(tempBaseMax=30))
    tb = pairs.temporal_baseline_days()
    np.testing.assert_array_equal(report.keep, tb <= 30)
    name = pairs.date12[int(np.argmax(tb))]
    assert report.reasons[name][0].startswith("tempBaseMax: 36 days")


def test_perp_base_max_uses_absolute_value():
    pairs = network_of()
    report = network.select_pairs(pairs, T(perpBaseMax=100))
    np.testing.assert_array_equal(report.keep, np.abs(pairs.bperp) <= 100)
    assert (pairs.bperp[~report.keep] < 0).any()  # a large negative baseline is dropped too


def test_conn_num_max_keeps_sequential_network():
    pairs = network_of(max_conn=3)
    i1, i2 = pairs.indices()
    report = network.select_pairs(pairs, T(connNumMax=1))
    np.testing.assert_array_equal(report.keep, i2 - i1 == 1)
    report = network.select_pairs(pairs, T(connNumMax=2))
    np.testing.assert_array_equal(report.keep, i2 - i1 <= 2)
    with pytest.raises(TemplateError):
        network.select_pairs(pairs, T(connNumMax=-1))


def test_start_and_end_date():
    pairs = network_of()
    report = network.select_pairs(pairs, T(startDate="20200113", endDate="20200206"))
    expected = np.array([a >= dt.date(2020, 1, 13) and b <= dt.date(2020, 2, 6)
                         for a, b in zip(pairs.date1, pairs.date2)])
    np.testing.assert_array_equal(report.keep, expected)
    with pytest.raises(TemplateError, match="startDate"):
        network.select_pairs(pairs, T(startDate="2020-13-45"))


def test_exclude_date_drops_every_pair_with_it():
    pairs = network_of()
    report = network.select_pairs(pairs, T(excludeDate="20200125,200218"))
    bad = {dt.date(2020, 1, 25), dt.date(2020, 2, 18)}
    expected = np.array([a not in bad and b not in bad for a, b in zip(pairs.date1, pairs.date2)])
    np.testing.assert_array_equal(report.keep, expected)
    assert "excludeDate: contains 20200125" in report.reasons["20200113_20200125"]


def test_exclude_date12_both_formats():
    pairs = network_of()
    report = network.select_pairs(pairs, T(excludeDate12="20200101_20200113, 200113-200206"))
    assert dropped(report) == {"20200101_20200113", "20200113_20200206"}
    with pytest.raises(TemplateError, match="excludeDate12"):
        network.select_pairs(pairs, T(excludeDate12="20200101"))


def test_parse_index_list_zero_based_inclusive_ranges():
    assert network.parse_index_list("25, 30, 34, 1:5", 40) == [1, 2, 3, 4, 5, 25, 30, 34]
    assert network.parse_index_list(["[0:2", "7]"], 8) == [0, 1, 2, 7]
    assert network.parse_index_list("3:3", 4) == [3]
    with pytest.raises(TemplateError, match="outside 0..9"):
        network.parse_index_list("10", 10)
    with pytest.raises(TemplateError, match="range"):
        network.parse_index_list("5:2", 10)
    with pytest.raises(TemplateError):
        network.parse_index_list("a", 10)


def test_exclude_ifg_index():
    pairs = network_of()
    report = network.select_pairs(pairs, T(excludeIfgIndex="0, 3:4"))
    assert np.flatnonzero(~report.keep).tolist() == [0, 3, 4]
    assert report.reasons[pairs.date12[3]] == ["excludeIfgIndex: index 3"]


def test_reference_file_text_and_stack(tmp_path):
    pairs = network_of()
    keep = pairs.date12[:4]
    (tmp_path / "list.txt").write_text("# pairs to keep\n" + "\n".join(keep[:3]) + "\n"
                                       + "200101-200206  extra columns ignored\n\n")
    report = network.select_pairs(pairs, T(referenceFile="list.txt"), work_dir=tmp_path)
    assert [n for n, k in zip(pairs.date12, report.keep) if k] == sorted(set(keep[:3]) | {"20200101_20200206"})
    # an ifgramStack.h5: its kept pairs are used
    flags = np.zeros(len(pairs), bool)
    flags[[1, 5]] = True
    meta = Metadata(grid=Grid(3, 4))
    with StackWriter(tmp_path / "ref.h5", meta, pairs.with_keep(flags), ["coherence"]):
        pass
    report = network.select_pairs(pairs, T(referenceFile=str(tmp_path / "ref.h5")))
    np.testing.assert_array_equal(report.keep, flags)
    with pytest.raises(InputError, match="not found"):
        network.select_pairs(pairs, T(referenceFile="missing.txt"), work_dir=tmp_path)


def test_area_ratio_based_is_refused():
    with pytest.raises(TemplateError, match="areaRatioBased"):
        network.select_pairs(network_of(), T(areaRatioBased="yes"))


def test_rules_combine_as_union_with_all_reasons():
    pairs = network_of()
    t = T(tempBaseMax=30, excludeDate="20200101", excludeIfgIndex="0")
    report = network.select_pairs(pairs, t)
    tb = pairs.temporal_baseline_days()
    first = np.array([a == dt.date(2020, 1, 1) for a in pairs.date1])
    expected_drop = (tb > 30) | first
    np.testing.assert_array_equal(~report.keep, expected_drop)
    # pair 0 (20200101_20200113) is dropped by two rules, both recorded
    rules = [r.split(":")[0] for r in report.reasons[pairs.date12[0]]]
    assert rules == ["excludeDate", "excludeIfgIndex"]
    counts = report.counts()
    assert counts["excludeDate"] == first.sum() and counts["tempBaseMax"] == (tb > 30).sum()
    assert "excludeIfgIndex: 1 pair(s)" in report.summary()


# ---------------------------------------------------------------------------- coherence + MST
def _brute_force_mst(pairs, weight, candidates):
    """Minimum-weight spanning tree by enumerating every subset of n-1 candidate pairs."""
    i1, i2 = pairs.indices()
    n = len(pairs.dates)
    best, best_set = np.inf, None
    cand = np.flatnonzero(candidates)
    for subset in itertools.combinations(cand, n - 1):
        parent = list(range(n))

        def find(a, parent=parent):
            while parent[a] != a:
                a = parent[a]
            return a

        ok = True
        for k in subset:
            ra, rb = find(i1[k]), find(i2[k])
            if ra == rb:
                ok = False
                break
            parent[ra] = rb
        if ok and weight[list(subset)].sum() < best:
            best, best_set = weight[list(subset)].sum(), set(subset)
    return best_set


def test_coherence_based_keeps_minimum_spanning_tree():
    pairs = network_of(num_date=5, max_conn=4)  # complete network of 5 dates: 10 pairs
    rng = np.random.default_rng(3)
    coh = rng.uniform(0.2, 0.6, len(pairs))
    coh[[2, 7]] = [0.9, 0.85]
    report = network.select_pairs(pairs, T(coherenceBased="yes", minCoherence=0.7), coh)
    tree = _brute_force_mst(pairs, 1 / coh, np.ones(len(pairs), bool))
    expected = (coh >= 0.7)
    expected[list(tree)] = True
    np.testing.assert_array_equal(report.keep, expected)
    assert pairs.with_keep(report.keep).num_connected_components() == 1
    assert report.coherence is not None
    # without the MST only the coherent pairs stay and the network falls apart
    report = network.select_pairs(pairs, T(coherenceBased="yes", minCoherence=0.7, keepMinSpanTree="no"), coh)
    np.testing.assert_array_equal(report.keep, coh >= 0.7)
    assert "coherenceBased: mean coherence" in next(iter(report.reasons.values()))[0]


def test_mst_is_built_on_pairs_the_other_rules_keep():
    pairs = network_of(num_date=5, max_conn=4)
    coh = np.linspace(0.1, 0.6, len(pairs))
    coh[np.isnan(coh)] = 0
    report = network.select_pairs(pairs, T(coherenceBased="yes", minCoherence=0.95, excludeIfgIndex="9"), coh)
    others = np.ones(len(pairs), bool)
    others[9] = False
    tree = _brute_force_mst(pairs, 1 / coh, others)
    np.testing.assert_array_equal(np.flatnonzero(report.keep), sorted(tree))
    assert pairs.with_keep(report.keep).num_connected_components() == 1


def test_coherence_based_needs_coherence_and_handles_nan():
    pairs = network_of(num_date=4, max_conn=1)
    with pytest.raises(DataError):
        network.select_pairs(pairs, T(coherenceBased="yes"))
    coh = np.array([np.nan, 0.9, 0.2])
    report = network.select_pairs(pairs, T(coherenceBased="yes", minCoherence=0.5), coh)
    assert report.keep.all()  # a chain: every pair is in the tree


# ---------------------------------------------------------------------------- stack helpers
def make_stack(path, pairs, shape=(10, 8), geo=True, **data):
    grid = Grid(shape[0], shape[1], GeoGrid(-99.0, 19.5, 0.01, -0.01) if geo else None)
    meta = Metadata(grid=grid, radar=RadarInfo(wavelength=0.0555))
    with StackWriter(path, meta, pairs, {k: v.dtype for k, v in data.items()}) as w:
        for name, value in data.items():
            w.write(name, value, None)
    return path


def test_spatial_average_coherence_mask_aoi_blockwise(tmp_path, monkeypatch):
    pairs = network_of()
    rng = np.random.default_rng(1)
    coh = rng.uniform(0, 1, (len(pairs), 10, 8)).astype(np.float32)
    coh[2, 4, 4] = np.nan
    coh[5, 6:, :] = np.nan
    make_stack(tmp_path / "s.h5", pairs, coherence=coh)
    mask = rng.uniform(size=(10, 8)) > 0.3
    aoi = Block(2, 9, 1, 7)
    monkeypatch.setattr(IfgramStack, "chunk_shape", lambda self, name: None)  # let blocks be tiny
    out = network.spatial_average_coherence(tmp_path / "s.h5", mask, aoi, max_memory=2e-6)
    sub = np.where(mask[None, 2:9, 1:7], coh[:, 2:9, 1:7], np.nan)
    np.testing.assert_allclose(out, np.nanmean(sub, axis=(1, 2)), rtol=1e-6)
    full = network.spatial_average_coherence(tmp_path / "s.h5", None, None, max_memory=2e-6)
    np.testing.assert_allclose(full, np.nanmean(coh, axis=(1, 2)), rtol=1e-6)
    with pytest.raises(DataError, match="no pixel of the mask"):
        network.spatial_average_coherence(tmp_path / "s.h5", np.zeros((10, 8), bool), aoi)


def test_parse_aoi_yx_and_lalo():
    meta = Metadata(grid=Grid(10, 8, GeoGrid(-99.0, 19.5, 0.01, -0.01)))
    assert network.parse_aoi(T(), meta) is None
    assert network.parse_aoi(T(aoiYX="2:9,1:7"), meta) == Block(2, 9, 1, 7)
    assert network.parse_aoi(T(aoiYX="0:100,3:5"), meta) == Block(0, 10, 3, 5)  # clipped to the image
    # S:N,W:E → rows from N (top) to S, cols from W to E
    assert network.parse_aoi(T(aoiLALO="19.42:19.48,-98.97:-98.93"), meta) == Block(2, 8, 3, 7)
    with pytest.raises(TemplateError, match="aoiYX"):
        network.parse_aoi(T(aoiYX="2:9"), meta)
    with pytest.raises(TemplateError, match="overlap"):
        network.parse_aoi(T(aoiLALO="10:11,0:1"), meta)
    radar = Metadata(grid=Grid(10, 8))
    with pytest.raises(TemplateError, match="radar coordinates"):
        network.parse_aoi(T(aoiLALO="19.42:19.48,-98.97:-98.93"), radar)


def test_modify_network_writes_drop_flags_and_table(tmp_path, caplog):
    pairs = network_of(num_date=5, max_conn=2)
    m = len(pairs)
    coh = np.empty((m, 10, 8), np.float32)
    levels = np.linspace(0.3, 0.95, m)
    coh[:] = levels[:, None, None]
    coh[:, 0, :] = 0.0  # the water row, masked out below
    stack = make_stack(tmp_path / "inputs" / "ifgramStack.h5", pairs, coherence=coh)
    water = np.ones((10, 8), bool)
    water[0] = False
    write_map(tmp_path / "waterMask.h5", Metadata(grid=Grid(10, 8)), "mask", {"waterMask": water})
    t = T(coherenceBased="yes", minCoherence=0.6, excludeDate="20200113")
    with h5py.File(stack) as f:
        before = f["dropIfgram"].attrs["MODIFICATION_TIME"]
    report = network.modify_network(stack, t, tmp_path, max_memory=0.01)
    np.testing.assert_allclose(report.coherence, levels, rtol=1e-6)  # the water row is excluded
    with h5py.File(stack) as f:
        np.testing.assert_array_equal(f["dropIfgram"][()], report.keep)
        after = f["dropIfgram"].attrs["MODIFICATION_TIME"]
    assert after != before
    assert not report.keep.all()
    assert "no kept pair" in caplog.text and "20200113" in caplog.text
    table = (tmp_path / "coherenceSpatialAvg.txt").read_text().splitlines()
    rows = [line.split() for line in table if not line.startswith("#")]
    # MintPy's columns: DATE12, mean, Btemp/days, Bperp/m, index; drop decisions as # lines
    assert len(rows) == m and {len(r) for r in rows} == {5} and rows[0][0] == pairs.date12[0]
    np.testing.assert_allclose([float(r[1]) for r in rows], levels, atol=1e-4)
    assert [int(r[4]) for r in rows] == list(range(m))
    assert [float(r[2]) for r in rows] == pairs.temporal_baseline_days().tolist()
    dropped = [line.split()[2].rstrip(":") for line in table if line.startswith("# dropped ")]
    assert dropped == [n for n, k in zip(pairs.date12, report.keep) if not k]
    # same rules again: the drop list is unchanged, the file is not touched
    network.modify_network(stack, t, tmp_path)
    with h5py.File(stack) as f:
        assert f["dropIfgram"].attrs["MODIFICATION_TIME"] == after
    # a relaxed template brings the pairs back (modify_network starts from all pairs)
    report = network.modify_network(stack, T(), tmp_path)
    assert report.keep.all()
    assert IfgramStack(stack).pairs.keep.all()


def test_modify_network_mask_file_errors(tmp_path):
    pairs = network_of(num_date=3, max_conn=1)
    stack = make_stack(tmp_path / "s.h5", pairs, coherence=np.ones((2, 10, 8), np.float32))
    # default waterMask.h5 absent: fine
    network.modify_network(stack, T(), tmp_path)
    with pytest.raises(InputError, match="maskFile"):
        network.modify_network(stack, T(maskFile="myMask.h5"), tmp_path)


def test_modify_network_warns_on_disconnected_network(tmp_path, caplog):
    pairs = network_of(num_date=4, max_conn=1)
    stack = make_stack(tmp_path / "s.h5", pairs, coherence=np.ones((3, 10, 8), np.float32))
    network.modify_network(stack, T(excludeIfgIndex="1"), tmp_path)
    assert "2 disconnected parts" in caplog.text
