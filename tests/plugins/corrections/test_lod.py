"""LOD correction: a known drift ramp removed (geometry range and RANGE_PIXEL_SIZE fallback), Envisat test."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.errors import InputError
from sbts.core.io.products import TimeSeries, TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, Reference
from sbts.core.plugin.runners import run_correction
from sbts.plugins.corrections.lod import DRIFT_RATE, applies_by_default

L, W = 12, 40
DATES = ["20030105", "20040220", "20050410", "20070101", "20090615"]
REF = (5, 17)
REF_DATE = 1
PIXEL = 7.8  # m, Envisat IS2 slant-range spacing


def _meta(platform="ENVISAT", geo=False) -> Metadata:
    grid = Grid(L, W, GeoGrid(10.0, 40.0, 0.001, -0.001) if geo else None)
    m = Metadata(grid, unit="m", reference=Reference(y=REF[0], x=REF[1], date=None))
    m = m.with_radar(platform=platform, range_pixel_size=PIXEL)
    import datetime as dt

    return m.with_reference(date=dt.datetime.strptime(DATES[REF_DATE], "%Y%m%d").date())


def _years():
    import datetime as dt

    d = [dt.datetime.strptime(x, "%Y%m%d").date() for x in DATES]
    return np.array([(x - d[REF_DATE]).days for x in d]) / 365.25


def _write(folder, drange, platform="ENVISAT", geometry=None, geo=False):
    """A signal plus the drift 3.87e-7/yr·Δr·Δt (displacement sign), referenced at REF and REF_DATE."""
    rng = np.random.default_rng(0)
    signal = rng.normal(0, 0.01, (len(DATES), L, W))
    signal -= signal[:, REF[0]:REF[0] + 1, REF[1]:REF[1] + 1]
    signal -= signal[REF_DATE][None]
    drift = DRIFT_RATE * _years()[:, None, None] * drange[None]
    with TimeSeriesWriter(folder / "timeseries.h5", _meta(platform, geo), DATES, np.zeros(len(DATES))) as w:
        w.write("timeseries", (signal + drift).astype(np.float32))
    if geometry is not None:
        (folder / "inputs").mkdir(exist_ok=True)
        write_map(folder / "inputs" / "geometryRadar.h5", _meta(platform, geo), "geometry", geometry, unit=None)
    return signal, drift


def test_known_drift_removed_with_geometry_range(tmp_path):
    r = 830e3 + PIXEL * np.arange(W)[None, :] + 3.0 * np.arange(L)[:, None]
    signal, drift = _write(tmp_path, r - r[REF], geometry={"slantRangeDistance": r.astype(np.float32)})
    assert np.abs(drift).max() > 3e-4  # measurable: 3.87e-7/yr × ~190 m × 5.3 yr ≈ 0.4 mm
    result = run_correction("lod", Template({}), tmp_path)
    assert result.output == tmp_path / "timeseries_LOD.h5"
    out = TimeSeries(result.output)
    np.testing.assert_allclose(out.read_dates(), signal, atol=3e-6)
    assert np.all(out.read_dates()[:, REF[0], REF[1]] == 0)
    assert out.metadata.extra["LOD_RATE"] == repr(DRIFT_RATE)
    assert out.date_strings == DATES and out.metadata.reference.y == REF[0]


def test_range_pixel_size_fallback_and_rate(tmp_path):
    drange = PIXEL * (np.arange(W)[None, :] - REF[1]) * np.ones((L, 1))
    signal, _ = _write(tmp_path, drange)
    run_correction("lod", Template({}), tmp_path)
    out = TimeSeries(tmp_path / "timeseries_LOD.h5").read_dates()
    np.testing.assert_allclose(out, signal, atol=3e-6)
    # the removed term is 3.87e-7/yr per metre of range: check one pixel, one date exactly
    removed = TimeSeries(tmp_path / "timeseries.h5").read_dates() - out
    expected = DRIFT_RATE * _years()[-1] * PIXEL * (W - 1 - REF[1])
    assert removed[-1, 0, W - 1] == pytest.approx(expected, rel=1e-4)


def test_non_envisat_runs_with_a_warning(tmp_path, caplog):
    _write(tmp_path, PIXEL * (np.arange(W)[None, :] - REF[1]) * np.ones((L, 1)), platform="Sen")
    with caplog.at_level(logging.WARNING):
        run_correction("lod", Template({}), tmp_path)
    assert "not Envisat" in caplog.text
    assert (tmp_path / "timeseries_LOD.h5").exists()


def test_geocoded_without_range_is_an_input_error(tmp_path):
    _write(tmp_path, np.zeros((L, W)), geo=True)
    with pytest.raises(InputError, match="slantRangeDistance"):
        run_correction("lod", Template({}), tmp_path)


def test_applies_by_default():
    assert applies_by_default({"PLATFORM": "ENVISAT"})
    assert applies_by_default({"PLATFORM": "Env"})
    assert applies_by_default({"PLATFORM": b"envisat"})
    assert applies_by_default(_meta("EnviSat"))
    assert not applies_by_default({"PLATFORM": "Sen"})
    assert not applies_by_default({})
    assert not applies_by_default(_meta("ALOS"))


def test_geocoded_constant_range_says_why_nothing_is_removed(tmp_path, caplog):
    """Geocoded products often give one slant range for the whole scene: the ramp is zero; say so."""
    r = np.full((L, W), 850e3, np.float32)
    signal, _ = _write(tmp_path, np.zeros((L, W)), geometry={"slantRangeDistance": r}, geo=True)
    with caplog.at_level(logging.WARNING):
        result = run_correction("lod", Template({}), tmp_path)
    assert "constant" in caplog.text and "removes nothing" in caplog.text and "radar-coded" in caplog.text
    assert result.summary.startswith("nothing removed")
    np.testing.assert_allclose(TimeSeries(result.output).read_dates(), signal, atol=1e-6)
