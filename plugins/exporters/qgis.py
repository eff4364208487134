"""``sbts export qgis``: a time series as a GeoPackage point layer for QGIS's InSAR Explorer plugin.

One point per valid pixel (WGS84 longitude/latitude: the pixel centre of a geocoded file, the
lookup's ``latitude``/``longitude`` for a radar-coded one), with the attribute table InSAR
Explorer (and the usual PS/DS deliveries) read:

=============  ==========================================================================
``CODE``       point id ``P<row>_<col>`` (row/column in the exported file)
``ROW``/``COL`` pixel indices
``VEL``        LOS velocity, mm/year (``velocity`` of velocity.h5 when it is on the same grid,
               else the least-squares linear rate of the exported dates)
``V_STDEV``    its standard deviation, mm/year (``velocityStd``, when velocity.h5 has it)
``COHERENCE``  temporal coherence (temporalCoherence.h5, when found)
``HEIGHT``     height, m (the geometry file's ``height``, when found)
``DYYYYMMDD``  LOS displacement at each date, mm, relative to REF_DATE (positive toward the
               satellite, as the time series)
=============  ==========================================================================

Pixels kept: finite at every date, inside ``maskTempCoh.h5`` (or ``-O mask=``) when found.  The
file is written block by block: OGR creates the layer (schema, CRS), then the rows of each block go
in one batch with their GeoPackage geometry blobs built by numpy, and the spatial index is built at
the end, so a large scene is no per-point Python work.
"""

from __future__ import annotations

import logging
import sqlite3
import textwrap
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Block,
    Exporter,
    ExportRequest,
    InputError,
    MapProduct,
    Product,
    TimeSeries,
    atomic_output,
    find_companion,
    find_geometry,
    hookimpl,
    option_memory,
    output_path,
    parse_options,
    plan_blocks,
    read_mask,
    years_since,
)

logger = logging.getLogger(__name__)

LAYER = "insar_points"
MAX_DATES = 1900  # SQLite's default limit is 2000 columns per table


def gpkg_point_blobs(lon: np.ndarray, lat: np.ndarray, srs_id: int = 4326) -> list[bytes]:
    """GeoPackage geometry blobs of 2-D points: 8-byte header (``GP``, version 0, little-endian, no
    envelope, SRS id) followed by the little-endian WKB point (1, type 1, x, y)."""
    n = lon.size
    rec = np.zeros(n, dtype=np.dtype([("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs", "<i4"),
                                      ("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")]))
    rec["magic"] = b"GP"
    rec["flags"] = 1  # little-endian, no envelope, not empty
    rec["srs"] = srs_id
    rec["order"] = 1
    rec["type"] = 1
    rec["x"] = lon
    rec["y"] = lat
    return rec.view(f"S{rec.dtype.itemsize}").ravel().tolist()


def linear_rate(data: np.ndarray, years: np.ndarray) -> np.ndarray:
    """Least-squares slope along axis 0 of (n, k) data (same unit per year)."""
    t = years - years.mean()
    return (t @ (data - data.mean(axis=0))) / (t @ t)


