"""Troposphere corrections: ERA5 with pyaps3 on real GRIB files, height correlation on the synthetic
stack's stratified delay, GACOS on its real sample; signs, units, references and missing inputs."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.errors import InputError
from sbts.core.io.products import TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, Reference
from sbts.core.plugin.runners import run_correction
from sbts.plugins.corrections.troposphere import closest_hour, read_ztd, resample_ztd


def _write_ts(path, meta, dates, data):
    with TimeSeriesWriter(path, meta, dates, np.zeros(len(dates))) as w:
        w.write("timeseries", np.asarray(data, np.float32))


# ============================================================================ ERA5 / pyaps3
KYUSHU_DATES = ["20101017", "20110117", "20110301"]  # the last one has no GRIB file
STEP = 4  # subsample the 460×237 ISCE geometry for speed


@pytest.fixture(scope="module")
def kyushu(shared_data):
    data = shared_data / "era5_grib_pyaps3_kyushu"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    from sbts.plugins.readers._isce_xml import read_image_xml

    g = data / "geometry_isce"
    layers = {
        "height": read_image_xml(g / "hgt.rdr").band(0).read(),
        "latitude": read_image_xml(g / "lat.rdr").band(0).read(),
        "longitude": read_image_xml(g / "lon.rdr").band(0).read(),
        "incidenceAngle": read_image_xml(g / "los.rdr").band(0).read(),
    }
    layers = {k: np.ascontiguousarray(v[::STEP, ::STEP]).astype(np.float32) for k, v in layers.items()}
    return data, layers


def _kyushu_case(folder, data, layers, ref=(20, 30), **attrs):
    length, width = layers["incidenceAngle"].shape
    meta = Metadata(Grid(length, width), unit="m", processor="isce",
                    reference=Reference(y=ref[0], x=ref[1], date=dt.date(2010, 10, 17)))
    meta = meta.with_radar(center_line_utc=attrs.get("utc", 14 * 3600 - 600), platform="ALOS",
                           wavelength=0.236)
    (folder / "inputs").mkdir(exist_ok=True)
    write_map(folder / "inputs" / "geometryRadar.h5", meta, "geometry", layers, unit=None)
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 0.005, (len(KYUSHU_DATES), length, width))
    signal -= signal[:, ref[0]:ref[0] + 1, ref[1]:ref[1] + 1]
    signal[0] = 0
    _write_ts(folder / "timeseries.h5", meta, KYUSHU_DATES, signal)
    return signal


def test_closest_hour():
    assert closest_hour(14 * 3600 - 600, range(24)) == 14
    assert closest_hour(23.8 * 3600, range(24)) == 23  # no wrap to the next day
    assert closest_hour(10 * 3600, (0, 6, 12, 18)) == 12


def test_era5_delay_real_grib(tmp_path, kyushu, caplog):
    data, layers = kyushu
    signal = _kyushu_case(tmp_path, data, layers)
    t = Template({"mintpy.troposphericDelay.weatherDir": str(data)})
    with caplog.at_level(logging.WARNING):
        result = run_correction("pyaps", t, tmp_path)
    assert "20110301" in caplog.text  # the date without a GRIB file is reported
    assert result.output == tmp_path / "timeseries_ERA5.h5"
    era5 = TimeSeries(tmp_path / "inputs" / "ERA5.h5")
    assert era5.date_strings == KYUSHU_DATES[:2]
    assert era5.metadata.reference.y is None and era5.metadata.reference.date is None  # absolute
    assert era5.metadata.unit == "m"
    d = era5.read_dates().astype(np.float64)
    h, inc = layers["height"], np.deg2rad(layers["incidenceAngle"])
    # displacement sign: a delay is a range increase → negative, metres
    assert np.all(d < 0)
    zenith = -d * np.cos(inc)[None]
    low = h < 50
    assert low.sum() > 50
    assert np.all((zenith[:, low] > 2.3) & (zenith[:, low] < 2.6))  # ERA5 ZTD at sea level, m
    assert np.all(-d[:, low] > zenith[:, low])  # LOS longer than zenith (1/cos θ)
    # less air above the mountains: smaller delay at 1700 m than at sea level (by ~0.4 m)
    high = h > 1000
    assert np.mean(zenith[:, low]) - np.mean(zenith[:, high]) > 0.2
    # differential delay between the two dates over the scene: cm, not m
    diff = d[1] - d[0]
    spread = np.nanpercentile(diff, 99) - np.nanpercentile(diff, 1)
    assert 0.005 < spread < 0.3
    # corrected = ts − (delay re-referenced to REF_Y/REF_X and REF_DATE); the third date untouched
    out = TimeSeries(result.output)
    ry, rx = 20, 30
    corr = d - d[:, ry:ry + 1, rx:rx + 1]
    corr = corr - corr[0][None]
    got = out.read_dates()
    np.testing.assert_allclose(got[:2], signal[:2] - corr, atol=2e-6)
    np.testing.assert_allclose(got[2], signal[2], atol=1e-7)
    assert np.all(got[:, ry, rx] == 0) and np.all(got[0] == 0)
    assert out.metadata.extra["mintpy.troposphericDelay.method"] == "pyaps"
    assert out.metadata.extra["mintpy.troposphericDelay.weatherModel"] == "ERA5"
    assert out.date_strings == KYUSHU_DATES and out.metadata.reference.x == rx
    # second run reuses inputs/ERA5.h5
    mtime = (tmp_path / "inputs" / "ERA5.h5").stat().st_mtime_ns
    run_correction("pyaps", t, tmp_path)
    assert (tmp_path / "inputs" / "ERA5.h5").stat().st_mtime_ns == mtime


def test_era5_no_weather_file_names_folder_and_credentials(tmp_path, kyushu):
    data, layers = kyushu
    _kyushu_case(tmp_path, data, layers)
    empty = tmp_path / "weather"
    empty.mkdir()
    t = Template({"mintpy.troposphericDelay.weatherDir": str(empty)})
    with pytest.raises(InputError, match=r"weather.*ERA5_<S>_<N>_<W>_<E>_20101017_14\.grb.*CDS"):
        run_correction("pyaps", t, tmp_path)
    assert not (tmp_path / "timeseries_ERA5.h5").exists()


def test_era5_missing_height_layer(tmp_path, kyushu):
    data, layers = kyushu
    _kyushu_case(tmp_path, data, {k: v for k, v in layers.items() if k != "height"})
    t = Template({"mintpy.troposphericDelay.weatherDir": str(data)})
    with pytest.raises(InputError, match=r"'height'.*geometryRadar\.h5"):
        run_correction("pyaps", t, tmp_path)


def test_era5_geocoded_grid_hawaii(tmp_path, shared_data):
    """Geocoded path (lat/lon from the grid, scalar INCIDENCE_ANGLE), GRIB files directly in weatherDir."""
    data = shared_data / "era5_grib_dolphin_hawaii"
    if not data.is_dir():
        pytest.skip(f"{data} not found")
    length, width = 24, 30
    grid = Grid(length, width, GeoGrid(-155.9, 19.5, 0.02, -0.02, epsg=4326))
    meta = Metadata(grid, unit="m", reference=Reference(y=2, x=3)).with_radar(center_line_utc=14 * 3600 + 100,
                                                                              incidence_angle=34.0)
    height = np.linspace(0, 4000, width)[None, :] * np.ones((length, 1))
    (tmp_path / "inputs").mkdir()
    write_map(tmp_path / "inputs" / "geometryGeo.h5", meta, "geometry", {"height": height.astype(np.float32)},
              unit=None)
    dates = ["20220101", "20220102", "20220103"]
    signal = np.random.default_rng(0).normal(0, 0.001, (3, length, width))
    signal -= signal[:, 2:3, 3:4]
    signal[0] = 0
    _write_ts(tmp_path / "timeseries.h5", meta, dates, signal)
    result = run_correction("pyaps", Template({"mintpy.troposphericDelay.weatherDir": str(data)}), tmp_path)
    d = TimeSeries(tmp_path / "inputs" / "ERA5.h5").read_dates()
    zenith = -d * np.cos(np.deg2rad(34.0))
    assert np.all((zenith[:, :, 0] > 2.3) & (zenith[:, :, 0] < 2.6))
    assert np.all(np.diff(zenith, axis=2) < 0)  # decreasing with height
    out = TimeSeries(result.output).read_dates()
    assert np.all(out[0] == 0) and np.all(out[:, 2, 3] == 0)
    corr = d - d[:, 2:3, 3:4]
    corr -= corr[0][None]
    assert 1e-3 < np.abs(corr).max() < 0.2  # day-to-day differential delay over 4 km of relief: mm to cm
    np.testing.assert_allclose(out, signal - corr, atol=2e-6)


# ============================================================================ height correlation
def _synthetic(tmp_path, turbulence=0.0):
    from sbts.core.demo.synthetic import make_synthetic_stack

    s = make_synthetic_stack(shape=(64, 80), num_date=20, seed=1, turbulence_std=turbulence)
    ry, rx = s.truth.reference_yx
    # secular deformation only: the synthetic annual term's amplitude falls with elevation (basin vs
    # ridge), which a phase/elevation fit cannot tell from a stratified delay (the method's known limit)
    deform = s.truth.velocity[None].astype(np.float64) * s.years[:, None, None]
    strat = s.truth.troposphere_stratified.astype(np.float64)
    ts = deform + strat + s.truth.troposphere_turbulent
    ts -= ts[:, ry:ry + 1, rx:rx + 1]
    meta = Metadata.from_attrs({**s.attrs, "LENGTH": "64", "WIDTH": "80"}).with_reference(y=ry, x=rx)
    _write_ts(tmp_path / "timeseries.h5", meta, s.date_list, ts)
    (tmp_path / "inputs").mkdir()
    write_map(tmp_path / "inputs" / "geometryGeo.h5", meta, "geometry",
              {"height": s.height, "incidenceAngle": s.incidence_angle}, unit=None)
    # reliable pixels: outside the deforming bowl (its subsidence would alias onto the basin's elevation)
    mask = (np.abs(s.truth.velocity) < 0.003) & s.water_mask
    write_map(tmp_path / "maskTempCoh.h5", meta, "mask", {"mask": mask}, unit="1")
    return s, ts, deform, (ry, rx)


def test_height_correlation_recovers_stratified_delay(tmp_path):
    s, ts, deform, (ry, rx) = _synthetic(tmp_path)
    result = run_correction("height_correlation", Template({}), tmp_path)
    assert result.output == tmp_path / "timeseries_tropHgt.h5"
    out = TimeSeries(result.output).read_dates()
    deform = deform - deform[:, ry:ry + 1, rx:rx + 1]
    strat = s.truth.troposphere_stratified - s.truth.troposphere_stratified[:, ry:ry + 1, rx:rx + 1]
    before = np.sqrt(np.mean((ts - deform) ** 2))
    after = np.sqrt(np.mean((out - deform) ** 2))
    assert before > 0.003  # several mm of stratified delay over ~2 km of relief
    assert after < 0.15 * before
    # the removed delay per date follows K(t)·h: slope recovered within 10 % of the coefficient spread
    # (the synthetic broad uplift, 5 mm/yr over the low basin, leaks a little into the slope)
    removed = ts - out
    h = s.height - s.height[ry, rx]
    k_est = np.array([np.polyfit(h.ravel(), r.ravel(), 1)[0] for r in removed])
    k_true = s.truth.troposphere_coefficient
    assert np.max(np.abs(k_est - k_true)) < 0.1 * np.ptp(k_true)
    meta = TimeSeries(result.output).metadata
    assert meta.extra["mintpy.troposphericDelay.polyOrder"] == "1"
    assert meta.extra["mintpy.troposphericDelay.looks"] == "8"
    assert np.all(out[:, ry, rx] == 0)
    del strat


def test_height_correlation_with_turbulence_and_min_correlation(tmp_path):
    s, ts, deform, (ry, rx) = _synthetic(tmp_path, turbulence=0.001)
    run_correction("height_correlation", Template({}), tmp_path)
    out = TimeSeries(tmp_path / "timeseries_tropHgt.h5").read_dates()
    other = deform + s.truth.troposphere_turbulent
    other = other - other[:, ry:ry + 1, rx:rx + 1]
    strat = s.truth.troposphere_stratified - s.truth.troposphere_stratified[:, ry:ry + 1, rx:rx + 1]
    # 1 mm turbulence (long-wavelength, it partly correlates with elevation by chance; at 5 mm, as large
    # as the stratified signal here, the fit no longer helps — the method's known limit)
    assert np.sqrt(np.mean((out - other) ** 2)) < 0.5 * np.sqrt(np.mean(strat ** 2))
    # minCorrelation = 1 leaves every date uncorrected
    run_correction("height_correlation", Template({"mintpy.troposphericDelay.minCorrelation": "1"}), tmp_path)
    np.testing.assert_allclose(TimeSeries(tmp_path / "timeseries_tropHgt.h5").read_dates(), ts, atol=1e-6)


def test_height_correlation_needs_height(tmp_path):
    meta = Metadata(Grid(16, 16), unit="m", reference=Reference(y=1, x=1))
    _write_ts(tmp_path / "timeseries.h5", meta, ["20200101", "20200201"], np.zeros((2, 16, 16)))
    with pytest.raises(InputError, match="'height'.*geometry"):
        run_correction("height_correlation", Template({}), tmp_path)


# ============================================================================ GACOS
def _gacos_case(tmp_path, gacos_dir):
    """A 2-date geocoded series on the SNAP grid of the sample (its real interferogram as date 2)."""
    from sbts.plugins.readers._common import envi_geogrid, read_envi_header

    snap = gacos_dir.parent / "snap_envi"
    hdr = read_envi_header(snap / "Unw_Phase_ifg_17Mar2017_10Apr2017_VV.hdr")
    geo = envi_geogrid(hdr)
    length, width = int(hdr["lines"]), int(hdr["samples"])
    phase = np.fromfile(snap / "Unw_Phase_ifg_17Mar2017_10Apr2017_VV.img", ">f4").reshape(length, width)
    sl = (slice(0, length, 4), slice(0, width, 4))  # every 4th pixel keeps the test fast
    phase = phase[sl]
    geo = GeoGrid(geo.x_first, geo.y_first, geo.x_step * 4, geo.y_step * 4, epsg=4326)
    ref = (phase.shape[0] // 2, phase.shape[1] // 2)
    meta = Metadata(Grid(*phase.shape, geo), unit="m", reference=Reference(y=ref[0], x=ref[1]))
    meta = meta.with_radar(wavelength=0.05546576, incidence_angle=39.0)
    disp = -0.05546576 / (4 * np.pi) * phase
    ts = np.stack([np.zeros_like(disp), disp - disp[ref]])
    _write_ts(tmp_path / "timeseries.h5", meta, ["20170317", "20170410"], ts)
    return meta, ts, ref


def test_gacos_real_sample(tmp_path, shared_data):
    gacos = shared_data / "snap_envi_gacos_jharia" / "gacos"
    if not gacos.is_dir():
        pytest.skip(f"{gacos} not found")
    meta, ts, ref = _gacos_case(tmp_path, gacos)
    ztd, g = read_ztd(gacos / "20170317.ztd")
    assert ztd.shape == (80, 140) and 2.2 < ztd.min() and ztd.max() < 2.4  # metres
    # bilinear at a GACOS sample centre returns the sample; between two samples, their mean
    lat0 = g["Y_FIRST"] + 10.5 * g["Y_STEP"]
    lon0 = g["X_FIRST"] + 20.5 * g["X_STEP"]
    lon_mid = lon0 + 0.5 * g["X_STEP"]
    val = resample_ztd(gacos / "20170317.ztd", np.array([[lat0, lat0]]), np.array([[lon0, lon_mid]]))
    assert val[0, 0] == pytest.approx(ztd[10, 20], abs=1e-6)
    assert val[0, 1] == pytest.approx((ztd[10, 20] + ztd[10, 21]) / 2, abs=1e-6)

    result = run_correction("gacos", Template({"mintpy.troposphericDelay.gacosDir": str(gacos)}), tmp_path)
    assert result.output == tmp_path / "timeseries_GACOS.h5"
    delay = TimeSeries(tmp_path / "inputs" / "GACOS.h5").read_dates().astype(np.float64)
    cos = np.cos(np.deg2rad(39.0))
    assert np.all(delay < 0)  # displacement sign
    assert np.all((-delay * cos > 2.2) & (-delay * cos < 2.4))  # zenith total delay, m
    corr = delay - delay[:, ref[0]:ref[0] + 1, ref[1]:ref[1] + 1]
    corr -= corr[0][None]
    assert 1e-3 < np.ptp(corr[1]) < 0.1  # differential delay over ~10 km: mm to cm
    out = TimeSeries(result.output).read_dates()
    np.testing.assert_allclose(out, ts - corr, atol=2e-6)
    assert np.all(out[:, ref[0], ref[1]] == 0)
    assert TimeSeries(result.output).metadata.extra["mintpy.troposphericDelay.method"] == "gacos"


def test_gacos_missing_folder_and_dates(tmp_path, shared_data):
    gacos = shared_data / "snap_envi_gacos_jharia" / "gacos"
    if not gacos.is_dir():
        pytest.skip(f"{gacos} not found")
    _gacos_case(tmp_path, gacos)
    with pytest.raises(InputError, match=r"GACOS.*not found"):
        run_correction("gacos", Template({}), tmp_path)  # default ./GACOS does not exist
    # only one date present: the other stays uncorrected, and the reference date must have a map
    part = tmp_path / "GACOS"
    part.mkdir()
    for name in ("20170410.ztd", "20170410.ztd.rsc"):
        shutil.copy(gacos / name, part / name)
    with pytest.raises(InputError, match="reference date 20170317"):
        run_correction("gacos", Template({}), tmp_path)


def test_era5_download_only_when_asked_and_with_credentials(tmp_path, kyushu, monkeypatch):
    """No network here: pyaps3's downloader is replaced by a copy of the real GRIB files."""
    import pyaps3

    from sbts.plugins.corrections import troposphere

    data, layers = kyushu
    _kyushu_case(tmp_path, data, layers)
    weather = tmp_path / "weather"
    weather.mkdir()
    calls = []

    def fake_download(dates, hour, folder, model="ERA5", snwe=None, **kwargs):
        calls.append((list(dates), hour, folder, model, snwe))
        for d in dates:
            for src in (data / "ERA5").glob(f"ERA5_*_{d}_{hour}.grb"):
                shutil.copy(src, Path(folder) / src.name)

    monkeypatch.setattr(pyaps3, "ECMWFdload", fake_download)
    base = {"mintpy.troposphericDelay.weatherDir": str(weather)}
    # not asked: nothing is fetched, and the error says how to ask
    with pytest.raises(InputError, match="download = yes"):
        run_correction("pyaps", Template(base), tmp_path)
    assert calls == []
    # asked, without credentials: a clear error, still nothing fetched
    monkeypatch.setattr(troposphere, "cds_credentials", lambda: None)
    asked = Template({**base, "mintpy.troposphericDelay.download": "yes"})
    with pytest.raises(InputError, match="no Copernicus CDS credentials"):
        run_correction("pyaps", asked, tmp_path)
    assert calls == []
    # asked, with credentials: the missing dates are fetched into <weatherDir>/ERA5 and used
    monkeypatch.setattr(troposphere, "cds_credentials", lambda: "~/.cdsapirc")
    result = run_correction("pyaps", asked, tmp_path)
    assert calls and calls[0][1] == "14" and set(calls[0][0]) == set(KYUSHU_DATES)
    s, n, w, e = calls[0][4]
    assert s < np.nanmin(layers["latitude"]) and n > np.nanmax(layers["latitude"]) and w < e
    assert result.output.exists() and (weather / "ERA5").is_dir()


