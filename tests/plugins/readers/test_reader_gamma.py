"""GAMMA reader: par parsing, big-endian rasters, baselines, errors, and loads through the loader."""

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
from sbts.core.plugin.interfaces import Confidence, LoadRequest
from sbts.core.steps.load import build_request, load_data
from sbts.plugins.readers import _gamma_par as gp
from sbts.plugins.readers.gamma import GammaReader

C = 299_792_458.0


def request(**patterns) -> LoadRequest:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = Template({f"mintpy.load.{k}": str(v) for k, v in patterns.items()})
    return build_request(t, Path("/"))


def template(**patterns) -> Template:
    values = {f"mintpy.load.{k}": str(v) for k, v in patterns.items()}
    values["mintpy.load.processor"] = "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Template(values)


@pytest.fixture
def sydney(shared_data) -> Path:
    return shared_data / "pyrate_envisat_sydney_small_test"


@pytest.fixture
def samples(shared_data) -> Path:
    return shared_data / "pyrate_gamma_envisat_header_samples"


# ------------------------------------------------------------------ par parsing
def test_full_slc_par_against_header_text(samples):
    par = gp.read_par(samples / "r20090713_VV.slc.par")
    a = gp.acquisition_attrs(par)
    text = (samples / "r20090713_VV.slc.par").read_text()
    assert "radar_frequency:        5.3310040e+09" in text or "5.331004" in text
    assert float(a["WAVELENGTH"]) == pytest.approx(C / 5.331004e9, rel=1e-6)
    assert float(a["HEIGHT"]) == pytest.approx(
        gp.number(par, "sar_to_earth_center") - gp.number(par, "earth_radius_below_sensor"))
    assert a["PLATFORM"] == "env"
    assert a["ORBIT_DIRECTION"] == "DESCENDING"
    assert a["ANTENNA_SIDE"] == "-1"
    assert float(a["HEADING"]) == pytest.approx(gp.number(par, "heading"))
    assert float(a["STARTING_RANGE"]) == pytest.approx(gp.number(par, "near_range_slc"))
    assert gp.numbers(par, "state_vector_position_1")[:3]  # the 11 state vectors parse
    assert int(gp.number(par, "number_of_state_vectors")) == 11


def test_dem_par_grid(samples):
    a = gp.geo_attrs(gp.read_par(samples / "dem16x20raw.dem.par"))
    assert a["EPSG"] == "4326" and a["X_UNIT"] == "degrees"
    assert float(a["Y_FIRST"]) == pytest.approx(-33.3831945)
    assert float(a["X_FIRST"]) == pytest.approx(150.3870833)
    assert float(a["Y_STEP"]) < 0 < float(a["X_STEP"])


def test_reduced_slc_par_time_from_date_line(sydney):
    a = gp.acquisition_attrs(gp.read_par(sydney / "gamma/20060619_slc.par"))
    assert float(a["CENTER_LINE_UTC"]) == pytest.approx(8 * 3600 + 28 * 60 + 59.6906)
    assert float(a["INCIDENCE_ANGLE"]) == pytest.approx(22.9671)


def test_bperp_from_base_par_matches_gamma_table(shared_data):
    root = shared_data / "pyrate_s1_mexico_cropA_gamma"
    acq = gp.read_par(root / "headers/r20180106_VV_8rlks_mli.par")
    for base in sorted((root / "geometry").glob("20180106-*_base.par")):
        table = base.with_name(base.name.replace("base.par", "bperp.par"))
        ours = gp.baseline_bperp(gp.read_par(base), acq)
        assert ours == pytest.approx(gp.read_bperp_table(table), rel=5e-3, abs=0.05)


def test_pair_dates_both_separators():
    assert gp.pair_dates("20060619-20061002_utm.unw") == (dt.date(2006, 6, 19), dt.date(2006, 10, 2))
    assert gp.pair_dates("diff_20061002_20060619.unw") == (dt.date(2006, 6, 19), dt.date(2006, 10, 2))
    assert gp.pair_dates("dem.unw") is None


# ------------------------------------------------------------------ detect / rasters
def test_detect(sydney, shared_data):
    reader = GammaReader()
    assert reader.detect(request(unwFile=sydney / "gamma/*_utm.unw")) == Confidence.SPECIFIC  # *_slc.par ...
    assert reader.detect(request(unwFile=sydney / "roipac/geo_*.unw")) == Confidence.NO  # no par file
    # a TIFF is not a headerless raster, whatever par files lie around
    assert reader.detect(request(unwFile=shared_data / "pyrate_s1_mexico_cropA_gamma/geotiffs/*_unw.tif")) == 0
    assert not reader.detect(request(corFile=sydney / "gamma/*_utm.unw"))


