"""Data model: metadata round trips, every product type round trips, block iteration, atomic writes."""

from __future__ import annotations

import datetime as dt

import h5py
import numpy as np
import pytest

from sbts.core.errors import InputError
from sbts.core.io.blocks import Block, plan_blocks
from sbts.core.io.h5 import H5Writer, part_path, read_attrs
from sbts.core.io.products import (
    Geometry,
    IfgramStack,
    MapProduct,
    Product,
    StackWriter,
    TimeSeries,
    TimeSeriesWriter,
    write_map,
)
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo
from sbts.core.model.pairs import Pairs


def _meta(length=7, width=9, geo=True) -> Metadata:
    g = GeoGrid(x_first=-99.2, y_first=19.5, x_step=0.001, y_step=-0.001, epsg=4326) if geo else None
    return Metadata(grid=Grid(length, width, g), radar=RadarInfo(wavelength=0.0555, alooks=2, rlooks=8,
                                                                 heading=-12.5, orbit_direction="ASCENDING"),
                    extra={"PLATFORM_CUSTOM": "x", "mintpy.networkInversion.weightFunc": "var"})


def test_metadata_round_trip_keeps_unknown_keys():
    attrs = {"LENGTH": "7", "WIDTH": "9", "FILE_TYPE": "timeseries", "WAVELENGTH": "0.0555", "ALOOKS": "2",
             "RLOOKS": "8", "X_FIRST": "-99.2", "Y_FIRST": "19.5", "X_STEP": "0.001", "Y_STEP": "-0.001",
             "REF_Y": "3", "REF_X": "4", "REF_DATE": "20200101", "SOMETHING_ELSE": "kept", "UNIT": "m"}
    meta = Metadata.from_attrs(attrs)
    assert meta.grid.shape == (7, 9) and meta.grid.is_geocoded
    assert meta.radar.wavelength == 0.0555 and meta.radar.number_of_looks() == round(16 / 1.94)
    assert meta.reference.y == 3 and meta.reference.date == dt.date(2020, 1, 1)
    back = meta.to_attrs()
    for key, value in attrs.items():
        assert float(back[key]) == float(value) if key in ("WAVELENGTH", "X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP") \
            else back[key] == value


def test_metadata_errors_name_the_key():
    with pytest.raises(InputError, match="LENGTH/WIDTH"):
        Metadata.from_attrs({"FILE_TYPE": "x"}, source="f.h5")
    with pytest.raises(InputError, match="WAVELENGTH.*abc"):
        Metadata.from_attrs({"LENGTH": "1", "WIDTH": "1", "WAVELENGTH": "abc"})
    with pytest.raises(InputError, match="NCORRLOOKS"):
        RadarInfo().number_of_looks()


def test_geogrid_pixel_centres():
    g = GeoGrid(10.0, 50.0, 0.5, -0.25)
    assert g.yx_to_lalo(0, 0) == (50.0 - 0.125, 10.25)
    assert g.lalo_to_yx(*g.yx_to_lalo(3, 5)) == (3, 5)


def _pairs() -> Pairs:
    return Pairs.from_date12(["20200101_20200113", "20200101_20200125", "20200113_20200125"],
                             bperp=[10.0, -5.0, -15.0], keep=[True, False, True])


def test_ifgram_stack_round_trip(tmp_path):
    meta, pairs = _meta(), _pairs()
    rng = np.random.default_rng(1)
    unw = rng.normal(size=(3, 7, 9)).astype(np.float32)
    coh = rng.uniform(size=(3, 7, 9)).astype(np.float32)
    cc = np.ones((3, 7, 9), np.int16)
    with StackWriter(tmp_path / "ifgramStack.h5", meta, pairs, ["unwrapPhase", "coherence", "connectComponent"]) as w:
        w.write("unwrapPhase", unw)
        w.write("coherence", coh[:, :4], Block(0, 4, 0, 9))
        w.write("coherence", coh[:, 4:], Block(4, 7, 0, 9))
        w.write("connectComponent", cc)
    stack = Product.open(tmp_path / "ifgramStack.h5")
    assert isinstance(stack, IfgramStack)
    assert stack.pairs.date12 == pairs.date12
    np.testing.assert_array_equal(stack.pairs.keep, [True, False, True])
    np.testing.assert_allclose(stack.pairs.bperp, [10, -5, -15])
    np.testing.assert_array_equal(stack.read("unwrapPhase"), unw)
    np.testing.assert_array_equal(stack.read("coherence", Block(2, 5, 1, 8), [2, 0]), coh[[2, 0], 2:5, 1:8])
    with h5py.File(tmp_path / "ifgramStack.h5") as f:  # MintPy's dtypes and shapes
        assert f["date"].dtype == np.dtype("S8") and f["date"].shape == (3, 2)
        assert f["dropIfgram"].dtype == bool and f["connectComponent"].dtype == np.int16
        assert f.attrs["FILE_TYPE"] == "ifgramStack" and f.attrs["LENGTH"] == "7"
        assert "MODIFICATION_TIME" in f["unwrapPhase"].attrs


