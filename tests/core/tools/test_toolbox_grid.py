"""sbts subset / multilook: numbers against numpy slicing and hand-computed cell means, attributes
against MintPy's conventions, outputs read back by the sbts products."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.errors import InputError
from sbts.core.io.products import (
    Geometry,
    IfgramStack,
    MapProduct,
    StackWriter,
    TimeSeries,
    TimeSeriesWriter,
    write_map,
)
from sbts.core.model.metadata import Metadata
from sbts.core.model.pairs import Pairs

DATES = ["20200101", "20200113", "20200125", "20200206"]


def geo_meta(length, width, **extra) -> Metadata:
    attrs = dict(LENGTH=length, WIDTH=width, Y_FIRST=35.0, X_FIRST=-118.0, Y_STEP=-0.01, X_STEP=0.01,
                 X_UNIT="degrees", Y_UNIT="degrees", WAVELENGTH=0.0555)
    attrs.update(extra)
    return Metadata.from_attrs({k: str(v) for k, v in attrs.items()})


def radar_meta(length, width, **extra) -> Metadata:
    attrs = dict(LENGTH=length, WIDTH=width, WAVELENGTH=0.0555, ALOOKS=3, RLOOKS=9, RANGE_PIXEL_SIZE=2.33,
                 AZIMUTH_PIXEL_SIZE=14.0, NCORRLOOKS=13.9, HEADING=-12.0)
    attrs.update(extra)
    return Metadata.from_attrs({k: str(v) for k, v in attrs.items()})


def cube(n, length, width, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, length, width)).astype(np.float32)


@pytest.fixture
def ts_file(tmp_path) -> tuple[Path, np.ndarray]:
    data = cube(len(DATES), 23, 31)
    data[:, 4, 5] = np.nan
    meta = geo_meta(23, 31).with_reference(y=10, x=12, lat=34.895, lon=-117.875, date=dt.date(2020, 1, 1))
    meta = meta.with_extra(SBTS_INVERSION_SIGNATURE="abc", PROJECT_NAME="demo")
    path = tmp_path / "timeseries.h5"
    with TimeSeriesWriter(path, meta, DATES, np.array([0.0, 10.0, -5.0, 3.0])) as w:
        w.write("timeseries", data)
    return path, data


@pytest.fixture
def radar_dir(tmp_path) -> Path:
    """A radar-coded stack and geometryRadar.h5 with a latitude/longitude lookup, as ISCE loads them."""
    inputs = tmp_path / "inputs"
    length, width = 20, 24
    meta = radar_meta(length, width)
    pairs = Pairs.from_indices([dt.datetime.strptime(d, "%Y%m%d").date() for d in DATES], [0, 0, 1, 2], [1, 2, 2, 3], [10.0, -5.0, -15.0, 8.0])
    rng = np.random.default_rng(3)
    phase = rng.normal(size=(4, length, width)).astype(np.float32)
    phase[:, 0, 0] = 0.0  # no-data pixel in every pair
    coh = rng.uniform(0.2, 1.0, size=(4, length, width)).astype(np.float32)
    cc = rng.integers(0, 3, size=(4, length, width)).astype(np.int16)
    with StackWriter(inputs / "ifgramStack.h5", meta, pairs, ["unwrapPhase", "coherence", "connectComponent"]) as w:
        w.write("unwrapPhase", phase)
        w.write("coherence", coh)
        w.write("connectComponent", cc)
    yy, xx = np.mgrid[:length, :width].astype(np.float64)
    lat = 34.0 + 0.001 * yy + 0.0002 * xx  # ascending: latitude grows with rows, skewed
    lon = -118.0 + 0.002 * xx - 0.0003 * yy
    write_map(inputs / "geometryRadar.h5", meta, "geometry",
              {"latitude": lat.astype(np.float32), "longitude": lon.astype(np.float32),
               "height": (100 + yy + xx).astype(np.float32), "incidenceAngle": (30 + 0.1 * xx).astype(np.float32),
               "waterMask": (xx > 2)}, unit=None)
    return tmp_path


# ---------------------------------------------------------------------------- subset
def test_subset_yx_time_series_is_numpy_slicing_with_mintpy_attributes(ts_file, tmp_path):
    from sbts.core.tools.subset import subset_file

    path, data = ts_file
    out = subset_file(path, yx=(3, 17, 5, 25), max_memory=1e-6)  # tiny budget: many blocks
    assert out == tmp_path / "sub_timeseries.h5"
    ts = TimeSeries(out)
    np.testing.assert_array_equal(ts.read_dates(), data[:, 3:17, 5:25])
    np.testing.assert_array_equal(ts.bperp, [0.0, 10.0, -5.0, 3.0])
    assert ts.date_strings == DATES
    m = ts.metadata
    assert m.grid.shape == (14, 20)
    assert m.grid.geo.y_first == pytest.approx(35.0 - 0.03) and m.grid.geo.x_first == pytest.approx(-118.0 + 0.05)
    assert (m.reference.y, m.reference.x) == (7, 7)
    assert m.reference.lat == pytest.approx(34.895) and m.reference.date == dt.date(2020, 1, 1)
    assert (m.extra["SUBSET_YMIN"], m.extra["SUBSET_YMAX"], m.extra["SUBSET_XMIN"], m.extra["SUBSET_XMAX"]) == \
        ("3", "17", "5", "25")
    assert (m.extra["XMIN"], m.extra["XMAX"], m.extra["YMIN"], m.extra["YMAX"]) == ("0", "19", "0", "13")
    # other attributes kept; update-mode signatures of the input's content dropped
    assert m.extra["PROJECT_NAME"] == "demo" and "SBTS_INVERSION_SIGNATURE" not in m.extra
    # the reference pixel still holds the same value: same place
    np.testing.assert_array_equal(ts.read_dates()[:, 7, 7], data[:, 10, 12])
    # a second subset adds its offsets to the first's
    out2 = subset_file(out, yx=(2, 6, 1, 4), output=tmp_path / "sub2.h5")
    m2 = TimeSeries(out2).metadata
    assert (m2.extra["SUBSET_YMIN"], m2.extra["SUBSET_XMIN"], m2.extra["SUBSET_YMAX"]) == ("5", "6", "9")
    np.testing.assert_array_equal(TimeSeries(out2).read_dates(), data[:, 5:9, 6:9])


def test_subset_lalo_on_geo_grid_snaps_edges_to_pixel_boundaries_as_mintpy(ts_file, tmp_path):
    from sbts.core.tools.subset import subset_file

    path, data = ts_file
    # boundaries: (lat - 35) / -0.01 = 7 (34.93) and 13 (34.87): rows 7..12;
    #             (lon + 118) / 0.01 = 5 (-117.95) and 10 (-117.90): columns 5..9
    out = subset_file(path, lalo=(34.93, 34.87, -117.90, -117.95), output=tmp_path / "s.h5")
    np.testing.assert_array_equal(TimeSeries(out).read_dates(), data[:, 7:13, 5:10])
    # edges inside pixels: 34.925 -> 7.5 -> 7, 34.9 -> 10; -117.955 -> 4.5 -> 4, -117.945 -> 5.5 -> 5
    out = subset_file(path, lalo=(34.925, 34.9, -117.955, -117.945), output=tmp_path / "t.h5")
    np.testing.assert_array_equal(TimeSeries(out).read_dates(), data[:, 7:10, 4:5])
    # within 1 % of a pixel of a boundary counts as on it (34.93001 -> 6.999 -> 7), and a box inside
    # one pixel still gives that pixel
    out = subset_file(path, lalo=(34.93001, 34.9251, -117.9549, -117.9548), output=tmp_path / "v.h5")
    np.testing.assert_array_equal(TimeSeries(out).read_dates(), data[:, 7:8, 4:5])
    # reference (10, 12) is outside: REF_* dropped, data unchanged
    m = TimeSeries(tmp_path / "t.h5").metadata
    assert not m.reference.has_point and m.reference.lat is None
    with pytest.raises(InputError, match="outside"):
        subset_file(path, lalo=(10.0, 11.0, 0.0, 1.0), output=tmp_path / "u.h5")


def test_subset_radar_stack_by_lalo_via_the_lookup_and_geometry(radar_dir, tmp_path_factory):
    from sbts.core.tools.subset import subset_file

    stack_path = radar_dir / "inputs" / "ifgramStack.h5"
    geom_path = radar_dir / "inputs" / "geometryRadar.h5"
    lat = Geometry(geom_path).read("latitude")
    lon = Geometry(geom_path).read("longitude")
    box = (34.005, 34.012, -117.985, -117.970)
    inside = (lat >= box[0]) & (lat <= box[1]) & (lon >= box[2]) & (lon <= box[3])
    rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    assert (y1 - y0, x1 - x0) != (20, 24) and y0 > 0 and x0 > 0  # a real crop
    out = subset_file(stack_path, lalo=box)
    stack, src = IfgramStack(out), IfgramStack(stack_path)
    assert stack.shape == (y1 - y0, x1 - x0)
    for name in ("unwrapPhase", "coherence", "connectComponent"):
        np.testing.assert_array_equal(stack.read(name), src.read(name)[:, y0:y1, x0:x1])
    assert stack.pairs.date12 == src.pairs.date12
    with h5py.File(out) as f:
        assert f["connectComponent"].dtype == np.int16 and f["dropIfgram"][()].all()
    geo_out = subset_file(geom_path, lalo=box)
    g = Geometry(geo_out)
    np.testing.assert_array_equal(g.read("waterMask"), Geometry(geom_path).read("waterMask")[y0:y1, x0:x1])
    assert g.read("waterMask").dtype == bool
    # radar-coded without a lookup: one-line error naming the fix
    lonely = tmp_path_factory.mktemp("alone") / "lonely.h5"
    write_map(lonely, radar_meta(20, 24), "velocity", {"velocity": np.zeros((20, 24), np.float32)}, unit="m/year")
    with pytest.raises(InputError, match="lookup"):
        subset_file(lonely, lalo=box)
    # ... with both template keys, a radar file without a lookup takes the y/x box (MintPy's rule)
    from sbts.core.tools.subset import subset_files

    tmpl = lonely.with_name("t.cfg")
    tmpl.write_text("mintpy.subset.yx = 1:5,2:9\nmintpy.subset.lalo = 34.005:34.012,-117.985:-117.970\n")
    (out,) = subset_files([lonely], template=tmpl)
    assert MapProduct(out).shape == (4, 7)
    (out,) = subset_files([stack_path], template=tmpl, output=radar_dir / "both.h5")  # has a lookup: lat/lon
    assert IfgramStack(out).shape == (y1 - y0, x1 - x0)


def test_subset_from_template_and_cli(ts_file, tmp_path):
    from sbts.cli.main import cli

    path, data = ts_file
    tmpl = tmp_path / "t.cfg"
    tmpl.write_text("mintpy.subset.yx = 2:9,3:8\n")
    res = CliRunner().invoke(cli, ["subset", str(path), "-t", str(tmpl), "-o", str(tmp_path / "c.h5")])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(TimeSeries(tmp_path / "c.h5").read_dates(), data[:, 2:9, 3:8])
    # both keys: the lat/lon box wins on a geocoded file (rows 7..12, columns 5..9) ...
    tmpl.write_text("mintpy.subset.yx = 2:9,3:8\nmintpy.subset.lalo = 34.87:34.93,-117.95:-117.90\n")
    res = CliRunner().invoke(cli, ["subset", str(path), "-t", str(tmpl), "-o", str(tmp_path / "e.h5")])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(TimeSeries(tmp_path / "e.h5").read_dates(), data[:, 7:13, 5:10])
    res = CliRunner().invoke(cli, ["subset", str(path), "-y", "1", "4", "-x", "0", "50", "-o", str(tmp_path / "d.h5")])
    assert res.exit_code == 0, res.output  # clipped to the image, with a warning
    np.testing.assert_array_equal(TimeSeries(tmp_path / "d.h5").read_dates(), data[:, 1:4, :])
    res = CliRunner().invoke(cli, ["subset", str(path), "-y", "1", "4"])
    assert res.exit_code != 0 and "go together" in res.output


# ---------------------------------------------------------------------------- multilook
def _cell_reference(a: np.ndarray, ys: int, xs: int, how) -> np.ndarray:
    """Slow reference: loop over the output cells."""
    h, w = a.shape[-2] // ys, a.shape[-1] // xs
    out = np.empty(a.shape[:-2] + (h, w))
    for i in range(h):
        for j in range(w):
            out[..., i, j] = how(a[..., i * ys:(i + 1) * ys, j * xs:(j + 1) * xs])
    return out


def _nanmean(c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(c.reshape(c.shape[:-2] + (-1,)), axis=-1)


def _nanmedian(c):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(c.reshape(c.shape[:-2] + (-1,)), axis=-1)


@pytest.mark.parametrize("method", ["mean", "median", "nearest"])
def test_multilook_time_series_against_cell_loop(ts_file, tmp_path, method):
    from sbts.core.tools.multilook import multilook_file

    path, data = ts_file
    data = data.copy()
    data[:, 0:2, 0:3] = np.nan  # a whole 2×3 cell of NaN stays NaN
    with h5py.File(path, "r+") as f:
        f["timeseries"][...] = data
    out = multilook_file(path, 2, 3, method, max_memory=1e-6)
    assert out == tmp_path / "timeseries_2alks_3rlks.h5"
    got = TimeSeries(out).read_dates()
    assert got.shape == (4, 11, 10)  # floor(23/2), floor(31/3)
    if method == "nearest":
        want = data[:, 1:22:2, 1:30:3]
    else:
        want = _cell_reference(data.astype(np.float64), 2, 3, _nanmean if method == "mean" else _nanmedian)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)  # float32 output of float64 means
    if method != "nearest":
        assert np.isnan(got[:, 0, 0]).all()
        assert np.isfinite(got[:, 2, 1]).all()  # cell with one NaN (4,5): mean of the other five
        if method == "mean":
            np.testing.assert_allclose(got[0, 2, 1], np.nanmean(data[0, 4:6, 3:6]), rtol=1e-6)
    m = TimeSeries(out).metadata
    assert m.grid.geo.y_step == pytest.approx(-0.02) and m.grid.geo.x_step == pytest.approx(0.03)
    assert m.grid.geo.y_first == 35.0 and m.grid.geo.x_first == -118.0
    assert (m.reference.y, m.reference.x) == (5, 4)  # 10 // 2, 12 // 3
    assert (m.radar.alooks, m.radar.rlooks) == (2, 3)


def test_multilook_radar_stack_and_geometry_attributes_and_nodata(radar_dir):
    from sbts.core.tools.multilook import multilook_file

    stack_path = radar_dir / "inputs" / "ifgramStack.h5"
    out = multilook_file(stack_path, 2, 4, "mean")
    src, ml = IfgramStack(stack_path), IfgramStack(out)
    assert ml.shape == (10, 6)
    phase = src.read("unwrapPhase").astype(np.float64)
    want = _cell_reference(np.where(phase == 0, np.nan, phase), 2, 4, _nanmean)
    np.testing.assert_allclose(ml.read("unwrapPhase"), np.nan_to_num(want), rtol=1e-5, atol=1e-6)
    assert ml.read("unwrapPhase")[:, 0, 0].all()  # 7 valid of 8: not no-data
    np.testing.assert_allclose(ml.read("coherence"), _cell_reference(src.read("coherence"), 2, 4, _nanmean),
                               rtol=1e-6)
    cc = ml.read("connectComponent")
    assert cc.dtype == np.int16
    np.testing.assert_array_equal(cc, src.read("connectComponent")[:, 1::2, 2::4])  # centre sample
    r = ml.metadata.radar
    assert (r.alooks, r.rlooks) == (6, 36)
    assert r.range_pixel_size == pytest.approx(2.33 * 4) and r.azimuth_pixel_size == pytest.approx(28.0)
    assert r.ncorrlooks == pytest.approx(13.9 * 8)
    geom = multilook_file(radar_dir / "inputs" / "geometryRadar.h5", 2, 4, "mean")
    g, g0 = Geometry(geom), Geometry(radar_dir / "inputs" / "geometryRadar.h5")
    # positions are averaged: the cell's mean position is its centre (the lookup is affine here)
    lat0 = g0.read("latitude").astype(np.float64)
    np.testing.assert_allclose(g.read("latitude"), _cell_reference(lat0, 2, 4, _nanmean), atol=2e-6)
    np.testing.assert_array_equal(g.read("waterMask"), g0.read("waterMask")[1::2, 2::4])  # categories: sampled
    # a multilooked stack and its multilooked lookup stay on one grid: subset by lat/lon still works
    from sbts.core.tools.subset import subset_file

    sub = subset_file(out, lalo=(34.0, 34.02, -118.0, -117.97), lookup=geom)
    assert IfgramStack(sub).shape[0] >= 1


def test_multilook_template_cli_and_errors(ts_file, tmp_path):
    from sbts.cli.main import cli
    from sbts.core.tools.multilook import multilook_file

    path, data = ts_file
    tmpl = tmp_path / "t.cfg"
    tmpl.write_text("mintpy.multilook.ystep = 3\nmintpy.multilook.xstep = 2\nmintpy.multilook.method = median\n")
    res = CliRunner().invoke(cli, ["multilook", str(path), "-t", str(tmpl), "-r", "5"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "timeseries_3alks_5rlks.h5"
    want = _cell_reference(data.astype(np.float64), 3, 5, _nanmedian)
    np.testing.assert_allclose(TimeSeries(out).read_dates(), want, rtol=1e-6, atol=1e-7)
    with pytest.raises(InputError, match="more than"):
        multilook_file(path, 30, 1)
    vel = tmp_path / "velocity.h5"
    write_map(vel, geo_meta(5, 5), "velocity", {"velocity": np.arange(25, dtype=np.float32).reshape(5, 5)},
              unit="m/year")
    out = multilook_file(vel, 2, 2)
    np.testing.assert_allclose(MapProduct(out).read("velocity"), [[3.0, 5.0], [13.0, 15.0]])
