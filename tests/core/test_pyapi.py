"""The public Python API (``import sbts``, issue 19 §1), checked on values.

- ``sbts.open_dataset`` gives exactly the HDF5 dataset's values (whole, sliced, fancy-indexed),
  lazily (dask, or xarray's lazy array), with dates/pairs/baselines as coordinates, the pixel-centre
  coordinates of the grid (``Y_FIRST + (i + ½)·Y_STEP``) and a CRS that pyproj reads back as the
  file's EPSG; radar files get pixel indices and no CRS;
- ``sbts.run/invert/correct/export`` are the commands' library calls: the outputs equal the CLI's
  bit for bit, and their keyword options reach the template (excluded pairs are dropped, the
  temporal-coherence threshold makes the mask);
- ``sbts.plot.*`` return Figures whose drawn data are the file's values in the display unit
  (float32 → float64 round-off: 1e-6 relative);
- every name of ``sbts.__all__`` and of ``sbts.plot.__all__`` has a numpy-style docstring, and
  ``docs/api.md`` is what ``scripts/gen_api_docs.py`` generates from them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import sbts
from sbts.cli.main import cli
from sbts.core.errors import InputError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("pyapi_demo")
    run_demo(work, shape=(40, 50), num_date=12)
    return work


def _h5(path, name):
    with h5py.File(path, "r") as f:
        return f[name][()], dict(f.attrs)


def _attr(attrs, key):
    v = attrs[key]
    return v.decode() if isinstance(v, bytes) else str(v)


# ----------------------------------------------------------------------------- open_dataset
def test_open_dataset_time_series_values_coordinates_and_attributes(demo):
    import dask.array as da

    path = demo / "timeseries_demErr.h5"
    ds = sbts.open_dataset(path)
    ts, attrs = _h5(path, "timeseries")
    dates, _ = _h5(path, "date")
    bperp, _ = _h5(path, "bperp")
    assert ds.timeseries.dims == ("time", "y", "x") and ds.timeseries.shape == ts.shape
    assert isinstance(ds.timeseries.data, da.Array)  # lazy
    np.testing.assert_array_equal(ds.timeseries.values, ts)
    np.testing.assert_array_equal(ds.timeseries.isel(time=[5, 2, 7], y=slice(3, 9), x=4).values,
                                  ts[[5, 2, 7], 3:9, 4])
    assert [str(t)[:10].replace("-", "") for t in ds.time.values] == [d.decode() for d in dates]
    np.testing.assert_array_equal(ds.bperp.values, bperp)
    assert ds.timeseries.attrs["units"] == "m"
    assert ds.attrs["FILE_TYPE"] == "timeseries" and str(ds.attrs["REF_Y"]) == _attr(attrs, "REF_Y")
    assert set(ds.attrs) == set(attrs)
    # a date selected by label is the same map
    k = 3
    day = np.datetime64(f"{dates[k].decode()[:4]}-{dates[k].decode()[4:6]}-{dates[k].decode()[6:]}")
    np.testing.assert_array_equal(ds.timeseries.sel(time=day).values, ts[k])


def test_open_dataset_geocoded_grid_and_crs(demo):
    from pyproj import CRS

    ds = sbts.open_dataset(demo / "velocity.h5", "velocity")
    v, attrs = _h5(demo / "velocity.h5", "velocity")
    assert list(ds.data_vars) == ["velocity"]
    np.testing.assert_array_equal(ds.velocity.values, v)
    y0, dy = float(_attr(attrs, "Y_FIRST")), float(_attr(attrs, "Y_STEP"))
    x0, dx = float(_attr(attrs, "X_FIRST")), float(_attr(attrs, "X_STEP"))
    np.testing.assert_allclose(ds.y.values, y0 + (np.arange(v.shape[0]) + 0.5) * dy, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ds.lon.values, x0 + (np.arange(v.shape[1]) + 0.5) * dx, rtol=0, atol=1e-12)
    assert ds.velocity.attrs["grid_mapping"] == "spatial_ref" and ds.velocity.attrs["units"] == "m/year"
    assert CRS.from_wkt(ds.spatial_ref.attrs["crs_wkt"]).to_epsg() == 4326
    assert ds.spatial_ref.attrs["grid_mapping_name"] == "latitude_longitude"  # CF
    assert CRS.from_cf(ds.spatial_ref.attrs).to_epsg() == 4326
    gt = [float(t) for t in ds.spatial_ref.attrs["GeoTransform"].split()]
    assert gt == [x0, dx, 0.0, y0, 0.0, dy]
    # the value at a lat/lon picked through the coordinates is the pixel's
    y, x = 7, 31
    lat, lon = y0 + (y + 0.5) * dy, x0 + (x + 0.5) * dx
    assert ds.velocity.sel(y=lat, x=lon, method="nearest").values == v[y, x]


SELECTIONS = [dict(time=2, y=[5, 1, 3, 3]), dict(time=[4, 0], y=3, x=[7, 2]), dict(y=slice(None, None, -2)),
              dict(time=-1, x=[9, 4]), dict(time=[], x=[9, 4]), dict(time=slice(2, 9, 3), y=slice(4, 30), x=11)]


@pytest.mark.parametrize("chunks", [None, "auto"])
@pytest.mark.parametrize("selection", SELECTIONS, ids=[str(s) for s in SELECTIONS])
def test_open_dataset_lazy_reads_equal_numpy_indexing(demo, chunks, selection):
    """Any selection read lazily from the file (h5py takes only increasing index lists: spans are read,
    then picked) equals the same selection of the array read whole."""
    import xarray as xr

    ts, _ = _h5(demo / "timeseries.h5", "timeseries")
    lazy = sbts.open_dataset(demo / "timeseries.h5", chunks=chunks).timeseries.isel(**selection)
    expected = xr.DataArray(ts, dims=("time", "y", "x")).isel(**selection)
    assert lazy.dims == expected.dims
    np.testing.assert_array_equal(lazy.values, expected.values)


def test_open_dataset_writes_to_netcdf_and_back(demo, tmp_path):
    """The Dataset is what the ecosystem takes: netCDF (scipy's writer) keeps values, dates and the CF CRS."""
    import xarray as xr
    from pyproj import CRS

    ds = sbts.open_dataset(demo / "timeseries_demErr.h5")
    ds.to_netcdf(tmp_path / "ts.nc")
    with xr.open_dataset(tmp_path / "ts.nc") as back:
        np.testing.assert_array_equal(back.timeseries.values, ds.timeseries.values)
        np.testing.assert_array_equal(back.time.values, ds.time.values)
        assert back.timeseries.attrs["grid_mapping"] == "spatial_ref"
        assert CRS.from_cf(back.spatial_ref.attrs).to_epsg() == 4326


def test_open_dataset_stack_pairs_without_dask(demo):
    path = demo / "inputs" / "ifgramStack.h5"
    ds = sbts.open_dataset(path, ["unwrapPhase", "coherence"], chunks=None)
    unw, _ = _h5(path, "unwrapPhase")
    coh, _ = _h5(path, "coherence")
    date, _ = _h5(path, "date")
    keep, _ = _h5(path, "dropIfgram")
    assert sorted(ds.data_vars) == ["coherence", "unwrapPhase"] and ds.unwrapPhase.dims == ("pair", "y", "x")
    assert type(ds.unwrapPhase.variable._data).__name__ != "Array"  # not dask: xarray's lazy array
    np.testing.assert_array_equal(ds.unwrapPhase.values, unw)
    np.testing.assert_array_equal(ds.coherence.isel(pair=[9, 1]).values, coh[[9, 1]])
    assert list(ds.pair.values) == [f"{a.decode()}_{b.decode()}" for a, b in date]
    np.testing.assert_array_equal(ds.dropIfgram.values, keep)
    first = ds.unwrapPhase.sel(pair=ds.pair.values[4])
    np.testing.assert_array_equal(first.values, unw[4])
    assert ds.unwrapPhase.attrs["units"] == "radian"


def test_open_dataset_radar_and_projected_grids(tmp_path):
    from pyproj import CRS

    from sbts.core.io.products import write_map
    from sbts.core.model.metadata import Metadata

    data = np.arange(20, dtype=np.float32).reshape(4, 5)
    write_map(tmp_path / "radar.h5", Metadata.from_attrs({"LENGTH": "4", "WIDTH": "5"}), "velocity",
              {"velocity": data}, unit="m/year")
    ds = sbts.open_dataset(tmp_path / "radar.h5")
    np.testing.assert_array_equal(ds.velocity.values, data)
    assert list(ds.y.values) == [0, 1, 2, 3] and list(ds.x.values) == [0, 1, 2, 3, 4]
    assert "spatial_ref" not in ds.coords and "grid_mapping" not in ds.velocity.attrs
    utm = {"LENGTH": "4", "WIDTH": "5", "X_FIRST": "480000", "Y_FIRST": "2150000", "X_STEP": "30",
           "Y_STEP": "-30", "X_UNIT": "meters", "Y_UNIT": "meters", "EPSG": "32614"}
    write_map(tmp_path / "utm.h5", Metadata.from_attrs(utm), "velocity", {"velocity": data}, unit="m/year")
    ds = sbts.open_dataset(tmp_path / "utm.h5")
    np.testing.assert_array_equal(ds.x.values, 480000 + 30 * (np.arange(5) + 0.5))
    np.testing.assert_array_equal(ds.y.values, 2150000 - 30 * (np.arange(4) + 0.5))
    assert "lat" not in ds.coords
    assert CRS.from_wkt(ds.spatial_ref.attrs["crs_wkt"]).to_epsg() == 32614
    assert ds.spatial_ref.attrs["grid_mapping_name"] == "transverse_mercator"
    assert ds.spatial_ref.attrs["longitude_of_central_meridian"] == -99.0  # zone 14


def test_open_dataset_errors_name_the_file(demo, tmp_path):
    with pytest.raises(InputError, match=r"velocity\.h5: no dataset 'nope' \(has: .*velocity"):
        sbts.open_dataset(demo / "velocity.h5", "nope")
    with pytest.raises(InputError, match="'date' is a coordinate"):
        sbts.open_dataset(demo / "timeseries.h5", ["timeseries", "date"])
    (tmp_path / "x.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="x.h5"):
        sbts.open_dataset(tmp_path / "x.h5")


def test_open_dataset_hdfeos5_from_sbts_export(demo, tmp_path):
    """``sbts.export`` writes an HDF-EOS5 file; ``open_dataset`` reads it by short names, values unchanged."""
    (out,) = sbts.export("hdfeos5", demo / "timeseries_demErr.h5", output=tmp_path / "S1.he5", relative_orbit=128)
    ds = sbts.open_dataset(out)
    disp, _ = _h5(out, "HDFEOS/GRIDS/timeseries/observation/displacement")
    assert ds.displacement.dims == ("time", "y", "x")
    np.testing.assert_array_equal(ds.displacement.values, disp)
    ts, _ = _h5(demo / "timeseries_demErr.h5", "timeseries")
    np.testing.assert_allclose(ds.displacement.values, ts, rtol=0, atol=1e-7)
    assert "temporalCoherence" in ds and ds.temporalCoherence.dims == ("y", "x")


# ----------------------------------------------------------------------------- running steps
def test_export_geotiff_equals_the_file(demo, tmp_path):
    from osgeo import gdal

    (tif,) = sbts.export("geotiff", demo / "velocity.h5", "velocity", output=tmp_path / "v.tif")
    v, _ = _h5(demo / "velocity.h5", "velocity")
    np.testing.assert_array_equal(gdal.Open(str(tif)).ReadAsArray(), v)


def test_correct_equals_the_command(demo, tmp_path):
    work = demo
    api = sbts.correct("deramp", work / "sbts_demo.cfg", input_file=work / "timeseries_demErr.h5",
                       output_file=tmp_path / "api_ramp.h5", settings={"mintpy.deramp": "linear"})
    res = CliRunner().invoke(cli, ["correct", "deramp", str(work / "sbts_demo.cfg"), "-i",
                                   str(work / "timeseries_demErr.h5"), "-o", str(tmp_path / "cli_ramp.h5"),
                                   "-s", "mintpy.deramp=linear"])
    assert res.exit_code == 0, res.output
    a, _ = _h5(api.output, "timeseries")
    b, _ = _h5(tmp_path / "cli_ramp.h5", "timeseries")
    np.testing.assert_array_equal(a, b)
    src, _ = _h5(work / "timeseries_demErr.h5", "timeseries")
    assert not np.allclose(a, src)  # the ramp was removed


def test_run_steps_and_invert_take_keyword_options(demo, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(demo, work)
    template = work / "sbts_demo.cfg"
    reports = sbts.run(template, steps=["invert_network", "modify_network"],
                       settings={"mintpy.network.excludeIfgIndex": [0, 3]})
    assert [(r.name, r.status) for r in reports] == [("modify_network", "ran"), ("invert_network", "ran"),
                                                     ("plot", "ran")]  # mintpy.plot = yes by default
    keep, _ = _h5(work / "inputs" / "ifgramStack.h5", "dropIfgram")
    assert not keep[0] and not keep[3] and keep[1:3].all()
    out = sbts.invert(template, min_temp_coh=0.93, weight_func="no")
    assert out.timeseries == work / "timeseries.h5"
    tcoh, _ = _h5(out.temporal_coherence, "temporalCoherence")
    mask, _ = _h5(out.mask_temp_coh, "mask")
    np.testing.assert_array_equal(mask.astype(bool), tcoh >= 0.93)
    num, _ = _h5(out.num_inv_ifgram, "mask")
    assert num.max() <= int(keep.sum())
    with pytest.raises(InputError, match="unknown step 'nope'"):
        sbts.run(template, steps="nope")
    with pytest.raises(InputError, match="either steps or start/end"):
        sbts.run(template, steps="velocity", start="load_data")


@pytest.mark.parametrize("func", ["run", "load", "invert"])
def test_step_functions_take_every_option_of_their_command(func):
    import inspect

    import click

    renamed = {"dostep": "steps", "unwFile": "unw_file", "corFile": "cor_file", "connCompFile": "conncomp_file",
               "demFile": "dem_file"}
    cmd = cli.get_command(click.Context(cli), func)
    options = {renamed.get(p.name, p.name) for p in cmd.params}
    params = set(inspect.signature(getattr(sbts, func)).parameters)
    assert options <= params, options - params


# ----------------------------------------------------------------------------- plots
def test_plot_view_image_is_the_velocity_in_cm_per_year(demo):
    fig = sbts.plot.view(demo / "velocity.h5", "velocity")
    v, attrs = _h5(demo / "velocity.h5", "velocity")
    ry, rx = int(_attr(attrs, "REF_Y")), int(_attr(attrs, "REF_X"))
    shown = np.ma.filled(fig.axes[0].images[-1].get_array().astype(float), np.nan)
    drawn = np.isfinite(shown)  # no-data pixels (the lake: zero in the file) are hidden
    assert drawn.mean() > 0.8
    np.testing.assert_allclose(shown[drawn], ((v - v[ry, rx]) * 100)[drawn], rtol=1e-6, atol=1e-6)
    fig = sbts.plot.view(demo / "velocity.h5", "velocity", unit="mm", ref_yx=(3, 4))
    shown = np.ma.filled(fig.axes[0].images[-1].get_array().astype(float), np.nan)
    np.testing.assert_array_equal(np.isfinite(shown), drawn)
    np.testing.assert_allclose(shown[drawn], ((v - v[3, 4]) * 1000)[drawn], rtol=1e-6, atol=1e-5)


def test_plot_tsview_history_is_the_pixel(demo):
    ts, _ = _h5(demo / "timeseries_demErr.h5", "timeseries")
    fig = sbts.plot.tsview(demo / "timeseries_demErr.h5", yx=(10, 12), unit="mm")
    points = fig.axes[1].lines[0]
    np.testing.assert_allclose(points.get_ydata(), ts[:, 10, 12] * 1000, rtol=1e-6, atol=1e-4)
    assert len(points.get_xdata()) == ts.shape[0]


def test_plot_transect_profile_is_the_row(demo):
    v, _ = _h5(demo / "velocity.h5", "velocity")
    fig = sbts.plot.transect(demo / "velocity.h5", dataset="velocity", start_yx=(5, 5), end_yx=(5, 40))
    line = fig.axes[1].lines[0]
    np.testing.assert_allclose(line.get_ydata(), v[5, 5:41] * 100, rtol=1e-6, atol=1e-6)


def test_plot_coherence_matrix_holds_the_pixel_coherence(demo):
    path = demo / "inputs" / "ifgramStack.h5"
    coh, _ = _h5(path, "coherence")
    date, _ = _h5(path, "date")
    fig = sbts.plot.coherence_matrix(path, yx=(10, 10))
    m = np.ma.getdata(fig.axes[0].images[0].get_array())
    dates = sorted({d.decode() for d in date.ravel()})
    for k, (a, b) in enumerate(date):
        i, j = dates.index(a.decode()), dates.index(b.decode())
        assert m[i, j] == pytest.approx(coh[k, 10, 10]) and m[j, i] == pytest.approx(coh[k, 10, 10])


def test_plot_rms_bars_are_the_file_in_mm(demo):
    path = demo / "rms_timeseriesResidual_ramp.txt"
    values = np.loadtxt(path, usecols=1)
    fig = sbts.plot.rms(path)
    heights = [p.get_height() for p in fig.axes[0].patches][: len(values)]
    np.testing.assert_allclose(heights, values * 1000, rtol=1e-9)


def test_plot_network_figures_and_save(demo, tmp_path):
    from matplotlib.figure import Figure

    path = demo / "inputs" / "ifgramStack.h5"
    date, _ = _h5(path, "date")
    fig = sbts.plot.network(path, save=tmp_path / "net.png")
    assert isinstance(fig, Figure)
    n_dates = len({d.decode() for d in date.ravel()})
    assert f"{n_dates} dates, {len(date)} interferograms" in fig.axes[0].get_title()
    assert (tmp_path / "net.png").stat().st_size > 10_000 and (tmp_path / "coherenceMatrix.png").exists()
    assert isinstance(sbts.plot.network(path, which="bperpHistory"), Figure)
    with pytest.raises(InputError, match="which='nope'"):
        sbts.plot.network(path, which="nope")


@pytest.mark.parametrize("func,command", [("view", ("view",)), ("tsview", ("tsview",)),
                                          ("network", ("plot", "network")),
                                          ("coherence_matrix", ("plot", "coherence-matrix")),
                                          ("transect", ("plot", "transect")), ("rms", ("plot", "rms"))])
def test_plot_functions_take_every_option_of_their_command(func, command):
    import inspect

    import click

    ctx = click.Context(cli)
    cmd = cli
    for name in command:
        cmd = cmd.get_command(ctx, name)
    options = {p.name for p in cmd.params} - {"nodisplay"}
    options = {"fit" if o == "no_fit" else o for o in options}
    params = set(inspect.signature(getattr(sbts.plot, func)).parameters)
    assert options <= params, options - params


# ----------------------------------------------------------------------------- documented and generated
def _public():
    out = [(f"sbts.{n}", getattr(sbts, n)) for n in sbts.__all__ if n not in ("plot", "__version__")]
    out += [(f"sbts.plot.{n}", getattr(sbts.plot, n)) for n in sbts.plot.__all__]
    return out


def test_import_sbts_stays_light():
    code = ("import sys, sbts; heavy = [m for m in ('xarray', 'matplotlib', 'h5py', 'dask') if m in sys.modules];"
            "print(heavy); assert not heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_has_a_numpy_docstring():
    import inspect

    assert set(sbts.__all__) == {"open_dataset", "run", "load", "invert", "correct", "export", "demo_data", "plot",
                                "__version__"}
    assert all(hasattr(sbts, n) for n in sbts.__all__)
    for name, func in _public():
        doc = inspect.getdoc(func) or ""
        assert doc and re.search(r"^Parameters\n-{10}$", doc, re.M), name
        assert re.search(r"^Returns\n-{7}$", doc, re.M), name
        documented = set(re.findall(r"^(\w+(?:, \w+)*) :", doc, re.M))
        names = {n.strip() for group in documented for n in group.split(",")}
        params = [p for p in inspect.signature(func).parameters if p not in ("options",)]
        missing = [p for p in params if p not in names]
        assert not missing, f"{name}: parameters not documented: {missing}"


def test_api_reference_page_is_generated_from_the_docstrings():
    page = REPO / "docs" / "api.md"
    generated = subprocess.run([sys.executable, str(REPO / "scripts" / "gen_api_docs.py"), "--stdout"],
                               check=True, capture_output=True, text=True).stdout
    assert page.read_text(encoding="utf-8") == generated, "docs/api.md is stale: run scripts/gen_api_docs.py"
    for name, _ in _public():
        assert f"## `{name}(" in generated, name


# ----------------------------------------------------------------------------- the Mexico City stack
@pytest.mark.shared
def test_api_on_the_mexico_city_stack(shared_data, tmp_path):
    """From the GAMMA files of ../shared/data to velocity through ``sbts.load``/``sbts.run``; the Dataset
    equals the files, and a point picked by lat/lon plots the pixel the grid puts it in."""
    root = shared_data / "pyrate_s1_mexico_cropA_gamma"
    cfg = tmp_path / "mexico.cfg"
    cfg.write_text("\n".join(f"mintpy.load.{key} = {root}/{pattern}" for key, pattern in (
        ("metaFile", "headers/*_mli.par"), ("bperpFile", "geometry/*_bperp.par"),
        ("lookupYFile", "geometry/*eqa_to_rdc.lt"), ("lookupXFile", "geometry/*eqa_to_rdc.lt"))) + "\n")
    loaded = sbts.load(cfg, unw_file=f"{root}/geotiffs/*_unw.tif", cor_file=f"{root}/geotiffs/*_cc.tif",
                       dem_file=f"{root}/geotiffs/*_dem.tif")
    stack = sbts.open_dataset(loaded.stack_file)
    unw, attrs = _h5(loaded.stack_file, "unwrapPhase")
    np.testing.assert_array_equal(stack.unwrapPhase.values, unw)
    assert stack.sizes["pair"] == unw.shape[0] == 30
    reports = sbts.run(cfg, start="modify_network", end="velocity",
                       settings={"mintpy.load.unwFile": f"{root}/geotiffs/*_unw.tif",
                                 "mintpy.load.corFile": f"{root}/geotiffs/*_cc.tif",
                                 "mintpy.load.demFile": f"{root}/geotiffs/*_dem.tif"})
    assert [r.name for r in reports][-2:] == ["velocity", "plot"] and reports[-2].status == "ran"
    vel = sbts.open_dataset(tmp_path / "velocity.h5")
    v, attrs = _h5(tmp_path / "velocity.h5", "velocity")
    np.testing.assert_array_equal(vel.velocity.values, v)
    mask = sbts.open_dataset(tmp_path / "maskTempCoh.h5").mask.values.astype(bool)
    assert -0.40 < np.percentile(v[mask], 1) < -0.20  # tens of cm/yr of subsidence
    y, x = 30, 55
    lat, lon = float(vel.lat[y]), float(vel.lon[x])
    fig = sbts.plot.tsview(tmp_path / "timeseries.h5", lalo=(lat, lon), unit="m")
    ts, _ = _h5(tmp_path / "timeseries.h5", "timeseries")
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), ts[:, y, x], rtol=1e-6, atol=1e-7)
