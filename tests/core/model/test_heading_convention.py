"""HEADING in one convention from every reader: MintPy's, degrees clockwise from north in (-180, 180].

That is what ISCE gives MintPy (``getENUHeading``: about -12 ascending, -168 descending for
Sentinel-1), what MintPy's prep_hyp3 makes of HyP3's value and what the real GAMMA, ROI_PAC, HyP3 and
GeoTIFF files in ``shared/data`` hold.  Processors also write the same direction in [0, 360) (SNAP's
``centre_heading``; a MintPy file loaded from SNAP keeps it), so each reader is given both spellings,
ascending and descending, and must write the (-180, 180] one with the matching ORBIT_DIRECTION.
The ISCE2, ARIA and SNAP readers are covered with their fixtures in ``tests/e2e``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from sbts.core.config.template import Template
from sbts.core.steps.load import load_data

# (value as the file writes it, expected HEADING, ORBIT_DIRECTION)
CASES = [(-12.7, -12.7, "ASCENDING"), (347.3, -12.7, "ASCENDING"),
         (-167.3, -167.3, "DESCENDING"), (192.7, -167.3, "DESCENDING")]
IDS = ["asc-signed", "asc-360", "desc-signed", "desc-360"]


def _template(**patterns) -> Template:
    values = {f"mintpy.load.{k}": str(v) for k, v in patterns.items()}
    values.setdefault("mintpy.load.processor", "auto")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Template(values)


def _loaded(template: Template, work: Path) -> tuple[dict, dict]:
    result = load_data(template, work)
    out = []
    for path in (result.stack_file, result.geometry_file):
        with h5py.File(path, "r") as f:
            out.append({k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in f.attrs.items()})
    return out[0], out[1]


def _check(stack: dict, geom: dict, expected: float, direction: str) -> None:
    for attrs in (stack, geom):
        assert float(attrs["HEADING"]) == pytest.approx(expected, abs=1e-9)
        assert -180.0 < float(attrs["HEADING"]) <= 180.0
    assert stack["ORBIT_DIRECTION"] == direction


# ----------------------------------------------------------------------------- GAMMA
def _write_par(path: Path, items: dict) -> None:
    path.write_text("Gamma par\n\n" + "".join(f"{k}: {v}\n" for k, v in items.items()))


@pytest.mark.parametrize("value, expected, direction", CASES, ids=IDS)
def test_gamma(tmp_path, value, expected, direction):
    length, width = 8, 10
    mli = {"sensor": "S1A IW IW1 VV", "date": "2020 01 01", "center_time": "2421.5 s",
           "range_samples": width, "azimuth_lines": length, "range_looks": 8, "azimuth_looks": 2,
           "range_pixel_spacing": "18.6 m", "azimuth_pixel_spacing": "28.0 m",
           "near_range_slc": "800000.0 m", "center_range_slc": "800269.7 m", "far_range_slc": "800539.4 m",
           "incidence_angle": "34.0 degrees", "heading": f"{value} degrees", "azimuth_angle": "90.0 degrees",
           "radar_frequency": "5.405e9 Hz", "prf": "486.5 Hz", "azimuth_line_time": "4.1e-3 s",
           "sar_to_earth_center": "7073899.0 m", "earth_radius_below_sensor": "6375869.0 m"}
    _write_par(tmp_path / "20200101_4rlks.mli.par", mli)
    rng = np.random.default_rng(0)
    for d12 in ("20200101-20200113", "20200113-20200125"):
        rng.normal(size=(length, width)).astype(">f4").tofile(tmp_path / f"diff_{d12}_4rlks.unw")
    rng.uniform(0, 100, (length, width)).astype(">f4").tofile(tmp_path / "sim_20200101_4rlks.rdc.dem")
    stack, geom = _loaded(_template(unwFile=tmp_path / "diff_*rlks.unw", demFile=tmp_path / "sim*rlks.rdc.dem"),
                          tmp_path / "work")
    _check(stack, geom, expected, direction)


# ----------------------------------------------------------------------------- ROI_PAC
def _rsc_write(path: Path, items: dict) -> None:
    Path(str(path) + ".rsc").write_text("".join(f"{k:<24}{v}\n" for k, v in items.items()))


@pytest.mark.parametrize("value, expected, direction", CASES, ids=IDS)
def test_roipac(tmp_path, value, expected, direction):
    length, width = 8, 10
    radar = {"WIDTH": width, "FILE_LENGTH": length, "WAVELENGTH": 0.0562356424, "STARTING_RANGE": 835034.6,
             "RANGE_PIXEL_SIZE": 7.9, "EARTH_RADIUS": 6357663.19, "HEIGHT": 797441.27, "HEADING_DEG": value}
    rng = np.random.default_rng(1)
    for name in ("filt_060619-060828_4rlks.unw", "filt_060619-061002_4rlks.unw"):
        phase = rng.normal(size=(length, width)).astype("<f4")
        np.stack([np.ones_like(phase), phase], axis=1).tofile(tmp_path / name)
        _rsc_write(tmp_path / name, dict(radar, DATE12=name[5:18]))
    hgt = rng.uniform(0, 500, (length, width)).astype("<f4")
    np.stack([np.ones_like(hgt), hgt], axis=1).tofile(tmp_path / "radar_4rlks.hgt")
    _rsc_write(tmp_path / "radar_4rlks.hgt", radar)
    stack, geom = _loaded(_template(unwFile=tmp_path / "filt_*.unw", demFile=tmp_path / "radar_*.hgt"),
                          tmp_path / "work")
    _check(stack, geom, expected, direction)


# ----------------------------------------------------------------------------- HyP3
@pytest.mark.parametrize("value, expected, direction", CASES, ids=IDS)
def test_hyp3(tmp_path, value, expected, direction):
    pytest.importorskip("osgeo.gdal")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from fixtures.hyp3_products import build_hyp3, template_text

    root = tmp_path / "hyp3"
    build_hyp3(root)
    for txt in root.glob("*/*.txt"):
        text = txt.read_text().replace("Heading: -18.1505111", f"Heading: {value}")
        txt.write_text(text.replace("Pass Direction: ASCENDING", f"Pass Direction: {direction}"))
    template = Template.from_text(template_text(root))
    stack, geom = _loaded(template, tmp_path / "work")
    _check(stack, geom, expected, direction)


# ----------------------------------------------------------------------------- GeoTIFF
@pytest.mark.parametrize("value, expected, direction", CASES, ids=IDS)
def test_geotiff(tmp_path, value, expected, direction):
    """PyRate-style GeoTIFFs (``conv2tif``): the radar metadata in GDAL tags, HEADING_DEG among them."""
    gdal = pytest.importorskip("osgeo.gdal")
    from osgeo import osr

    gdal.UseExceptions()
    rng = np.random.default_rng(2)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    for d12 in ("20180106-20180130", "20180130-20180223"):
        ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / f"cropA_{d12}_VV_8rlks_eqa_unw.tif"), 10, 8, 1,
                                                  gdal.GDT_Float32)
        ds.SetGeoTransform((-99.19, 0.001, 0.0, 19.45, 0.0, -0.001))
        ds.SetProjection(srs.ExportToWkt())
        ds.SetMetadata({"WAVELENGTH_METRES": "0.0555041577", "INCIDENCE_DEGREES": "39.7", "HEADING_DEG": str(value),
                        "DATA_UNITS": "RADIANS", "PLATFORM": "S1A"})
        ds.GetRasterBand(1).WriteArray(rng.normal(size=(8, 10)).astype(np.float32))
        ds = None
    dem = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "dem.tif"), 10, 8, 1, gdal.GDT_Float32)
    dem.SetGeoTransform((-99.19, 0.001, 0.0, 19.45, 0.0, -0.001))
    dem.SetProjection(srs.ExportToWkt())
    dem.SetMetadata({"HEADING_DEG": str(value)})
    dem.GetRasterBand(1).WriteArray(rng.uniform(2000, 2500, (8, 10)).astype(np.float32))
    dem = None
    stack, geom = _loaded(_template(unwFile=tmp_path / "cropA_*_unw.tif", demFile=tmp_path / "dem.tif"),
                          tmp_path / "work")
    _check(stack, geom, expected, direction)


# ----------------------------------------------------------------------------- MintPy HDF5
@pytest.mark.parametrize("value, expected, direction", CASES, ids=IDS)
def test_mintpy_h5(tmp_path, value, expected, direction):
    """A stack in MintPy's layout (e.g. MintPy's own load of a SNAP stack keeps HEADING = 347.3)."""
    from sbts.core.demo.run import write_synthetic_files
    from sbts.core.demo.synthetic import make_synthetic_stack

    src = write_synthetic_files(tmp_path / "src", make_synthetic_stack((16, 20), 4, seed=3, orbit_direction=direction))
    for name in ("ifgramStack.h5", "geometryGeo.h5"):
        with h5py.File(src / name, "r+") as f:
            f.attrs["HEADING"] = str(value)
    stack, geom = _loaded(_template(processor="mintpy", unwFile=src / "ifgramStack.h5",
                                    demFile=src / "geometryGeo.h5"), tmp_path / "work")
    _check(stack, geom, expected, direction)