def test_big_endian_window_read(samples):
    unw = samples / "16x20_20090713-20090817_VV_4rlks_utm.unw"
    req = request(unwFile=unw, metaFile=samples / "dem16x20raw.dem.par")
    stack = GammaReader().open_stack(req)
    (pair,) = stack.pairs
    assert (pair.date1, pair.date2) == (dt.date(2009, 7, 13), dt.date(2009, 8, 17))
    raster = pair.layers["unwrapPhase"]
    full = raster.read()
    expected = np.fromfile(unw, ">f4").reshape(full.shape)
    np.testing.assert_array_equal(full, expected)
    assert 19.7 < full.min() and full.max() < 20.2  # big-endian read right (little-endian would be garbage)
    block = Block(3, 11, 2, 9)
    np.testing.assert_array_equal(raster.read(block), full[block.slices])
    assert stack.metadata.grid.is_geocoded
    assert stack.metadata.grid.shape == full.shape


def test_missing_par_error(tmp_path, samples):
    unw = tmp_path / "20090713-20090817_utm.unw"
    shutil.copy(samples / "16x20_20090713-20090817_VV_4rlks_utm.unw", unw)
    with pytest.raises(InputError, match=r"no GAMMA par file.*metaFile"):
        GammaReader().open_stack(request(unwFile=unw))


def test_truncated_file_error(tmp_path, samples):
    unw = tmp_path / "20090713-20090817_utm.unw"
    unw.write_bytes((samples / "16x20_20090713-20090817_VV_4rlks_utm.unw").read_bytes()[:-40])
    shutil.copy(samples / "dem16x20raw.dem.par", tmp_path)
    with pytest.raises(InputError, match=r"20090713-20090817_utm.unw.*truncated"):
        GammaReader().open_stack(request(unwFile=unw))


# ------------------------------------------------------------------ end to end
def test_sydney_end_to_end(tmp_path, sydney):
    t = template(unwFile=sydney / "gamma/*_utm.unw", corFile=sydney / "coherence_SYNTHETIC/*_utm.unw.cc",
                 demFile=sydney / "gamma/20060619_utm.dem", incAngleFile=sydney / "gamma/20060619_utm.inc")
    result = load_data(t, tmp_path)
    assert result.reader == "gamma"
    stack = IfgramStack(result.stack_file)
    assert len(stack.pairs) == 17
    assert stack.pairs.date12[0] == "20060619_20061002"
    k = stack.pairs.date12.index("20070709_20070813")
    raw = np.fromfile(sydney / "gamma/20070709-20070813_utm.unw", ">f4").reshape(72, 47)
    np.testing.assert_allclose(stack.read("unwrapPhase", index=k), np.nan_to_num(raw), atol=0)
    coh = np.fromfile(sydney / "coherence_SYNTHETIC/20070709-20070813_utm.unw.cc", ">f4").reshape(72, 47)
    np.testing.assert_array_equal(stack.read("coherence", index=k), coh)
    # the 17 base.par files of this test set are identical copies: one projected value
    assert np.allclose(stack.pairs.bperp, stack.pairs.bperp[0]) and 0 < stack.pairs.bperp[0] < 20
    a = stack.metadata.to_attrs()
    assert float(a["WAVELENGTH"]) == pytest.approx(C / 5.334694994e9)
    assert a["Y_FIRST"] == "-34.17" and a["EPSG"] == "4326" and a["ORBIT_DIRECTION"] == "DESCENDING"
    assert a["PROCESSOR"] == "gamma"
    (geo_file,) = result.geometry_files
    geom = Geometry(geo_file)
    dem = np.fromfile(sydney / "gamma/20060619_utm.dem", ">f4").reshape(72, 47)
    np.testing.assert_array_equal(geom.read("height"), dem)
    np.testing.assert_allclose(geom.read("incidenceAngle"), 22.9671, rtol=1e-6)
    assert geom.has("slantRangeDistance")


def _write_par(path: Path, items: dict) -> None:
    path.write_text("Gamma par\n\n" + "".join(f"{k}: {v}\n" for k, v in items.items()))


