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
from sbts.core.io.products import TimeSeriesWriter, write_map
from sbts.core.model.metadata import GeoGrid, Grid, Metadata, RadarInfo, Reference
from sbts.core.plugin.runners import export

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
    # reproducible: the members carry the zip epoch, not the time of writing, so a rerun gives the same bytes
    with zipfile.ZipFile(out) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    first = out.read_bytes()
    (again,) = export("kmz", tmp_path / "velocity.h5", options={"vlim": "-2,2", "cmap": "RdBu_r"})
    assert again.read_bytes() == first


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


# child order that the OGC KML 2.2 schema requires, for the elements kmz_timeseries writes (features
# are one group: any order among themselves, after the styles)
_FEATURES = ("Placemark", "Folder", "NetworkLink", "ScreenOverlay")
_ORDER = {
    "Document": ("name", "Style", _FEATURES),
    "Folder": ("name", _FEATURES),
    "Placemark": ("name", "description", "styleUrl", "Style", "Region", "ExtendedData", "Point"),
    "NetworkLink": ("name", "Region", "Link"),
    "Region": ("LatLonAltBox", "Lod"),
    "LatLonAltBox": ("north", "south", "east", "west"),
    "Lod": ("minLodPixels", "maxLodPixels"),
    "Link": ("href", "viewRefreshMode"),
    "Style": ("IconStyle", "LabelStyle"),
    "IconStyle": ("color", "scale", "Icon"),
    "ScreenOverlay": ("name", "Icon", "overlayXY", "screenXY", "size"),
}


def _check_order(root) -> None:
    for el in root.iter():
        tag = el.tag.split("}")[-1]
        if tag not in _ORDER:
            continue
        ranks = []
        for child in el:
            name = child.tag.split("}")[-1]
            rank = next((k for k, group in enumerate(_ORDER[tag]) if name == group or name in group), None)
            assert rank is not None, f"<{name}> not expected in <{tag}>"
            ranks.append(rank)
        assert ranks == sorted(ranks), f"children of <{tag}> out of the KML 2.2 order: {[c.tag for c in el]}"


def _kmz_tree(path: Path):
    """doc.kml and every region file it links, parsed; checks the archive is structurally sound KML:
    doc.kml first, every file well-formed KML 2.2 with its elements in the schema's order, every
    NetworkLink → an existing file with a Region whose box is ordered and whose Lod is consistent,
    every point inside its region's box.  (The same files validate against the OGC ogckml22.xsd with
    lxml; the suite does not depend on lxml, so the order rules used here are checked instead.)"""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        assert names[0] == "doc.kml"  # Google Earth opens the first KML of the archive
        sizes = {i.filename: i.file_size for i in z.infolist()}
        files = {n: z.read(n) for n in names}
    root = ET.fromstring(files["doc.kml"])
    assert root.tag == f"{{{NS['k']}}}kml"
    _check_order(root)
    regions = {}
    for link in root.iter(f"{{{NS['k']}}}NetworkLink"):
        href = link.find("k:Link/k:href", NS).text
        assert link.find("k:Link/k:viewRefreshMode", NS).text == "onRegion"
        assert href in files, href
        box = link.find("k:Region/k:LatLonAltBox", NS)
        n, s_, e, w = (_float(box, t) for t in ("north", "south", "east", "west"))
        assert n > s_ and e > w
        lod = link.find("k:Region/k:Lod", NS)
        lo, hi = _float(lod, "minLodPixels"), _float(lod, "maxLodPixels")
        assert lo >= 0 and (hi == -1 or hi > lo)
        sub = ET.fromstring(files[href])
        assert sub.tag == f"{{{NS['k']}}}kml"
        _check_order(sub)
        styles = {st.get("id") for st in sub.iter(f"{{{NS['k']}}}Style")}
        for pm in sub.iter(f"{{{NS['k']}}}Placemark"):
            assert pm.find("k:styleUrl", NS).text[1:] in styles
            href_icon = [h.text for h in sub.iter(f"{{{NS['k']}}}href")]
            assert all(h in files for h in href_icon)
            lon, lat, _ = (float(v) for v in pm.find(".//k:coordinates", NS).text.split(","))
            assert s_ <= lat <= n and w <= lon <= e
        regions[href] = (link, sub)
    return root, regions, files, sizes


