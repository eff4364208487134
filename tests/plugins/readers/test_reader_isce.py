"""ISCE2 reader: real geometry (Kyushu, ALOS) and a generated topsStack.

The interferogram stack is written by ``fixtures/isce_topsstack.py``, which follows the published ISCE2
topsStack layout (image XML schema, BIL band order, file and folder names, baselines text); no real
ISCE interferogram stack is available to the tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fixtures.isce_topsstack import RANGE_PIXEL, STARTING_RANGE, WAVELENGTH, build_topsstack, template_text  # noqa: E402

from sbts.core.config.template import Template  # noqa: E402
from sbts.core.errors import InputError  # noqa: E402
from sbts.core.io.blocks import Block  # noqa: E402
from sbts.core.io.products import Geometry, IfgramStack  # noqa: E402
from sbts.core.steps.load import build_request, load_data  # noqa: E402
from sbts.plugins.readers._isce_xml import read_image_xml  # noqa: E402
from sbts.plugins.readers.isce import IsceReader  # noqa: E402


def _request(text, base):
    return build_request(Template.from_text(text), Path(base))


@pytest.fixture
def stack(tmp_path):
    info = build_topsstack(tmp_path / "tops")
    return tmp_path / "tops", info


def test_real_geometry_xml(shared_data):
    g = shared_data / "era5_grib_pyaps3_kyushu" / "geometry_isce"
    img = read_image_xml(g / "los.rdr")
    assert (img.width, img.length, img.bands, img.scheme) == (237, 460, 2, "BIL")
    assert img.dtype == np.dtype("<f4")
    assert read_image_xml(g / "hgt.rdr").dtype == np.dtype("<f8")
    req = _request(f"mintpy.load.demFile = {g}/hgt.rdr\nmintpy.load.lookupYFile = {g}/lat.rdr\n"
                   f"mintpy.load.lookupXFile = {g}/lon.rdr\nmintpy.load.incAngleFile = {g}/los.rdr\n"
                   f"mintpy.load.azAngleFile = {g}/los.rdr\n", g)
    r = IsceReader()
    assert r.detect(req)
    geo = r.open_geometry(req)
    assert geo.metadata.grid.shape == (460, 237)
    lat, inc, az = (geo.layers[k].read() for k in ("latitude", "incidenceAngle", "azimuthAngle"))
    assert 31.2 < lat.min() < lat.max() < 32.7  # README: 31.25–32.65
    assert 36 < np.nanmean(inc) < 41
    # band 2 of los.rdr, raw values ≈ −259.6°, wrapped to the same direction in [-180, 180)
    raw = np.fromfile(g / "los.rdr", "<f4").reshape(460, 2, 237)[:, 1, :]
    np.testing.assert_allclose(az, (raw + 180) % 360 - 180, atol=1e-4)
    b = Block(100, 130, 50, 90)
    np.testing.assert_array_equal(geo.layers["height"].read(b), geo.layers["height"].read()[b.slices])


def test_missing_xml_sidecar(stack):
    root, _ = stack
    f = next((root / "merged" / "interferograms").glob("*/filt_fine.unw"))
    f.with_name(f.name + ".xml").unlink()
    with pytest.raises(InputError, match=r"filt_fine\.unw\.xml is missing"):
        read_image_xml(f)


def test_stack_values_and_metadata(stack):
    root, info = stack
    req = _request(template_text(root), root)
    r = IsceReader()
    assert r.detect(req)
    src = r.open_stack(req)
    assert [(p.date1.strftime("%Y%m%d"), p.date2.strftime("%Y%m%d")) for p in src.pairs] == sorted(info["pairs"])
    p0 = src.pairs[0]
    d12 = (p0.date1.strftime("%Y%m%d"), p0.date2.strftime("%Y%m%d"))
    np.testing.assert_array_equal(p0.layers["unwrapPhase"].read(), info["phases"][d12])  # band 2 of BIL
    b = Block(3, 17, 5, 33)
    np.testing.assert_array_equal(p0.layers["unwrapPhase"].read(b), info["phases"][d12][b.slices])
    assert set(p0.layers) == {"unwrapPhase", "coherence", "connectComponent"}
    assert p0.bperp == pytest.approx(info["bperp"][d12[1]] - info["bperp"][d12[0]])
    r_ = src.metadata.radar
    assert r_.wavelength == pytest.approx(WAVELENGTH)
    assert (r_.alooks, r_.rlooks) == info["looks"]
    assert r_.range_pixel_size == pytest.approx(RANGE_PIXEL * info["looks"][1])
    assert r_.starting_range == STARTING_RANGE and r_.orbit_direction == "ASCENDING"
    assert r_.center_line_utc == pytest.approx(36000 + (10 + 16) / 2)


def test_swapped_pair_negates_phase(stack):
    """A pair folder named later_earlier is stored earlier_later with its phase negated (bperp and
    coherence as for the sorted pair)."""
    root, info = stack
    d1, d2 = sorted(info["pairs"])[0]
    ifgs = root / "merged" / "interferograms"
    (ifgs / f"{d1}_{d2}").rename(ifgs / f"{d2}_{d1}")
    src = IsceReader().open_stack(_request(template_text(root), root))
    p = next(q for q in src.pairs if (q.date1.strftime("%Y%m%d"), q.date2.strftime("%Y%m%d")) == (d1, d2))
    assert p.date1 < p.date2
    np.testing.assert_array_equal(p.layers["unwrapPhase"].read(), -info["phases"][(d1, d2)])
    b = Block(3, 17, 5, 33)
    np.testing.assert_array_equal(p.layers["unwrapPhase"].read(b), -info["phases"][(d1, d2)][b.slices])
    assert p.bperp == pytest.approx(info["bperp"][d2] - info["bperp"][d1])
    assert "coherence" in p.layers and float(np.nanmin(p.layers["coherence"].read())) >= 0
    other = next(q for q in src.pairs if q is not p)  # sorted pairs are left alone
    d12 = (other.date1.strftime("%Y%m%d"), other.date2.strftime("%Y%m%d"))
    np.testing.assert_array_equal(other.layers["unwrapPhase"].read(), info["phases"][d12])


def test_missing_wavelength_names_key(stack):
    root, _ = stack
    text = template_text(root).replace(f"{root}/reference/IW*.xml", f"{root}/reference/none*.xml")
    with pytest.raises(InputError, match="WAVELENGTH"):
        IsceReader().open_stack(_request(text, root))
    src = IsceReader().open_stack(_request(text + "WAVELENGTH = 0.2360571\n", root))
    assert src.metadata.radar.wavelength == pytest.approx(0.2360571)


def test_load_end_to_end(stack, tmp_path):
    root, info = stack
    res = load_data(Template.from_text(template_text(root)), tmp_path / "work")
    assert res.reader == "isce"
    s = IfgramStack(res.stack_file)
    assert len(s.pairs) == len(info["pairs"])
    assert s.metadata.processor == "isce"
    unw = s.read("unwrapPhase")
    d12 = sorted(info["pairs"])[0]
    np.testing.assert_allclose(unw[0], info["phases"][d12])
    g = Geometry(res.geometry_file)
    assert {"height", "latitude", "longitude", "incidenceAngle", "azimuthAngle", "waterMask",
            "slantRangeDistance"} <= set(g.datasets)
    srd = g.read("slantRangeDistance")
    assert srd[0, 10] - srd[0, 0] == pytest.approx(10 * RANGE_PIXEL * info["looks"][1], abs=0.1)  # float32 at 800 km
    assert g.read("azimuthAngle")[0, 0] == pytest.approx(101.0)
    assert not g.read("waterMask")[0, 0] and g.read("waterMask")[0, 5]


def test_detect_negative(tmp_path):
    f = tmp_path / "a" / "20190101_20190113" / "filt_fine.unw"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"\0" * 16)
    req = _request(f"mintpy.load.unwFile = {tmp_path}/a/*/filt_fine.unw\n", tmp_path)
    assert not IsceReader().detect(req)  # no .xml sidecar: a ROI_PAC/GAMMA .unw