def test_era5_without_pyaps3_says_how_to_install(tmp_path, monkeypatch):
    """pyaps3 is an optional extra: its absence is a one-line error with the install command."""
    import sys

    from click.testing import CliRunner

    from sbts.cli.main import cli
    from sbts.core.errors import PluginError

    meta = Metadata(Grid(4, 5), unit="m", reference=Reference(y=1, x=1, date=dt.date(2020, 1, 1)))
    _write_ts(tmp_path / "timeseries.h5", meta.with_radar(center_line_utc=3600.0), ["20200101", "20200113"],
              np.zeros((2, 4, 5)))
    monkeypatch.setitem(sys.modules, "pyaps3", None)  # import pyaps3 → ImportError
    with pytest.raises(PluginError, match=r"pyaps3.*pip install 'sbts\[weather\]'"):
        run_correction("pyaps", Template({}), tmp_path)
    result = CliRunner().invoke(cli, ["correct", "pyaps", "-i", str(tmp_path / "timeseries.h5")])
    assert result.exit_code != 0
    assert "pip install 'sbts[weather]'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("poly", [1, 2, 3])
@pytest.mark.parametrize("hdtype", [np.float32, np.float64])
def test_height_delay_removal_date_by_date_equals_the_whole_block_expression(poly, hdtype):
    """The removal runs date by date (one float64 layer of temporaries); it gives the bits of the
    whole-block expression data − Σ_k c_k (h^k − h_ref^k), no-data pixels (0 at every date) kept 0."""
    from sbts.plugins.corrections.troposphere import _remove_height_delay

    rng = np.random.default_rng(poly)
    data = rng.normal(0, 0.05, (7, 20, 30)).astype(np.float32)
    data[:, 3, 4] = 0
    h = rng.uniform(0, 3000, (20, 30)).astype(hdtype)
    coeffs = rng.normal(0, 1e-5, (poly + 1, 7))
    delay = sum(coeffs[k][:, None, None] * (h ** k - 123.4 ** k)[None] for k in range(1, poly + 1))
    expected = (data - delay).astype(np.float32)
    expected[:, 3, 4] = 0
    np.testing.assert_array_equal(_remove_height_delay(coeffs, 123.4, poly, None, (data, h)), expected)


