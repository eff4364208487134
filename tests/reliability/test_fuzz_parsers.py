"""Property-based tests of the header parsers and the template parser.

The property: whatever bytes a header holds, the only exception that escapes a parser (and the
conversions the readers apply right after it) is an :class:`SbtsError`, and its message names the
file.  Values are mutated one key at a time from a valid header (garbage, NaN/Inf, huge, negative,
empty, non-UTF-8), and whole files are replaced by random bytes or truncated.

Known bugs are excluded from the properties with ``assume`` and pinned, deterministically, by the
``xfail(strict=True)`` regression cases at the end of the module.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sbts.core.errors import SbtsError, TemplateError

pytestmark = pytest.mark.rcase(area="fuzz", expected="only SbtsError escapes, message names the file/key/value")

FUZZ = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# values a header may hold by mistake
NASTY = st.one_of(
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e400", "-1", "0", "-0.0", "abc", "1,5", "0x10",
                     "  ", "None", "٣", "½", "1e-400", "99999999999999999999", "12 13 14", "-inf m", "nan Hz"]),
    st.text(min_size=0, max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
)
RAW_BYTES = st.binary(min_size=0, max_size=300)
NON_UTF8 = st.sampled_from([b"\xff\xfe", b"\xc3\x28", b"\x80abc", b"caf\xe9", b"\x00\x00", b"\xed\xa0\x80"])


def _has_name(exc: BaseException, path: Path) -> bool:
    return path.name in str(exc)


def _check(call, path: Path | None = None, *also: Path):
    """Run ``call``; SbtsError is fine (and must name ``path`` or one of ``also``, the files involved),
    anything else fails the property."""
    try:
        return call()
    except SbtsError as exc:
        if path is not None:
            names = [p for p in (path, *also)]
            assert any(_has_name(exc, p) for p in names), f"message names none of {[p.name for p in names]}: {exc}"
        return None



def _mutate(text: str, key_index: int, value: str, sep: str) -> str:
    lines = text.splitlines()
    keyed = [i for i, ln in enumerate(lines) if sep in ln.strip()[1:] or (sep == " " and ln.strip())]
    i = keyed[key_index % len(keyed)]
    key = lines[i].split(sep, 1)[0] if sep != " " else lines[i].split(None, 1)[0]
    lines[i] = f"{key}{sep if sep != ' ' else '  '} {value}" if sep != " " else f"{key}  {value}"
    return "\n".join(lines) + "\n"


def _nonfinite(value: str) -> bool:
    try:
        return not math.isfinite(float(value))
    except ValueError:
        return False


# =========================================================================== template
@FUZZ
@given(st.text(max_size=400))
@pytest.mark.rcase(input="parse_text on random text")
def test_template_parse_text_random(text):
    from sbts.core.config.template import parse_text

    try:
        values = parse_text(text, "fuzz.cfg")
    except TemplateError as exc:
        assert "fuzz.cfg" in str(exc)
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())


@FUZZ
@given(key=st.sampled_from(["mintpy.networkInversion.minTempCoh", "mintpy.compute.maxMemory",
                            "mintpy.networkInversion.weightFunc", "mintpy.deramp", "mintpy.reference.yx",
                            "mintpy.subset.yx", "mintpy.topographicResidual", "mintpy.network.startDate"]),
       value=NASTY)
@pytest.mark.rcase(input="typed getters on a garbage value of a known key")
def test_template_typed_getters(key, value):
    from sbts.core.config.template import Template

    assume("\n" not in value and "\r" not in value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = Template({key: value}, "fuzz.cfg")
    for getter in (t.get, t.get_bool, t.get_float, t.get_int, t.get_list, t.get_numbers):
        if getter == t.get_int and _nonfinite(value):
            continue  # test_bug_template_get_int_nonfinite
        try:
            getter(key)
        except TemplateError as exc:
            assert key in str(exc) and "fuzz.cfg" in str(exc), str(exc)


@FUZZ
@given(data=RAW_BYTES)
@pytest.mark.rcase(input="template file of random / non-UTF-8 bytes")
def test_template_file_random_bytes(tmp_path, data):
    from sbts.core.config.template import Template

    path = tmp_path / "bad.cfg"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(lambda: Template.read(path), path)


# =========================================================================== GAMMA par
SLC_PAR = """\
date: 2006 06 19 8 28 59.6906
radar_frequency: 5.334694994e+09 Hz
incidence_angle: 22.9671 degrees
heading:                 193.1522256   degrees
azimuth_angle:               90.0000   degrees
range_samples:                  8630
azimuth_lines:                  8571
range_looks:                       8
azimuth_looks:                     2
range_pixel_spacing:       18.635856   m
azimuth_pixel_spacing:     28.136512   m
near_range_slc:           802867.7247  m
prf:                      486.4863103  Hz
sar_to_earth_center:             7080600.3965   m
earth_radius_below_sensor:       6371577.2590   m
"""
DEM_PAR = """\
Gamma DIFF&GEO DEM/MAP parameter file
DEM_projection:     EQA
data_format:        REAL*4
width:                47
nlines:               72
corner_lat:    -34.1700000  decimal degrees
corner_lon:     150.9100000  decimal degrees
post_lat:   -8.33333e-04  decimal degrees
post_lon:    8.33333e-04  decimal degrees
"""
BASE_PAR = """\
initial_baseline(TCN):          0.1585592       15.3525463        9.7718029   m   m   m
initial_baseline_rate:          0.0000000       -0.0439410        0.0177195   m/s m/s m/s
precision_baseline(TCN):        0.1585592       15.3525463        9.7718029   m   m   m
precision_baseline_rate:        0.0000000       -0.0439410        0.0177195   m/s m/s m/s
"""


def _gamma_chain(path: Path):
    from sbts.plugins.readers import _gamma_par as gp

    par = gp.read_par(path)
    out = []
    if gp.is_dem_par(par):
        out.append(_check(lambda: gp.geo_attrs(par, str(path)), path))
        out.append(gp.dem_size(par))
        out.append(gp.dem_dtype(par))
    else:
        out.append(gp.acquisition_attrs(par, str(path)))
        out.append(gp.radar_size(par))
        out.append(_check(lambda: gp.baseline_bperp(gp.read_par(path.with_name("base.par")), par, str(path)),
                          path.with_name("base.par"), path))
    return out


@FUZZ
@given(which=st.sampled_from(["slc", "dem"]), key_index=st.integers(0, 40), value=NASTY)
@pytest.mark.rcase(input="GAMMA .par with one value replaced by garbage/NaN/Inf")
def test_gamma_par_values(tmp_path, which, key_index, value):
    assume("\n" not in value and "\r" not in value)
    text = SLC_PAR if which == "slc" else DEM_PAR
    key = [ln.split(":")[0] for ln in text.splitlines() if ":" in ln][key_index % text.count(":")]
    mutated = "\n".join(f"{key}: {value}" if ln.split(":")[0] == key and ":" in ln else ln
                        for ln in text.splitlines()) + "\n"
    (tmp_path / "base.par").write_text(BASE_PAR)
    path = tmp_path / "20060619_slc.par"
    path.write_text(mutated, encoding="utf-8", errors="surrogatepass")
    _check(lambda: _gamma_chain(path), path)


@FUZZ
@given(data=RAW_BYTES, junk=NON_UTF8, cut=st.floats(0, 1))
@pytest.mark.rcase(input="GAMMA .par / base.par / bperp table: random bytes, non-UTF-8, truncated")
def test_gamma_par_bytes(tmp_path, data, junk, cut):
    from sbts.plugins.readers import _gamma_par as gp

    path = tmp_path / "20060619_slc.par"
    raw = SLC_PAR.encode()
    path.write_bytes(raw[: int(len(raw) * cut)] + junk + data)
    (tmp_path / "base.par").write_bytes(BASE_PAR.encode()[: int(len(BASE_PAR) * cut)] + junk)
    _check(lambda: _gamma_chain(path), path)
    table = tmp_path / "x_bperp.par"
    table.write_bytes(data + junk)
    _check(lambda: gp.read_bperp_table(table), table)


# =========================================================================== ROI_PAC rsc
RSC = """\
WIDTH             47
FILE_LENGTH       72
X_FIRST           150.910000000
X_STEP            0.000833333
Y_FIRST           -34.170000000
Y_STEP            -0.000833333
WAVELENGTH        0.0562356424
HEADING_DEG       -166.4283
DATE12            060619-061002
P_BASELINE_TOP_HDR  10
P_BASELINE_BOTTOM_HDR  14
"""



def _rsc_chain(unw: Path):
    import numpy as np

    from sbts.core.model.metadata import Metadata
    from sbts.plugins.readers import _rsc
    from sbts.plugins.readers.roipac import band_raster

    raw = _rsc.raster_rsc(unw)
    attrs = _rsc.mintpy_attrs(raw)
    _rsc.pair_bperp(raw)
    meta = Metadata.from_attrs(attrs, source=str(_rsc.rsc_path(unw)))
    r = band_raster(unw, raw)
    data = r.read()
    assert data.shape == meta.grid.shape
    return np.asarray(data)


@FUZZ
@given(key_index=st.integers(0, 20), value=NASTY)
@pytest.mark.rcase(input="ROI_PAC .rsc with one value replaced by garbage/NaN/Inf")
def test_rsc_values(tmp_path, key_index, value):
    import numpy as np

    from sbts.plugins.readers import _rsc

    assume("\n" not in value and "\r" not in value and value.strip())
    lines = RSC.splitlines()
    i = key_index % len(lines)
    key = lines[i].split()[0]
    lines[i] = f"{key}  {value}"
    unw = tmp_path / "geo_060619-061002.unw"
    np.zeros((72, 2, 47), "<f4").tofile(unw)
    _rsc.rsc_path(unw).write_text("\n".join(lines) + "\n")
    assume(not _metadata_known_bug(_rsc.mintpy_attrs(_rsc.read_rsc(_rsc.rsc_path(unw)))))
    _check(lambda: _rsc_chain(unw), unw, _rsc.rsc_path(unw))


@FUZZ
@given(data=RAW_BYTES, junk=NON_UTF8)
@pytest.mark.rcase(input="ROI_PAC .rsc of random / non-UTF-8 bytes")
def test_rsc_bytes(tmp_path, data, junk):
    import numpy as np

    from sbts.plugins.readers import _rsc

    unw = tmp_path / "geo_060619-061002.unw"
    np.zeros((72, 2, 47), "<f4").tofile(unw)
    _rsc.rsc_path(unw).write_bytes(junk + data)
    raw = _rsc.read_rsc(_rsc.rsc_path(unw))
    assume(not _metadata_known_bug(_rsc.mintpy_attrs(raw)))
    _check(lambda: _rsc_chain(unw), unw, _rsc.rsc_path(unw))


# =========================================================================== metadata attributes
_META_INT_KEYS = ("LENGTH", "WIDTH", "EPSG", "REF_Y", "REF_X", "ALOOKS", "RLOOKS")


def _metadata_known_bug(attrs: dict) -> bool:
    """No known bug left (NaN/Inf integer attributes are InputErrors: test_bug_metadata_nan_int)."""
    return False


@FUZZ
@given(key=st.sampled_from(["LENGTH", "WIDTH", "X_FIRST", "Y_STEP", "WAVELENGTH", "REF_Y", "EPSG", "ALOOKS",
                            "HEADING", "CENTER_LINE_UTC", "STARTING_RANGE"]), value=NASTY)
@pytest.mark.rcase(input="Metadata.from_attrs with one garbage attribute")
def test_metadata_attrs(key, value):
    from sbts.core.model.metadata import Metadata

    attrs = {"LENGTH": "10", "WIDTH": "12", "X_FIRST": "1", "Y_FIRST": "2", "X_STEP": "0.1", "Y_STEP": "-0.1",
             "WAVELENGTH": "0.05", "REF_Y": "1", "REF_X": "1", key: value}
    assume(not _metadata_known_bug(attrs))
    _check(lambda: Metadata.from_attrs(attrs, source="fuzz.h5"))


# =========================================================================== ISCE xml
ISCE_XML = """<imageFile>
  <property name="width"><value>20</value></property>
  <property name="length"><value>10</value></property>
  <property name="number_bands"><value>2</value></property>
  <property name="data_type"><value>FLOAT</value></property>
  <property name="scheme"><value>BIL</value></property>
  <property name="byte_order"><value>l</value></property>
  <component name="coordinate1"><property name="delta"><value>1.0</value></property>
    <property name="size"><value>20</value></property></component>
  <component name="coordinate2"><property name="delta"><value>1.0</value></property>
    <property name="size"><value>10</value></property></component>
