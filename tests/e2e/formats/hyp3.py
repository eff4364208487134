"""ASF HyP3 INSAR_GAMMA products in UTM, clipped to their common extent (as in MintPy's HyP3 tutorial).

One folder per pair named after the product, ``S1AA_<ref>T<time>_<sec>T<time>_VVP<days>_INT80_G_ueF_<hex>``,
holding GeoTIFFs ``<product>_<layer>_clip.tif`` (``unw_phase``, ``corr``, ``dem``, ``lv_theta``, ``lv_phi``,
``water_mask``) on a UTM grid (EPSG:326zz, 80 m posting) and the product metadata ``<product>.txt``
(the keys of the real INSAR_GAMMA ``.txt`` in ../shared/data/hyp3_metadata_txt).  The synthetic grid
becomes the UTM grid: same pixel values, georeferenced in metres around the same centre.
``lv_theta`` is the look-vector elevation from the horizontal and ``lv_phi`` its orientation
anticlockwise from east, both in radians (HyP3's definitions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbts.tests.e2e.formats._common import pairs, write_template, write_text

GEOCODED = True
STEP = 80.0  # m, INT80


def utm_epsg(synth) -> int:
    lon = float(np.mean(synth.lon_axis))
    lat = float(np.mean(synth.lat_axis))
    return (32600 if lat >= 0 else 32700) + int((lon + 180) // 6) % 60 + 1


def utm_grid(synth) -> tuple[int, float, float]:
    """(EPSG, x_first, y_first): an 80 m UTM grid centred where the synthetic grid is."""
    from osgeo import osr

    epsg = utm_epsg(synth)
    src, dst = osr.SpatialReference(), osr.SpatialReference()
    src.ImportFromEPSG(4326)
    dst.ImportFromEPSG(epsg)
    for s in (src, dst):
        s.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x, y, _ = osr.CoordinateTransformation(src, dst).TransformPoint(float(np.mean(synth.lon_axis)),
                                                                     float(np.mean(synth.lat_axis)))
    length, width = synth.shape
    return epsg, round(x - width / 2 * STEP, -1), round(y + length / 2 * STEP, -1)


def write_tif(path: Path, data: np.ndarray, epsg: int, x0: float, y0: float, nodata=None) -> None:
    from osgeo import gdal, osr

    gdal.UseExceptions()
    types = {"float32": gdal.GDT_Float32, "uint8": gdal.GDT_Byte}
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[1], data.shape[0], 1, types[data.dtype.name],
                                              options=["COMPRESS=DEFLATE"])
    ds.SetGeoTransform((x0, STEP, 0.0, y0, 0.0, -STEP))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(data)
    ds = None


def product_txt(synth, d1: str, d2: str, bperp: float) -> str:
    a = synth.attrs
    near = float(a["STARTING_RANGE"])
    far = near + 80 * float(a["RANGE_PIXEL_SIZE"]) * synth.shape[1] / 8
    utc = float(a["CENTER_LINE_UTC"])
    return f"""Reference Granule: S1A_IW_SLC__1SDV_{d1}T004006_{d1}T004033_025000_02C4A1_1F2E
Secondary Granule: S1A_IW_SLC__1SDV_{d2}T004006_{d2}T004033_025175_02CAB2_7D3C
Reference Pass Direction: {a["ORBIT_DIRECTION"]}
Reference Orbit Number: 25000
Secondary Pass Direction: {a["ORBIT_DIRECTION"]}
Secondary Orbit Number: 25175
Baseline: {bperp:.4f}
UTC time: {utc:.6f}
Heading: {float(a["HEADING"]):.7f}
Spacecraft height: {float(a["HEIGHT"]):.4f}
Earth radius at nadir: {float(a["EARTH_RADIUS"]):.4f}
Slant range near: {near:.4f}
Slant range center: {(near + far) / 2:.4f}
Slant range far: {far:.4f}
Range looks: 20
Azimuth looks: 4
INSAR phase filter: adf
Phase filter parameter: 0.6
Resolution of output (m): 80
Range bandpass filter: no
Azimuth bandpass filter: no
DEM source: GLO-30
DEM resolution (m): 80
Unwrapping type: mcf
Phase at reference point: 0.0
Azimuth line of the reference point in SAR space: 0
Range pixel of the reference point in SAR space: 0
Y coordinate of the reference point in the map projection: 0.0
X coordinate of the reference point in the map projection: 0.0
Latitude of the reference point (WGS84): 0.0
Longitude of the reference point (WGS84): 0.0
Unwrapping threshold: none
Speckle filter: yes
"""


def write(root: Path, synth) -> Path:
    root = Path(root)
    epsg, x0, y0 = utm_grid(synth)
    inc = np.asarray(synth.incidence_angle, np.float64)
    lv_theta = np.radians(90.0 - inc).astype(np.float32)
    phi = (np.asarray(synth.azimuth_angle, np.float64) + 90.0 + 180.0) % 360.0 - 180.0
    lv_phi = np.radians(phi).astype(np.float32)
    for d1, d2, k in pairs(synth):
        days = (synth.dates[synth.date2_index[k]] - synth.dates[synth.date1_index[k]]).days
        name = f"S1AA_{d1}T004006_{d2}T004006_VVP{days:03d}_INT80_G_ueF_{(k * 2654435761) % 0xFFFF:04X}"
        folder = root / "hyp3" / name
        write_text(folder / f"{name}.txt", product_txt(synth, d1, d2, float(synth.pair_bperp[k])))
        write_tif(folder / f"{name}_unw_phase_clip.tif", synth.unwrap_phase[k], epsg, x0, y0, nodata=0.0)
        write_tif(folder / f"{name}_corr_clip.tif", synth.coherence[k], epsg, x0, y0, nodata=0.0)
        write_tif(folder / f"{name}_dem_clip.tif", synth.height, epsg, x0, y0)
        write_tif(folder / f"{name}_lv_theta_clip.tif", lv_theta, epsg, x0, y0)
        write_tif(folder / f"{name}_lv_phi_clip.tif", lv_phi, epsg, x0, y0)
        write_tif(folder / f"{name}_water_mask_clip.tif", synth.water_mask.astype(np.uint8), epsg, x0, y0)
    return write_template(root, "hyp3", {
        "mintpy.load.processor": "hyp3",
        "mintpy.load.unwFile": "../hyp3/*/*_unw_phase_clip.tif",
        "mintpy.load.corFile": "../hyp3/*/*_corr_clip.tif",
        "mintpy.load.demFile": "../hyp3/*/*_dem_clip.tif",
        "mintpy.load.incAngleFile": "../hyp3/*/*_lv_theta_clip.tif",
        "mintpy.load.azAngleFile": "../hyp3/*/*_lv_phi_clip.tif",
        "mintpy.load.waterMaskFile": "../hyp3/*/*_water_mask_clip.tif",
    })