@pytest.mark.parametrize("with_velocity", [True, False])
def test_timeseries_points_lod_and_balloons(tmp_path, with_velocity):
    data, mask = _timeseries(tmp_path, with_velocity)
    (out,) = export("kmz_timeseries", tmp_path / "timeseries.h5", options={"steps": "4,1", "box": "5"})
    root, regions, files, _ = _kmz_tree(out)
    levels = root.findall("./k:Document/k:Folder", NS)
    assert [f.find("k:name", NS).text for f in levels] == ["every 4 px", "every 1 px"]
    fine = levels[1].findall("k:NetworkLink", NS)
    lods = [link.find("k:Region/k:Lod", NS) for link in fine]
    assert lods and all(_float(x, "minLodPixels") == 40 and _float(x, "maxLodPixels") == -1 for x in lods)
    coarse_lod = levels[0].find(".//k:Region/k:Lod", NS)
    assert _float(coarse_lod, "minLodPixels") == 0 and _float(coarse_lod, "maxLodPixels") == 160
    # doc.kml holds links, not points; the points are in the region files
    assert not root.findall(".//k:Placemark/k:ExtendedData", NS)
    points = [pm for link in fine for pm in regions[link.find("k:Link/k:href", NS).text][1].iter(
        f"{{{NS['k']}}}Placemark")]
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
        cells = re.findall(r"^(\d{8}) +([-\d.]*)(?:$|</pre>)", desc.split("<pre")[1], flags=re.M)
        assert [c[0] for c in cells] == DATES
        np.testing.assert_allclose([float(c[1]) for c in cells], data[:, y, x] * 100, atol=0.006)
    ref = root.find(".//k:Placemark[k:name='Reference point']", NS)
    assert ref is not None and "files/colorbar.png" in files and "files/dot.png" in files


def _big_timeseries(folder: Path, length: int, width: int, num_date: int = 12) -> None:
    geo = GeoGrid(-99.2, 19.5, 0.0005, -0.0005, epsg=4326)
    meta = Metadata(Grid(length, width, geo), unit="m", radar=RadarInfo(wavelength=0.0555),
                    reference=Reference(y=1, x=1))
    dates = [f"2020{m:02d}01" for m in range(1, num_date + 1)]
    t = np.arange(num_date, dtype=np.float32)[:, None, None] / 12
    rate = np.random.default_rng(0).normal(0, 0.02, (1, length, width)).astype(np.float32)
    with TimeSeriesWriter(folder / "timeseries.h5", meta, dates) as w:
        w.write("timeseries", rate * t)
    write_map(folder / "maskTempCoh.h5", meta, "mask", {"mask": np.ones((length, width), bool)}, unit="1")