def test_era5_new_acquisition_computes_only_its_date(tmp_path, kyushu, caplog):
    """A weather file that appears for a date (a new acquisition, or a late download) computes that
    date's delay only; the others are copied from inputs/ERA5.h5, which ends up identical, value for
    value, to a file computed from scratch.  A changed weather file is computed again."""
    data, layers = kyushu
    _kyushu_case(tmp_path, data, layers)
    grib = sorted((data / "ERA5").glob("*.grb"))
    assert len(grib) == 2
    folder = tmp_path / "weather" / "ERA5"
    folder.mkdir(parents=True)
    shutil.copy2(grib[0], folder / grib[0].name)
    t = Template({"mintpy.troposphericDelay.weatherDir": str(tmp_path / "weather")})
    run_correction("pyaps", t, tmp_path)
    assert TimeSeries(tmp_path / "inputs" / "ERA5.h5").date_strings == KYUSHU_DATES[:1]
    shutil.copy2(grib[1], folder / grib[1].name)  # the next date's file arrives
    caplog.set_level(logging.INFO, logger="sbts")
    caplog.clear()
    run_correction("pyaps", t, tmp_path)
    assert "ERA5.h5: 1 date(s) computed, 1 kept from the previous file" in caplog.text
    updated = TimeSeries(tmp_path / "inputs" / "ERA5.h5").read_dates()
    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    _kyushu_case(fresh_dir, data, layers)
    run_correction("pyaps", t, fresh_dir)
    fresh = TimeSeries(fresh_dir / "inputs" / "ERA5.h5").read_dates()
    assert updated.shape == fresh.shape == (2,) + layers["height"].shape
    np.testing.assert_array_equal(updated, fresh)
    # a weather file replaced by another version: its date is computed again
    caplog.clear()
    shutil.copy2(grib[1], folder / grib[1].name)
    import os
    os.utime(folder / grib[1].name, ns=(1, 1))
    run_correction("pyaps", t, tmp_path)
    assert "ERA5.h5: 1 date(s) computed, 1 kept from the previous file" in caplog.text


