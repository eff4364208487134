"""GMT netCDF grids read back with GDAL; shared map selection; the demo and the Mexico City stack."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.errors import InputError
from sbts.core.io.products import TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo, Reference
from sbts.core.plugin.runners import export

gdal = pytest.importorskip("osgeo.gdal")
gdal.UseExceptions()

L, W = 20, 30
GEO = GeoGrid(-99.2, 19.5, 0.001, -0.0008, epsg=4326)
DATES = ["20200101", "20200113", "20200125", "20200206"]


def _meta(geo=GEO) -> Metadata:
    return Metadata(Grid(L, W, geo), unit="m/year", radar=RadarInfo(wavelength=0.0555),
                    reference=Reference(y=4, x=5, lat=19.4964, lon=-99.1945))


def _velocity(folder, geo=GEO):
    vel = (np.arange(L * W, dtype=np.float32).reshape(L, W) - 300) / 10000
    vel[0, 0] = np.nan
    path = folder / "velocity.h5"
    write_map(path, _meta(geo), "velocity", {"velocity": vel}, START_DATE=DATES[0], END_DATE=DATES[-1])
    return path, vel


def _timeseries(folder, geo=GEO):
    data = np.random.default_rng(0).normal(size=(len(DATES), L, W)).astype(np.float32) / 100
    path = folder / "timeseries.h5"
    with TimeSeriesWriter(path, _meta(geo), DATES) as w:
        w.write("timeseries", data)
    return path, data


def _read(path):
    ds = gdal.Open(str(path))
    return ds, ds.GetRasterBand(1).ReadAsArray()


def test_grid_read_back_with_gdal(tmp_path):
    path, vel = _velocity(tmp_path)
    (out,) = export("gmt", path)
    assert out == tmp_path / "velocity.grd"
    ds, data = _read(out)
    assert ds.GetDriver().ShortName == "netCDF"
    assert ds.GetGeoTransform() == pytest.approx((-99.2, 0.001, 0, 19.5, 0, -0.0008), abs=1e-9)
    np.testing.assert_array_equal(data[1:], vel[1:])
    assert np.isnan(data[0, 0])
    from scipy.io import netcdf_file

    with netcdf_file(str(out), "r", mmap=False) as f:
        assert f.variables["z"].units.decode() == "m/year"
        lat = f.variables["lat"][:]
        assert lat[0] < lat[-1] and lat[-1] == pytest.approx(19.5 - 0.0004)
        assert list(f.variables["z"].actual_range) == pytest.approx([np.nanmin(vel), np.nanmax(vel)])
        assert f.node_offset == 1


def test_date_pair_and_unit(tmp_path):
    path, data = _timeseries(tmp_path)
    (out,) = export("gmt", path, "20200113_20200206", output=tmp_path / "d.grd", options={"unit": "mm"})
    _, got = _read(out)
    np.testing.assert_allclose(got, (data[3] - data[1]) * 1000, rtol=1e-5)


def test_refusals(tmp_path):
    path, _ = _timeseries(tmp_path)
    with pytest.raises(InputError, match="name one"):
        export("gmt", path)
    with pytest.raises(InputError, match="not in the time series"):
        export("gmt", path, "20210101")
    radar = tmp_path / "radar"
    radar.mkdir()
    vpath, _ = _velocity(radar, geo=None)
    with pytest.raises(InputError, match="sbts geocode"):
        export("gmt", vpath)
    with pytest.raises(InputError, match="unknown option"):
        export("gmt", _velocity(tmp_path)[0], options={"colour": "red"})


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("demo")
    run_demo(work, shape=(40, 50), num_date=10)
    return work


def test_cli_on_demo(demo):
    from sbts.cli.main import cli

    res = CliRunner().invoke(cli, ["export", "gmt", str(demo / "temporalCoherence.h5"), "-o", str(demo / "gmt")])
    assert res.exit_code == 0, res.output
    _, got = _read(demo / "gmt" / "temporalCoherence.grd")
    import h5py

    with h5py.File(demo / "temporalCoherence.h5") as f:
        np.testing.assert_allclose(got, f["temporalCoherence"][()])


def test_mexico_city_velocity(tmp_path, shared_data):
    """The stacking velocity of the real GeoTIFF stack through gmt, gbis, kmz and roipac."""
    from scipy.io import loadmat

    from sbts.core.config.template import Template
    from sbts.core.steps.load import load_data
    from sbts.core.steps.prepare import prepare_network

    m = shared_data / "pyrate_s1_mexico_cropA_gamma"
    keys = dict(unwFile="geotiffs/*_unw.tif", corFile="geotiffs/*_cc.tif", demFile="geotiffs/*_dem.tif",
                metaFile="headers/*_mli.par", bperpFile="geometry/*_bperp.par",
                lookupYFile="geometry/*eqa_to_rdc.lt", lookupXFile="geometry/*eqa_to_rdc.lt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = Template({"mintpy.load.processor": "auto", **{f"mintpy.load.{k}": str(m / v) for k, v in keys.items()}})
    loaded = load_data(t, tmp_path)
    prepare_network(loaded.stack_file, t, tmp_path)
    vel_file = tmp_path / "avgPhaseVelocity.h5"
    import h5py

    with h5py.File(vel_file) as f:
        vel = f["velocity"][()]
        x_first, y_first = float(f.attrs["X_FIRST"]), float(f.attrs["Y_FIRST"])
    (grd,) = export("gmt", vel_file)
    ds, got = _read(grd)
    np.testing.assert_allclose(got, vel)
    assert ds.GetGeoTransform()[0] == pytest.approx(x_first) and ds.GetGeoTransform()[3] == pytest.approx(y_first)
    (mat,) = export("gbis", vel_file, options={"geometry": str(tmp_path / "inputs" / "geometryGeo.h5")})
    g = loadmat(mat)
    assert g["Phase"].shape == g["Lon"].shape == g["Inc"].shape and np.isfinite(g["Phase"]).all()
    assert 30 < g["Inc"].min() and g["Inc"].max() < 33
    (kmz,) = export("kmz", vel_file)
    assert kmz.stat().st_size > 1000
    unw, rsc = export("roipac", vel_file)
    assert unw.suffix == ".unw" and "DATE12" in rsc.read_text()
