"""ARIA reader: ariaTSsetup VRT stacks and GUNW netCDF products, both generated.

No real ARIA data is available: ``fixtures/aria_products.py`` writes the VRT stacks in ARIA-tools'
tsSetup layout (band metadata domain and keys) and GUNW files with the product specification's HDF5
groups and variables.  The sign test encodes ARIA's convention: GUNW pairs are named later_earlier,
so phase and bperp change sign when stored as MintPy's earlier_later pair.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fixtures.aria_products import DX, WAVELENGTH, build_aria_vrt, build_gunw, vrt_template  # noqa: E402

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.errors import InputError  # noqa: E402
from sbts.core.io.blocks import Block  # noqa: E402
from sbts.core.io.products import Geometry, IfgramStack  # noqa: E402
from sbts.core.steps.load import build_request, load_data  # noqa: E402
from sbts.plugins.readers.aria import AriaReader  # noqa: E402

pytest.importorskip("osgeo.gdal")


def _request(text, base):
    return build_request(Template.from_text(text), Path(base))


@pytest.fixture
def vrt(tmp_path):
    return tmp_path / "aria", build_aria_vrt(tmp_path / "aria")


def test_vrt_stack_sign_order_and_metadata(vrt):
    root, info = vrt
    req = _request(vrt_template(root), root)
    r = AriaReader()
    assert r.detect(req)
    src = r.open_stack(req)
    by_pair = {(p.date1, p.date2): p for p in src.pairs}
    p = by_pair[(dt.date(2019, 1, 1), dt.date(2019, 1, 13))]  # band Dates = 20190113_20190101
    unw = np.nan_to_num(p.layers["unwrapPhase"].read())
    np.testing.assert_allclose(unw, -info["phases"]["20190113_20190101"])
    assert p.bperp == pytest.approx(-12.0)
    b = Block(4, 11, 2, 19)
    np.testing.assert_array_equal(p.layers["unwrapPhase"].read(b), p.layers["unwrapPhase"].read()[b.slices])
    cc = p.layers["connectComponent"].read()
    assert cc[0, 0] == 0 and cc[5, 5] == 1  # no data (-1) → 0
    rad = src.metadata.radar
    assert rad.wavelength == pytest.approx(WAVELENGTH)
    assert (rad.alooks, rad.rlooks) == (7, 19)
    assert rad.range_pixel_size == pytest.approx(2.329562 * 19)
    assert rad.starting_range == pytest.approx(798980.125)
    assert rad.orbit_direction == "DESCENDING"
    assert rad.heading == pytest.approx(-168.0)  # from ARIA azimuth −12° (east, anticlockwise)
    assert rad.center_line_utc == pytest.approx(13 * 3600 + 52 * 60 + 1.5)
    assert src.metadata.grid.geo.epsg == 4326


def test_vrt_load_end_to_end(vrt, tmp_path):
    root, info = vrt
    res = load_data(Template.from_text(vrt_template(root)), tmp_path / "work")
    assert res.reader == "aria"
    s = IfgramStack(res.stack_file)
    assert [f"{a:%Y%m%d}_{b:%Y%m%d}" for a, b in zip(s.pairs.date1, s.pairs.date2)] == \
        ["20190101_20190113", "20190101_20190125", "20190113_20190125"]
    np.testing.assert_allclose(s.pairs.bperp, [-12.0, -7.0, 5.0])
    unw = s.read("unwrapPhase")
    np.testing.assert_allclose(unw[0], -info["phases"]["20190113_20190101"])
    assert unw[0, 0, 0] == 0
    g = Geometry(res.geometry_file)
    assert res.geometry_file.name == "geometryGeo.h5"
    np.testing.assert_allclose(g.read("azimuthAngle"), -102.0)
    np.testing.assert_allclose(g.read("incidenceAngle"), 38.5)
    np.testing.assert_allclose(g.read("height"), 250.0)
    wm = g.read("waterMask")
    assert not wm[:, 0].any() and wm[:, 1:].all()


def test_gunw_products(tmp_path):
    phases = build_gunw(tmp_path / "products")
    text = f"mintpy.load.processor = auto\nmintpy.load.unwFile = {tmp_path}/products/*.nc\n"
    req = _request(text, tmp_path)
    r = AriaReader()
    assert r.detect(req)
    src = r.open_stack(req)
    assert src.metadata.grid.shape == (10, 12)  # common extent of the two shifted products
    assert src.metadata.grid.geo.x_first == pytest.approx(-118.0 + 3 * DX)
    assert src.metadata.grid.geo.y_first == pytest.approx(35.0 - 2 * DX)
    p1, p2 = sorted(src.pairs, key=lambda p: p.date1)
    assert (p1.date1, p1.date2) == (dt.date(2019, 1, 1), dt.date(2019, 1, 13))
    np.testing.assert_allclose(np.nan_to_num(p1.layers["unwrapPhase"].read()),
                               -phases[("20190113", "20190101")][2:12, 3:15])
    np.testing.assert_allclose(np.nan_to_num(p2.layers["unwrapPhase"].read()),
                               -phases[("20190125", "20190113")][0:10, 0:12])
    assert p1.bperp == pytest.approx(-12.0) and p2.bperp == pytest.approx(5.0)
    assert src.metadata.radar.wavelength == pytest.approx(WAVELENGTH)
    assert src.metadata.radar.orbit_direction == "DESCENDING"
    geo = r.open_geometry(req)
    inc = geo.layers["incidenceAngle"].read()
    # cube: 38 + h/1000 + 10·(lon − lon_left of product 1), at h = 0 m
    lon = -118.0 + 3 * DX + DX / 2 + np.arange(12) * DX
    np.testing.assert_allclose(inc[0], 38.0 + 10 * (lon + 118.0), atol=1e-4)
    np.testing.assert_allclose(geo.layers["azimuthAngle"].read(), -102.0, atol=1e-4)
    res = load_data(Template.from_text(text), tmp_path / "work")
    assert IfgramStack(res.stack_file).read("unwrapPhase").shape == (2, 10, 12)


def test_detect_negative_and_errors(tmp_path):
    f = tmp_path / "stack" / "unwrapStack.vrt"
    f.parent.mkdir()
    f.write_text('<VRTDataset rasterXSize="2" rasterYSize="2"><VRTRasterBand band="1"/></VRTDataset>')
    req = _request(f"mintpy.load.unwFile = {f}\n", tmp_path)
    assert not AriaReader().detect(req)  # a plain VRT, no ARIA band metadata
    f.write_text('<VRTDataset rasterXSize="2" rasterYSize="2"><VRTRasterBand band="1">'
                 "<Metadata domain='unwrappedPhase'><MDI key=\"Wavelength (m)\">0.05</MDI></Metadata>"
                 "</VRTRasterBand></VRTDataset>")
    assert AriaReader().detect(req)
    with pytest.raises(InputError, match="Dates"):
        AriaReader().open_stack(req)