# ============================================================================ dates in parallel
def _values(path: Path) -> np.ndarray:
    return TimeSeries(path).read_dates()


@pytest.mark.parametrize("mode", [dict(num_worker=2), dict(num_worker=2, cluster="local")], ids=["pool", "dask"])
def test_weather_delays_dates_in_parallel_equal_one_process(tmp_path, kyushu, shared_data, mode, caplog):
    """Issue 16: the dates of a weather-model (ERA5) or GACOS delay are independent and computed by
    the run's workers; the delay file and the corrected series are the same values as in one process,
    and the scratch copy of the geometry the workers read is removed."""
    if mode.get("cluster"):
        pytest.importorskip("dask.distributed")
    data, layers = kyushu
    template = Template({"mintpy.troposphericDelay.weatherDir": str(data)})
    here, apart = tmp_path / "here", tmp_path / "apart"
    for folder in (here, apart):
        folder.mkdir()
        _kyushu_case(folder, data, layers)
    run_correction("pyaps", template, here)
    with caplog.at_level(logging.INFO):
        run_correction("pyaps", template, apart, **mode)
    assert "on 2 workers" in caplog.text
    for name in ("inputs/ERA5.h5", "timeseries_ERA5.h5"):
        np.testing.assert_array_equal(_values(apart / name), _values(here / name), err_msg=name)
    assert sorted(p.name for p in (apart / "inputs").iterdir()) == sorted(p.name for p in (here / "inputs").iterdir())

    gacos = shared_data / "snap_envi_gacos_jharia" / "gacos"
    if not gacos.is_dir():
        pytest.skip(f"{gacos} not found")
    here, apart = tmp_path / "gacos_here", tmp_path / "gacos_apart"
    template = Template({"mintpy.troposphericDelay.gacosDir": str(gacos)})
    for folder in (here, apart):
        folder.mkdir()
        _gacos_case(folder, gacos)
    run_correction("gacos", template, here)
    run_correction("gacos", template, apart, **mode)
    for name in ("inputs/GACOS.h5", "timeseries_GACOS.h5"):
        np.testing.assert_array_equal(_values(apart / name), _values(here / name), err_msg=name)
    assert sorted(p.name for p in (apart / "inputs").iterdir()) == sorted(p.name for p in (here / "inputs").iterdir())