</imageFile>
"""



@FUZZ
@given(name=st.sampled_from(["width", "length", "number_bands", "data_type", "scheme", "byte_order", "delta",
                             "size"]), value=NASTY)
@pytest.mark.rcase(input="ISCE image .xml with one property replaced by garbage")
def test_isce_xml_values(tmp_path, name, value):
    import re
    from xml.sax.saxutils import escape

    import numpy as np

    from sbts.plugins.readers._isce_xml import read_image_xml

    assume(all(c.isprintable() or c == " " for c in value))
    xml = re.sub(rf'(name="{name}"><value>)[^<]*(</value>)', lambda m: m.group(1) + escape(value) + m.group(2),
                 ISCE_XML, count=1)
    data = tmp_path / "filt_fine.unw"
    np.zeros((10, 2, 20), "<f4").tofile(data)
    data.with_name("filt_fine.unw.xml").write_text(xml)

    def chain():
        img = read_image_xml(data)
        for b in range(min(img.bands, 3)):
            img.band(b).read()
        return img
    _check(chain, data, data.with_name("filt_fine.unw.xml"))


@FUZZ
@given(data=RAW_BYTES, cut=st.floats(0, 1))
@pytest.mark.rcase(input="ISCE .xml / product .xml: truncated or random bytes")
def test_isce_xml_bytes(tmp_path, data, cut):
    import numpy as np

    from sbts.plugins.readers._isce_xml import read_image_xml, read_product_xml

    f = tmp_path / "filt_fine.unw"
    np.zeros((10, 2, 20), "<f4").tofile(f)
    xml = f.with_name("filt_fine.unw.xml")
    xml.write_bytes(ISCE_XML.encode()[: int(len(ISCE_XML) * cut)] + data)
    _check(lambda: read_image_xml(f), xml)
    _check(lambda: read_product_xml(xml), xml)


# =========================================================================== ENVI hdr (SNAP, ARIA)
ENVI_HDR = """ENVI
description = {Sentinel-1 IW level-1 SLC product}
samples = 20
lines = 10
bands = 1
header offset = 0
file type = ENVI Standard
data type = 4
interleave = bsq
byte order = 1
map info = {Geographic Lat/Lon, 1.0, 1.0, 86.1, 23.9, 1.0E-4, 1.0E-4, WGS84}
"""



@FUZZ
@given(key=st.sampled_from(["samples", "lines", "bands", "header offset", "data type", "interleave", "byte order",
                            "map info"]), value=NASTY)
@pytest.mark.rcase(input="ENVI .hdr (SNAP) with one value replaced by garbage")
def test_envi_hdr_values(tmp_path, key, value):
    import numpy as np

    from sbts.plugins.readers.snap import envi_raster

    assume("\n" not in value and "\r" not in value and "}" not in value and "{" not in value)
    text = "\n".join(f"{key} = {value}" if ln.split("=")[0].strip() == key else ln
                     for ln in ENVI_HDR.splitlines()) + "\n"
    img = tmp_path / "Phase_ifg_IW2_VV_02Sep2019_14Sep2019.img"
    np.zeros((10, 20), ">f4").tofile(img)
    img.with_suffix(".hdr").write_text(text)

    def chain():
        from sbts.plugins.readers._common import envi_geogrid

        raster, hdr = envi_raster(img)
        envi_geogrid(hdr)
        return raster.read()
    _check(chain, img.with_suffix(".hdr"), img)


@FUZZ
@given(data=RAW_BYTES, junk=NON_UTF8)
@pytest.mark.rcase(input="ENVI .hdr: random / non-UTF-8 bytes")
def test_envi_hdr_bytes(tmp_path, data, junk):
    import numpy as np

    from sbts.plugins.readers.snap import envi_raster

    img = tmp_path / "x.img"
    np.zeros((10, 20), ">f4").tofile(img)
    img.with_suffix(".hdr").write_bytes(b"ENVI\n" + junk + data)
    _check(lambda: envi_raster(img), img.with_suffix(".hdr"), img)


# =========================================================================== SNAP .dim
DIM = """<?xml version="1.0" encoding="ISO-8859-1"?>
<Dimap_Document name="x.dim">
  <Raster_Dimensions><NCOLS>20</NCOLS><NROWS>10</NROWS></Raster_Dimensions>
  <Dataset_Sources><MDElem name="metadata"><MDElem name="Abstracted_Metadata">
    <MDATTR name="MISSION" type="ascii">SENTINEL-1B</MDATTR>
    <MDATTR name="PASS" type="ascii">DESCENDING</MDATTR>
    <MDATTR name="radar_frequency" type="float64">5405.000454334349</MDATTR>
    <MDATTR name="first_line_time" type="utc">02-SEP-2019 18:49:31.123456</MDATTR>
    <MDATTR name="last_line_time" type="utc">02-SEP-2019 18:49:34.123456</MDATTR>
    <MDATTR name="range_looks" type="float64">6</MDATTR>
    <MDATTR name="azimuth_looks" type="float64">2</MDATTR>
    <MDATTR name="incidence_near" type="float64">35.99</MDATTR>
    <MDATTR name="incidence_far" type="float64">41.45</MDATTR>
    <MDATTR name="centre_heading" type="float64">-166.4</MDATTR>
    <MDElem name="Orbit_State_Vectors"><MDElem name="orbit_vector1">
      <MDATTR name="x_pos" type="float64">2000000.0</MDATTR><MDATTR name="y_pos" type="float64">1000000.0</MDATTR>
      <MDATTR name="z_pos" type="float64">6500000.0</MDATTR></MDElem></MDElem>
    <MDElem name="Baselines"><MDElem name="Ref_02Sep2019"><MDElem name="Secondary_14Sep2019">
      <MDATTR name="Perp Baseline" type="float32">10.54</MDATTR></MDElem></MDElem></MDElem>
  </MDElem></MDElem></Dataset_Sources>
