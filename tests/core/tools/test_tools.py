"""sbts.core.tools: average, mask, horzvert, mosaic, filter, gnss — each against a known answer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from sbts.core.errors import DataError, InputError
from sbts.core.io.products import MapProduct, Product, TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import Metadata

# ---------------------------------------------------------------------------- helpers
STEP = 0.01


def geo_meta(length: int, width: int, y_first: float = 35.0, x_first: float = -118.0, step: float = STEP,
             **extra) -> Metadata:
    attrs = dict(LENGTH=length, WIDTH=width, Y_FIRST=y_first, X_FIRST=x_first, Y_STEP=-step, X_STEP=step,
                 X_UNIT="degrees", Y_UNIT="degrees", WAVELENGTH=0.0555)
    attrs.update(extra)
    return Metadata.from_attrs({k: str(v) for k, v in attrs.items()})


def write_velocity(path: Path, data: np.ndarray, meta: Metadata | None = None, **datasets) -> Path:
    meta = meta or geo_meta(*data.shape)
    return write_map(path, meta, "velocity", {"velocity": data.astype(np.float32), **datasets}, unit="m/year")


def write_ts(path: Path, data: np.ndarray, dates: list[str], meta: Metadata | None = None, ref_date: str | None = None,
             **ref) -> Path:
    meta = meta or geo_meta(*data.shape[1:])
    if ref_date:
        meta = meta.with_reference(date=dt.datetime.strptime(ref_date, "%Y%m%d").date())
    if ref:
        meta = meta.with_reference(**ref)
    with TimeSeriesWriter(path, meta, dates) as w:
        w.write("timeseries", data.astype(np.float32))
    return path


def field(length: int = 50, width: int = 60) -> np.ndarray:
    yy, xx = np.mgrid[:length, :width]
    return (np.sin(yy / 7.0) + np.cos(xx / 5.0) + 0.01 * yy * xx).astype(np.float32)


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory) -> Path:
    from sbts.core.demo.run import write_synthetic

    work = tmp_path_factory.mktemp("stack")
    write_synthetic(work / "inputs", shape=(30, 40), num_date=8)
    return work


# ---------------------------------------------------------------------------- average
def test_average_coherence_and_velocity(stack_dir):
    from sbts.core.steps.averages import stacking_velocity, temporal_average
    from sbts.core.tools.average import average_stack

    stack = stack_dir / "inputs" / "ifgramStack.h5"
    coh = average_stack(stack)
    assert coh == stack_dir / "avgSpatialCoh.h5"
    np.testing.assert_allclose(MapProduct(coh).read("coherence"), temporal_average(stack, "coherence"))
    vel = average_stack(stack, "unwrapPhase", output=stack_dir / "v.h5")
    p = MapProduct(vel)
    assert p.metadata.file_type == "velocity" and p.metadata.unit == "m/year"
    np.testing.assert_allclose(p.read("velocity"), stacking_velocity(stack))
    with pytest.raises(InputError, match="no dataset 'nope'"):
        average_stack(stack, "nope")


# ---------------------------------------------------------------------------- mask
def test_mask_thresholds_blockwise_and_nan(tmp_path):
    from sbts.core.tools.masks import generate_mask, make_mask

    v = np.arange(20 * 30, dtype=np.float32).reshape(20, 30) / 100.0
    v[3, 4] = np.nan
    f = write_velocity(tmp_path / "velocity.h5", v)
    m = make_mask(f, vmin=1.0, vmax=4.0)
    with np.errstate(invalid="ignore"):
        expected = (v >= 1.0) & (v <= 4.0)
    np.testing.assert_array_equal(m, expected)
    # tiny memory budget: many blocks, same answer
    np.testing.assert_array_equal(make_mask(f, vmin=1.0, vmax=4.0, max_memory=1e-6), expected)
    assert not make_mask(f)[3, 4]  # NaN is always masked
    out = generate_mask(f, vmin=1.0)
    assert out == tmp_path / "mask_velocity.h5"
    p = Product.open(out)
    assert p.metadata.file_type == "mask" and p.read("mask").dtype == bool
    with pytest.raises(DataError, match="no pixel"):
        generate_mask(f, vmin=1e9)


def test_mask_nonzero_stack_is_common_conncomp(stack_dir):
    from sbts.core.steps.averages import connected_component_mask
    from sbts.core.tools.masks import generate_mask

    stack = stack_dir / "inputs" / "ifgramStack.h5"
    out = generate_mask(stack, nonzero=True)
    assert out == stack_dir / "maskConnComp.h5"
    np.testing.assert_array_equal(MapProduct(out).read("mask"), connected_component_mask(stack))


def test_mask_spatial_rules(tmp_path):
    from sbts.core.tools.masks import make_mask

    v = np.ones((40, 50), np.float32)
    f = write_velocity(tmp_path / "v.h5", v)
    m = make_mask(f, subset_yx=(5, 15, 10, 30))
    assert m.sum() == 10 * 20 and m[5:15, 10:30].all()
    # lat/lon window: pixel centres of rows 2..4, cols 6..8
    meta = geo_meta(40, 50)
    lat_a, lon_a = meta.grid.geo.yx_to_lalo(2, 6)
    lat_b, lon_b = meta.grid.geo.yx_to_lalo(4, 8)
    m = make_mask(f, subset_lalo=(lat_b, lat_a, lon_a, lon_b))
    assert m.sum() == 9 and m[2:5, 6:9].all()
    m = make_mask(f, exclude_circles=[(20, 25, 3)])
    yy, xx = np.mgrid[:40, :50]
    np.testing.assert_array_equal(m, (yy - 20) ** 2 + (xx - 25) ** 2 > 9)


def test_mask_min_cluster_vstd_base(tmp_path):
    from sbts.core.tools.masks import make_mask

    v = np.zeros((30, 30), np.float32)
    v[2:12, 2:12] = 1.0  # 100 px
    v[20:22, 20:22] = 1.0  # 4 px
    v[25, 5] = 1.0  # 1 px
    std = np.full_like(v, 0.1)
    f = write_velocity(tmp_path / "v.h5", v, velocityStd=std)
    m = make_mask(f, vmin=0.5, min_cluster=5)
    big = np.zeros_like(m)
    big[2:12, 2:12] = True
    np.testing.assert_array_equal(m, big)  # the 4-pixel and 1-pixel clusters are removed
    m = make_mask(f, vstd=3.0)  # |v| > 0.3
    np.testing.assert_array_equal(m, v > 0.3)
    water = np.ones_like(v, dtype=bool)
    water[:, :15] = False
    base = write_map(tmp_path / "geometryGeo.h5", geo_meta(30, 30), "geometry",
                     {"height": np.zeros_like(v), "waterMask": water})
    m = make_mask(f, base=base, base_dset="waterMask", base_value=0)
    np.testing.assert_array_equal(m, water)
    with pytest.raises(InputError, match="velocityStd"):
        make_mask(write_velocity(tmp_path / "v2.h5", v), vstd=2)
    with pytest.raises(InputError, match="grid"):
        make_mask(f, base=write_velocity(tmp_path / "v3.h5", np.ones((5, 5))))


def test_mask_on_timeseries_date(tmp_path):
    from sbts.core.tools.masks import make_mask

    data = np.stack([np.zeros((10, 12)), np.full((10, 12), 0.02), np.full((10, 12), 0.05)])
    data[2, 0, 0] = 0.0
    f = write_ts(tmp_path / "timeseries.h5", data, ["20200101", "20200113", "20200125"])
    assert make_mask(f, "20200113", vmax=0.03).all()
    m = make_mask(f, nonzero=True)  # last date by default
    assert not m[0, 0] and m.sum() == 119
    with pytest.raises(InputError, match="not in the time series"):
        make_mask(f, "20210101")


# ---------------------------------------------------------------------------- horzvert
def test_los_unit_vector_conventions():
    from sbts.core.tools.common import azimuth_from_heading, los_unit_vector

    az = azimuth_from_heading(-12.7)  # Sentinel-1 ascending, right looking
    assert az == pytest.approx(102.7)
    assert azimuth_from_heading(-167.3) == pytest.approx(-102.7)
    e, n, u = los_unit_vector(37.0, az)
    assert e < 0 and abs(n) < 0.3 * abs(e) and u > 0  # satellite to the (W)SW of the pixel, above it
    assert e ** 2 + n ** 2 + u ** 2 == pytest.approx(1.0)
    e, n, u = los_unit_vector(37.0, azimuth_from_heading(-167.3))
    assert e > 0  # descending: the satellite is to the east


def test_solve_horz_vert_exact():
    from sbts.core.tools.common import enu_to_los
    from sbts.core.tools.decompose import solve_horz_vert

    rng = np.random.default_rng(1)
    east, up = rng.normal(0, 0.02, (8, 9)), rng.normal(0, 0.02, (8, 9))
    inc = [rng.uniform(30, 45, (8, 9)), rng.uniform(30, 45, (8, 9))]
    az = [np.full((8, 9), 102.7), np.full((8, 9), -102.7)]
    los = [enu_to_los(east, 0.0, up, i, a) for i, a in zip(inc, az)]
    h, v = solve_horz_vert(los, inc, az)
    np.testing.assert_allclose(h, east, atol=1e-7)
    np.testing.assert_allclose(v, up, atol=1e-7)
    # three looks, horizontal motion toward north-east (bearing 45°): least squares, still exact
    horz = rng.normal(0, 0.02, (8, 9))
    inc3, az3 = [33.0, 41.0, 38.0], [100.0, -100.0, 80.0]
    b = np.deg2rad(45.0)
    los3 = [enu_to_los(horz * np.sin(b), horz * np.cos(b), up, i, a) for i, a in zip(inc3, az3)]
    h, v = solve_horz_vert(los3, inc3, az3, horz_bearing=45.0)
    np.testing.assert_allclose(h, horz, atol=1e-7)
    np.testing.assert_allclose(v, up, atol=1e-7)
    # the same look twice cannot separate the components
    h, v = solve_horz_vert([los[0], los[0]], [inc[0]] * 2, [az[0]] * 2)
    assert np.isnan(h).all() and np.isnan(v).all()


def test_horzvert_files_on_overlap(tmp_path):
    from sbts.core.tools.common import enu_to_los
    from sbts.core.tools.decompose import asc_desc_to_horz_vert

    big = (50, 60)
    yy, xx = np.mgrid[:big[0], :big[1]]
    east = 0.01 * np.sin(xx / 9.0)
    up = -0.02 * np.cos(yy / 11.0)
    inc_map = 30.0 + 10.0 * xx / big[1]
    az_asc = np.full(big, 102.7)
    # ascending on rows 0..39 / cols 0..49, per-pixel geometry file
    asc_win = np.s_[0:40, 0:50]
    asc_meta = geo_meta(40, 50, REF_Y=1, REF_X=1)
    asc = write_velocity(tmp_path / "asc.h5", enu_to_los(east, 0, up, inc_map, az_asc)[asc_win], asc_meta)
    geom = write_map(tmp_path / "geomAsc.h5", geo_meta(40, 50), "geometry",
                     {"incidenceAngle": inc_map[asc_win].astype(np.float32),
                      "azimuthAngle": az_asc[asc_win].astype(np.float32)})
    # descending on rows 10..49 / cols 5..59, scalar geometry from the attributes
    dsc_win = np.s_[10:50, 5:60]
    dsc_meta = geo_meta(40, 55, y_first=35.0 - 10 * STEP, x_first=-118.0 + 5 * STEP, HEADING=-167.3,
                        INCIDENCE_ANGLE=39.0)
    dsc = write_velocity(tmp_path / "dsc.h5", enu_to_los(east, 0, up, 39.0, -102.7)[dsc_win], dsc_meta)
    with pytest.raises(InputError, match="INCIDENCE_ANGLE"):  # asc has neither angles attributes nor geometry
        asc_desc_to_horz_vert([asc, dsc], outdir=tmp_path / "out")
    hz, vt = asc_desc_to_horz_vert([asc, dsc], [geom, None], outdir=tmp_path / "out")  # dsc: its attributes
    assert hz.name == "hz.h5" and vt.name == "up.h5"
    h = MapProduct(hz)
    assert h.shape == (30, 45) and h.metadata.file_type == "velocity"
    assert h.metadata.grid.geo.y_first == pytest.approx(35.0 - 10 * STEP)
    assert h.metadata.grid.geo.x_first == pytest.approx(-118.0 + 5 * STEP)
    assert not h.metadata.reference.has_point  # REF (1, 1) of asc is outside the overlap
    overlap = np.s_[10:40, 5:50]
    np.testing.assert_allclose(h.read("velocity"), east[overlap], atol=1e-6)
    np.testing.assert_allclose(MapProduct(vt).read("velocity"), up[overlap], atol=1e-6)


def test_horzvert_scalar_geometry_and_errors(tmp_path):
    from sbts.core.tools.common import enu_to_los
    from sbts.core.tools.decompose import asc_desc_to_horz_vert

    east, up = field(20, 25) * 0.01, field(20, 25)[::-1] * 0.01
    asc = write_velocity(tmp_path / "a.h5", enu_to_los(east, 0, up, 34.0, 102.7),
                         geo_meta(20, 25, HEADING=-12.7, INCIDENCE_ANGLE=34.0))
    dsc = write_velocity(tmp_path / "d.h5", enu_to_los(east, 0, up, 42.0, -102.7),
                         geo_meta(20, 25, HEADING=-167.3, INCIDENCE_ANGLE=42.0))
    hz, vt = asc_desc_to_horz_vert([asc, dsc], max_memory=1e-6)
    np.testing.assert_allclose(MapProduct(hz).read("velocity"), east, atol=1e-6)
    np.testing.assert_allclose(MapProduct(vt).read("velocity"), up, atol=1e-6)
    other = write_velocity(tmp_path / "o.h5", east, geo_meta(20, 25, step=0.02, HEADING=-167.3, INCIDENCE_ANGLE=42))
    with pytest.raises(InputError, match="pixel size"):
        asc_desc_to_horz_vert([asc, other])
    far = write_velocity(tmp_path / "f.h5", east, geo_meta(20, 25, y_first=40.0, HEADING=-167.3, INCIDENCE_ANGLE=42))
    with pytest.raises(InputError, match="do not overlap"):
        asc_desc_to_horz_vert([asc, far])
    radar = write_map(tmp_path / "r.h5", Metadata.from_attrs({"LENGTH": "20", "WIDTH": "25"}), "velocity",
                      {"velocity": east.astype(np.float32)})
    with pytest.raises(InputError, match="not geocoded"):
        asc_desc_to_horz_vert([asc, radar])
    with pytest.raises(InputError, match="two"):
        asc_desc_to_horz_vert([asc])


# ---------------------------------------------------------------------------- mosaic
def test_mosaic_recovers_field(tmp_path):
    from sbts.core.tools.mosaic import mosaic_files

    f = field(50, 60)
    a = write_velocity(tmp_path / "a.h5", f[0:30, 0:40], geo_meta(30, 40, REF_Y=2, REF_X=3))
    b = write_velocity(tmp_path / "b.h5", f[10:50, 15:60] + 5.0,
                       geo_meta(40, 45, y_first=35.0 - 10 * STEP, x_first=-118.0 + 15 * STEP))
    # b first: the union starts at b's corner minus 10 rows/15 cols
    out = mosaic_files([b, a], tmp_path / "m1.h5")
    p = MapProduct(out)
    assert p.shape == (50, 60)
    assert p.metadata.grid.geo.y_first == pytest.approx(35.0)
    covered = np.zeros((50, 60), bool)
    covered[0:30, 0:40] = covered[10:50, 15:60] = True
    got = p.read("velocity")
    np.testing.assert_allclose(got[covered], f[covered] + 5.0, atol=1e-5)  # b (first) sets the level
    assert np.isnan(got[~covered]).all()
    out = mosaic_files([a, b], tmp_path / "m2.h5")
    p = MapProduct(out)
    np.testing.assert_allclose(p.read("velocity")[covered], f[covered], atol=1e-5)
    assert (p.metadata.reference.y, p.metadata.reference.x) == (2, 3)
    assert float(p.metadata.extra["MOSAIC_OFFSETS"].split(",")[1]) == pytest.approx(5.0, abs=1e-5)
    raw = MapProduct(mosaic_files([a, b], tmp_path / "m3.h5", adjust_offset=False)).read("velocity")
    np.testing.assert_allclose(raw[40:50, 50:60], f[40:50, 50:60] + 5.0, atol=1e-5)
    bad = write_velocity(tmp_path / "c.h5", f, geo_meta(50, 60, step=0.005))
    with pytest.raises(InputError, match="pixel size"):
        mosaic_files([a, bad], tmp_path / "m4.h5")


# ---------------------------------------------------------------------------- filters
@pytest.mark.parametrize("kind,param", [("gaussian", 2.0), ("lowpass", 5), ("median", 3)])
def test_spatial_filter_keeps_constant(kind, param):
    from sbts.core.tools.filters import spatial_filter_map

    data = np.full((30, 40), 2.5)
    data[10:13, 10:13] = np.nan
    out = spatial_filter_map(data, kind, param)
    np.testing.assert_allclose(out[np.isfinite(data)], 2.5, rtol=1e-12)
    assert np.isnan(out[11, 11])
    hp = spatial_filter_map(data, "highpass", 2.0)
    np.testing.assert_allclose(hp[np.isfinite(data)], 0.0, atol=1e-12)


def test_median_removes_spike_and_blocks_match(tmp_path):
    from sbts.core.tools.filters import filter_file, spatial_filter_map

    data = np.zeros((40, 50))
    data[20, 25] = 100.0
    assert np.abs(spatial_filter_map(data, "median", 3)).max() == 0.0
    f = field(40, 50).astype(np.float64)
    f[5, 7] = np.nan
    src = write_velocity(tmp_path / "velocity.h5", f)
    for kind, param in (("gaussian", 1.5), ("median", 5)):
        whole = spatial_filter_map(f, kind, param)
        out = filter_file(src, kind, param, max_memory=2e-6)  # blocks of a few rows, with halo
        assert out.name == f"velocity_{kind}{param:g}.h5"
        np.testing.assert_allclose(MapProduct(out).read("velocity"), whole, rtol=1e-6, atol=1e-6)


def test_spatial_filter_timeseries_per_date(tmp_path):
    from sbts.core.tools.filters import filter_file, spatial_filter_map

    data = np.stack([field(20, 30) * k for k in range(4)])
    src = write_ts(tmp_path / "timeseries.h5", data, ["20200101", "20200201", "20200301", "20200401"])
    out = filter_file(src, "gaussian", 2)
    ts = TimeSeries(out)
    assert ts.date_strings == ["20200101", "20200201", "20200301", "20200401"]
    for k in range(4):
        np.testing.assert_allclose(ts.read_dates(index=k), spatial_filter_map(data[k], "gaussian", 2), atol=1e-5)


def _dates(n: int, step_days: int = 12) -> list[dt.date]:
    return [dt.date(2020, 1, 1) + dt.timedelta(days=step_days * i) for i in range(n)]


def test_temporal_gaussian_keeps_linear_series(tmp_path):
    from sbts.core.model.dates import years_since
    from sbts.core.tools.filters import temporal_filter_array

    dates = _dates(61)
    t = years_since(dates)
    ref = 30
    rate = np.linspace(-0.05, 0.05, 6).reshape(2, 3)
    data = (t - t[ref])[:, None, None] * rate
    src = write_ts(tmp_path / "timeseries.h5", data, [d.strftime("%Y%m%d") for d in dates],
                   ref_date=dates[ref].strftime("%Y%m%d"))
    from sbts.core.tools.filters import filter_file

    out = TimeSeries(filter_file(src, "temporal-gaussian", 2.0))  # σ = 2 months ≈ 61 days
    assert out.path.name == "timeseries_tempGaussian2.h5"
    got = out.read_dates()
    inner = slice(21, 40)  # more than 4σ from either end
    np.testing.assert_allclose(got[inner], data[inner], atol=1e-6)
    assert np.abs(got[ref]).max() == 0.0  # re-referenced to REF_DATE
    assert np.abs(got[0] - data[0]).max() > 1e-4  # the ends are biased, as any one-sided window
    # the kernel is normalised over the valid dates: a missing date stays missing and does not spread
    data2 = data.copy()
    data2[20] = np.nan
    f2 = temporal_filter_array(data2, t, "temporal-gaussian", 2.0, ref_index=ref)
    assert np.isnan(f2[20]).all() and np.isfinite(np.delete(f2, 20, axis=0)).all()
    np.testing.assert_allclose(np.delete(f2, 20, axis=0)[inner], np.delete(data, 20, axis=0)[inner], atol=5e-4)


def test_temporal_median_removes_outlier_date(tmp_path):
    from sbts.core.tools.filters import filter_file

    dates = [d.strftime("%Y%m%d") for d in _dates(9)]
    data = np.zeros((9, 4, 5))
    data[4] = 0.3  # one bad acquisition
    src = write_ts(tmp_path / "timeseries.h5", data, dates)
    got = TimeSeries(filter_file(src, "temporal-median", 3)).read_dates()
    assert np.abs(got).max() == 0.0
    with pytest.raises(InputError, match="odd"):
        filter_file(src, "temporal-median", 4)
    with pytest.raises(InputError, match="time series"):
        filter_file(write_velocity(tmp_path / "v.h5", np.zeros((4, 5))), "temporal-gaussian", 3)


# ---------------------------------------------------------------------------- gnss
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
TENV3_HEADER = ("site YYMMMDD yyyy.yyyy __MJD week d reflon _e0(m) __east(m) ____n0(m) _north(m) u0(m) "
                "____up(m) _ant(m) sig_e(m) sig_n(m) sig_u(m) __corr_en __corr_eu __corr_nu _latitude(deg) "
                "_longitude(deg) __height(m)")


def tenv3_line(site, day: dt.date, e: float, n: float, u: float, lat=None, lon=None) -> str:
    """One line in UNR's documented tenv3 column layout (integer + fractional parts per component)."""
    mjd = (day - dt.date(1858, 11, 17)).days
    decyr = day.year + (day.timetuple().tm_yday - 0.5) / 365.25
    week, dow = divmod(mjd - 44244, 7)
    e0, n0, u0 = -3552, 3873204, 104  # metres from the reference meridian / equator / ellipsoid
    text = (f"{site} {day:%y}{MONTHS[day.month - 1]}{day:%d} {decyr:9.4f} {mjd:5d} {week:4d} {dow:1d} "
            f"{-118.0:6.1f} {e0:6d} {e - 0.235481:9.6f} {n0:9d} {n + 0.323651:9.6f} {u0:5d} {u + 0.845141:9.6f} "
            f"{0.0:7.4f} {0.000771:8.6f} {0.001002:8.6f} {0.003364:8.6f} {-0.017130:9.6f} {0.014898:9.6f} "
            f"{-0.175585:9.6f}")
    if lat is not None:
        text += f" {lat:14.10f} {lon - 360.0:15.10f} {1200.12345:10.5f}"  # UNR longitudes may be offset by 360
    return text


