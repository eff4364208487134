"""Geocoding: affine lookups (exact), radar→geo→radar round trip, GAMMA-style lookups, metadata, blocks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.errors import InputError
from sbts.core.io.products import Product, TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo, Reference
from sbts.core.steps.geocode import GeocodeOptions, geocode_file

L, W = 40, 50
# lat/lon of radar pixel (r, c): affine with shear and rotation, like an ascending track
A = np.array([[-0.0010, 0.00025], [0.0003, 0.0012]])  # d(lat, lon)/d(r, c)
LAT0, LON0 = 19.40, -99.20


def _latlon(r, c):
    return LAT0 + A[0, 0] * r + A[0, 1] * c, LON0 + A[1, 0] * r + A[1, 1] * c


def _radar_meta(**kw) -> Metadata:
    return Metadata(Grid(L, W), unit="m/year", radar=RadarInfo(wavelength=0.0555, alooks=1, rlooks=1), **kw)


def _geometry_radar(folder, latlon=_latlon):
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    lat, lon = latlon(r, c)
    path = folder / "geometryRadar.h5"
    write_map(path, _radar_meta(), "geometry", {"latitude": lat.astype(np.float64), "longitude": lon.astype(np.float64),
                                                "height": np.full((L, W), 100, np.float32)}, unit=None)
    return path


def _velocity(folder, data, ref=None):
    path = folder / "velocity.h5"
    meta = _radar_meta(reference=Reference(*ref) if ref else Reference())
    write_map(path, meta, "velocity", {"velocity": data.astype(np.float32)}, unit="m/year")
    return path


def _affine_field(r, c):
    return 2.0 * r + 3.0 * c + 1.0


def _inverse_rc(lat, lon):
    rc = np.linalg.solve(A, np.stack([lat.ravel() - LAT0, lon.ravel() - LON0]))
    return rc[0].reshape(lat.shape), rc[1].reshape(lat.shape)


def _geo_centres(path):
    with h5py.File(path) as f:
        a = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
    g = GeoGrid(float(a["X_FIRST"]), float(a["Y_FIRST"]), float(a["X_STEP"]), float(a["Y_STEP"]))
    n, m = int(a["LENGTH"]), int(a["WIDTH"])
    lat = g.y_first + (np.arange(n)[:, None] + 0.5) * g.y_step + 0 * np.arange(m)
    lon = g.x_first + (np.arange(m)[None, :] + 0.5) * g.x_step + 0 * np.arange(n)[:, None]
    return lat, lon, a


@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_affine_lookup_is_exact(tmp_path, method):
    geom = _geometry_radar(tmp_path)
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    vel = _velocity(tmp_path, _affine_field(r, c))
    out = geocode_file(vel, geom, options=GeocodeOptions(method=method, lalo_step=(0.0007, 0.0008)))
    assert out == tmp_path / "geo" / "geo_velocity.h5"
    lat, lon, attrs = _geo_centres(out)
    got = Product.open(out).read("velocity")
    rr, cc = _inverse_rc(lat, lon)
    inside = (rr >= -0.5) & (rr <= L - 0.5) & (cc >= -0.5) & (cc <= W - 0.5)
    if method == "nearest":
        expect = _affine_field(np.floor(rr + 0.5), np.floor(cc + 0.5))
    else:
        expect = _affine_field(np.clip(rr, 0, L - 1), np.clip(cc, 0, W - 1))
    # points within 1e-6 px of a rounding boundary are ambiguous for nearest
    ok = inside & (np.abs((rr + 0.5) % 1 - 0.5) < 0.4999) & (np.abs((cc + 0.5) % 1 - 0.5) < 0.4999)
    assert ok.sum() > 0.4 * ok.size
    np.testing.assert_allclose(got[ok], expect[ok], atol=1e-3)
    margin = (rr < -0.6) | (rr > L - 0.4) | (cc < -0.6) | (cc > W - 0.4)
    assert np.isnan(got[margin]).all()
    assert attrs["X_UNIT"] == "degrees" and attrs["EPSG"] == "4326" and float(attrs["Y_STEP"]) == pytest.approx(-0.0007)


def _smooth(r, c):
    return np.sin(r / 9.0) + np.cos(c / 11.0) + 0.01 * r * c / 10


def test_round_trip_radar_geo_radar(tmp_path):
    geom = _geometry_radar(tmp_path)
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    data = _smooth(r, c)
    vel = _velocity(tmp_path, data)
    opts = GeocodeOptions(method="linear")
    geo = geocode_file(vel, geom, options=opts)
    back = geocode_file(geo, geom, geo2radar=True, options=opts)
    assert back.name == "rdr_geo_velocity.h5"
    meta = Product.open(back).metadata
    assert not meta.grid.is_geocoded and meta.grid.shape == (L, W) and "EPSG" not in meta.to_attrs()
    got = Product.open(back).read("velocity")
    inner = (slice(2, L - 2), slice(2, W - 2))
    assert np.isfinite(got[inner]).all()
    assert np.nanmax(np.abs(got[inner] - data[inner])) < 0.02  # bilinear twice on a smooth field


def test_metadata_reference_and_time_series(tmp_path):
    geom = _geometry_radar(tmp_path)
    lat, lon = _latlon(12.0, 30.0)
    data = np.random.default_rng(0).normal(size=(3, L, W)).astype(np.float32)
    meta = _radar_meta(reference=Reference(y=12, x=30, lat=float(lat), lon=float(lon))).with_extra(
        SUBSET_YMIN=0, SUBSET_YMAX=L)
    ts = tmp_path / "timeseries.h5"
    with TimeSeriesWriter(ts, meta, ["20200101", "20200113", "20200125"], np.array([1, 2, 3])) as w:
        w.write("timeseries", data)
    out = geocode_file(ts, geom, options=GeocodeOptions(lalo_step=(0.0005, 0.0005)))
    p = Product.open(out)
    m = p.metadata
    assert m.file_type == "timeseries" and m.grid.is_geocoded and p.date_strings == ["20200101", "20200113", "20200125"]
    assert p.dataset_shape("timeseries") == (3,) + m.grid.shape and "SUBSET_YMIN" not in m.extra
    ry, rx = m.reference.y, m.reference.x
    clat, clon = m.grid.geo.yx_to_lalo(ry, rx)
    assert abs(clat - lat) <= 0.00026 and abs(clon - lon) <= 0.00026
    np.testing.assert_allclose(p.read("bperp"), [1, 2, 3])
    # the reference pixel's value comes from the radar reference pixel's neighbourhood
    assert np.isfinite(p.read("timeseries")[:, ry, rx]).all()


def test_blockwise_equals_single_block(tmp_path):
    geom = _geometry_radar(tmp_path)
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    vel = _velocity(tmp_path, _smooth(r, c))
    one = geocode_file(vel, geom, tmp_path / "one.h5", options=GeocodeOptions(method="linear"))
    many = geocode_file(vel, geom, tmp_path / "many.h5", options=GeocodeOptions(method="linear", max_memory=2e-6))
    np.testing.assert_array_equal(Product.open(one).read("velocity"), Product.open(many).read("velocity"))


def _gamma_case(folder):
    """A geocoded lookup (azimuthCoord/rangeCoord) on a lat/lon grid, affine in the geo pixel."""
    gl, gw = 30, 36
    geo = GeoGrid(-99.3, 19.5, 0.001, -0.001, epsg=4326)
    i, j = np.mgrid[0:gl, 0:gw].astype(np.float64)
    az = 0.9 * i + 0.2 * j - 1.5
    rg = -0.1 * i + 1.3 * j + 2.0
    az[(az < 0) | (az > L - 1)] = np.nan
    rg[(rg < 0) | (rg > W - 1)] = np.nan
    gmeta = Metadata(Grid(gl, gw, geo), radar=RadarInfo(alooks=1, rlooks=1))
    path = folder / "geometryGeo.h5"
    write_map(path, gmeta, "geometry", {"azimuthCoord": az.astype(np.float32), "rangeCoord": rg.astype(np.float32)},
              unit=None)
    return path, az.astype(np.float32).astype(np.float64), rg.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("method", ["nearest", "linear"])
def test_geocoded_lookup_gamma_style(tmp_path, method):
    lut, az, rg = _gamma_case(tmp_path)
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    vel = _velocity(tmp_path, _affine_field(r, c))
    out = geocode_file(vel, lut, options=GeocodeOptions(method=method))
    p = Product.open(out)
    assert p.metadata.grid == Product.open(lut).metadata.grid
    got = p.read("velocity")
    ok = np.isfinite(az) & np.isfinite(rg)
    if method == "nearest":
        expect = _affine_field(np.floor(az + 0.5), np.floor(rg + 0.5))
    else:
        expect = _affine_field(az, rg)
    np.testing.assert_allclose(got[ok], expect[ok], atol=1e-3)
    assert np.isnan(got[~ok]).all()
    # and back: radar pixels covered by the lookup get their values again
    back = geocode_file(out, lut, geo2radar=True, options=GeocodeOptions(method="linear"))
    b = Product.open(back).read("velocity")
    if method == "linear":
        inner = b[5:20, 5:30]
        np.testing.assert_allclose(inner[np.isfinite(inner)], _affine_field(r, c)[5:20, 5:30][np.isfinite(inner)],
                                   atol=1e-3)
        assert np.isfinite(inner).mean() > 0.9


def test_geocoded_lookup_new_grid(tmp_path):
    lut, az, rg = _gamma_case(tmp_path)
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    vel = _velocity(tmp_path, _affine_field(r, c))
    out = geocode_file(vel, lut, options=GeocodeOptions(method="linear", lalo_step=(0.0005, 0.0005),
                                                        bbox=(19.48, 19.49, -99.29, -99.27)))
    p = Product.open(out)
    assert p.shape == (20, 40)
    lat, lon, _ = _geo_centres(out)
    i, j = (19.5 - lat) / 0.001 - 0.5, (lon + 99.3) / 0.001 - 0.5
    expect = _affine_field(0.9 * i + 0.2 * j - 1.5, -0.1 * i + 1.3 * j + 2.0)
    got = p.read("velocity")
    ok = np.isfinite(got)
    assert ok.mean() > 0.8
    np.testing.assert_allclose(got[ok], expect[ok], atol=1e-3)


def test_refusals(tmp_path):
    geom = _geometry_radar(tmp_path)
    vel = _velocity(tmp_path, np.zeros((L, W)))
    with pytest.raises(InputError, match="already in radar"):
        geocode_file(vel, geom, geo2radar=True)
    with pytest.raises(InputError, match="not a lookup"):
        geocode_file(vel, vel)
    with pytest.raises(InputError, match="interpolation"):
        geocode_file(vel, geom, options=GeocodeOptions(method="cubic"))


def test_utm_output(tmp_path):
    pytest.importorskip("osgeo")
    geom = _geometry_radar(tmp_path)
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    vel = _velocity(tmp_path, _smooth(r, c))
    out = geocode_file(vel, geom, options=GeocodeOptions(utm=True, lalo_step=(100.0, 100.0), method="linear"))
    m = Product.open(out).metadata
    assert m.grid.geo.epsg == 32614 and m.grid.geo.x_unit == "meters" and m.grid.geo.x_step == 100.0
    assert np.isfinite(Product.open(out).read("velocity")).mean() > 0.3


def test_cli(tmp_path):
    from sbts.cli.main import cli

    geom = _geometry_radar(tmp_path)
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    vel = _velocity(tmp_path, _smooth(r, c))
    res = CliRunner().invoke(cli, ["geocode", str(vel), "-l", str(geom), "--lalo-step", "0.0007", "0.0007",
                                   "-i", "linear", "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    out = tmp_path / "out" / "geo_velocity.h5"
    assert out.exists() and str(out) in res.output
    res = CliRunner().invoke(cli, ["geocode", str(out), "-l", str(geom), "--geo2radar", "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "rdr_geo_velocity.h5").exists()
    res = CliRunner().invoke(cli, ["geocode", str(out), "-l", str(geom)])
    assert res.exit_code == 1 and "already geocoded" in res.output


def test_mexico_city_gamma_lookup_round_trip(tmp_path, shared_data):
    """The real GAMMA lookup (eqa_to_rdc.lt): stacking velocity geo → radar → geo."""
    import warnings

    from sbts.core.config.template import Template
    from sbts.core.steps.load import load_data
    from sbts.core.steps.prepare import prepare_network

    m = shared_data / "pyrate_s1_mexico_cropA_gamma"
    keys = dict(unwFile="geotiffs/*_unw.tif", demFile="geotiffs/*_dem.tif", metaFile="headers/*_mli.par",
                lookupYFile="geometry/*eqa_to_rdc.lt", lookupXFile="geometry/*eqa_to_rdc.lt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = Template({"mintpy.load.processor": "auto", **{f"mintpy.load.{k}": str(m / v) for k, v in keys.items()}})
    loaded = load_data(t, tmp_path)
    prepare_network(loaded.stack_file, t, tmp_path)
    lut = tmp_path / "inputs" / "geometryGeo.h5"
    opts = GeocodeOptions(method="linear")
    radar = geocode_file(tmp_path / "avgPhaseVelocity.h5", lut, geo2radar=True, options=opts)
    back = geocode_file(radar, lut, tmp_path / "back.h5", options=opts)
    a = Product.open(tmp_path / "avgPhaseVelocity.h5")
    b = Product.open(back)
    assert b.metadata.grid == a.metadata.grid and b.metadata.reference.y == a.metadata.reference.y
    va, vb = a.read("velocity"), b.read("velocity")
    ok = np.isfinite(va) & np.isfinite(vb)
    assert ok.mean() > 0.95
    assert np.median(np.abs(va - vb)[ok]) < 0.01 * np.nanstd(va)


def test_geometry_radar_file_is_its_own_lookup(tmp_path):
    """`sbts geocode inputs/geometryRadar.h5` (ISCE: it holds latitude/longitude): was 'no lookup table
    found' because the file itself was excluded from the search."""
    from sbts.cli.main import cli

    (tmp_path / "inputs").mkdir()
    geom = _geometry_radar(tmp_path / "inputs")
    res = CliRunner().invoke(cli, ["geocode", str(geom), "--lalo-step", "0.0007", "0.0007"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "inputs" / "geo" / "geo_geometryRadar.h5"
    p = Product.open(out)
    assert p.metadata.grid.is_geocoded
    lat, lon, _ = _geo_centres(out)
    got = p.read("latitude")
    ok = np.isfinite(got)
    assert ok.mean() > 0.3
    assert np.nanmax(np.abs(got[ok] - lat[ok])) < 0.0012  # nearest pixel: within one radar pixel (0.001°)
    # the geometry cannot be its own lookup the other way round
    res = CliRunner().invoke(cli, ["geocode", str(out), "--geo2radar"])
    assert res.exit_code == 0, res.output


def test_geo_to_radar_fills_the_rim_of_a_gamma_lookup(tmp_path):
    """A GAMMA/ROI_PAC lookup is (0, 0) outside the radar footprint: the Newton steps toward a radar
    pixel of the image's rim met those holes, and geo→radar left the first/last rows and columns
    empty.  Every radar pixel inside the footprint of the geocoded data must be filled."""
    gl, gw = 64, 70
    geo = GeoGrid(-99.3, 19.5, 0.0008, -0.0008, epsg=4326)
    i, j = np.mgrid[0:gl, 0:gw].astype(np.float64)
    az = 0.8 * (i - 12) + 0.15 * (j - 5)  # affine, rotated: the radar image sits inside the geo grid
    rg = -0.12 * (i - 12) + 0.9 * (j - 5)
    outside = (az < -0.5) | (az > L - 0.5) | (rg < -0.5) | (rg > W - 0.5)
    az[outside], rg[outside] = 0.0, 0.0  # GAMMA's convention
    gmeta = Metadata(Grid(gl, gw, geo), radar=RadarInfo(alooks=1, rlooks=1))
    lut = tmp_path / "geometryGeo.h5"
    write_map(lut, gmeta, "geometry", {"azimuthCoord": az.astype(np.float32), "rangeCoord": rg.astype(np.float32)},
              unit=None)
    field = np.where(outside, np.nan, _affine_field(az, rg))
    data = tmp_path / "geo_velocity.h5"
    write_map(data, Metadata(Grid(gl, gw, geo), unit="m/year"), "velocity", {"velocity": field.astype(np.float32)},
              unit="m/year")
    from sbts.core.io.blocks import Block
    from sbts.core.steps.geocode import GeoToRdcRadar, Lookup

    mapping = GeoToRdcRadar(Lookup.open(lut), Product.open(data).metadata, GeocodeOptions())
    rows, cols = mapping.coords(Block(0, L, 0, W))
    assert np.isfinite(rows).mean() > 0.99, f"{np.isnan(rows).sum()} radar pixels without a geo position"
    back = geocode_file(data, lut, geo2radar=True, options=GeocodeOptions(method="nearest"))
    got = Product.open(back).read("velocity")
    r, c = np.mgrid[0:L, 0:W].astype(np.float64)
    rim = np.zeros((L, W), bool)
    rim[[0, -1], :] = rim[:, [0, -1]] = True
    assert np.isfinite(got[~rim]).all()
    # on the rim, the nearest geo pixel is outside the footprint (NaN in the data) for some pixels
    assert np.isfinite(got[rim]).mean() > 0.75, np.isfinite(got[rim]).mean()
    ok = np.isfinite(got)
    # nearest geo pixel of an affine field: within one geo pixel of the radar pixel's own value
    assert np.nanmax(np.abs(got[ok] - _affine_field(r, c)[ok])) < 4.0


def test_projected_grid_warped_to_latitude_longitude(tmp_path):
    """A UTM grid (HyP3) goes to WGS84 lat/lon for KMZ and HDF-EOS5 (`--epsg 4326`), no lookup needed."""
    osr = pytest.importorskip("osgeo.osr")
    n, m = 30, 40
    utm = GeoGrid(480000.0, 2150000.0, 80.0, -80.0, "meters", "meters", 32614)
    rows, cols = np.mgrid[0:n, 0:m].astype(np.float64)
    vel = tmp_path / "velocity.h5"
    meta = Metadata(Grid(n, m, utm), unit="m/year", reference=Reference(y=10, x=12))
    write_map(vel, meta, "velocity", {"velocity": _affine_field(rows, cols).astype(np.float32)}, unit="m/year")
    assert Product.open(vel).metadata.to_attrs()["UTM_ZONE"] == "14N"
    out = geocode_file(vel, options=GeocodeOptions(epsg=4326))
    p = Product.open(out)
    a = p.metadata.to_attrs()
    assert a["EPSG"] == "4326" and "UTM_ZONE" not in a and a["X_UNIT"] == "degrees"
    lat, lon, _ = _geo_centres(out)
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(4326)
    dst.ImportFromEPSG(32614)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    xy = np.asarray(osr.CoordinateTransformation(src, dst).TransformPoints(np.c_[lon.ravel(), lat.ravel()]))
    i = ((xy[:, 1] - utm.y_first) / utm.y_step - 0.5).reshape(lat.shape)
    j = ((xy[:, 0] - utm.x_first) / utm.x_step - 0.5).reshape(lat.shape)
    inside = (i >= -0.5) & (i <= n - 0.5) & (j >= -0.5) & (j <= m - 0.5)
    got = p.read("velocity")
    assert np.array_equal(np.isfinite(got), inside)
    np.testing.assert_array_equal(got[inside], _affine_field(np.floor(i + 0.5), np.floor(j + 0.5))[inside])
    # the reference pixel follows, with its latitude/longitude
    assert got[p.metadata.reference.y, p.metadata.reference.x] == _affine_field(10, 12)
    assert abs(p.metadata.reference.lat - 19.4) < 1 and abs(p.metadata.reference.lon + 99) < 1


def test_bilinear_equals_map_coordinates_with_nan_and_outside_positions():
    """The shared-weights bilinear of geocode against scipy's map_coordinates(order=1, mode="nearest"):
    the same NaN pixels and values within 2 ulp, for every layer of a stack, positions outside the
    grid and on NaN neighbours included."""
    from scipy.ndimage import map_coordinates

    from sbts.core.steps.geocode import _bilinear, _bilinear_setup

    rng = np.random.default_rng(0)
    for shape in ((7, 9), (1, 5), (4, 1), (2, 2)):
        layers = rng.normal(size=(3,) + shape)
        layers[1, shape[0] // 2, shape[1] // 2] = np.nan
        r = np.r_[rng.uniform(-0.7, shape[0] - 0.3, 500), np.arange(shape[0])]
        c = np.r_[rng.uniform(-0.7, shape[1] - 0.3, 500), np.arange(shape[0]) % shape[1]]
        got = _bilinear(layers.reshape(3, -1), *_bilinear_setup(r, c, shape))
        for k in range(3):
            ref = map_coordinates(layers[k], (r, c), order=1, mode="nearest")
            np.testing.assert_array_equal(np.isnan(got[k]), np.isnan(ref))
            np.testing.assert_allclose(got[k], ref, rtol=0, atol=4.5e-16 * np.nanmax(np.abs(layers[k])))


def test_inverse_lookup_node_guesses_equal_exact_guesses():
    """An output block is started from every 4th target's KD-tree guess, a list of targets from each
    target's own: same outside pixels and positions within the 1e-6-pixel convergence test; the
    true positions of a smooth, rotated and curved lookup are found to 1e-6 px."""
    from sbts.core.io.blocks import Block
    from sbts.core.steps.geocode import InverseLookup

    length, width = 120, 90
    yy, xx = np.mgrid[0:length, 0:width].astype(float)
    lat = 30 + 1e-3 * (0.9 * yy + 0.3 * xx) + 2e-7 * xx**2
    lon = 100 + 1e-3 * (-0.25 * yy + 0.95 * xx) + 1e-7 * yy**2
    lat[:3, :] = np.nan  # a footprint edge of no data

    def read(block: Block):
        return lat[block.slices], lon[block.slices]

    inv = InverseLookup(read, (length, width))
    ty, tx = np.mgrid[0:70, 0:80].astype(float)
    t1 = 29.995 + 0.0015 * ty  # reaches beyond the footprint on every side
    t2 = 99.96 + 0.0015 * tx
    r_blk, c_blk = inv.solve(t1, t2)
    r_pts, c_pts = inv.solve(t1.ravel(), t2.ravel())
    np.testing.assert_array_equal(np.isnan(r_blk.ravel()), np.isnan(r_pts))
    assert 0.2 < np.isnan(r_pts).mean() < 0.9
    np.testing.assert_allclose(r_blk.ravel(), r_pts, atol=1e-6)
    np.testing.assert_allclose(c_blk.ravel(), c_pts, atol=1e-6)
    # the positions found map back to the targets (bilinear lookup; the lookup is smooth)
    from scipy.ndimage import map_coordinates

    ok = np.isfinite(r_blk) & (r_blk > 3.5) & (r_blk < length - 1) & (c_blk > 0) & (c_blk < width - 1)
    back1 = map_coordinates(lat, (r_blk[ok], c_blk[ok]), order=1)
    back2 = map_coordinates(lon, (r_blk[ok], c_blk[ok]), order=1)
    np.testing.assert_allclose(back1, t1[ok], atol=1e-9)
    np.testing.assert_allclose(back2, t2[ok], atol=1e-9)