def test_timeseries_geometry_and_maps_round_trip(tmp_path):
    meta = _meta()
    data = np.arange(3 * 7 * 9, dtype=np.float32).reshape(3, 7, 9)
    with TimeSeriesWriter(tmp_path / "timeseries.h5", meta.with_reference(y=1, x=2, date=dt.date(2020, 1, 1)),
                          ["20200101", "20200113", "20200125"], np.array([0, 10, -5])) as w:
        w.write("timeseries", data)
    ts = TimeSeries(tmp_path / "timeseries.h5")
    assert ts.date_strings == ["20200101", "20200113", "20200125"] and ts.metadata.unit == "m"
    assert ts.metadata.reference.date == dt.date(2020, 1, 1)
    np.testing.assert_array_equal(ts.read_dates(index=1), data[1])
    assert ts.date_index("2020-01-13") == 1
    with pytest.raises(InputError, match="20200201"):
        ts.date_index("20200201")
    geom = {"height": np.ones((7, 9), np.float32), "waterMask": np.ones((7, 9), bool)}
    write_map(tmp_path / "geometryGeo.h5", meta, "geometry", geom)
    g = Product.open(tmp_path / "geometryGeo.h5")
    assert isinstance(g, Geometry) and g.read("waterMask").dtype == bool
    write_map(tmp_path / "velocity.h5", meta, "velocity", {"velocity": data[0], "velocityStd": data[1]}, unit="m/year")
    v = Product.open(tmp_path / "velocity.h5")
    assert isinstance(v, MapProduct) and v.metadata.unit == "m/year"
    np.testing.assert_array_equal(v.read("velocityStd", Block(1, 3, 2, 4)), data[1, 1:3, 2:4])
    attrs = read_attrs(tmp_path / "velocity.h5")
    assert attrs["X_FIRST"] == "-99.2" and attrs["FILE_TYPE"] == "velocity"


def test_inconsistent_file_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(FILE_TYPE="timeseries", LENGTH="5", WIDTH="5")
        f["date"] = np.array([b"20200101"])
        f["timeseries"] = np.zeros((1, 4, 5), np.float32)
    with pytest.raises(InputError, match="LENGTH/WIDTH say"):
        Product.open(path)
    path.write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="cannot be read as HDF5"):
        Product.open(path)


def test_blocks_tile_exactly_and_respect_budget_and_chunks():
    shape = (1000, 700)
    blocks = plan_blocks(shape, bytes_per_pixel=1000, max_memory_gb=0.05, chunk_shape=(16, 700))
    covered = np.zeros(shape, int)
    for b in blocks:
        covered[b.rows, b.cols] += 1
        assert b.size * 1000 <= 0.05 * 1024**3
        assert b.row_start % 16 == 0
    assert (covered == 1).all() and len(blocks) > 1
    # a budget too small for one full-width chunk row splits columns too
    small = plan_blocks((100, 10000), bytes_per_pixel=1e6, max_memory_gb=1e-3, chunk_shape=(1, 100))
    assert any(b.shape[1] < 10000 for b in small)
    cov = np.zeros((100, 10000), int)
    for b in small:
        cov[b.rows, b.cols] += 1
    assert (cov == 1).all()


def test_stack_larger_than_block_budget_reads_block_by_block(tmp_path):
    """A stack bigger than the memory budget is written and read back block by block, equal to the whole."""
    meta, pairs = _meta(64, 50, geo=False), _pairs()
    rng = np.random.default_rng(0)
    full = rng.normal(size=(3, 64, 50)).astype(np.float32)
    budget_gb = 3 * 4 * 64 * 50 / 4 / 1024**3  # a quarter of the stack
    blocks = plan_blocks((64, 50), 3 * 4, budget_gb)
    assert len(blocks) >= 4
    with StackWriter(tmp_path / "s.h5", meta, pairs, ["unwrapPhase"]) as w:
        for b in blocks:
            w.write("unwrapPhase", full[:, b.rows, b.cols], b)
    stack = IfgramStack(tmp_path / "s.h5")
    out = np.empty_like(full)
    for b in plan_blocks((64, 50), 3 * 4, budget_gb, stack.chunk_shape("unwrapPhase")):
        out[:, b.rows, b.cols] = stack.read("unwrapPhase", b)
    np.testing.assert_array_equal(out, full)


