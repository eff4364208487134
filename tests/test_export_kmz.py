"""KMZ exports parsed back with zipfile + xml.etree: overlay bounds, colour bar, reference, placemarks."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from sbts.core.errors import InputError
from sbts.core.exporting import export
from sbts.core.metadata import GeoGrid, Grid, Metadata, RadarInfo, Reference
from sbts.core.products import TimeSeriesWriter, write_map

pytest.importorskip("simplekml")
NS = {"k": "http://www.opengis.net/kml/2.2"}
L, W = 16, 20
GEO = GeoGrid(-99.2, 19.5, 0.001, -0.0008, epsg=4326)
DATES = ["20200101", "20200201", "20200301", "20200401", "20200501"]


def _meta(geo=GEO):
    return Metadata(Grid(L, W, geo), unit="m", radar=RadarInfo(wavelength=0.0555),
                    reference=Reference(y=3, x=4, lat=19.5 - 3.5 * 0.0008, lon=-99.2 + 4.5 * 0.001))


def _kml(path: Path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        root = ET.fromstring(z.read("doc.kml"))
        pngs = {n: z.read(n) for n in names if n.endswith(".png")}
    return root, pngs


def _float(el, tag):
    return float(el.find(f"k:{tag}", NS).text)


def test_overlay_bounds_colorbar_reference(tmp_path):
    import matplotlib.pyplot as plt

    vel = np.linspace(-0.03, 0.03, L * W, dtype=np.float32).reshape(L, W)
    vel[0, :5] = np.nan
    write_map(tmp_path / "velocity.h5", _meta().replace(unit="m/year"), "velocity", {"velocity": vel},
              START_DATE=DATES[0], END_DATE=DATES[-1])
    (out,) = export("kmz", tmp_path / "velocity.h5", options={"vlim": "-2,2", "cmap": "RdBu_r"})
    assert out == tmp_path / "velocity.kmz"
    root, pngs = _kml(out)
    box = root.find(".//k:GroundOverlay/k:LatLonBox", NS)
    assert _float(box, "north") == pytest.approx(19.5) and _float(box, "south") == pytest.approx(19.5 - L * 0.0008)
    assert _float(box, "west") == pytest.approx(-99.2) and _float(box, "east") == pytest.approx(-99.2 + W * 0.001)
    href = root.find(".//k:GroundOverlay/k:Icon/k:href", NS).text
    img = plt.imread(io.BytesIO(pngs[href]))
    assert img.shape[:2] == (L, W)
    assert (img[0, :5, 3] == 0).all() and (img[1:, :, 3] == 1).all()  # NaN transparent, data opaque
    bar = root.find(".//k:ScreenOverlay/k:Icon/k:href", NS).text
    assert bar in pngs
    ref = root.find(".//k:Placemark[k:name='Reference point']/k:Point/k:coordinates", NS).text
    lon, lat, _ = (float(v) for v in ref.split(","))
    assert lat == pytest.approx(19.5 - 3.5 * 0.0008) and lon == pytest.approx(-99.2 + 4.5 * 0.001)
    assert "-2..2 cm/year" in root.find(".//k:GroundOverlay/k:description", NS).text


def _timeseries(folder, with_velocity: bool):
    t = np.arange(len(DATES))[:, None, None] / 12 * 31 / 30.4
    rate = np.linspace(-0.05, 0.05, W, dtype=np.float32)[None, None, :] + np.zeros((1, L, 1), np.float32)
    data = (rate * t).astype(np.float32)
    with TimeSeriesWriter(folder / "timeseries.h5", _meta(), DATES) as w:
        w.write("timeseries", data)
    mask = np.ones((L, W), bool)
    mask[:, :2] = False
    write_map(folder / "maskTempCoh.h5", _meta(), "mask", {"mask": mask}, unit="1")
    if with_velocity:
        write_map(folder / "velocity.h5", _meta().replace(unit="m/year"), "velocity",
                  {"velocity": np.full((L, W), 0.01, np.float32)})
    return data, mask


@pytest.mark.parametrize("with_velocity", [True, False])
def test_timeseries_points_lod_and_balloons(tmp_path, with_velocity):
    data, mask = _timeseries(tmp_path, with_velocity)
    (out,) = export("kmz_timeseries", tmp_path / "timeseries.h5", options={"steps": "4,1", "box": "5"})
    root, pngs = _kml(out)
    levels = root.findall("./k:Document/k:Folder", NS)
    assert [f.find("k:name", NS).text for f in levels] == ["every 4 px", "every 1 px"]
    fine = levels[1]
    lods = fine.findall(".//k:Region/k:Lod", NS)
    assert lods and all(_float(x, "minLodPixels") == 40 and _float(x, "maxLodPixels") == -1 for x in lods)
    coarse_lod = levels[0].find(".//k:Region/k:Lod", NS)
    assert _float(coarse_lod, "minLodPixels") == 0 and _float(coarse_lod, "maxLodPixels") == 160
    points = fine.findall(".//k:Placemark", NS)
    assert len(points) == mask.sum()  # every reliable pixel at the finest level, no masked one
    for p in points[:: max(1, len(points) // 7)]:
        values = {d.get("name"): d.find("k:value", NS).text for d in p.findall(".//k:Data", NS)}
        y, x = (int(v) for v in values["yx"].split(","))
        assert mask[y, x]
        lon, lat, _ = (float(v) for v in p.find(".//k:coordinates", NS).text.split(","))
        assert lat == pytest.approx(19.5 - (y + 0.5) * 0.0008) and lon == pytest.approx(-99.2 + (x + 0.5) * 0.001)
        expect_v = 1.0 if with_velocity else np.polyfit([0, 31, 60, 91, 121], data[:, y, x], 1)[0] * 365.25 * 100
        assert float(values["velocity_cm_per_year"]) == pytest.approx(expect_v, abs=0.02 + 0.01 * abs(expect_v))
        desc = p.find("k:description", NS).text
        assert "<svg" in desc and "polyline" in desc
        cells = re.findall(r"<td>(\d{8})</td><td align='right'>([-\d.]*)</td>", desc)
        assert [c[0] for c in cells] == DATES
        np.testing.assert_allclose([float(c[1]) for c in cells], data[:, y, x] * 100, atol=0.006)
    ref = root.find(".//k:Placemark[k:name='Reference point']", NS)
    assert ref is not None and "files/colorbar.png" in pngs


def test_refusals(tmp_path):
    _timeseries(tmp_path, False)
    with pytest.raises(InputError, match="not a time series"):
        export("kmz_timeseries", tmp_path / "maskTempCoh.h5")
    with pytest.raises(InputError, match="vlim"):
        export("kmz", tmp_path / "timeseries.h5", "20200301", options={"vlim": "5"})
    write_map(tmp_path / "radar.h5", Metadata(Grid(4, 5), unit="m/year"), "velocity",
              {"velocity": np.zeros((4, 5), np.float32)})
    for fmt in ("kmz", "kmz_timeseries"):
        with pytest.raises(InputError, match="sbts geocode"):
            export(fmt, tmp_path / "radar.h5")


def test_cli_on_demo(tmp_path):
    from sbts.cli.main import cli
    from sbts.core.demo import run_demo

    run_demo(tmp_path, shape=(30, 40), num_date=6)
    runner = CliRunner()
    res = runner.invoke(cli, ["export", "kmz", str(tmp_path / "avgPhaseVelocity.h5"), "-O", "vlim=-3,3",
                              "-o", str(tmp_path / "k")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["export", "kmz_timeseries", str(tmp_path / "timeseries.h5"), "-o", str(tmp_path / "k")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "k" / "avgPhaseVelocity.kmz").exists() and (tmp_path / "k" / "timeseries.kmz").exists()
    res = runner.invoke(cli, ["export", "kmz", "--help"])
    assert "vlim" in res.output and "geocoded" in res.output