def test_timeseries_kmz_sizes_scale_with_regions_not_one_file(tmp_path):
    """A frame 4× larger: the total grows ~4× with the points, but doc.kml stays a few hundred bytes per
    region and no region file grows (each holds at most box² points), so Google Earth never reads
    the whole frame's points at once (one 59 MB doc.kml before)."""
    stats = {}
    for k, (length, width) in enumerate([(60, 80), (120, 160)]):
        folder = tmp_path / f"s{k}"
        folder.mkdir()
        _big_timeseries(folder, length, width)
        (out,) = export("kmz_timeseries", folder / "timeseries.h5", options={"steps": "8,2,1", "box": "10"})
        root, regions, files, sizes = _kmz_tree(out)
        region_sizes = [sizes[h] for h in regions]
        points = sum(len(list(sub.iter(f"{{{NS['k']}}}Placemark"))) for _, sub in regions.values())
        stats[k] = dict(doc=sizes["doc.kml"], biggest=max(region_sizes), total=sum(region_sizes), points=points,
                        regions=len(regions), per_point=max(region_sizes) / 100)
        assert points == length * width + (length // 2) * (width // 2) + (length // 8) * (width // 8)
    small, big = stats[0], stats[1]
    assert big["points"] / small["points"] == pytest.approx(4, rel=0.01)
    assert big["total"] / small["total"] == pytest.approx(4, rel=0.1)  # linear in the points
    assert big["biggest"] <= 1.05 * small["biggest"]  # bounded by the box, not by the frame
    assert big["doc"] / big["regions"] < 600 and big["doc"] < 0.02 * big["total"]
    # at most box² = 100 points per region file, each under 2 kB with 12 dates
    assert small["biggest"] < 100 * 2000


def test_google_earth_kmz_hides_unreliable_and_empty_pixels(tmp_path):
    """As MintPy's save_kmz: the velocity map is masked with maskTempCoh.h5 beside it (geo_ beside
    geo_), so water and unreliable pixels are transparent, not 0 cm/year."""
    import matplotlib.pyplot as plt

    vel = np.linspace(-0.03, 0.03, L * W, dtype=np.float32).reshape(L, W)
    vel[8:, :6] = 0.0  # a lake: not inverted, velocity 0
    vel[3, 4] = 0.0  # the reference pixel: 0 by definition, and data
    reliable = np.ones((L, W), bool)
    reliable[8:, :6] = False
    reliable[:2, 10:] = False  # unreliable (low temporal coherence)
    for prefix in ("", "geo_"):
        folder = tmp_path / (prefix or "radar")
        folder.mkdir()
        write_map(folder / f"{prefix}velocity.h5", _meta().replace(unit="m/year"), "velocity", {"velocity": vel},
                  START_DATE=DATES[0], END_DATE=DATES[-1])
        write_map(folder / f"{prefix}maskTempCoh.h5", _meta(), "mask", {"mask": reliable}, unit="1")
        (out,) = export("kmz", folder / f"{prefix}velocity.h5", "velocity", options={"vlim": "-2,2"})
        root, pngs = _kml(out)
        img = plt.imread(io.BytesIO(pngs[root.find(".//k:GroundOverlay/k:Icon/k:href", NS).text]))
        np.testing.assert_array_equal(img[..., 3] == 1, reliable)
        assert img[3, 4, 3] == 1
    # without a mask file the empty pixels (0 other than the reference) are still hidden; mask=no shows
    # the unreliable ones
    (folder / "geo_maskTempCoh.h5").unlink()
    (out,) = export("kmz", folder / "geo_velocity.h5", "velocity", options={"vlim": "-2,2"})
    root, pngs = _kml(out)
    alpha = plt.imread(io.BytesIO(pngs[root.find(".//k:GroundOverlay/k:Icon/k:href", NS).text]))[..., 3]
    assert (alpha[8:, :6] == 0).all() and alpha[3, 4] == 1 and (alpha[:2, 10:] == 1).all()


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
    from sbts.core.demo.run import run_demo

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


@pytest.mark.parametrize("compute", [dict(num_worker=2), dict(num_worker=2, cluster="local"),
                                     dict(num_worker=3, max_memory=0.001)], ids=["pool", "dask", "pool3"])
def test_timeseries_kmz_same_bytes_here_in_the_pool_and_on_dask(tmp_path, compute):
    """The region files are made by the workers and stored in doc.kml's order with a fixed time: the
    archive is byte for byte the one a single process writes, whatever the workers and their order."""
    if compute.get("cluster"):
        pytest.importorskip("dask.distributed")
    from sbts.core.config.compute import ComputeOptions

    _big_timeseries(tmp_path, 70, 90)
    opts = {"steps": "8,2,1", "box": "6"}
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    (one,) = export("kmz_timeseries", tmp_path / "timeseries.h5", output=tmp_path / "one/ts.kmz", options=opts)
    (many,) = export("kmz_timeseries", tmp_path / "timeseries.h5", output=tmp_path / "many/ts.kmz", options=opts,
                     compute=ComputeOptions(**compute))
    with zipfile.ZipFile(one) as a:
        names = a.namelist()
        assert len(names) > 200 and names[0] == "doc.kml"  # doc.kml first: Google Earth opens it
        assert {i.date_time for i in a.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert one.read_bytes() == many.read_bytes()


def test_balloon_charts_scale_on_finite_values():
    """The chart's points: dates spread over x = 28..314, values over y = 112 (lowest) .. 8 (highest);
    NaN and ±inf dates are left out and do not stretch the scale; a constant history is drawn at
    mid-height (±1 cm around it); a history with no finite value says so."""
    from sbts.plugins.exporters.kmz import _svg_charts

    years = np.array([0.0, 0.5, 1.0])
    values = np.array([[0.0, 1.0, 2.0], [0.0, np.inf, 2.0], [3.0, 3.0, 3.0], [np.nan, np.nan, np.nan],
                       [np.nan, 1.0, 2.0]], np.float32)
    charts = _svg_charts(years, values, ["20200101", "20200702", "20201231"])

    def points(chart):
        return re.search(r'points="([^"]*)"', chart).group(1)

    assert points(charts[0]) == "28,112 171,60 314,8"
    assert points(charts[1]) == "28,112 314,8"
    assert points(charts[2]) == "28,60 171,60 314,60" and ">4.0</text>" in charts[2] and ">2.0</text>" in charts[2]
    assert charts[3] == "<p>no data</p>"
    assert points(charts[4]) == "171,112 314,8"
