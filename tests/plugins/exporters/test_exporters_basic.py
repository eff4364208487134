"""Built-in exporters: GeoTIFF read back with GDAL, HDF5 subsets read back with h5py, CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.errors import InputError
from sbts.core.io.products import StackWriter, TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, Reference
from sbts.core.model.pairs import Pairs
from sbts.core.plugin.runners import export

L, W = 20, 30
DATES = ["20200101", "20200113", "20200125", "20200206"]
GEO = GeoGrid(120.5, 35.25, 0.01, -0.005, epsg=4326)


def _meta(geo=GEO, ref=(4, 5)) -> Metadata:
    return Metadata(Grid(L, W, geo), unit="m", reference=Reference(y=ref[0], x=ref[1], lat=35.2, lon=120.55))


def _velocity(folder, geo=GEO):
    vel = np.arange(L * W, dtype=np.float32).reshape(L, W) / 1000
    vel[0, 0] = np.nan
    std = np.full((L, W), 0.002, np.float32)
    path = folder / "velocity.h5"
    write_map(path, _meta(geo).replace(unit="m/year"), "velocity", {"velocity": vel, "velocityStd": std},
              START_DATE=DATES[0], END_DATE=DATES[-1])
    return path, vel


def _timeseries(folder, geo=GEO):
    data = np.random.default_rng(0).normal(size=(len(DATES), L, W)).astype(np.float32)
    path = folder / "timeseries.h5"
    with TimeSeriesWriter(path, _meta(geo), DATES, np.arange(len(DATES), dtype=np.float32)) as w:
        w.write("timeseries", data)
    return path, data


def _stack(folder, geo=None):
    pairs = Pairs.from_date12(["20200101_20200113", "20200101_20200125", "20200113_20200206", "20200125_20200206"],
                              [1.0, 2.0, 3.0, 4.0])
    unw = np.random.default_rng(1).normal(size=(4, L, W)).astype(np.float32)
    path = folder / "ifgramStack.h5"
    with StackWriter(path, _meta(geo), pairs, ["unwrapPhase", "coherence"]) as w:
        w.write("unwrapPhase", unw)
        w.write("coherence", np.full_like(unw, 0.5))
    return path, unw


# ----------------------------------------------------------------------------- GeoTIFF
@pytest.fixture()
def gdal():
    gdal = pytest.importorskip("osgeo.gdal")
    gdal.UseExceptions()
    return gdal


def _epsg(ds) -> str:
    from osgeo import osr

    srs = osr.SpatialReference(wkt=ds.GetProjection())
    return srs.GetAuthorityCode(None)


def test_geotiff_one_file_per_map(tmp_path, gdal):
    path, vel = _velocity(tmp_path)
    out = export("geotiff", path)
    assert sorted(p.name for p in out) == ["velocity.tif", "velocity_velocityStd.tif"]
    ds = gdal.Open(str(tmp_path / "velocity.tif"))
    band = ds.GetRasterBand(1)
    data = band.ReadAsArray()
    np.testing.assert_array_equal(data[1:], vel[1:])
    assert np.isnan(data[0, 0]) and np.isnan(band.GetNoDataValue())
    assert ds.GetGeoTransform() == pytest.approx((120.5, 0.01, 0.0, 35.25, 0.0, -0.005))
    assert _epsg(ds) == "4326"
    tags = ds.GetMetadata()
    assert tags["UNIT"] == "m/year" and tags["REF_Y"] == "4" and tags["REF_X"] == "5"
    assert tags["START_DATE"] == DATES[0]


def test_geotiff_time_series_date_and_all_bands(tmp_path, gdal):
    path, data = _timeseries(tmp_path)
    (one,) = export("geotiff", path, "20200125", output=tmp_path / "d.tif")
    ds = gdal.Open(str(one))
    assert ds.RasterCount == 1 and ds.GetMetadata()["DATE"] == "20200125"
    np.testing.assert_array_equal(ds.ReadAsArray(), data[2])

    (multi,) = export("geotiff", path, options={"bands": "all", "max_memory": 1e-5})  # several blocks
    ds = gdal.Open(str(multi))
    assert multi.name == "timeseries.tif" and ds.RasterCount == len(DATES)
    assert [ds.GetRasterBand(i + 1).GetDescription() for i in range(len(DATES))] == DATES
    np.testing.assert_array_equal(ds.ReadAsArray(), data)
    assert ds.GetMetadata()["DATES"] == ",".join(DATES)


@pytest.mark.parametrize("cluster", [None, "local"])
def test_geotiff_stack_compressed_by_the_workers_same_bytes(tmp_path, gdal, monkeypatch, cluster):
    """The run's workers compress the tiles (GDAL threads): the file is byte for byte the one a
    single thread writes with the same blocks (the blocks set the order of the tiles in the file)."""
    from sbts.core.config.compute import ComputeOptions
    from sbts.plugins.exporters import geotiff

    length, width, dates = 300, 700, ["20200101", "20200113", "20200125", "20200206", "20200218"]
    geo = GeoGrid(120.5, 35.25, 0.001, -0.001, epsg=4326)
    meta = Metadata(Grid(length, width, geo), unit="m", reference=Reference(y=4, x=5))
    rng = np.random.default_rng(3)
    data = np.cumsum(rng.normal(0, 0.01, (len(dates), length, width)), axis=0).astype(np.float32)
    with TimeSeriesWriter(tmp_path / "timeseries.h5", meta, dates) as w:
        w.write("timeseries", data)
    seen = []
    write = geotiff._write
    monkeypatch.setattr(geotiff, "_write", lambda *a, **k: (seen.append(a[-1] if len(a) > 9 else k.get("threads")),
                                                            write(*a, **k))[1])
    (one,) = export("geotiff", tmp_path / "timeseries.h5", output=tmp_path / "one.tif",
                    options={"bands": "all", "max_memory": 0.002})
    (many,) = export("geotiff", tmp_path / "timeseries.h5", output=tmp_path / "many.tif",
                     options={"bands": "all", "max_memory": 0.002},
                     compute=ComputeOptions(num_worker=2, cluster=cluster))
    assert seen == [1, 2]
    assert one.read_bytes() == many.read_bytes()
    np.testing.assert_array_equal(gdal.Open(str(many)).ReadAsArray(), data)


def test_geotiff_3d_without_a_date_asks_for_one(tmp_path, gdal):
    path, _ = _timeseries(tmp_path)
    with pytest.raises(InputError, match="bands=all"):
        export("geotiff", path)
    with pytest.raises(InputError, match="20300101"):
        export("geotiff", path, "20300101")


def test_geotiff_projected_grid_crs(tmp_path, gdal):
    utm = GeoGrid(500000.0, 4000000.0, 30.0, -30.0, "meters", "meters", epsg=32633)
    path, _ = _velocity(tmp_path, utm)
    (out,) = export("geotiff", path, "velocity")
    ds = gdal.Open(str(out))
    assert _epsg(ds) == "32633"
    assert ds.GetGeoTransform()[0] == 500000.0


def test_geotiff_geocoded_stack_pair(tmp_path, gdal):
    path, unw = _stack(tmp_path, GEO)
    (out,) = export("geotiff", path, "coherence-20200113_20200206")
    assert out.name == "ifgramStack_coherence_20200113_20200206.tif"
    ds = gdal.Open(str(out))
    assert ds.GetMetadata()["DATE12"] == "20200113_20200206"
    np.testing.assert_array_equal(ds.ReadAsArray(), 0.5)
    (out,) = export("geotiff", path, "20200101_20200125")
    np.testing.assert_array_equal(gdal.Open(str(out)).ReadAsArray(), unw[1])


def test_geotiff_refuses_radar_coordinates(tmp_path):
    path, _ = _stack(tmp_path)
    with pytest.raises(InputError, match="sbts geocode"):
        export("geotiff", path, "unwrapPhase-20200101_20200113")


# ----------------------------------------------------------------------------- HDF5
def test_hdf5_subset_and_date_range(tmp_path):
    path, data = _timeseries(tmp_path)
    (out,) = export("hdf5", path, output=tmp_path / "sub.h5",
                    options={"yx": "2:12,3:20", "start": "20200113", "end": "20200125", "max_memory": 1e-5})
    with h5py.File(out) as f:
        assert [d.decode() for d in f["date"][()]] == DATES[1:3]
        np.testing.assert_array_equal(f["bperp"][()], [1, 2])
        np.testing.assert_array_equal(f["timeseries"][()], data[1:3, 2:12, 3:20])
        a = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()}
    assert (a["LENGTH"], a["WIDTH"], a["FILE_TYPE"]) == ("10", "17", "timeseries")
    assert float(a["X_FIRST"]) == pytest.approx(120.5 + 3 * 0.01)
    assert float(a["Y_FIRST"]) == pytest.approx(35.25 - 2 * 0.005)
    assert (a["REF_Y"], a["REF_X"]) == ("2", "2")
    assert (a["SUBSET_YMIN"], a["SUBSET_XMAX"]) == ("2", "20")
    assert (a["START_DATE"], a["END_DATE"]) == (DATES[1], DATES[2])  # the dates kept
    assert not list(tmp_path.glob("*.part"))


def test_hdf5_reference_outside_is_kept_as_mintpy_subset(tmp_path):
    """MintPy's subset.py shifts REF_Y/REF_X even when the point falls outside the box and keeps
    REF_LAT/REF_LON, so the pieces share one reference (image_stitch.py needs REF_LAT/REF_LON)."""
    path, _ = _velocity(tmp_path)
    with h5py.File(path) as f:
        ref = {k: f.attrs[k] for k in ("REF_Y", "REF_X", "REF_LAT", "REF_LON")}
    (out,) = export("hdf5", path, "velocity", options={"yx": "10:,10:"})
    assert out.name == "sub_velocity.h5"
    with h5py.File(out) as f:
        assert list(f) == ["velocity"]
        assert f["velocity"].shape == (10, 20)
        assert int(f.attrs["REF_Y"]) == int(ref["REF_Y"]) - 10 and int(f.attrs["REF_X"]) == int(ref["REF_X"]) - 10
        assert float(f.attrs["REF_LAT"]) == float(ref["REF_LAT"]) and float(f.attrs["REF_LON"]) == float(ref["REF_LON"])
        assert f.attrs["START_DATE"] == DATES[0]


def test_hdf5_stack_date_range_cuts_the_pairs(tmp_path):
    path, unw = _stack(tmp_path)
    (out,) = export("hdf5", path, "unwrapPhase", options={"end": "20200125"})
    with h5py.File(out) as f:
        assert sorted(f) == ["bperp", "date", "dropIfgram", "unwrapPhase"]
        assert f["date"].shape == (2, 2)
        np.testing.assert_array_equal(f["unwrapPhase"][()], unw[:2])
        np.testing.assert_array_equal(f["bperp"][()], [1, 2])


def test_hdf5_bad_options(tmp_path):
    path, _ = _velocity(tmp_path)
    with pytest.raises(InputError, match="no dates"):
        export("hdf5", path, options={"start": "20200101"})
    with pytest.raises(InputError, match="empty or outside"):
        export("hdf5", path, options={"yx": "50:60,0:5"})
    with pytest.raises(InputError, match="overwrite"):
        export("hdf5", path, output=path)
    with pytest.raises(InputError, match="nope"):
        export("hdf5", path, "nope")


# ----------------------------------------------------------------------------- CLI
def test_cli_export_geotiff_and_hdf5(tmp_path, gdal):
    from sbts.cli.main import cli

    path, data = _timeseries(tmp_path)
    runner = CliRunner()
    res = runner.invoke(cli, ["-q", "export", "geotiff", str(path), "20200113", "-o", str(tmp_path / "x.tif")])
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(gdal.Open(str(tmp_path / "x.tif")).ReadAsArray(), data[1])
    res = runner.invoke(cli, ["-q", "export", "hdf5", str(path), "-O", "yx=0:5,0:5", "-o", str(tmp_path / "s.h5")])
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "s.h5") as f:
        np.testing.assert_array_equal(f["timeseries"][()], data[:, :5, :5])


def test_cli_export_help_says_what_is_written():
    from sbts.cli.main import cli

    res = CliRunner().invoke(cli, ["export", "geotiff", "--help"])
    assert res.exit_code == 0 and "bands=all" in res.output and "geocoded" in res.output
    res = CliRunner().invoke(cli, ["export", "hdf5", "--help"])
    assert res.exit_code == 0 and "start=YYYYMMDD" in res.output


def test_cli_geotiff_radar_file_gives_geocode_hint(tmp_path):
    from sbts.cli.main import cli

    path, _ = _stack(tmp_path)
    res = CliRunner().invoke(cli, ["export", "geotiff", str(path), "unwrapPhase-20200101_20200113"])
    assert res.exit_code == 1 and "sbts geocode" in res.output