def test_radar_coded_stack_with_geocoded_lookup(tmp_path):
    """A small radar-coded GAMMA layout (MintPy's diff*rlks.unw + rdc.dem + UTM_TO_RDC)."""
    length, width, glen, gwid = 20, 30, 10, 12
    rng = np.random.default_rng(0)
    ifg = tmp_path / "interferograms"
    geom = tmp_path / "geometry"
    for d in (ifg, geom):
        d.mkdir()
    mli = {"sensor": "S1A IW IW1 VV", "date": "2020 01 01", "center_time": "2421.5 s",
           "range_samples": width, "azimuth_lines": length, "range_looks": 8, "azimuth_looks": 2,
           "range_pixel_spacing": "18.6 m", "azimuth_pixel_spacing": "28.0 m",
           "near_range_slc": "800000.0 m", "center_range_slc": "800269.7 m", "far_range_slc": "800539.4 m",
           "incidence_angle": "34.0 degrees", "heading": "-12.3 degrees", "azimuth_angle": "90.0 degrees",
           "radar_frequency": "5.405e9 Hz", "prf": "486.5 Hz", "azimuth_line_time": "4.1e-3 s",
           "sar_to_earth_center": "7073899.0 m", "earth_radius_below_sensor": "6375869.0 m"}
    _write_par(ifg / "20200101_4rlks.mli.par", mli)
    phases = {}
    for d12 in ("20200101-20200113", "20200113-20200125"):
        data = rng.normal(size=(length, width)).astype(">f4")
        data.tofile(ifg / f"diff_{d12}_4rlks.unw")
        phases[d12.replace("-", "_")] = data
    (ifg / "20200101-20200113_4rlks_base.par").write_text(
        "initial_baseline(TCN):  0.0  40.0  4.5  m m m\ninitial_baseline_rate:  0.0  0.0  0.0  m/s m/s m/s\n")
    hgt = rng.uniform(100, 200, (length, width)).astype(">f4")
    hgt.tofile(geom / "sim_20200101_4rlks.rdc.dem")
    _write_par(geom / "sim_20200101_4rlks.utm.dem.par", {
        "DEM_projection": "EQA", "data_format": "REAL*4", "width": gwid, "nlines": glen,
        "corner_lat": "19.45 decimal degrees", "corner_lon": "-99.19 decimal degrees",
        "post_lat": "-0.001 decimal degrees", "post_lon": "0.001 decimal degrees"})
    lut = np.empty((glen, gwid), ">c8")
    lut.real = np.tile(np.linspace(1, width - 2, gwid), (glen, 1))
    lut.imag = np.tile(np.linspace(1, length - 2, glen)[:, None], (1, gwid))
    lut.tofile(geom / "sim_20200101_4rlks.UTM_TO_RDC")
    t = template(unwFile=ifg / "diff_*rlks.unw", demFile=geom / "sim*rlks.rdc.dem",
                 lookupYFile=geom / "sim*rlks.UTM_TO_RDC", lookupXFile=geom / "sim*rlks.UTM_TO_RDC")
    result = load_data(t, tmp_path / "work")
    stack = IfgramStack(result.stack_file)
    assert not stack.metadata.grid.is_geocoded and stack.shape == (length, width)
    for k, name in enumerate(stack.pairs.date12):
        np.testing.assert_array_equal(stack.read("unwrapPhase", index=k), phases[name])
    expected = gp.baseline_bperp(gp.read_par(ifg / "20200101-20200113_4rlks_base.par"),
                                 gp.read_par(ifg / "20200101_4rlks.mli.par"))
    assert stack.pairs.bperp[0] == pytest.approx(expected, rel=1e-5)
    assert 30 < expected < 40
    assert stack.pairs.bperp[1] == 0  # no baseline file for the second pair
    names = {p.name for p in result.geometry_files}
    assert names == {"geometryRadar.h5", "geometryGeo.h5"}
    radar = Geometry(tmp_path / "work/inputs/geometryRadar.h5")
    np.testing.assert_array_equal(radar.read("height"), hgt)
    srd = radar.read("slantRangeDistance")
    np.testing.assert_allclose(srd[0], 800000.0 + 18.6 * np.arange(width), rtol=1e-7)
    inc = radar.read("incidenceAngle")
    assert 25 < inc.min() and inc.max() < 40
    # the incidence at the target, on the DEM (as MintPy with the DEM): cos(inc) = (Rs² − Rt² − r²) / (2·Rt·r)
    # with Rt = earth radius + height, Rs = sar_to_earth_center, r = the slant range of the column
    rt, rs = 6375869.0 + hgt.astype(np.float64), 7073899.0
    r = 800000.0 + 18.6 * np.arange(width)[None, :]
    np.testing.assert_allclose(inc, np.degrees(np.arccos((rs ** 2 - rt ** 2 - r ** 2) / (2 * rt * r))), atol=2e-5)
    geo = Geometry(tmp_path / "work/inputs/geometryGeo.h5")
    np.testing.assert_allclose(geo.read("rangeCoord"), lut.real)
    np.testing.assert_allclose(geo.read("azimuthCoord"), lut.imag)
    assert geo.metadata.grid.geo.y_first == pytest.approx(19.45)


def test_swapped_pair_name_negates_phase(shared_data, tmp_path):
    """A later_earlier file name holds the opposite phase: stored earlier_later with the sign flipped."""
    import shutil

    from sbts.core.config.template import Template
    from sbts.core.io.products import IfgramStack
    from sbts.core.steps.load import load_data

    src = shared_data / "pyrate_envisat_sydney_small_test/gamma"
    for f in src.iterdir():
        if f.suffix in (".par", ".unw"):
            shutil.copy(f, tmp_path / f.name)
    (tmp_path / "20060619-20061002_utm.unw").rename(tmp_path / "20061002-20060619_utm.unw")
    t = Template({"mintpy.load.processor": "gamma", "mintpy.load.unwFile": str(tmp_path / "*_utm.unw"),
                  "mintpy.load.metaFile": str(tmp_path / "*_slc.par")})
    load_data(t, tmp_path / "work")
    stack = IfgramStack(tmp_path / "work/inputs/ifgramStack.h5")
    k = stack.pairs.date12.index("20060619_20061002")
    raw = np.fromfile(tmp_path / "20061002-20060619_utm.unw", ">f4").reshape(stack.shape)
    np.testing.assert_array_equal(stack.read("unwrapPhase", index=k), -raw)
