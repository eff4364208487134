"""HyP3 reader: the real product ``.txt`` files (GAMMA, ISCE2 burst, multi-burst) and generated GeoTIFFs.

The rasters are written by ``fixtures/hyp3_products.py`` following HyP3's file naming (real rasters are
not available).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fixtures.hyp3_products import EPSG, ORIGIN, STEP, build_hyp3, template_text  # noqa: E402

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.errors import InputError  # noqa: E402
from sbts.core.io.blocks import Block  # noqa: E402
from sbts.core.io.products import Geometry, IfgramStack  # noqa: E402
from sbts.core.plugin.interfaces import Confidence  # noqa: E402
from sbts.core.steps.load import build_request, load_data  # noqa: E402
from sbts.plugins.readers.hyp3 import Hyp3Reader, pair_dates, product_name, radar_from_txt, read_product_txt  # noqa: E402

pytest.importorskip("osgeo.gdal")


def _request(text, base):
    return build_request(Template.from_text(text), Path(base))


@pytest.mark.parametrize("name, dates, looks, heading, direction", [
    ("S1AC_20251001T204513_20251007T204359_HHR006_INT40_G_ueF_1DBE", ("20251001", "20251007"), (2, 10), -18.1505111, "ASCENDING"),
    ("S1_056072_IW2_20220814_20220907_VV_INT80_E09B", ("20220814", "20220907"), (4, 20), -13.3101122688203, "ASCENDING"),
    ("S1_044_000000s1n00-093117s2n01-093118s3n01_IW_20250718_20250730_VV_INT80_B4FA", ("20250718", "20250730"), (4, 20), -164.275514873119, "DESCENDING"),
])
def test_real_txt(shared_data, name, dates, looks, heading, direction):
    txt = shared_data / "hyp3_metadata_txt" / f"{name}.txt"
    meta = read_product_txt(txt)
    tif = txt.with_name(f"{name}_unw_phase.tif")
    assert product_name(tif) == name
    d1, d2 = pair_dates(tif, meta)
    assert (d1.strftime("%Y%m%d"), d2.strftime("%Y%m%d")) == dates
    radar, _ = radar_from_txt(meta, txt)
    assert (radar.alooks, radar.rlooks) == looks
    assert radar.heading == pytest.approx(heading)
    assert radar.orbit_direction == direction
    assert radar.height == pytest.approx(float(meta["Spacecraft height"]))
    assert radar.earth_radius == pytest.approx(float(meta["Earth radius at nadir"]))
    assert radar.starting_range == pytest.approx(float(meta["Slant range near"]))
    assert radar.center_line_utc == pytest.approx(float(meta["UTC time"]))
    assert 30 < radar.incidence_angle < 46


def test_burst_range_pixel_from_txt(shared_data):
    txt = shared_data / "hyp3_metadata_txt" / "S1_056072_IW2_20220814_20220907_VV_INT80_E09B.txt"
    radar, _ = radar_from_txt(read_product_txt(txt), txt)
    assert radar.range_pixel_size == pytest.approx(46.59124229430646)
    assert radar.platform == "sen"


def test_detect_and_read(tmp_path):
    info = build_hyp3(tmp_path / "hyp3")
    req = _request(template_text(tmp_path / "hyp3"), tmp_path)
    r = Hyp3Reader()
    assert r.detect(req)
    src = r.open_stack(req)
    assert src.metadata.grid.geo.epsg == EPSG and src.metadata.grid.geo.x_first == ORIGIN[0]
    assert src.metadata.grid.geo.y_step == -STEP and src.metadata.grid.geo.x_unit == "meters"
    p = src.pairs[0]
    key = (p.date1.strftime("%Y%m%d"), p.date2.strftime("%Y%m%d"))
    full = p.layers["unwrapPhase"].read()
    np.testing.assert_allclose(np.nan_to_num(full), info["phases"][key])
    b = Block(2, 9, 3, 20)
    np.testing.assert_array_equal(p.layers["unwrapPhase"].read(b), full[b.slices])
    assert {q.bperp for q in src.pairs} == {48.0195, -12.5, 35.5}


def test_swapped_pair_negates_phase_and_bperp(tmp_path):
    """A product whose reference date is after its secondary is stored earlier_later with the phase
    and the baseline negated; coherence unchanged."""
    info = build_hyp3(tmp_path / "hyp3", pairs=(("20251013", "20251001", 35.5), ("20251001", "20251007", 48.0195)))
    src = Hyp3Reader().open_stack(_request(template_text(tmp_path / "hyp3"), tmp_path))
    by_pair = {(p.date1.strftime("%Y%m%d"), p.date2.strftime("%Y%m%d")): p for p in src.pairs}
    assert set(by_pair) == {("20251001", "20251013"), ("20251001", "20251007")}
    swapped, kept = by_pair[("20251001", "20251013")], by_pair[("20251001", "20251007")]
    np.testing.assert_allclose(np.nan_to_num(swapped.layers["unwrapPhase"].read()),
                               -info["phases"][("20251013", "20251001")])
    assert swapped.bperp == pytest.approx(-35.5)
    assert float(np.nanmin(swapped.layers["coherence"].read())) >= 0
    np.testing.assert_allclose(np.nan_to_num(kept.layers["unwrapPhase"].read()), info["phases"][("20251001", "20251007")])
    assert kept.bperp == pytest.approx(48.0195)


def test_detect_negative(tmp_path):
    info = build_hyp3(tmp_path / "hyp3")
    for name in info["products"]:
        (tmp_path / "hyp3" / name / f"{name}.txt").unlink()
    req = _request(template_text(tmp_path / "hyp3"), tmp_path)
    assert Hyp3Reader().detect(req) == Confidence.GENERIC  # the name alone: as sure as any GeoTIFF reader
    with pytest.raises(InputError, match=r"\.txt is missing"):
        Hyp3Reader().open_stack(req)


def test_load_end_to_end(tmp_path):
    build_hyp3(tmp_path / "hyp3", clip=True)
    res = load_data(Template.from_text(template_text(tmp_path / "hyp3", clip=True)),
                    tmp_path / "work")
    assert res.reader == "hyp3"
    s = IfgramStack(res.stack_file)
    assert len(s.pairs) == 3
    g = Geometry(res.geometry_file)
    assert res.geometry_file.name == "geometryGeo.h5"
    np.testing.assert_allclose(g.read("incidenceAngle"), 40.0, atol=1e-4)  # 90° − 50°
    np.testing.assert_allclose(g.read("azimuthAngle"), 100.0, atol=1e-4)  # −170° − 90° → 100°
    assert not g.read("waterMask")[0, 0] and g.read("waterMask")[0, 3]
    assert s.metadata.radar.wavelength == pytest.approx(0.05546576)


def test_other_readers_reject_hyp3(tmp_path):
    from sbts.plugins.readers.aria import AriaReader
    from sbts.plugins.readers.isce import IsceReader
    from sbts.plugins.readers.snap import SnapReader

    build_hyp3(tmp_path / "hyp3")
    req = _request(template_text(tmp_path / "hyp3"), tmp_path)
    assert not any(r.detect(req) for r in (AriaReader(), IsceReader(), SnapReader()))


def test_slant_range_from_the_incidence_inverts_the_synthetic_geometry():
    """HyP3 gives no range raster: slantRangeDistance comes from the incidence (law of sines and cosines);
    checked against the forward geometry of sbts.core.demo.synthetic for a target on the sphere."""
    from sbts.plugins.readers.hyp3 import slant_range_from_incidence

    re_, h = 6_375_000.0, 693_000.0
    alpha = np.linspace(0.05, 0.12, 9)  # Earth angle between nadir and target (rad)
    rs = re_ + h
    r = np.sqrt(re_ ** 2 + rs ** 2 - 2 * re_ * rs * np.cos(alpha))
    inc = np.degrees(np.arcsin(rs * np.sin(alpha) / r))
    np.testing.assert_allclose(slant_range_from_incidence(inc, re_, h), r, rtol=1e-6)  # float32 output


def test_geometry_has_slant_range_and_corner_attributes(tmp_path):
    build_hyp3(tmp_path)
    t = Template({"mintpy.load.unwFile": str(tmp_path / "*/*_unw_phase.tif"),
                  "mintpy.load.demFile": str(tmp_path / "*/*_dem.tif"),
                  "mintpy.load.incAngleFile": str(tmp_path / "*/*_lv_theta.tif")})
    result = load_data(t, tmp_path / "work")
    g = Geometry(result.geometry_file)
    r = g.read("slantRangeDistance")
    assert 7e5 < float(np.nanmedian(r)) < 1e6
    a = g.metadata.to_attrs()
    # MintPy's prep_hyp3 corners: the bounding box in map units, ascending = south-west first
    s = ORIGIN[1] - STEP * 20
    assert float(a["LAT_REF1"]) == s and float(a["LON_REF1"]) == ORIGIN[0]
    assert float(a["LAT_REF4"]) == ORIGIN[1] and float(a["LON_REF4"]) == ORIGIN[0] + STEP * 24
    assert a["UTM_ZONE"] == "22N"
