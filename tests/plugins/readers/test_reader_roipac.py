"""ROI_PAC reader: rsc parsing, two-band BIL rasters, baselines, errors, and the GAMMA cross-check."""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.errors import InputError
from sbts.core.io.blocks import Block
from sbts.core.io.products import Geometry, IfgramStack
from sbts.core.plugin.interfaces import Confidence
from sbts.core.steps.load import build_request, load_data
from sbts.plugins.readers import _rsc
from sbts.plugins.readers.roipac import RoipacReader


def _template(processor="auto", **patterns) -> Template:
    values = {f"mintpy.load.{k}": str(v) for k, v in patterns.items()}
    values["mintpy.load.processor"] = processor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Template(values)


def request(**patterns):
    return build_request(_template(**patterns), Path("/"))


@pytest.fixture
def sydney(shared_data) -> Path:
    return shared_data / "pyrate_envisat_sydney_small_test"


def test_rsc_keys_to_mintpy(sydney):
    raw = _rsc.read_rsc(sydney / "roipac/EXAMPLE_fullframe_header_geo_060619-060828.unw.rsc")
    a = _rsc.mintpy_attrs(raw)
    assert a["LENGTH"] == "4366" and a["WIDTH"] == "5451"
    assert float(a["HEADING"]) == pytest.approx(-166.4283)
    assert a["ORBIT_DIRECTION"] == "DESCENDING"
    assert a["EPSG"] == "4326"
    assert a["LAT_REF1"] == "-33.6804" and float(a["EARTH_RADIUS"]) == pytest.approx(6357663.19007647)
    assert "DATE12" not in a  # a pair key, kept per pair
    assert _rsc.mintpy_attrs(raw, keep_pair_keys=True)["DATE12"] == "060619-060828"
    assert _rsc.pair_bperp({"P_BASELINE_TOP_HDR": "10", "P_BASELINE_BOTTOM_HDR": "14"}) == 12.0
    assert _rsc.pair_bperp({}) is None


def test_detect(sydney, shared_data):
    reader = RoipacReader()
    assert reader.detect(request(unwFile=sydney / "roipac/geo_*.unw")) == Confidence.SPECIFIC
    assert not reader.detect(request(unwFile=sydney / "gamma/*_utm.unw"))
    assert not reader.detect(request(unwFile=shared_data / "pyrate_s1_mexico_cropA_gamma/geotiffs/*_unw.tif"))


def test_bil_band2_little_endian_and_window(sydney):
    stack = RoipacReader().open_stack(request(unwFile=sydney / "roipac/geo_*.unw"))
    assert len(stack.pairs) == 17
    pair = next(p for p in stack.pairs if p.date1 == dt.date(2006, 6, 19))
    assert pair.date2 == dt.date(2006, 10, 2)
    raw = np.fromfile(sydney / "roipac/geo_060619-061002.unw", "<f4").reshape(72, 2, 47)
    full = pair.layers["unwrapPhase"].read()
    np.testing.assert_array_equal(full, raw[:, 1, :])
    assert np.all(raw[:, 0, :] == 0)  # band 1 (amplitude) is empty in this test set: band 2 was read
    block = Block(10, 30, 5, 40)
    np.testing.assert_array_equal(pair.layers["unwrapPhase"].read(block), full[block.slices])
    assert stack.metadata.grid.geo.x_first == pytest.approx(150.91)
    assert stack.metadata.radar.wavelength == pytest.approx(0.0562356424)


def test_missing_rsc_and_truncated(tmp_path, sydney):
    unw = tmp_path / "geo_060619-061002.unw"
    shutil.copy(sydney / "roipac/geo_060619-061002.unw", unw)
    with pytest.raises(InputError, match=r"geo_060619-061002.unw.rsc: missing"):
        RoipacReader().open_stack(request(unwFile=unw, processor="roipac"))
    shutil.copy(sydney / "roipac/geo_060619-061002.unw.rsc", tmp_path)
    unw.write_bytes(unw.read_bytes()[:1000])
    with pytest.raises(InputError, match=r"truncated"):
        RoipacReader().open_stack(request(unwFile=unw))


def test_sydney_end_to_end_same_as_gamma(tmp_path, sydney):
    roi = load_data(_template(unwFile=sydney / "roipac/geo_*.unw", demFile=sydney / "roipac/*.dem"), tmp_path / "r")
    gam = load_data(_template(unwFile=sydney / "gamma/*_utm.unw", demFile=sydney / "gamma/20060619_utm.dem"),
                    tmp_path / "g")
    assert (roi.reader, gam.reader) == ("roipac", "gamma")
    a, b = IfgramStack(roi.stack_file), IfgramStack(gam.stack_file)
    assert a.pairs.date12 == b.pairs.date12 and len(a.pairs) == 17
    np.testing.assert_array_equal(a.read("unwrapPhase"), b.read("unwrapPhase"))
    ga, gb = a.metadata.grid, b.metadata.grid
    assert ga.shape == gb.shape == (72, 47)
    assert ga.geo.x_first == pytest.approx(gb.geo.x_first) and ga.geo.y_step == pytest.approx(gb.geo.y_step)
    assert a.metadata.to_attrs()["PROCESSOR"] == "roipac"
    geo = Geometry(roi.geometry_files[0])
    dem = np.fromfile(sydney / "roipac/roipac_test_trimmed.dem", "<i2").reshape(72, 47)
    np.testing.assert_array_equal(geo.read("height"), dem)
    np.testing.assert_array_equal(geo.read("height"), Geometry(gam.geometry_files[0]).read("height"))