def test_weather_delays_fewer_dates_at_once_under_a_small_budget(tmp_path, kyushu, caplog):
    """A date's delay is computed whole: a budget that holds one date's work runs one at a time."""
    data, layers = kyushu
    _kyushu_case(tmp_path, data, layers)
    length, width = layers["height"].shape
    one_date_gb = 160.0 * length * width / 1024**3  # troposphere._PYAPS_BYTES_PER_PIXEL
    with caplog.at_level(logging.INFO):
        run_correction("pyaps", Template({"mintpy.troposphericDelay.weatherDir": str(data)}), tmp_path,
                       num_worker=2, max_memory=1.5 * one_date_gb)
    assert "ERA5 delays: 1 date(s) at once" in caplog.text
    assert TimeSeries(tmp_path / "inputs" / "ERA5.h5").date_strings == KYUSHU_DATES[:2]


def test_weather_delays_on_dask_keep_the_runs_cluster(tmp_path, kyushu):
    """On dask the budget does not resize the cluster: the dates go to the run's cluster (its workers'
    memory limits rule), not to a second LocalCluster of another size."""
    pytest.importorskip("dask.distributed")
    from sbts.core.compute import scheduling

    data, layers = kyushu
    _kyushu_case(tmp_path, data, layers)
    length, width = layers["height"].shape
    scheduling.close_clusters()
    try:
        run_correction("pyaps", Template({"mintpy.troposphericDelay.weatherDir": str(data)}), tmp_path,
                       num_worker=2, cluster="local", max_memory=1.5 * 160.0 * length * width / 1024**3)
        assert list(scheduling._clients) == [("local", 2)]
    finally:
        scheduling.close_clusters()
    assert TimeSeries(tmp_path / "inputs" / "ERA5.h5").date_strings == KYUSHU_DATES[:2]
