"""GeoTIFF stack reader: grid/tags, GAMMA headers and baselines, and the Mexico City stack end to end."""

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
from sbts.plugins.readers import _gamma_par as gp
from sbts.plugins.readers.geotiff import GeoTiffReader

gdal = pytest.importorskip("osgeo.gdal")


def _template(**patterns) -> Template:
    values = {f"mintpy.load.{k}": str(v) for k, v in patterns.items()}
    values["mintpy.load.processor"] = "auto"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Template(values)


def request(**patterns):
    return build_request(_template(**patterns), Path("/"))


@pytest.fixture
def mexico(shared_data) -> Path:
    return shared_data / "pyrate_s1_mexico_cropA_gamma"


def _read_tif(path: Path) -> np.ndarray:
    ds = gdal.Open(str(path))  # keep the dataset alive while its band is read
    return ds.GetRasterBand(1).ReadAsArray()


def test_detect(mexico, shared_data):
    reader = GeoTiffReader()
    assert reader.detect(request(unwFile=mexico / "geotiffs/*_unw.tif")) == Confidence.GENERIC  # any GeoTIFF
    assert not reader.detect(request(unwFile=shared_data / "pyrate_envisat_sydney_small_test/gamma/*.unw"))
    assert not reader.detect(request(unwFile="/nowhere/*.tif"))


def test_hyp3_products_go_to_the_hyp3_reader(tmp_path, mexico):
    """A HyP3 product is a GeoTIFF too (generic match); the hyp3 reader, sure of it with the product's
    metadata file (specific), wins without the GeoTIFF reader knowing about HyP3."""
    from sbts.core.plugin.registry import detect_reader, get_registry

    src = next((mexico / "geotiffs").glob("*_unw.tif"))
    name = "S1AA_20180106T004006_20180130T004006_VVP024_INT80_G_ueF_1234"
    shutil.copy(src, tmp_path / f"{name}_unw_phase.tif")
    req = request(unwFile=tmp_path / "*unw_phase.tif")
    assert GeoTiffReader().detect(req) == Confidence.GENERIC
    with pytest.raises(InputError, match="readers geotiff, hyp3 all recognise .*generic match"):
        detect_reader(req, get_registry())  # no metadata file: the user must say
    (tmp_path / f"{name}.txt").write_text("Reference Granule: x\n")
    assert detect_reader(req, get_registry()).name == "hyp3"


def test_tags_only_metadata_and_window(mexico):
    stack = GeoTiffReader().open_stack(request(unwFile=mexico / "geotiffs/cropA_20180106-*_unw.tif"))
    assert len(stack.pairs) == 4
    m = stack.metadata
    assert m.grid.shape == (60, 100) and m.grid.geo.epsg == 4326
    assert m.grid.geo.x_first == pytest.approx(-99.19106978163674)
    assert m.radar.wavelength == pytest.approx(0.05550415767769124)  # the tag, no par given
    assert m.radar.incidence_angle == pytest.approx(39.7026)
    raster = stack.pairs[0].layers["unwrapPhase"]
    full = raster.read()
    block = Block(7, 33, 11, 70)
    np.testing.assert_array_equal(raster.read(block), full[block.slices])


def test_dates_from_tags(tmp_path, mexico):
    src = mexico / "geotiffs/cropA_20180106-20180130_VV_8rlks_eqa_unw.tif"
    shutil.copy(src, tmp_path / "ifg_a.tif")
    (pair,) = GeoTiffReader().open_stack(request(unwFile=tmp_path / "*.tif")).pairs
    assert (pair.date1, pair.date2) == (dt.date(2018, 1, 6), dt.date(2018, 1, 30))


def test_no_dates_error(tmp_path):
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "ifg.tif"), 4, 3, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((10, 0.1, 0, 20, 0, -0.1))
    ds = None
    with pytest.raises(InputError, match=r"ifg.tif: no pair of dates.*FIRST_DATE"):
        GeoTiffReader().open_stack(request(unwFile=tmp_path / "*.tif"))


def test_mexico_end_to_end(tmp_path, mexico):
    t = _template(unwFile=mexico / "geotiffs/*_unw.tif", corFile=mexico / "geotiffs/*_cc.tif",
                  demFile=mexico / "geotiffs/*_dem.tif", metaFile=mexico / "headers/*_mli.par",
                  bperpFile=mexico / "geometry/*_bperp.par",
                  lookupYFile=mexico / "geometry/*eqa_to_rdc.lt", lookupXFile=mexico / "geometry/*eqa_to_rdc.lt")
    result = load_data(t, tmp_path)
    assert result.reader == "geotiff"
    stack = IfgramStack(result.stack_file)
    assert len(stack.pairs) == 30 and len(stack.pairs.dates) == 13
    for k, name in enumerate(stack.pairs.date12):
        d1, d2 = name.split("_")
        unw = _read_tif(mexico / f"geotiffs/cropA_{d1}-{d2}_VV_8rlks_eqa_unw.tif")
        np.testing.assert_array_equal(stack.read("unwrapPhase", index=k), unw)  # nodata is 0 in both
        cc = _read_tif(mexico / f"geotiffs/cropA_{d1}-{d2}_VV_8rlks_flat_eqa_cc.tif")
        np.testing.assert_array_equal(stack.read("coherence", index=k), cc)
        table = gp.read_bperp_table(mexico / f"geometry/{d1}-{d2}_VV_8rlks_bperp.par")
        assert stack.pairs.bperp[k] == pytest.approx(table, rel=1e-6)
    a = stack.metadata.to_attrs()
    assert float(a["WAVELENGTH"]) == pytest.approx(299792458.0 / 5.4050005e9)  # par wins over the tag
    assert float(a["HEADING"]) == pytest.approx(-12.2742586) and a["ORBIT_DIRECTION"] == "ASCENDING"
    assert float(a["STARTING_RANGE"]) == pytest.approx(798988.2904)
    assert a["PLATFORM"] == "sen" and a["EPSG"] == "4326" and a["RLOOKS"] == "8"
    (geo_file,) = result.geometry_files
    geom = Geometry(geo_file)
    assert {"height", "rangeCoord", "azimuthCoord", "incidenceAngle", "slantRangeDistance"} <= set(geom.datasets)
    np.testing.assert_array_equal(geom.read("height"), _read_tif(mexico / "geotiffs/cropA_T005A_dem.tif"))
    lut = np.fromfile(mexico / "geometry/20180106_VV_8rlks_eqa_to_rdc.lt", ">c8").reshape(60, 100)
    np.testing.assert_allclose(geom.read("rangeCoord"), lut.real)
    np.testing.assert_allclose(geom.read("azimuthCoord"), lut.imag)
    srd = geom.read("slantRangeDistance")
    np.testing.assert_allclose(srd, 798988.2904 + lut.real * 18.636496, rtol=1e-6)
    inc = geom.read("incidenceAngle")
    # near range of the merged swath: the look angle at MLI column 0 is 27.50° in the bperp table
    assert 30 < np.nanmin(inc) and np.nanmax(inc) < 33
