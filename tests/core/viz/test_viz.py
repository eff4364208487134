"""Plotting library (sbts.core.viz): pictures are written and not blank, and the numbers behind them are right."""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("matplotlib")


def png_ok(path: Path, min_colours: int = 8) -> None:
    """The PNG exists, has a sensible size and is not one flat colour."""
    import matplotlib.image as mpimg

    assert path.is_file(), path
    img = mpimg.imread(path)
    assert img.shape[0] > 150 and img.shape[1] > 150
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb[:: max(1, rgb.shape[0] // 200_000)], axis=0)
    assert len(colours) >= min_colours, f"{path.name}: only {len(colours)} colours"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from sbts.core.demo.run import run_demo

    work = tmp_path_factory.mktemp("vizdemo")
    run_demo(work, shape=(60, 80), num_date=16)
    return work


def _grid_meta(length: int, width: int, geo: bool = True):
    from sbts.core.model.metadata import Metadata

    attrs = {"LENGTH": length, "WIDTH": width, "WAVELENGTH": 0.0555}
    if geo:
        attrs.update(X_FIRST=10.0, Y_FIRST=45.0, X_STEP=0.001, Y_STEP=-0.001)
    return Metadata.from_attrs(attrs)


# ---------------------------------------------------------------------------- view
def test_view_maps(demo, tmp_path):
    from sbts.core.viz.maps import view

    out = tmp_path / "vel.png"
    fig = view(demo / "avgPhaseVelocity.h5", mask=demo / "maskTempCoh.h5", dem=demo / "inputs" / "geometryGeo.h5",
               save=out)
    png_ok(out, 50)
    ax = fig.axes[0]
    assert "longitude" in ax.get_xlabel() and "latitude" in ax.get_ylabel()
    assert "cm/year" in fig.axes[1].get_ylabel()  # colour bar in display units
    view(demo / "timeseries.h5", save=tmp_path / "ts.png")
    png_ok(tmp_path / "ts.png", 50)
    view(demo / "inputs" / "ifgramStack.h5", ["coherence-2019*"], save=tmp_path / "coh.png")
    png_ok(tmp_path / "coh.png")
    view(demo / "inputs" / "geometryGeo.h5", save=tmp_path / "geom.png")
    png_ok(tmp_path / "geom.png")


def test_view_layers_and_values(demo):
    from sbts.core.io.products import Product
    from sbts.core.viz.maps import prepare_maps, resolve_layers

    ts = Product.open(demo / "timeseries.h5")
    d1, d2 = ts.date_strings[2], ts.date_strings[-1]
    layers = resolve_layers(ts, [f"{d1}_{d2}"])
    md = prepare_maps(ts, layers, unit="m")
    cube = ts.read_dates()
    # pixels the inversion left empty (0 at every date, MintPy's no-data) are not drawn as zero
    empty = np.all(cube == 0, axis=0)
    empty[ts.metadata.reference.y, ts.metadata.reference.x] = False
    assert empty.any()
    want = np.where(empty, np.nan, cube[-1] - cube[2])
    np.testing.assert_allclose(md.arrays[0], want, atol=1e-6)
    # re-referencing to a pixel puts zero there
    md = prepare_maps(ts, resolve_layers(ts, [d2]), ref_yx=(30, 40))
    assert md.arrays[0][30, 40] == 0
    assert md.units == ["cm"]
    # wrapped phase stays within (-π, π]
    md = prepare_maps(ts, resolve_layers(ts, [d2]), wrap=True)
    assert np.nanmax(np.abs(md.arrays[0])) <= np.pi + 1e-9 and md.units == ["radian"]
    assert len(resolve_layers(ts, ["2019*"])) == sum(d.startswith("2019") for d in ts.date_strings)
    stack = Product.open(demo / "inputs" / "ifgramStack.h5")
    name = stack.pairs.date12[3]
    layer = resolve_layers(stack, [f"coherence-{name}"])[0]
    np.testing.assert_allclose(layer.read(), stack.read("coherence", index=3))


def test_view_decimates_large_rasters(demo):
    from sbts.core.io.products import Product
    from sbts.core.viz.maps import prepare_maps, resolve_layers

    p = Product.open(demo / "temporalCoherence.h5")
    md = prepare_maps(p, resolve_layers(p), max_pixels=20)
    assert md.stride == 4 and md.arrays[0].shape == (15, 20)
    full = p.read("temporalCoherence")
    np.testing.assert_array_equal(md.arrays[0], full[::4, ::4])


def test_view_errors(demo):
    from sbts.core.errors import DataError, InputError
    from sbts.core.viz.maps import view

    with pytest.raises(InputError, match="no dataset, date or pair"):
        view(demo / "timeseries.h5", ["nonsense"])
    with pytest.raises(InputError, match="not in the time series"):
        view(demo / "timeseries.h5", ["20300101"])
    with pytest.raises(InputError, match="not in the stack"):
        view(demo / "inputs" / "ifgramStack.h5", ["20300101_20300113"])
    with pytest.raises(DataError, match="outside"):
        view(demo / "timeseries.h5", ref_yx=(999, 0))


# ---------------------------------------------------------------------------- tsview
def test_fit_recovers_velocity():
    from sbts.core.viz.timeseries import fit_pixel

    dates = [_dt.date(2019, 1, 1) + _dt.timedelta(days=12 * k) for k in range(60)]
    t = np.array([(d - dates[0]).days for d in dates]) / 365.25
    tau = np.array([(d - _dt.date(2000, 1, 1)).days for d in dates]) / 365.25
    values = 0.01 - 0.035 * t + 0.006 * np.cos(2 * np.pi * tau - 0.7)
    values[5] = np.nan
    fit = fit_pixel(dates, values)
    assert fit.velocity == pytest.approx(-0.035, abs=1e-9)
    assert fit.annual_amplitude == pytest.approx(0.006, abs=1e-9)
    # less than a year of data: the annual term is left out, the trend still recovered
    short = fit_pixel(dates[:20], -0.02 * t[:20])
    assert short.model.periods == () and short.velocity == pytest.approx(-0.02)


def test_tsview_and_click(demo, tmp_path):
    from sbts.core.viz import common as c
    from sbts.core.viz.timeseries import fit_pixel, pixel_history, tsview

    out = tmp_path / "tsview.png"
    viewer = tsview([demo / "timeseries.h5", demo / "timeseries_demErr.h5"], yx=(30, 35), mask="auto", save=out)
    png_ok(out, 50)
    assert viewer.pixel == (30, 35)
    values = pixel_history(viewer.main, 30, 35)
    assert viewer.fits[0].velocity == pytest.approx(fit_pixel(viewer.main.dates, values).velocity)
    assert "cm/year" in "".join(t.get_text() for t in viewer.ax_ts.get_legend().get_texts())
    # a click on the map selects the pixel under it
    px, py = c.yx_to_plot(viewer.main.metadata, 12, 50)
    assert viewer.on_click(SimpleNamespace(inaxes=viewer.ax_map, xdata=px, ydata=py, button=1))
    assert viewer.pixel == (12, 50)
    # clicks elsewhere change nothing
    assert not viewer.on_click(SimpleNamespace(inaxes=viewer.ax_ts, xdata=px, ydata=py, button=1))
    assert not viewer.on_click(SimpleNamespace(inaxes=viewer.ax_map, xdata=None, ydata=None, button=1))
    assert viewer.pixel == (12, 50)
    # referencing and zero-first
    rel = pixel_history(viewer.main, 12, 50, ref_yx=(12, 50))
    assert np.all(rel == 0)
    z = pixel_history(viewer.main, 12, 50, zero_first=True)
    assert z[0] == 0


def test_tsview_map_is_not_the_reference_date_by_default(demo, tmp_path):
    """The map shows the last date, unless that is the series' reference date (a map of zeros, as
    after reference_date picked the last date): then the first; a date asked for is shown as is."""
    import shutil

    import h5py

    from sbts.core.viz.timeseries import tsview

    path = tmp_path / "timeseries.h5"
    shutil.copy(demo / "timeseries.h5", path)
    viewer = tsview([path], yx=(30, 35), save=tmp_path / "a.png")
    last = len(viewer.main.dates) - 1
    assert viewer.date_index == last
    with h5py.File(path, "r+") as f:
        f.attrs["REF_DATE"] = viewer.main.date_strings[last]
    viewer = tsview([path], yx=(30, 35), save=tmp_path / "b.png")
    assert viewer.date_index == 0
    assert tsview([path], yx=(30, 35), date=viewer.main.date_strings[last], save=tmp_path / "c.png").date_index == last


def test_tsview_errors(demo):
    from sbts.core.errors import DataError, InputError
    from sbts.core.viz.timeseries import tsview

    with pytest.raises(DataError, match="outside"):
        tsview([demo / "timeseries.h5"], yx=(500, 3))
    with pytest.raises(InputError, match="not a time-series"):
        tsview([demo / "velocity.h5" if (demo / "velocity.h5").exists() else demo / "avgPhaseVelocity.h5"])
    with pytest.raises(InputError, match="not in the time series"):
        tsview([demo / "timeseries.h5"], date="20300101")


# ---------------------------------------------------------------------------- network
def test_network_figures(demo, tmp_path):
    from sbts.core.steps.network import write_drop_flags
    from sbts.core.viz.network import open_stack, pair_coherence, plot_network, read_coherence_table

    stack_path = tmp_path / "inputs" / "ifgramStack.h5"
    stack_path.parent.mkdir()
    shutil.copy(demo / "inputs" / "ifgramStack.h5", stack_path)
    keep = np.ones(len(open_stack(stack_path).pairs), bool)
    keep[[1, 5]] = False
    write_drop_flags(stack_path, keep)
    stack = open_stack(stack_path)
    computed = pair_coherence(stack)  # no table here: computed block-wise from the stack
    assert computed.shape == (len(stack.pairs),) and np.all((computed > 0) & (computed < 1))
    table = read_coherence_table(demo / "coherenceSpatialAvg.txt")
    assert set(table) == set(stack.pairs.date12)
    figs = plot_network(stack_path, save=tmp_path / "pic" / "network.png")
    for name in ("network", "coherenceMatrix", "bperpHistory"):
        png_ok(tmp_path / "pic" / f"{name}.png")
    assert set(figs) == {"network", "coherenceMatrix", "bperpHistory"}
    assert "2 dropped" in figs["network"].axes[0].get_title()


def test_pixel_coherence_matrix(demo, tmp_path):
    from sbts.core.errors import DataError
    from sbts.core.viz.network import open_stack, plot_pixel_coherence_matrix

    stack = open_stack(demo / "inputs" / "ifgramStack.h5")
    fig, matrix = plot_pixel_coherence_matrix(stack.path, yx=(20, 30), save=tmp_path / "cm.png")
    png_ok(tmp_path / "cm.png")
    i1, i2 = stack.pairs.indices()
    expected = stack.read("coherence")[:, 20, 30]
    np.testing.assert_allclose(matrix[i1, i2], expected)
    np.testing.assert_allclose(matrix[i2, i1], expected)
    with pytest.raises(DataError):
        plot_pixel_coherence_matrix(stack.path, yx=(-1, 3))


# ---------------------------------------------------------------------------- transect
def test_transect_linear_field(tmp_path):
    from sbts.core.io.products import write_map
    from sbts.core.viz import common as c
    from sbts.core.viz.transect import plot_transect, transect_profile

    meta = _grid_meta(50, 80)
    yy, xx = np.mgrid[0:50, 0:80]
    field = (0.002 * xx + 0.001 * yy).astype(np.float32)  # metres per pixel: a plane
    path = write_map(tmp_path / "plane.h5", meta, "velocity", {"velocity": field}, unit="m/year")
    p = transect_profile(path, start_yx=(10, 5), end_yx=(10, 65), unit="m/year")
    assert len(p.values) == 61
    np.testing.assert_allclose(p.values, 0.002 * np.arange(5, 66) + 0.01, atol=1e-6)
    # a diagonal, bilinear: exact on a plane
    p = transect_profile(path, start_yx=(5, 5), end_yx=(45, 70), method="bilinear", unit="m/year")
    np.testing.assert_allclose(p.values, 0.002 * p.xs + 0.001 * p.ys, atol=1e-6)
    assert np.all(np.diff(p.distance) > 0) and p.distance_unit == "km"
    lat0, lon0 = meta.grid.geo.yx_to_lalo(5, 5)
    lat1, lon1 = meta.grid.geo.yx_to_lalo(45, 70)
    assert p.distance[-1] == pytest.approx(c.great_circle_km(lat0, lon0, lat1, lon1), rel=1e-9)
    # lat/lon ends give the same line
    q = transect_profile(path, start_lalo=(lat0, lon0), end_lalo=(lat1, lon1), method="bilinear", unit="m/year")
    np.testing.assert_allclose(q.values, p.values, atol=1e-6)
    # radar file: distance in pixels
    radar = write_map(tmp_path / "radar.h5", _grid_meta(50, 80, geo=False), "velocity", {"velocity": field},
                      unit="m/year")
    r = transect_profile(radar, start_yx=(0, 0), end_yx=(30, 40))
    assert r.distance_unit == "pixel" and r.distance[-1] == pytest.approx(50.0)
    fig, profiles = plot_transect([path, radar], start_yx=(10, 5), end_yx=(40, 70), save=tmp_path / "tr.png")
    png_ok(tmp_path / "tr.png")
    assert len(profiles) == 2


# ---------------------------------------------------------------------------- rms and overview
def test_rms_plot(tmp_path):
    from sbts.core.viz.rms import plot_rms, read_rms_file

    path = tmp_path / "rms_timeseriesResidual_ramp.txt"
    path.write_text("# residual RMS per date\n# Date  RMS(mm)\n20200112 3.1\n20200101 2.0\n20200124 2.6\n"
                    "20200205 25.0\n20200217 2.9\n20200229 3.3 # comment\n", encoding="utf-8")
    dates, values = read_rms_file(path)
    assert dates[0] == _dt.date(2020, 1, 1) and values.tolist() == [2.0, 3.1, 2.6, 25.0, 2.9, 3.3]
    fig, threshold = plot_rms(path, save=tmp_path / "rms.png")
    png_ok(tmp_path / "rms.png")
    assert 3.3 < threshold < 25.0
    assert "20200101" in "".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    # the threshold that `sbts rms` wrote in the header wins over the default rule
    text = path.read_text().replace("# Date", "# outlier threshold: 3 * median(RMS) / 0.6745 = 12.5000 mm\n# Date")
    path.write_text(text)
    assert plot_rms(path)[1] == pytest.approx(12.5)


def test_overview(demo):
    from sbts.core.viz.overview import plot_overview

    written = plot_overview(demo)
    names = {p.name for p in written}
    assert {"network.png", "coherenceMatrix.png", "avgSpatialCoh.png", "velocity.png", "temporalCoherence.png",
            "maskTempCoh.png", "tsview.png"} <= names
    assert any(n.startswith("timeseries") for n in names)
    for p in written:
        png_ok(p, 4)


# ---------------------------------------------------------------------------- colours, no data, units, titles
def _velocity_file(path: Path, ref=(3, 4)) -> tuple[Path, dict]:
    """velocity.h5 as `sbts velocity` writes it, with a strip of empty pixels (0, MintPy's no-data)."""
    from sbts.core.io.products import write_map

    rng = np.random.default_rng(1)
    shape = (20, 30)
    data = {"velocity": rng.normal(0, 0.01, shape), "velocityStd": np.abs(rng.normal(0.002, 0.001, shape)),
            "annualAmplitude": np.abs(rng.normal(0.005, 0.002, shape)),
            "annualAmplitudeStd": np.abs(rng.normal(0.001, 0.0005, shape)),
            "residue": np.abs(rng.normal(0.003, 0.001, shape))}
    data["velocity"][ref] = 0.0
    for v in data.values():
        v[15:, :] = 0.0  # not inverted: every output is 0 there
    meta = _grid_meta(*shape).with_reference(y=ref[0], x=ref[1], date=_dt.date(2020, 1, 13))
    units = {"velocity": "m/year", "velocityStd": "m/year"}
    write_map(path, meta, "velocity", {k: v.astype(np.float32) for k, v in data.items()}, unit="m/year",
              START_DATE="20200101", END_DATE="20211231")
    import h5py

    with h5py.File(path, "r+") as f:
        for k in data:
            f[k].attrs["UNIT"] = units.get(k, "m")
    return path, data


def _images(fig):
    return {ax.get_title(): ax.get_images()[0] for ax in fig.axes if ax.get_images()}


def test_magnitudes_use_a_sequential_map_from_zero(tmp_path):
    """Standard deviations, amplitudes and residues are ≥ 0: a sequential colour map starting at 0, not a
    diverging one centred on 0 (which spends half its colours on impossible negative values)."""
    from sbts.core.viz import common as c
    from sbts.core.viz.maps import view

    path, data = _velocity_file(tmp_path / "velocity.h5")
    images = _images(view(path))
    for name in ("velocityStd", "annualAmplitude", "annualAmplitudeStd", "residue"):
        im = images[name]
        assert im.get_cmap().name == c.SEQUENTIAL_CMAP, name
        assert im.norm.vmin == 0 and im.norm.vmax > 0, name
        # in cm (per year) like the velocity, and the limit is the 98th percentile of the shown values
        shown = np.abs(data[name][:15]) * 100
        assert im.norm.vmax == pytest.approx(np.percentile(shown, 98), rel=1e-5), name
    vel = images["velocity"]
    assert vel.get_cmap().name == "RdBu_r" and vel.norm.vmin == -vel.norm.vmax


def test_no_data_is_transparent_not_the_zero_colour(tmp_path):
    """Empty pixels (0 in every output) are masked and drawn over the grey background; the reference
    pixel, 0 by definition, is data."""
    import matplotlib.colors as mcolors

    from sbts.core.io.products import Product, TimeSeriesWriter
    from sbts.core.viz.maps import view

    path, _ = _velocity_file(tmp_path / "velocity.h5")
    fig = view(path, ["velocity"])
    im = fig.axes[0].get_images()[0]
    shown = im.get_array()
    assert np.ma.getmaskarray(shown)[15:].all() and not np.ma.getmaskarray(shown)[:15].any()
    assert not np.ma.getmaskarray(shown)[3, 4]  # the reference pixel
    assert mcolors.to_rgba(fig.axes[0].get_facecolor()) != mcolors.to_rgba(im.get_cmap()(0.5))
    assert im.get_cmap().get_bad()[3] == 0  # masked → transparent
    # a time series: empty pixels are 0 at every date; the reference date is 0 everywhere and stays data
    meta = _grid_meta(20, 30).with_reference(y=3, x=4, date=_dt.date(2020, 1, 1))
    dates = ["20200101", "20200113", "20200125"]
    cube = np.random.default_rng(0).normal(0, 0.01, (3, 20, 30)).astype(np.float32)
    cube[0] = 0
    cube[:, 3, 4] = 0
    cube[:, 10:12, 5:9] = 0
    with TimeSeriesWriter(tmp_path / "timeseries.h5", meta, dates) as w:
        w.write("timeseries", cube)
    for date in dates:
        fig = view(tmp_path / "timeseries.h5", [date])
        m = np.ma.getmaskarray(fig.axes[0].get_images()[0].get_array())
        assert m[10:12, 5:9].all() and m.sum() == 8 and not m[3, 4], date
    # with the display re-referenced to another pixel, the empty pixels stay empty
    fig = view(tmp_path / "timeseries.h5", ["20200125"], ref_yx=(0, 0))
    assert np.ma.getmaskarray(fig.axes[0].get_images()[0].get_array())[10:12, 5:9].all()
    assert Product.open(tmp_path / "timeseries.h5").metadata.reference.y == 3


def test_dem_error_is_shown_in_metres(tmp_path):
    from sbts.core.io.products import write_map
    from sbts.core.viz.maps import view

    dz = np.linspace(-8, 12, 600, dtype=np.float32).reshape(20, 30)
    path = write_map(tmp_path / "demErr.h5", _grid_meta(20, 30), "dem", {"dem": dz}, unit="m")
    fig = view(path)
    im = fig.axes[0].get_images()[0]
    np.testing.assert_allclose(im.get_array(), dz, atol=1e-5)  # metres, not centimetres
    assert fig.axes[1].get_ylabel() == "dem (m)"
    assert im.get_cmap().name == "RdBu_r" and im.norm.vmin == -im.norm.vmax


def test_titles_give_time_span_and_reference_date(tmp_path):
    from sbts.core.io.products import TimeSeriesWriter
    from sbts.core.viz.maps import view

    path, _ = _velocity_file(tmp_path / "velocity.h5")
    title = view(path, ["velocity"]).axes[0].get_title()
    assert "20200101–20211231" in title and "ref. date 20200113" in title
    assert "20200101–20211231" in view(path)._suptitle.get_text()
    meta = _grid_meta(20, 30).with_reference(y=3, x=4, date=_dt.date(2020, 1, 13))
    with TimeSeriesWriter(tmp_path / "timeseries.h5", meta, ["20200101", "20200113", "20200125"]) as w:
        w.write("timeseries", np.ones((3, 20, 30), np.float32))
    title = view(tmp_path / "timeseries.h5", ["20200125"]).axes[0].get_title()
    assert "20200125" in title and "20200101–20200125" in title and "ref. date 20200113" in title
    assert "ref. date 20200113" in view(tmp_path / "timeseries.h5")._suptitle.get_text()


def test_overview_velocity_title_has_span(demo):
    from sbts.core.viz.maps import render
    from sbts.core.viz.overview import _velocity_map

    product, md, title = _velocity_map(demo, None, None)
    fig = render(product, md, title=title)
    text = fig.axes[0].get_title()
    assert "velocity" in text and "–" in text and "ref. date" in text