def test_atomic_write_leaves_nothing_on_error_and_resumes_with_signature(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with H5Writer(target, {"FILE_TYPE": "mask", "LENGTH": "4", "WIDTH": "4"}) as w:
            w.create("mask", shape=(4, 4), dtype=np.float32)
            raise RuntimeError("boom")
    assert not target.exists() and not part_path(target).exists()

    blocks = plan_blocks((4, 4), 4, 16 * 2 / 1024**3)  # 2 rows per block
    with pytest.raises(KeyboardInterrupt):
        with H5Writer(target, {"FILE_TYPE": "mask", "LENGTH": "4", "WIDTH": "4"}, signature="abc") as w:
            w.create("mask", shape=(4, 4), dtype=np.float32)
            w.write("mask", np.full((2, 4), 7, np.float32), blocks[0])
            w.mark_done(blocks[0])
            raise KeyboardInterrupt
    assert not target.exists() and part_path(target).exists()
    with H5Writer(target, {"FILE_TYPE": "mask", "LENGTH": "4", "WIDTH": "4"}, signature="abc") as w:
        assert w.resumed and w.is_done(blocks[0]) and not w.is_done(blocks[1])
        w.create("mask", shape=(4, 4), dtype=np.float32)
        w.write("mask", np.full((2, 4), 8, np.float32), blocks[1])
    with h5py.File(target) as f:
        np.testing.assert_array_equal(f["mask"][()], [[7] * 4] * 2 + [[8] * 4] * 2)
        assert "SBTS_DONE_BLOCKS" not in f.attrs
    assert not part_path(target).exists()
    # another signature does not reuse a stale partial file
    part_path(target).write_bytes(b"junk")
    with H5Writer(target, {"FILE_TYPE": "mask", "LENGTH": "1", "WIDTH": "1"}, signature="other") as w:
        assert not w.resumed
        w.create("mask", data=np.zeros((1, 1)))


def test_pairs_validation_and_date_bperp():
    with pytest.raises(InputError, match="appears twice"):
        Pairs.from_date12(["20200101_20200113", "20200101_20200113"])
    with pytest.raises(InputError, match="after date1"):
        Pairs.from_date12(["20200113_20200101"])
    p = Pairs.from_indices([dt.date(2020, 1, 1), dt.date(2020, 1, 13), dt.date(2020, 1, 25)], [0, 0, 1], [1, 2, 2],
                           bperp_dates=[0, 30, -20])
    np.testing.assert_allclose(p.date_bperp(), [0, 30, -20], atol=1e-5)
    assert p.num_connected_components() == 1
    assert p.with_keep([False, True, False]).num_connected_components() == 2


def test_connected_components_match_scipy():
    """The union-find count against scipy.sparse.csgraph on random sparse networks."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(7)
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=12 * k) for k in range(30)]
    for _ in range(20):
        unique = {(a, min(a + k, 29)) for a, k in zip(rng.integers(0, 29, 25), rng.integers(1, 4, 25))}
        i1, i2 = np.array(sorted(unique)).T
        keep = rng.random(i1.size) < 0.7
        pairs = Pairs.from_indices(dates, i1, i2, np.zeros(30)).with_keep(keep)
        a, b = pairs.indices()
        n = len(pairs.dates)
        graph = coo_matrix((np.ones(int(keep.sum())), (a[keep], b[keep])), shape=(n, n))
        assert pairs.num_connected_components() == connected_components(graph, directed=False)[0]


def test_utm_zone_written_for_utm_grids_and_read_back():
    """A projected UTM grid carries MintPy's UTM_ZONE, or MintPy's tools take its metres as degrees."""
    from sbts.core.model.metadata import GeoGrid, Grid, Metadata

    utm = Metadata(Grid(3, 4, GeoGrid(480000.0, 2150000.0, 80.0, -80.0, "meters", "meters", 32614)))
    a = utm.to_attrs()
    assert a["UTM_ZONE"] == "14N" and a["EPSG"] == "32614"
    south = Metadata(Grid(3, 4, GeoGrid(300000.0, 7000000.0, 30.0, -30.0, "meters", "meters", 32733)))
    assert south.to_attrs()["UTM_ZONE"] == "33S"
    # MintPy's prep_gamma writes UTM_ZONE and no EPSG
    back = Metadata.from_attrs({"LENGTH": "3", "WIDTH": "4", "X_FIRST": "1", "Y_FIRST": "2", "X_STEP": "30",
                                "Y_STEP": "-30", "X_UNIT": "meters", "Y_UNIT": "meters", "UTM_ZONE": "33S"})
    assert back.grid.geo.epsg == 32733 and "UTM_ZONE" not in back.extra
    # lat/lon grids have none, even when a stale UTM_ZONE came in
    latlon = Metadata.from_attrs({"LENGTH": "3", "WIDTH": "4", "X_FIRST": "1", "Y_FIRST": "2", "X_STEP": "0.1",
                                  "Y_STEP": "-0.1", "EPSG": "4326", "UTM_ZONE": "14N"})
    assert "UTM_ZONE" not in latlon.to_attrs()
    with pytest.raises(InputError, match="UTM_ZONE"):
        Metadata.from_attrs({"LENGTH": "3", "WIDTH": "4", "X_FIRST": "1", "Y_FIRST": "2", "X_STEP": "1",
                             "Y_STEP": "-1", "UTM_ZONE": "99X"})