class QgisExporter(Exporter):
    """GeoPackage point layer with the displacement history per point (InSAR Explorer fields)."""

    name = "qgis"
    summary = "A time series as a GeoPackage point layer (VEL, D<date> fields) for QGIS's InSAR Explorer plugin."
    description = textwrap.dedent("""\
    One point per valid pixel (WGS84 lon/lat) with fields CODE, ROW, COL, VEL (mm/year),
    V_STDEV, COHERENCE, HEIGHT (when their files are found) and D<YYYYMMDD> (LOS displacement,
    mm, relative to REF_DATE, positive toward the satellite).  Input: a time series file
    (geocoded, or radar-coded with a geometryRadar.h5 lookup).  Cut it first with `sbts subset`
    for a large scene.

    \b
    Options:
      -O mask=maskTempCoh.h5      keep only this mask's pixels (default: maskTempCoh.h5 if found)
      -O velocity=velocity.h5     VEL/V_STDEV from here (default: velocity.h5 if found on the grid)
      -O coherence=FILE           COHERENCE from here (default: temporalCoherence.h5 if found)
      -O geometry=FILE            HEIGHT, and lat/lon of radar-coded files (default: found nearby)
      -O max_memory=GB            block size
    -o names the .gpkg (default: <name>.gpkg beside the input).""")

    def export(self, request: ExportRequest) -> list[Path]:
        opts = parse_options(request, {"mask", "velocity", "coherence", "geometry"}, "qgis")
        max_memory = option_memory(opts, 1.0, "qgis")
        ts = Product.open(request.input_file)
        if not isinstance(ts, TimeSeries):
            raise InputError(f"{request.input_file} is {ts.metadata.file_type or 'not a time series'}: the qgis "
                             "export writes a displacement history per point; give a time series file")
        if request.dataset not in (None, ts.dataset_name):
            raise InputError(f"the qgis export takes the whole time series; dataset {request.dataset!r} not supported")
        if len(ts.dates) > MAX_DATES:
            raise InputError(f"{ts.path}: {len(ts.dates)} dates are more fields than a GeoPackage table holds "
                             f"({MAX_DATES}); export a subset of dates")
        shape = ts.shape
        geo = ts.metadata.grid.geo
        if geo is not None and geo.epsg not in (None, 4326):
            raise InputError(f"{ts.path}: on EPSG:{geo.epsg}; geocode it to latitude/longitude (sbts geocode "
                             "without --utm) for the qgis export")
        extras = self._companions(ts, opts)
        geom = extras.get("geometry")
        if geo is None and (geom is None or not geom.has("latitude")):
            raise InputError(f"{ts.path} is in radar coordinates: the point positions need a lookup "
                             "(geometryRadar.h5 with latitude/longitude): give -O geometry=...")
        mask = read_mask(extras["mask"], shape) if "mask" in extras else None
        path = output_path(request, ts.path.stem, ".gpkg")
        years = np.asarray(years_since(ts.dates), np.float64)
        scale = 1000.0 if (ts.metadata.unit or "m") == "m" else 1.0
        fields = ["CODE", "ROW", "COL", "VEL"] + [n for n, k in (("V_STDEV", "velocityStd"), ("COHERENCE", "coherence"),
                                                                 ("HEIGHT", "height")) if k in extras]
        fields += [f"D{d}" for d in ts.date_strings]
        blocks = plan_blocks(shape, 8.0 * (3 * len(ts.dates) + 12), max_memory)
        count = 0
        with atomic_output(path) as tmp:
            self._create_layer(tmp, fields)
            con = sqlite3.connect(tmp)
            try:
                sql = (f'INSERT INTO "{LAYER}" (geom, {", ".join(chr(34) + f + chr(34) for f in fields)}) '
                       f'VALUES ({", ".join("?" * (len(fields) + 1))})')
                bounds = [np.inf, np.inf, -np.inf, -np.inf]
                for block in blocks:
                    rows = self._rows(ts, block, mask, extras, geo, years, scale)
                    if rows is None:
                        continue
                    lon, lat, columns = rows
                    con.executemany(sql, zip(gpkg_point_blobs(lon, lat), *columns))
                    bounds = [min(bounds[0], lon.min()), min(bounds[1], lat.min()),
                              max(bounds[2], lon.max()), max(bounds[3], lat.max())]
                    count += lon.size
                if count:
                    con.execute("UPDATE gpkg_contents SET min_x=?, min_y=?, max_x=?, max_y=? WHERE table_name=?",
                                (*map(float, bounds), LAYER))
                con.commit()
            finally:
                con.close()
            if not count:
                raise InputError(f"{ts.path}: no valid pixel to export (NaN at some date, or masked out)")
            self._spatial_index(tmp)
        logger.info("wrote %s: %d points × %d dates", path, count, len(ts.dates))
        return [path]

    # ---------------------------------------------------------------- pieces
    @staticmethod
    def _companions(ts: TimeSeries, opts: dict[str, str]) -> dict:
        """The files and datasets that fill the optional fields (same grid as the time series)."""
        out: dict = {}
        shape = ts.shape

        def on_grid(p: Path) -> bool:
            try:
                return Product.open(p).shape == shape
            except InputError:
                return False

        def pick(key: str, name: str) -> Path | None:
            if opts.get(key):
                p = Path(opts[key])
                if not on_grid(p):
                    raise InputError(f"-O {key}={p}: not readable or not on the {shape[0]}×{shape[1]} grid of {ts.path}")
                return p
            return find_companion(ts.path, name, accept=on_grid)

        mask = pick("mask", "maskTempCoh.h5")
        if mask is not None:
            out["mask"] = mask
        vel = pick("velocity", "velocity.h5")
        if vel is not None:
            v = MapProduct(vel)
            if v.has("velocity"):
                out["velocity"] = (v, "velocity")
                if v.has("velocityStd"):
                    out["velocityStd"] = (v, "velocityStd")
        coh = pick("coherence", "temporalCoherence.h5")
        if coh is not None:
            c = MapProduct(coh)
            name = "temporalCoherence" if c.has("temporalCoherence") else c.datasets[0]
            out["coherence"] = (c, name)
        if opts.get("geometry"):
            gpath = Path(opts["geometry"])
            if not on_grid(gpath):
                raise InputError(f"-O geometry={gpath}: not readable or not on the {shape[0]}×{shape[1]} grid")
        else:
            gpath = find_geometry(ts.path, accept=on_grid)
        if gpath is not None:
            g = Product.open(gpath)
            out["geometry"] = g
            if g.has("height"):
                out["height"] = (g, "height")
        return out

    @staticmethod
    def _rows(ts: TimeSeries, block: Block, mask, extras: dict, geo, years: np.ndarray, scale: float):
        data = ts.read_dates(block).astype(np.float64)
        valid = np.isfinite(data).all(axis=0)
        if mask is not None:
            valid &= mask[block.rows, block.cols]
        if not valid.any():
            return None
        r, c = np.nonzero(valid)
        rows, cols = r + block.row_start, c + block.col_start
        if geo is not None:
            lat = geo.y_first + (rows + 0.5) * geo.y_step
            lon = geo.x_first + (cols + 0.5) * geo.x_step
        else:
            g = extras["geometry"]
            lat = g.read("latitude", block).astype(np.float64)[valid]
            lon = g.read("longitude", block).astype(np.float64)[valid]
        disp = data[:, valid] * scale  # (dates, points)
        if "velocity" in extras:
            p, name = extras["velocity"]
            vel = p.read(name, block).astype(np.float64)[valid] * scale
        else:
            vel = linear_rate(disp, years)
        columns = [[f"P{a}_{b}" for a, b in zip(rows.tolist(), cols.tolist())], rows.tolist(), cols.tolist(),
                   vel.tolist()]
        if "velocityStd" in extras:
            p, name = extras["velocityStd"]
            columns.append((p.read(name, block).astype(np.float64)[valid] * scale).tolist())
        for key in ("coherence", "height"):
            if key in extras:
                p, name = extras[key]
                columns.append(p.read(name, block).astype(np.float64)[valid].tolist())
        columns.extend(disp.tolist())
        ok = np.isfinite(lat) & np.isfinite(lon)
        if not ok.all():  # points the lookup cannot place are left out
            keep = np.flatnonzero(ok)
            columns = [[col[i] for i in keep] for col in columns]
            lat, lon = lat[ok], lon[ok]
            if not lat.size:
                return None
        return lon, lat, columns

    @staticmethod
    def _create_layer(path: Path, fields: list[str]) -> None:
        from osgeo import ogr, osr

        ogr.UseExceptions()
        driver = ogr.GetDriverByName("GPKG")
        ds = driver.CreateDataSource(str(path))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(4326)
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        layer = ds.CreateLayer(LAYER, srs, ogr.wkbPoint, options=["SPATIAL_INDEX=NO", "GEOMETRY_NAME=geom"])
        for name in fields:
            kind = ogr.OFTString if name == "CODE" else (ogr.OFTInteger if name in ("ROW", "COL") else ogr.OFTReal)
            layer.CreateField(ogr.FieldDefn(name, kind))
        ds = None  # noqa: F841 - closes and flushes the file

    @staticmethod
    def _spatial_index(path: Path) -> None:
        from osgeo import ogr

        ds = ogr.Open(str(path), 1)
        ds.ExecuteSQL(f"SELECT CreateSpatialIndex('{LAYER}', 'geom')")
        ds = None  # noqa: F841


@hookimpl
def sbts_exporters():
    return [QgisExporter()]