def _rsc_write(path: Path, items: dict) -> None:
    Path(str(path) + ".rsc").write_text("".join(f"{k:<24}{v}\n" for k, v in items.items()))


def test_radar_stack_with_trans_and_baseline(tmp_path):
    """Radar-coded ROI_PAC layout: filt_*.unw/.cor + radar_*.hgt + geomap_*.trans + *_baseline.rsc."""
    length, width = 12, 16
    rng = np.random.default_rng(1)
    radar = {"WIDTH": width, "FILE_LENGTH": length, "WAVELENGTH": 0.0562356424, "STARTING_RANGE": 835034.6,
             "RANGE_PIXEL_SIZE": 7.9, "EARTH_RADIUS": 6357663.19, "HEIGHT": 797441.27, "HEADING_DEG": -166.4}
    phase = rng.normal(size=(length, width)).astype("<f4")
    coh = rng.uniform(size=(length, width)).astype("<f4")
    for name, band2 in (("filt_060619-060828_4rlks.unw", phase), ("filt_060619-060828_4rlks.cor", coh)):
        np.stack([np.ones_like(band2), band2], axis=1).astype("<f4").tofile(tmp_path / name)
        _rsc_write(tmp_path / name, dict(radar, DATE12="060619-060828"))
    (tmp_path / "060619-060828_baseline.rsc").write_text("P_BASELINE_TOP_HDR   100.0\nP_BASELINE_BOTTOM_HDR 110.0\n")
    hgt = rng.uniform(0, 500, (length, width)).astype("<f4")
    np.stack([np.ones_like(hgt), hgt], axis=1).tofile(tmp_path / "radar_4rlks.hgt")
    _rsc_write(tmp_path / "radar_4rlks.hgt", radar)
    glen, gwid = 6, 9
    rg = np.tile(np.linspace(0.5, width - 1.5, gwid), (glen, 1)).astype("<f4")
    az = np.tile(np.linspace(0.5, length - 1.5, glen)[:, None], (1, gwid)).astype("<f4")
    np.stack([rg, az], axis=1).tofile(tmp_path / "geomap_4rlks.trans")  # two bands, BIL
    _rsc_write(tmp_path / "geomap_4rlks.trans", {"WIDTH": gwid, "FILE_LENGTH": glen, "X_FIRST": 150.3,
                                                  "Y_FIRST": -33.4, "X_STEP": 0.001, "Y_STEP": -0.001})
    t = _template(unwFile=tmp_path / "filt_*.unw", corFile=tmp_path / "filt_*.cor", demFile=tmp_path / "radar_*.hgt",
                  lookupYFile=tmp_path / "geomap_*.trans", lookupXFile=tmp_path / "geomap_*.trans")
    result = load_data(t, tmp_path / "work")
    stack = IfgramStack(result.stack_file)
    assert stack.pairs.date12 == ["20060619_20060828"]
    assert stack.pairs.bperp[0] == pytest.approx(105.0)
    np.testing.assert_array_equal(stack.read("unwrapPhase", index=0), phase)
    np.testing.assert_array_equal(stack.read("coherence", index=0), coh)
    assert stack.metadata.radar.heading == pytest.approx(-166.4)
    radar_geom = Geometry(tmp_path / "work/inputs/geometryRadar.h5")
    np.testing.assert_array_equal(radar_geom.read("height"), hgt)
    np.testing.assert_allclose(radar_geom.read("slantRangeDistance")[3], 835034.6 + 7.9 * np.arange(width), rtol=1e-7)
    inc = radar_geom.read("incidenceAngle")
    assert 15 < inc.min() and inc.max() < 30
    # at the target on the DEM (MintPy does so too): cos(inc) = (Rs² − Rt² − r²) / (2·Rt·r), Rt = R + height
    rt, rs = 6357663.19 + hgt.astype(np.float64), 6357663.19 + 797441.27
    r = 835034.6 + 7.9 * np.arange(width)[None, :]
    np.testing.assert_allclose(inc, np.degrees(np.arccos((rs ** 2 - rt ** 2 - r ** 2) / (2 * rt * r))), atol=2e-5)
    geo = Geometry(tmp_path / "work/inputs/geometryGeo.h5")
    np.testing.assert_allclose(geo.read("rangeCoord"), rg)
    np.testing.assert_allclose(geo.read("azimuthCoord"), az)