</Dimap_Document>
"""



@FUZZ
@given(name=st.sampled_from(["radar_frequency", "first_line_time", "range_looks", "azimuth_looks",
                             "incidence_near", "centre_heading", "x_pos", "Perp Baseline"]), value=NASTY)
@pytest.mark.rcase(input="SNAP .dim with one MDATTR replaced by garbage")
def test_snap_dim_values(tmp_path, name, value):
    import re
    from xml.sax.saxutils import escape

    from sbts.plugins.readers.snap import radar_from_dim, read_dim

    assume(all(c.isprintable() or c == " " for c in value))
    text = re.sub(rf'(name="{name}" type="[^"]*">)[^<]*(<)', lambda m: m.group(1) + escape(value) + m.group(2),
                  DIM, count=1)
    path = tmp_path / f"x{abs(hash((name, value)))}.dim"  # read_dim caches by path
    path.write_text(text, encoding="iso-8859-1", errors="replace")
    _check(lambda: radar_from_dim(read_dim(path)), path)


@FUZZ
@given(data=RAW_BYTES, cut=st.floats(0, 1))
@pytest.mark.rcase(input="SNAP .dim: truncated or random bytes")
def test_snap_dim_bytes(tmp_path, data, cut):
    from sbts.plugins.readers.snap import radar_from_dim, read_dim

    path = tmp_path / f"t{abs(hash((data, cut)))}.dim"
    path.write_bytes(DIM.encode()[: int(len(DIM) * cut)] + data)
    _check(lambda: radar_from_dim(read_dim(path)), path)


# =========================================================================== HyP3 .txt
HYP3_TXT = """Reference Granule: S1A_IW_SLC__1SDH_20251001T204513_20251001T204540_061237_07A332_A16A
Secondary Granule: S1C_IW_SLC__1SDH_20251007T204359_20251007T204426_004342_008A23_0CF9
Reference Pass Direction: ASCENDING
Reference Orbit Number: 61237
Baseline: 48.0195
UTC time: 74713.513457
Heading: -18.1505111
Spacecraft height: 693000.0
Earth radius at nadir: 6337286.638938101
Slant range near: 799011.6261
Slant range center: 843549.1569
Slant range far: 888087.6877
Range looks: 10
Azimuth looks: 2
Multilook range pixel size: 23.29
"""



@FUZZ
@given(key_index=st.integers(0, 20), value=NASTY)
@pytest.mark.rcase(input="HyP3 product .txt with one value replaced by garbage/NaN/Inf")
def test_hyp3_txt_values(tmp_path, key_index, value):
    from sbts.plugins.readers.hyp3 import pair_dates, radar_from_txt, read_product_txt

    assume("\n" not in value and "\r" not in value)
    lines = HYP3_TXT.splitlines()
    i = key_index % len(lines)
    key = lines[i].split(":")[0]
    lines[i] = f"{key}: {value}"
    name = "S1AC_20251001T204513_20251007T204359_HHR006_INT40_G_ueF_1DBE"
    path = tmp_path / f"{name}.txt"
    path.write_text("\n".join(lines) + "\n", errors="surrogatepass")

    def chain():
        meta = read_product_txt(path)
        radar_from_txt(meta, path)
        pair_dates(tmp_path / f"{name}_unw_phase.tif", meta)
    _check(chain, path)


@FUZZ
@given(data=RAW_BYTES, junk=NON_UTF8)
@pytest.mark.rcase(input="HyP3 .txt: random / non-UTF-8 bytes")
def test_hyp3_txt_bytes(tmp_path, data, junk):
    from sbts.plugins.readers.hyp3 import radar_from_txt, read_product_txt

    path = tmp_path / "S1_x.txt"
    path.write_bytes(junk + data)
    meta = _check(lambda: read_product_txt(path), path)
    if meta:
        _check(lambda: radar_from_txt(meta, path), path)


# =========================================================================== ARIA stack VRT
VRT = """<VRTDataset rasterXSize="22" rasterYSize="18">
  <SRS>GEOGCS["WGS 84"]</SRS>
  <GeoTransform>-118.0, 0.000833333, 0.0, 34.0, 0.0, -0.000833333</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1">
    <Metadata domain="unwrappedPhase"><MDI key="Dates">20190113_20190101</MDI>
      <MDI key="perpendicularBaseline">12.0</MDI></Metadata>
  </VRTRasterBand>