def test_read_tenv3_columns(tmp_path):
    from sbts.core.tools.gnss import read_site_list, read_tenv3

    days = [dt.date(2008, 3, 27), dt.date(2008, 3, 28)]
    lines = [TENV3_HEADER] + [tenv3_line("ABCD", d, 0.001 * i, 0.002 * i, -0.003 * i, 34.5, -117.25)
                              for i, d in enumerate(days)]
    (tmp_path / "ABCD.tenv3").write_text("\n".join(lines) + "\n")
    s = read_tenv3(tmp_path / "ABCD.tenv3")
    assert s.site == "ABCD" and s.lat == pytest.approx(34.5) and s.lon == pytest.approx(-117.25)
    assert list(s.dates.astype(str)) == ["2008-03-27", "2008-03-28"]
    np.testing.assert_allclose(s.east, [-3552.235481, -3552.234481])
    np.testing.assert_allclose(s.north, [3873204.323651, 3873204.325651])
    np.testing.assert_allclose(s.up, [104.845141, 104.842141])
    np.testing.assert_allclose(s.sigma[0], [0.000771, 0.001002, 0.003364])
    # the 20-column (older) layout has no coordinates
    (tmp_path / "OLD1.tenv3").write_text(tenv3_line("OLD1", days[0], 0, 0, 0) + "\n")
    assert read_tenv3(tmp_path / "OLD1.tenv3").lat is None
    bad = tenv3_line("BAD1", days[0], 0, 0, 0).replace("08MAR27", "08MAR29")
    (tmp_path / "BAD1.tenv3").write_text(bad + "\n")
    with pytest.raises(InputError, match="disagrees with MJD"):
        read_tenv3(tmp_path / "BAD1.tenv3")
    (tmp_path / "DataHoldings.txt").write_text(
        "Sta  Lat(deg)   Long(deg) Hgt(m)  X(m)  Y(m)  Z(m)  Dtbeg  Dtend  Dtmod  NumSol StaOrigName\n"
        "OLD1  34.2000  242.5000  100.0  0 0 0 2010-01-01 2024-01-01 2025-01-01 5000\n")
    assert read_site_list(tmp_path / "DataHoldings.txt") == {"OLD1": (34.2, -117.5)}


