"""GBIS .mat files read back with scipy.io.loadmat: phase sign and span, vectors, geometry, mask."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.io import loadmat

from sbts.core.errors import InputError
from sbts.core.io.products import TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo, Reference
from sbts.core.plugin.runners import export
from sbts.plugins.exporters.gbis import heading_from_azimuth

L, W = 12, 16
GEO = GeoGrid(-99.2, 19.5, 0.001, -0.001, epsg=4326)
LAMBDA = 0.0555
DATES = ["20200101", "20200113", "20200125", "20210101"]


def _meta(geo=GEO) -> Metadata:
    return Metadata(Grid(L, W, geo), unit="m/year", radar=RadarInfo(wavelength=LAMBDA, heading=-12.0, antenna_side=-1),
                    reference=Reference(y=1, x=1))


def _files(folder, geo=GEO):
    vel = np.linspace(-0.02, 0.02, L * W, dtype=np.float32).reshape(L, W)
    vel[2, 3] = np.nan
    write_map(folder / "velocity.h5", _meta(geo), "velocity", {"velocity": vel}, START_DATE="20200101",
              END_DATE="20210101")
    mask = np.ones((L, W), bool)
    mask[5:7] = False
    write_map(folder / "maskTempCoh.h5", _meta(geo), "mask", {"mask": mask}, unit="1")
    write_map(folder / "geometryGeo.h5", _meta(geo), "geometry", {
        "incidenceAngle": np.full((L, W), 35.0, np.float32), "azimuthAngle": np.full((L, W), 102.0, np.float32),
        "height": np.full((L, W), 2240.0, np.float32)}, unit=None)
    ts = np.random.default_rng(0).normal(size=(len(DATES), L, W)).astype(np.float32) / 100
    with TimeSeriesWriter(folder / "timeseries.h5", _meta(geo), DATES) as w:
        w.write("timeseries", ts)
    return vel, mask, ts


def test_velocity_to_phase(tmp_path):
    vel, mask, _ = _files(tmp_path)
    (out,) = export("gbis", tmp_path / "velocity.h5", options={"mask": str(tmp_path / "maskTempCoh.h5")})
    assert out == tmp_path / "velocity.mat"
    g = loadmat(out)
    valid = mask & np.isfinite(vel)
    assert g["Phase"].shape == (valid.sum(), 1)
    years = 366 / 365.25
    np.testing.assert_allclose(g["Phase"][:, 0], vel[valid] * years * (-4 * np.pi / LAMBDA), rtol=1e-5)
    # GBIS's own conversion gives back the displacement, positive toward the satellite
    np.testing.assert_allclose(-g["Phase"][:, 0] * LAMBDA / (4 * np.pi), vel[valid] * years, rtol=1e-5)
    rows, cols = np.nonzero(valid)
    np.testing.assert_allclose(g["Lat"][:, 0], 19.5 - (rows + 0.5) * 0.001)
    np.testing.assert_allclose(g["Lon"][:, 0], -99.2 + (cols + 0.5) * 0.001)
    np.testing.assert_allclose(g["Inc"], 35.0)
    np.testing.assert_allclose(g["Heading"], -12.0)
    np.testing.assert_allclose(g["Height"], 2240.0)
    np.testing.assert_array_equal(g["Mask"].astype(bool), valid)
    md = g["Metadata"][0, 0]
    assert str(md["WAVELENGTH"][0]) == repr(LAMBDA) and str(md["DATE12"][0]) == "20200101_20210101"


def test_time_series_pair_and_reference(tmp_path):
    _, _, ts = _files(tmp_path)
    (out,) = export("gbis", tmp_path / "timeseries.h5", "20200113_20210101", output=tmp_path / "x.mat",
                    options={"ref_lalo": "19.4995,-99.1995"})
    g = loadmat(out)
    disp = (ts[3] - ts[1]).astype(np.float64)
    phase = disp * (-4 * np.pi / LAMBDA)
    phase -= phase[0, 0]
    np.testing.assert_allclose(g["Phase"][:, 0], phase.ravel(), rtol=1e-4, atol=1e-5)


def test_heading_from_azimuth():
    # Sentinel-1 ascending: heading about -12°, LOS azimuth (anticlockwise from north) about 102°
    assert heading_from_azimuth(102.0) == pytest.approx(-12.0)
    assert heading_from_azimuth(-102.0 + 180 - 360 + 360 - 180 + 0) == pytest.approx(-168.0)  # descending


def test_refusals(tmp_path):
    _files(tmp_path)
    with pytest.raises(InputError, match="name one"):
        export("gbis", tmp_path / "timeseries.h5")
    with pytest.raises(InputError, match="GBIS inverts phase"):
        export("gbis", tmp_path / "maskTempCoh.h5")
    radar = tmp_path / "radar"
    radar.mkdir()
    _files(radar, geo=None)
    with pytest.raises(InputError, match="sbts geocode"):
        export("gbis", radar / "velocity.h5")


def test_cli_on_demo(tmp_path):
    from sbts.cli.main import cli
    from sbts.core.demo.run import run_demo

    run_demo(tmp_path, shape=(30, 40), num_date=8)
    res = CliRunner().invoke(cli, ["export", "gbis", str(tmp_path / "timeseries.h5"), "20190104_20210105",
                                   "-O", f"mask={tmp_path / 'maskTempCoh.h5'}", "-o", str(tmp_path / "g.mat")])
    assert res.exit_code == 0, res.output
    g = loadmat(tmp_path / "g.mat")
    assert g["Phase"].size > 100 and g["Heading"].mean() == pytest.approx(-12.7, abs=0.01)