</VRTDataset>
"""


@FUZZ
@given(where=st.sampled_from(['rasterXSize="22"', 'rasterYSize="18"', 'band="1"', "GeoTransform", "Dates"]),
       value=NASTY)
@pytest.mark.rcase(input="ARIA stack .vrt with one attribute replaced by garbage (or removed)")
def test_aria_vrt_values(tmp_path, where, value):
    import re
    from xml.sax.saxutils import escape, quoteattr

    from sbts.plugins.readers.aria import _band_pair, read_stack_vrt

    assume(all(c.isprintable() or c == " " for c in value))
    if "=" in where:
        attr = where.split("=")[0]
        text = VRT.replace(where, "" if value == "" else f"{attr}={quoteattr(value)}")
    elif where == "GeoTransform":
        text = re.sub(r"(<GeoTransform>)[^<]*", lambda m: m.group(1) + escape(value), VRT)
    else:
        text = re.sub(r'(key="Dates">)[^<]*', lambda m: m.group(1) + escape(value), VRT)
    path = tmp_path / "unwrapStack.vrt"
    path.write_text(text)

    def chain():
        shape, geo, bands = read_stack_vrt(path)
        for b in bands:
            _band_pair(b, path)
    _check(chain, path)


# =========================================================================== dates
@FUZZ
@given(st.one_of(st.text(max_size=20), st.binary(max_size=12)))
@pytest.mark.rcase(input="parse_date / dates_in_name on random text and bytes")
def test_dates(value):
    from sbts.core.model.dates import dates_in_name, parse_date

    _check(lambda: parse_date(value))
    if isinstance(value, str):
        dates_in_name(value)


# =========================================================================== pinned bugs
def _raises_only_sbts(call):
    try:
        call()
    except SbtsError:
        pass


@pytest.mark.rcase(input="template `mintpy.networkInversion.minNumPixel = inf` (or nan) → Template.get_int",
                   expected="TemplateError naming the key and value")
def test_bug_template_get_int_nonfinite():
    from sbts.core.config.template import Template

    for value in ("inf", "nan"):
        t = Template({"mintpy.networkInversion.minNumPixel": value}, "t.cfg")
        _raises_only_sbts(lambda t=t: t.get_int("mintpy.networkInversion.minNumPixel"))


@pytest.mark.rcase(input="GAMMA .par `range_samples: inf` (and `azimuth_looks: nan`) → radar_size / acquisition_attrs",
                   expected="InputError naming the .par and the key")
def test_bug_gamma_inf_count(tmp_path):
    from sbts.plugins.readers import _gamma_par as gp

    path = tmp_path / "20060619_slc.par"
    path.write_text(SLC_PAR.replace("range_samples:                  8630", "range_samples: inf")
                    .replace("azimuth_looks:                     2", "azimuth_looks: nan"))
    par = gp.read_par(path)
    _raises_only_sbts(lambda: gp.radar_size(par))
    _raises_only_sbts(lambda: gp.acquisition_attrs(par, str(path)))


@pytest.mark.rcase(input="ROI_PAC .rsc `WIDTH inf`", expected="InputError naming the .rsc and WIDTH")
def test_bug_roipac_rsc_size_inf(tmp_path):
    import numpy as np

    from sbts.plugins.readers import _rsc

    unw = tmp_path / "geo_060619-061002.unw"
    np.zeros((72, 2, 47), "<f4").tofile(unw)
    _rsc.rsc_path(unw).write_text(RSC.replace("WIDTH             47", "WIDTH inf"))
    _raises_only_sbts(lambda: _rsc_chain(unw))


@pytest.mark.rcase(input="ROI_PAC .rsc `FILE_LENGTH 0`", expected="InputError naming the .rsc (empty grid)")
def test_bug_roipac_rsc_size_zero(tmp_path):
    import numpy as np

    from sbts.plugins.readers import _rsc

    unw = tmp_path / "geo_060619-061002.unw"
    np.zeros((72, 2, 47), "<f4").tofile(unw)
    _rsc.rsc_path(unw).write_text(RSC.replace("FILE_LENGTH       72", "FILE_LENGTH 0"))
    _raises_only_sbts(lambda: _rsc_chain(unw))


@pytest.mark.rcase(input="HDF5/rsc attribute `LENGTH = nan` (or `REF_Y = inf`) → Metadata.from_attrs",
                   expected="InputError naming the attribute")
def test_bug_metadata_nan_int():
    from sbts.core.model.metadata import Metadata

    _raises_only_sbts(lambda: Metadata.from_attrs({"LENGTH": "nan", "WIDTH": "12"}, source="x.h5"))
    _raises_only_sbts(lambda: Metadata.from_attrs({"LENGTH": "10", "WIDTH": "12", "REF_Y": "inf"}, source="x.h5"))


@pytest.mark.rcase(input="ISCE .xml `number_bands = two`", expected="InputError naming the .xml")
def test_bug_isce_number_bands_garbage(tmp_path):
    import numpy as np

    from sbts.plugins.readers._isce_xml import read_image_xml

    data = tmp_path / "filt_fine.unw"
    np.zeros((10, 2, 20), "<f4").tofile(data)
    data.with_name("filt_fine.unw.xml").write_text(ISCE_XML.replace("<value>2</value>", "<value>two</value>", 1))
    _raises_only_sbts(lambda: read_image_xml(data))


@pytest.mark.rcase(input="ROI_PAC .rsc `WIDTH -1`, ISCE .xml `width` -1, ENVI `bands = 0` → BinaryRaster",
                   expected="InputError naming the header (sizes must be ≥ 1)")
def test_bug_binary_raster_non_positive_size(tmp_path):
    import numpy as np

    from sbts.plugins.readers import _rsc
    from sbts.plugins.readers._isce_xml import read_image_xml
    from sbts.plugins.readers.snap import envi_raster

    unw = tmp_path / "geo_060619-061002.unw"
    np.zeros((72, 2, 47), "<f4").tofile(unw)
    _rsc.rsc_path(unw).write_text(RSC.replace("WIDTH             47", "WIDTH -1"))
    _raises_only_sbts(lambda: _rsc_chain(unw))
    data = tmp_path / "filt_fine.unw"
    np.zeros((10, 2, 20), "<f4").tofile(data)
    data.with_name("filt_fine.unw.xml").write_text(ISCE_XML.replace("<value>20</value>", "<value>-1</value>", 1))
    _raises_only_sbts(lambda: read_image_xml(data).band(0).read())
    img = tmp_path / "x.img"
    np.zeros((10, 20), ">f4").tofile(img)
    img.with_suffix(".hdr").write_text(ENVI_HDR.replace("bands = 1", "bands = 0"))
    _raises_only_sbts(lambda: envi_raster(img)[0].read())


@pytest.mark.rcase(input="ENVI .hdr `interleave = bsq-x` (unknown scheme)", expected="InputError naming the .hdr")
def test_bug_envi_interleave(tmp_path):
    import numpy as np

    from sbts.plugins.readers.snap import envi_raster

    img = tmp_path / "x.img"
    np.zeros((10, 20), ">f4").tofile(img)
    img.with_suffix(".hdr").write_text(ENVI_HDR.replace("interleave = bsq", "interleave = bsq-x"))
    _raises_only_sbts(lambda: envi_raster(img)[0].read())


@pytest.mark.rcase(input="ENVI .hdr with an empty value (`description =` then `samples = 20`)",
                   expected="the empty value stays empty; the next key is still read")
def test_bug_envi_empty_value(tmp_path):
    from sbts.plugins.readers._common import read_envi_header

    hdr = tmp_path / "x.hdr"
    hdr.write_text("ENVI\ndescription =\nsamples = 20\nlines = 10\n")
    values = read_envi_header(hdr)
    assert values.get("samples") == "20" and values.get("description") == ""


@pytest.mark.rcase(input="ENVI .hdr `header offset = abc` / `header offset = -1`", expected="InputError naming the .hdr")
def test_bug_envi_header_offset_garbage(tmp_path):
    import numpy as np

    from sbts.plugins.readers.snap import envi_raster

    img = tmp_path / "x.img"
    np.zeros((10, 20), ">f4").tofile(img)
    img.with_suffix(".hdr").write_text(ENVI_HDR.replace("header offset = 0", "header offset = abc"))
    _raises_only_sbts(lambda: envi_raster(img))
    img.with_suffix(".hdr").write_text(ENVI_HDR.replace("header offset = 0", "header offset = -1"))
    _raises_only_sbts(lambda: envi_raster(img)[0].read())


@pytest.mark.rcase(input="SNAP .dim `Perp Baseline` = `n/a`", expected="InputError naming the .dim")
def test_bug_snap_dim_perp_baseline_garbage(tmp_path):
    from sbts.plugins.readers.snap import read_dim

    path = tmp_path / "perp.dim"
    path.write_text(DIM.replace(">10.54<", ">n/a<"))
    _raises_only_sbts(lambda: read_dim(path))


@pytest.mark.rcase(input="SNAP .dim `range_looks` = `inf`", expected="InputError naming the .dim / looks ignored")
def test_bug_snap_dim_inf_looks(tmp_path):
    from sbts.plugins.readers.snap import radar_from_dim, read_dim

    path = tmp_path / "looks.dim"
    path.write_text(DIM.replace('"float64">6<', '"float64">inf<'))
    _raises_only_sbts(lambda: radar_from_dim(read_dim(path)))


@pytest.mark.rcase(input="HyP3 .txt `Range looks: inf` / `Azimuth looks: nan`", expected="InputError naming the .txt")
def test_bug_hyp3_nonfinite_looks(tmp_path):
    from sbts.plugins.readers.hyp3 import radar_from_txt, read_product_txt

    path = tmp_path / "S1_x.txt"
    path.write_text(HYP3_TXT.replace("Range looks: 10", "Range looks: inf"))
    _raises_only_sbts(lambda: radar_from_txt(read_product_txt(path), path))
    path.write_text(HYP3_TXT.replace("Azimuth looks: 2", "Azimuth looks: nan"))
    _raises_only_sbts(lambda: radar_from_txt(read_product_txt(path), path))


@pytest.mark.rcase(input="ARIA stack .vrt without rasterYSize / with rasterXSize=\"22.5\"",
                   expected="InputError naming the .vrt")
def test_bug_aria_vrt_bad_size(tmp_path):
    from sbts.plugins.readers.aria import read_stack_vrt

    path = tmp_path / "unwrapStack.vrt"
    path.write_text(VRT.replace(' rasterYSize="18"', ""))
    _raises_only_sbts(lambda: read_stack_vrt(path))
    path.write_text(VRT.replace('rasterXSize="22"', 'rasterXSize="22.5"'))
    _raises_only_sbts(lambda: read_stack_vrt(path))


@pytest.mark.rcase(input="ARIA stack .vrt `<GeoTransform>abc</GeoTransform>` (or 3 numbers)",
                   expected="InputError naming the .vrt")
def test_bug_aria_vrt_bad_geotransform(tmp_path):
    from sbts.plugins.readers.aria import read_stack_vrt

    path = tmp_path / "unwrapStack.vrt"
    path.write_text(VRT.replace("-118.0, 0.000833333, 0.0, 34.0, 0.0, -0.000833333", "abc"))
    _raises_only_sbts(lambda: read_stack_vrt(path))
    path.write_text(VRT.replace("-118.0, 0.000833333, 0.0, 34.0, 0.0, -0.000833333", "1,2,3"))
    _raises_only_sbts(lambda: read_stack_vrt(path))
