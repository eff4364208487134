"""sbts export qgis / kite: the GeoPackage read back with OGR (fields, positions, numbers) and the
Kite scene loaded with Kite itself, its LOS vector compared with sbts's."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from sbts.core.errors import InputError
from sbts.core.io.products import TimeSeriesWriter, write_map
from sbts.core.model.metadata import Metadata
from sbts.core.plugin.interfaces import ExportRequest

DATES = ["20200101", "20200113", "20200125", "20200206", "20200218"]
L, W = 9, 11


def meta(**extra) -> Metadata:
    attrs = dict(LENGTH=L, WIDTH=W, Y_FIRST=35.0, X_FIRST=-118.0, Y_STEP=-0.01, X_STEP=0.02, WAVELENGTH=0.0555,
                 HEADING=-12.0, ORBIT_DIRECTION="ASCENDING", PLATFORM="Sen", CENTER_LINE_UTC=50000)
    attrs.update(extra)
    return Metadata.from_attrs({k: str(v) for k, v in attrs.items()})


@pytest.fixture
def work(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    years = (np.array([(dt.datetime.strptime(d, "%Y%m%d") - dt.datetime(2020, 1, 1)).days for d in DATES])
             / 365.25)
    rate = rng.normal(0, 0.02, size=(L, W))
    ts = (years[:, None, None] * rate[None]).astype(np.float32)
    ts[:, 2, 3] = np.nan  # no data at one pixel
    m = meta().with_reference(y=4, x=5, date=dt.date(2020, 1, 1))
    with TimeSeriesWriter(tmp_path / "timeseries.h5", m, DATES) as w:
        w.write("timeseries", ts)
    coh = rng.uniform(0.5, 1.0, size=(L, W)).astype(np.float32)
    write_map(tmp_path / "temporalCoherence.h5", m, "temporalCoherence", {"temporalCoherence": coh}, unit="1")
    mask = coh > 0.6
    write_map(tmp_path / "maskTempCoh.h5", m, "mask", {"mask": mask})
    yy, xx = np.mgrid[:L, :W]
    write_map(tmp_path / "geometryGeo.h5", m, "geometry", {
        "height": (100.0 + yy + 2 * xx).astype(np.float32),
        "incidenceAngle": (30.0 + xx).astype(np.float32),
        "azimuthAngle": np.full((L, W), 102.0, np.float32)})
    vel = m.replace(file_type="velocity").with_extra(START_DATE=DATES[0], END_DATE=DATES[-1],
                                                     DATE12=f"{DATES[0]}_{DATES[-1]}")
    write_map(tmp_path / "velocity.h5", vel, "velocity", {"velocity": rate.astype(np.float32),
                                                          "velocityStd": np.full((L, W), 0.001, np.float32)},
              unit="m/year")
    np.save(tmp_path / "truth_rate.npy", rate)
    np.save(tmp_path / "truth_ts.npy", ts)
    np.save(tmp_path / "truth_coh.npy", coh)
    return tmp_path


def _export(name: str, path: Path, dataset=None, output=None, **options):
    from sbts.core.plugin.registry import get_registry

    return get_registry().get("exporter", name).export(ExportRequest(path, dataset, output, options))


# ---------------------------------------------------------------------------- qgis
def test_qgis_geopackage_points_fields_and_values(work):
    from osgeo import ogr

    out = _export("qgis", work / "timeseries.h5", max_memory="0.000001")  # block by block
    assert out == [work / "timeseries.gpkg"]
    ts, rate, coh = (np.load(work / f"truth_{n}.npy") for n in ("ts", "rate", "coh"))
    ds = ogr.Open(str(out[0]))
    layer = ds.GetLayer(0)
    defn = layer.GetLayerDefn()
    names = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    assert names == ["CODE", "ROW", "COL", "VEL", "V_STDEV", "COHERENCE", "HEIGHT"] + [f"D{d}" for d in DATES]
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "4326"
    keep = (coh > 0.6) & np.isfinite(ts).all(axis=0)  # maskTempCoh.h5 found beside, NaN pixel left out
    assert layer.GetFeatureCount() == keep.sum()
    seen = 0
    for feat in layer:
        r, c = feat.GetField("ROW"), feat.GetField("COL")
        assert keep[r, c] and feat.GetField("CODE") == f"P{r}_{c}"
        geom = feat.GetGeometryRef()
        assert geom.GetX() == pytest.approx(-118.0 + (c + 0.5) * 0.02)  # pixel centre, lon/lat order
        assert geom.GetY() == pytest.approx(35.0 - (r + 0.5) * 0.01)
        assert feat.GetField("VEL") == pytest.approx(rate[r, c] * 1000, rel=1e-5)  # mm/year
        assert feat.GetField("V_STDEV") == pytest.approx(1.0, rel=1e-5)
        assert feat.GetField("COHERENCE") == pytest.approx(coh[r, c], rel=1e-6)
        assert feat.GetField("HEIGHT") == pytest.approx(100.0 + r + 2 * c)
        for k, d in enumerate(DATES):
            assert feat.GetField(f"D{d}") == pytest.approx(ts[k, r, c] * 1000, rel=1e-5, abs=1e-6)  # mm
        seen += 1
    assert seen == keep.sum()
    # the spatial index answers a box query: the points of rows 0..1, columns 0..2
    layer.SetSpatialFilterRect(-118.0, 34.98, -117.94, 35.0)
    assert layer.GetFeatureCount() == keep[:2, :3].sum()
    ext = layer.GetExtent()
    assert ext[0] == pytest.approx(-118.0 + 0.01) and ext[3] == pytest.approx(35.0 - 0.005)


def test_qgis_velocity_fitted_without_velocity_file_and_errors(work, tmp_path_factory):
    from osgeo import ogr

    alone = tmp_path_factory.mktemp("alone")
    (work / "timeseries.h5").rename(alone / "timeseries.h5")
    out = _export("qgis", alone / "timeseries.h5", output=alone / "pts.gpkg")
    rate = np.load(work / "truth_rate.npy")
    ds = ogr.Open(str(out[0]))  # kept: a layer outliving its data source crashes OGR
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() == L * W - 1  # no mask: every finite pixel
    for feat in layer:
        r, c = feat.GetField("ROW"), feat.GetField("COL")
        # the series is exactly rate × t: its least-squares slope is the rate
        assert feat.GetField("VEL") == pytest.approx(rate[r, c] * 1000, rel=1e-4, abs=1e-4)
    with pytest.raises(InputError, match="time series"):
        _export("qgis", work / "velocity.h5")
    with pytest.raises(InputError, match="unknown|not in|option"):
        _export("qgis", alone / "timeseries.h5", bogus="1")


# ---------------------------------------------------------------------------- kite
needs_kite = pytest.mark.skipif(importlib.util.find_spec("kite") is None, reason="kite not installed (sbts[kite])")


@needs_kite
def test_kite_scene_loads_in_kite_with_sbts_los_and_frame(work):
    from kite import Scene

    from sbts.core.tools.common import los_unit_vector

    out = _export("kite", work / "velocity.h5", mask=str(work / "maskTempCoh.h5"))
    assert [p.name for p in out] == ["velocity.npz", "velocity.yml"]
    scene = Scene.load(str(out[0]))
    rate, coh = np.load(work / "truth_rate.npy"), np.load(work / "truth_coh.npy")
    span = (dt.date(2020, 2, 18) - dt.date(2020, 1, 1)).days / 365.25
    want = np.where(coh > 0.6, rate * span, np.nan)
    np.testing.assert_allclose(np.flipud(scene.displacement), want, rtol=1e-5, atol=1e-9)  # rows south→north
    f = scene.config.frame
    assert f.spacing == "degree"
    assert (f.llLat, f.llLon, f.dE, f.dN) == pytest.approx((35.0 - L * 0.01, -118.0, 0.02, 0.01))
    # Kite's unit vector (east, north, up) = (cosθ cosφ, cosθ sinφ, sinθ) equals sbts's ground→satellite vector
    inc = 30.0 + np.mgrid[:L, :W][1]
    ue, un, uu = los_unit_vector(inc, 102.0)
    th, ph = np.flipud(scene.theta), np.flipud(scene.phi)
    np.testing.assert_allclose(np.cos(th) * np.cos(ph), ue, atol=1e-6)
    np.testing.assert_allclose(np.cos(th) * np.sin(ph), un, atol=1e-6)
    np.testing.assert_allclose(np.sin(th), uu, atol=1e-6)
    m = scene.config.meta
    assert m.orbital_node == "Ascending" and m.wavelength == pytest.approx(0.0555)
    assert m.time_master == pytest.approx(dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).timestamp() + 50000)


@needs_kite
def test_kite_time_series_pair_and_scalar_geometry(work, tmp_path_factory):
    from kite import Scene

    alone = tmp_path_factory.mktemp("k")
    ts = np.load(work / "truth_ts.npy")
    m = meta().with_reference(date=dt.date(2020, 1, 1))
    with TimeSeriesWriter(alone / "timeseries.h5", m, DATES) as w:
        w.write("timeseries", ts)
    # no geometry file and no INCIDENCE_ANGLE: a one-line error naming the fix
    with pytest.raises(InputError, match="INCIDENCE_ANGLE"):
        _export("kite", alone / "timeseries.h5", dataset=f"{DATES[1]}_{DATES[3]}")
    with TimeSeriesWriter(alone / "ts2.h5", m.with_radar(incidence_angle=34.0), DATES) as w:
        w.write("timeseries", ts)
    out = _export("kite", alone / "ts2.h5", dataset=f"{DATES[1]}_{DATES[3]}", output=alone / "scene.npz")
    assert [p.name for p in out] == ["scene.npz", "scene.yml"]
    scene = Scene.load(str(out[0]))
    np.testing.assert_allclose(np.flipud(scene.displacement), ts[3] - ts[1], rtol=1e-5, atol=1e-8)
    # HEADING −12°, right-looking: azimuthAngle = 90° − heading = 102°, so phi = 192° ≡ −168°
    np.testing.assert_allclose(np.rad2deg(scene.phi), -168.0, atol=1e-9)
    np.testing.assert_allclose(np.rad2deg(scene.theta), 56.0, atol=1e-9)


def test_qgis_radar_coded_points_take_the_lookup_positions(tmp_path, tmp_path_factory):
    from osgeo import ogr

    radar = Metadata.from_attrs({k: str(v) for k, v in dict(LENGTH=6, WIDTH=7, WAVELENGTH=0.0555).items()})
    ts = np.random.default_rng(1).normal(size=(len(DATES), 6, 7)).astype(np.float32)
    with TimeSeriesWriter(tmp_path / "timeseries.h5", radar.with_reference(date=dt.date(2020, 1, 1)), DATES) as w:
        w.write("timeseries", ts)
    yy, xx = np.mgrid[:6, :7].astype(np.float64)
    lat, lon = 19.0 + 0.01 * yy + 0.001 * xx, -99.0 + 0.02 * xx
    lat[0, 0] = np.nan  # outside the DEM: no position, no point
    (tmp_path / "inputs").mkdir()
    write_map(tmp_path / "inputs" / "geometryRadar.h5", radar, "geometry",
              {"latitude": lat.astype(np.float32), "longitude": lon.astype(np.float32)})
    out = _export("qgis", tmp_path / "timeseries.h5")
    ds = ogr.Open(str(out[0]))
    layer = ds.GetLayer(0)
    assert layer.GetFeatureCount() == 6 * 7 - 1
    for feat in layer:
        r, c = feat.GetField("ROW"), feat.GetField("COL")
        g = feat.GetGeometryRef()
        assert (g.GetX(), g.GetY()) == pytest.approx((np.float32(lon[r, c]), np.float32(lat[r, c])), abs=1e-9)
        assert feat.GetField(f"D{DATES[2]}") == pytest.approx(ts[2, r, c] * 1000, rel=1e-5)
    without = tmp_path_factory.mktemp("nolookup")
    (tmp_path / "timeseries.h5").rename(without / "timeseries.h5")
    with pytest.raises(InputError, match="radar coordinates"):
        _export("qgis", without / "timeseries.h5")
