"""ROI_PAC exports read back with numpy and the ROI_PAC reader plugin."""

from __future__ import annotations

import numpy as np
import pytest

from sbts.core.errors import InputError
from sbts.core.io.products import TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo
from sbts.core.plugin.runners import export
from sbts.plugins.readers import _rsc
from sbts.plugins.readers.roipac import band_raster

L, W = 10, 14
LAMBDA = 0.0555
GEO = GeoGrid(-99.2, 19.5, 0.001, -0.001, epsg=4326)
DATES = ["20200101", "20200113", "20200125", "20210101"]


def _meta(geo=GEO):
    return Metadata(Grid(L, W, geo), unit="m/year", radar=RadarInfo(wavelength=LAMBDA), processor="gamma")


def test_velocity_unw(tmp_path):
    vel = np.linspace(-0.01, 0.01, L * W, dtype=np.float32).reshape(L, W)
    vel[3, 4] = np.nan
    write_map(tmp_path / "velocity.h5", _meta(), "velocity", {"velocity": vel}, START_DATE="20200101",
              END_DATE="20210101")
    unw, rsc = export("roipac", tmp_path / "velocity.h5")
    assert unw.name == "velocity.unw" and rsc.name == "velocity.unw.rsc"
    raw = np.fromfile(unw, "<f4").reshape(L, 2, W)  # BIL: magnitude row, phase row
    phase = vel * (366 / 365.25) * (-4 * np.pi / LAMBDA)
    ok = np.isfinite(vel)
    np.testing.assert_allclose(raw[:, 1][ok], phase[ok], rtol=1e-5)
    assert raw[3, 1, 4] == 0 and raw[3, 0, 4] == 0 and raw[0, 0, 0] == 1
    r = _rsc.read_rsc(rsc)
    assert (r["WIDTH"], r["FILE_LENGTH"], r["XMAX"], r["YMAX"]) == (str(W), str(L), str(W - 1), str(L - 1))
    assert r["DATE12"] == "200101-210101" and float(r["WAVELENGTH"]) == LAMBDA
    assert float(r["X_FIRST"]) == -99.2 and float(r["Y_STEP"]) == -0.001 and r["PROCESSOR"] == "gamma"
    # the ROI_PAC reader plugin reads the phase band back
    data = band_raster(unw, _rsc.raster_rsc(unw)).read()
    np.testing.assert_allclose(data[ok], phase[ok], rtol=1e-5)


def test_date_cor_dem(tmp_path):
    ts = np.random.default_rng(0).normal(size=(4, L, W)).astype(np.float32) / 100
    with TimeSeriesWriter(tmp_path / "timeseries.h5", _meta(None), DATES) as w:  # radar-coded is fine
        w.write("timeseries", ts)
    unw, rsc = export("roipac", tmp_path / "timeseries.h5", "20200113_20200125", output=tmp_path / "pair.unw")
    raw = np.fromfile(unw, "<f4").reshape(L, 2, W)
    np.testing.assert_allclose(raw[:, 1], (ts[2] - ts[1]) * (-4 * np.pi / LAMBDA), rtol=1e-4, atol=1e-6)
    r = _rsc.read_rsc(rsc)
    assert r["DATE12"] == "200113-200125" and "X_FIRST" not in r
    coh = np.random.default_rng(1).uniform(size=(L, W)).astype(np.float32)
    write_map(tmp_path / "temporalCoherence.h5", _meta(), "temporalCoherence", {"temporalCoherence": coh}, unit="1")
    cor, _ = export("roipac", tmp_path / "temporalCoherence.h5")
    assert cor.suffix == ".cor"
    np.testing.assert_allclose(np.fromfile(cor, "<f4").reshape(L, 2, W)[:, 1], coh)
    hgt = np.random.default_rng(2).uniform(0, 3000, size=(L, W)).astype(np.float32)
    write_map(tmp_path / "geometryGeo.h5", _meta(), "geometry", {"height": hgt, "incidenceAngle": hgt * 0}, unit=None)
    dem, drsc = export("roipac", tmp_path / "geometryGeo.h5", "height")
    assert dem.name == "geometryGeo_height.dem"
    np.testing.assert_array_equal(np.fromfile(dem, "<i2").reshape(L, W), np.round(hgt).astype(np.int16))
    np.testing.assert_array_equal(band_raster(dem, _rsc.raster_rsc(dem)).read(), np.round(hgt))


def test_refusals(tmp_path):
    ts = np.zeros((4, L, W), np.float32)
    with TimeSeriesWriter(tmp_path / "timeseries.h5", _meta(), DATES) as w:
        w.write("timeseries", ts)
    with pytest.raises(InputError, match="name one"):
        export("roipac", tmp_path / "timeseries.h5")
    with pytest.raises(InputError, match="type="):
        export("roipac", tmp_path / "timeseries.h5", "20200101", options={"type": "tif"})
