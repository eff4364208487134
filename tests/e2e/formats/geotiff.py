"""A geocoded GeoTIFF stack with GAMMA headers, as PyRate's ``conv2tif`` leaves a GAMMA stack
(the layout of the real Mexico City crop in ../shared/data/pyrate_s1_mexico_cropA_gamma):

::

    geotiffs/stk_<d1>-<d2>_VV_8rlks_eqa_unw.tif       float32 radians, EPSG:4326, nodata 0, PyRate tags
                                                        (FIRST_DATE, SECOND_DATE, DATA_UNITS, WAVELENGTH_METRES, ...)
    geotiffs/stk_<d1>-<d2>_VV_8rlks_flat_eqa_cc.tif    coherence, the same grid and tags
    geotiffs/stk_dem.tif                                DEM, the same grid
    headers/r<d>_VV_8rlks_mli.par                       GAMMA ISP image par per date
    headers/stk_<d0>_VV_8rlks_eqa_dem.par               GAMMA DEM/MAP par of the grid
    geometry/<d1>-<d2>_VV_8rlks_bperp.par               GAMMA ``base_perp`` table per pair
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sbts.tests.e2e.formats import gamma_radar as gr
from sbts.tests.e2e.formats._common import RadarFrame, pairs, write_template, write_text
from sbts.tests.e2e.formats.gamma_geo import synth_grid

GEOCODED = True


def write_tif(path: Path, data: np.ndarray, synth, tags: dict | None = None, nodata=0.0) -> None:
    from osgeo import gdal, osr

    gdal.UseExceptions()
    a = synth.attrs
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[1], data.shape[0], 1, gdal.GDT_Float32,
                                              options=["COMPRESS=PACKBITS"])
    ds.SetGeoTransform((float(a["X_FIRST"]), float(a["X_STEP"]), 0.0, float(a["Y_FIRST"]), 0.0, float(a["Y_STEP"])))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    ds.SetProjection(srs.ExportToWkt())
    if tags:
        ds.SetMetadata({k: str(v) for k, v in tags.items()})
    band = ds.GetRasterBand(1)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    band.WriteArray(np.asarray(data, np.float32))
    ds = None


def write(root: Path, synth) -> Path:
    root = Path(root)
    frame = RadarFrame.of(synth)
    a = synth.attrs
    inc = float(np.median(synth.incidence_angle))
    for d1, d2, k in pairs(synth):
        days = (synth.dates[synth.date2_index[k]] - synth.dates[synth.date1_index[k]]).days
        tags = {"FIRST_DATE": f"{d1[:4]}-{d1[4:6]}-{d1[6:]}", "SECOND_DATE": f"{d2[:4]}-{d2[4:6]}-{d2[6:]}",
                "FIRST_TIME": "00:40:21", "SECOND_TIME": "00:40:21", "TIME_SPAN_YEAR": days / 365.25,
                "INCIDENCE_DEGREES": inc, "INSAR_PROCESSOR": "GAMMA", "WAVELENGTH_METRES": a["WAVELENGTH"]}
        write_tif(root / "geotiffs" / f"stk_{d1}-{d2}_VV_8rlks_eqa_unw.tif", synth.unwrap_phase[k], synth,
                  {**tags, "DATA_TYPE": "ORIGINAL_IFG", "DATA_UNITS": "RADIANS"})
        write_tif(root / "geotiffs" / f"stk_{d1}-{d2}_VV_8rlks_flat_eqa_cc.tif", synth.coherence[k], synth,
                  {**tags, "DATA_TYPE": "ORIGINAL_COH", "DATA_UNITS": "RADIANS"})
        write_text(root / "geometry" / f"{d1}-{d2}_VV_8rlks_bperp.par", gr.base_perp(synth, k))
    write_tif(root / "geotiffs" / "stk_dem.tif", synth.height, synth, {"DATA_TYPE": "ORIGINAL_DEM"}, nodata=None)
    for d in synth.date_list:
        write_text(root / "headers" / f"r{d}_VV_8rlks_mli.par", gr.mli_par(synth, d, frame))
    write_text(root / "headers" / f"stk_{synth.date_list[0]}_VV_8rlks_eqa_dem.par", gr.dem_par(synth_grid(synth)))
    return write_template(root, "geotiff", {
        "mintpy.load.unwFile": "../geotiffs/*_unw.tif",
        "mintpy.load.corFile": "../geotiffs/*_cc.tif",
        "mintpy.load.demFile": "../geotiffs/*_dem.tif",
        "mintpy.load.metaFile": "../headers/*_mli.par",
        "mintpy.load.bperpFile": "../geometry/*_bperp.par",
    })
