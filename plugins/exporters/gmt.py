"""``sbts export gmt``: a geocoded map as a COARDS netCDF grid that GMT, GDAL and QGIS read.

Written with :class:`scipy.io.netcdf_file` (netCDF-3 classic, no extra dependency): dimensions
``lat``/``lon`` (``y``/``x`` for projected grids) with coordinate variables at pixel centres in
increasing order (the rows are flipped to south-up, as GMT stores grids), a ``z`` variable with
``units``, ``actual_range`` and NaN ``_FillValue``, and ``node_offset = 1`` (pixel registration),
so GDAL derives the same geotransform as ``X_FIRST/Y_FIRST/X_STEP/Y_STEP``.

This module also holds the map selection shared by the single-map exporters (GMT, GBIS, KMZ,
ROI_PAC): a 2-D dataset, a time-series date, a ``date1_date2`` difference or a stack pair.
"""

from __future__ import annotations

import datetime as _dt
import logging
import textwrap
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Exporter,
    ExportRequest,
    InputError,
    Product,
    atomic_output,
    hookimpl,
    label_stem,
    output_path,
    parse_options,
    scale_unit,
    select_map,
)

logger = logging.getLogger(__name__)

class GmtExporter(Exporter):
    """A COARDS/GMT netCDF-3 grid of one geocoded map."""

    name = "gmt"
    summary = "A geocoded map as a GMT-compatible COARDS netCDF grid (.grd), readable by GDAL and QGIS."
    description = textwrap.dedent("""\
    Writes one map: a 2-D dataset (velocity, temporalCoherence, height, ...), a time-series date
    (DATASET = YYYYMMDD, displacement since the reference date) or a difference of two dates
    (YYYYMMDD_YYYYMMDD), or a stack pair.  netCDF-3 with dims lat/lon (y/x when projected),
    coordinate variables at pixel centres, z with units and actual_range, node_offset = 1.
    -o names the .grd file (default: <name>[_<dataset>].grd beside the input).
    Options: -O unit=mm|cm|m (displacement/velocity scaling; default the file's unit).""")
    requires_geocoded = True

    def export(self, request: ExportRequest) -> list[Path]:
        from scipy.io import netcdf_file

        opts = parse_options(request, {"unit"}, "gmt")
        product = Product.open(request.input_file)
        geo = product.metadata.grid.geo
        if geo is None:
            raise InputError(f"{request.input_file} is in radar coordinates; run `sbts geocode {request.input_file}`")
        sel = select_map(product, request.dataset)
        data, unit = scale_unit(sel, opts.get("unit"))
        out = output_path(request, label_stem(product, sel), ".grd")
        length, width = data.shape
        lat = geo.y_first + (np.arange(length) + 0.5) * geo.y_step
        lon = geo.x_first + (np.arange(width) + 0.5) * geo.x_step
        z = data.astype(np.float32)
        if geo.y_step < 0:  # GMT/COARDS: y increasing, rows south-up
            lat, z = lat[::-1], z[::-1]
        projected = not geo.x_unit.lower().startswith("deg")
        ydim, xdim = ("y", "x") if projected else ("lat", "lon")
        with atomic_output(out) as tmp:
            f = netcdf_file(str(tmp), "w", version=1)
            try:
                f.Conventions = "COARDS, CF-1.5"
                f.title = f"{product.path.name}: {sel.name}"
                f.source = "sbts export gmt"
                f.history = f"{_dt.datetime.now().isoformat(timespec='seconds')} sbts export gmt {product.path.name}"
                f.node_offset = np.int32(1)
                f.createDimension(xdim, width)
                f.createDimension(ydim, length)
                vx = f.createVariable(xdim, "f8", (xdim,))
                vy = f.createVariable(ydim, "f8", (ydim,))
                vx[:] = lon
                vy[:] = lat
                xu = "degrees_east" if not projected else "m"
                yu = "degrees_north" if not projected else "m"
                vx.units, vy.units = xu, yu
                vx.long_name, vy.long_name = ("longitude", "latitude") if not projected else ("x", "y")
                half_x, half_y = abs(geo.x_step) / 2, abs(geo.y_step) / 2
                vx.actual_range = np.array([lon.min() - half_x, lon.max() + half_x])
                vy.actual_range = np.array([lat.min() - half_y, lat.max() + half_y])
                vz = f.createVariable("z", "f4", (ydim, xdim))
                vz._FillValue = np.float32(np.nan)
                vz[:] = z
                vz.units = unit
                vz.long_name = sel.name
                finite = z[np.isfinite(z)]
                vz.actual_range = (np.array([finite.min(), finite.max()], np.float32) if finite.size
                                   else np.array([np.nan, np.nan], np.float32))
                if geo.epsg:
                    f.EPSG = str(geo.epsg)
            finally:
                f.close()
        logger.info("wrote %s", out)
        return [out]


@hookimpl
def sbts_exporters():
    return [GmtExporter()]