@pytest.fixture()
def gnss_case(tmp_path):
    """InSAR time series and tenv3 files made from one ENU motion field, projected consistently."""
    from sbts.core.tools.common import enu_to_los

    length, width = 30, 40
    meta = geo_meta(length, width, REF_Y=0, REF_X=0)
    geo = meta.grid.geo
    yy, xx = np.mgrid[:length, :width]
    ve, vn, vu = 0.02 * xx / width, 0.01 * yy / length, -0.03 * (xx + yy) / (width + length)  # 0 at the ref pixel
    seasonal = 0.005 * xx / width
    inc = (30.0 + 12.0 * xx / width).astype(np.float32)
    az = np.full((length, width), 102.7, np.float32)
    write_map(tmp_path / "geometryGeo.h5", meta, "geometry", {"incidenceAngle": inc, "azimuthAngle": az})
    dates = _dates(20)
    t0 = dates[0]

    def enu(day, y, x):
        t = (day - t0).days / 365.25
        return ve[y, x] * t, vn[y, x] * t, vu[y, x] * t + seasonal[y, x] * np.sin(2 * np.pi * t)

    data = np.stack([enu_to_los(*enu(d, yy, xx), inc, az) for d in dates])
    ts = write_ts(tmp_path / "timeseries.h5", data, [d.strftime("%Y%m%d") for d in dates], meta,
                  ref_date=dates[0].strftime("%Y%m%d"))
    gdir = tmp_path / "gnss"
    gdir.mkdir()
    stations = {"STA1": (5, 7), "STA2": (20, 30), "STA3": (12, 25)}
    for site, (y, x) in stations.items():
        lat, lon = geo.yx_to_lalo(y, x)
        lines = [TENV3_HEADER]
        day = t0 - dt.timedelta(days=30)
        while day <= dates[-1] + dt.timedelta(days=30):
            lines.append(tenv3_line(site, day, *enu(day, y, x), lat, lon))
            day += dt.timedelta(days=1)
        (gdir / f"{site}.tenv3").write_text("\n".join(lines) + "\n")
    # a station outside the grid and an old-format one without coordinates
    (gdir / "FAR1.tenv3").write_text(tenv3_line("FAR1", t0, 0, 0, 0, 10.0, 10.0) + "\n")
    y, x = 25, 5
    lines = [tenv3_line("OLD1", d, *enu(d, y, x)) for d in dates]  # only the InSAR days
    (gdir / "OLD1.tenv3").write_text("\n".join(lines) + "\n")
    lat, lon = geo.yx_to_lalo(y, x)
    (tmp_path / "sites.txt").write_text(f"# site lat lon\nOLD1 {lat:.8f} {lon + 360:.8f}\n")
    return ts, gdir, data, dates


def test_gnss_matches_consistent_insar(gnss_case, tmp_path):
    from sbts.core.tools.gnss import compare_gnss, run_gnss_comparison

    ts, gdir, data, dates = gnss_case
    results = compare_gnss(ts, gdir)  # geometryGeo.h5 found beside the time series
    assert sorted(r.site for r in results) == ["STA1", "STA2", "STA3"]  # FAR1 outside, OLD1 no coordinates
    for r in results:
        assert r.num == len(dates)
        assert r.rmse < 1e-6 and abs(r.bias) < 1e-6
        assert r.corr > 0.999
        assert np.abs(r.insar).max() > 1e-3  # a real signal was compared
    results = compare_gnss(ts, gdir, site_list=tmp_path / "sites.txt", sites=["OLD1", "STA2"])
    assert {r.site for r in results} == {"OLD1", "STA2"} and max(r.rmse for r in results) < 1e-6
    # an InSAR reference point that is not stable: a per-date offset everywhere
    shifted = data + np.linspace(0, 0.02, len(dates))[:, None, None]
    ts2 = write_ts(tmp_path / "ts2.h5", shifted, [d.strftime("%Y%m%d") for d in dates], geo_meta(30, 40))
    geom = tmp_path / "geometryGeo.h5"
    assert max(r.rmse for r in compare_gnss(ts2, gdir, geometry=geom)) > 5e-3
    results = compare_gnss(ts2, gdir, geometry=geom, ref_site="STA1")
    assert sorted(r.site for r in results) == ["STA2", "STA3"]
    assert max(r.rmse for r in results) < 1e-6
    report, figure, _ = run_gnss_comparison(ts, gdir, output=tmp_path / "cmp.txt")
    text = report.read_text()
    assert "STA1" in text and "rmse_mm" in text
    assert figure is not None and figure.stat().st_size > 1000


def test_gnss_errors(gnss_case, tmp_path):
    from sbts.core.tools.gnss import compare_gnss

    ts, gdir, _, _ = gnss_case
    with pytest.raises(InputError, match="no .tenv3 file for NOPE"):
        compare_gnss(ts, gdir, sites=["NOPE"])
    with pytest.raises(InputError, match="reference station FAR1"):
        compare_gnss(ts, gdir, ref_site="FAR1")
    with pytest.raises(DataError, match="inside the InSAR grid"):
        compare_gnss(ts, gdir, sites=["FAR1"])
    with pytest.raises(InputError, match="GNSS folder not found"):
        compare_gnss(ts, tmp_path / "missing")
