"""GeoTIFF stack reader: one GeoTIFF per interferogram, plus optional GAMMA headers and baselines.

A generic route for geocoded stacks exported to GeoTIFF (PyRate ``conv2tif``, custom pipelines).
The grid comes from the geotransform and the EPSG code from the spatial reference; pair dates from
the file name or the ``FIRST_DATE``/``SECOND_DATE`` tags; radar metadata from the tags
(``WAVELENGTH_METRES``, ``INCIDENCE_DEGREES``, or MintPy attribute names) and, better, from GAMMA
par files given by ``mintpy.load.metaFile`` or lying beside the rasters (parsed with the GAMMA
reader's helpers); pair baselines from GAMMA ``base.par``/``bperp.par`` files
(``mintpy.load.bperpFile``).  A GAMMA lookup table (``eqa_to_rdc.lt``) of the stack's size is read
on the stack grid, and incidence angle and slant range are derived from it where no raster exists.
GDAL is imported only when a file is opened.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Confidence,
    GdalRaster,
    GeometrySource,
    InputError,
    LoadRequest,
    Metadata,
    PairSource,
    Reader,
    StackSource,
    TransformedRaster,
    hookimpl,
    parse_date,
)
from sbts.plugins.readers import _gamma_par as gp
from sbts.plugins.readers._common import oriented_phase
from sbts.plugins.readers._gamma_products import (
    GridChoice,
    baseline_for_pair_from,
    build_geometry,
    request_pars,
)

logger = logging.getLogger(__name__)

TIF_EXT = {".tif", ".tiff"}
# GDAL tag → MintPy attribute (PyRate conv2tif tags; MintPy names pass through unchanged)
TAG_MAP = {"WAVELENGTH_METRES": "WAVELENGTH", "INCIDENCE_DEGREES": "INCIDENCE_ANGLE", "HEADING_DEG": "HEADING"}
MINTPY_TAGS = {
    "WAVELENGTH", "ALOOKS", "RLOOKS", "NCORRLOOKS", "RANGE_PIXEL_SIZE", "AZIMUTH_PIXEL_SIZE", "STARTING_RANGE",
    "EARTH_RADIUS", "HEIGHT", "HEADING", "ORBIT_DIRECTION", "ANTENNA_SIDE", "PLATFORM", "CENTER_LINE_UTC", "PRF",
    "INCIDENCE_ANGLE", "SLANT_RANGE_DISTANCE", "CENTER_INCIDENCE_ANGLE", "POLARIZATION",
}
RADIAN_UNITS = {"", "RADIANS", "RADIAN", "RAD"}


def _open(path: Path):
    from osgeo import gdal

    gdal.UseExceptions()
    try:
        ds = gdal.Open(str(path), gdal.GA_ReadOnly)
    except RuntimeError as exc:
        raise InputError(f"{path}: GDAL cannot open it ({exc}); is it a GeoTIFF?") from None
    if ds is None:
        raise InputError(f"{path}: GDAL cannot open it")
    return ds


def grid_attrs(path: Path, ds=None) -> dict[str, str]:
    """LENGTH/WIDTH, X/Y_FIRST/STEP, units and EPSG of a north-up GeoTIFF."""
    ds = ds or _open(path)
    gt = ds.GetGeoTransform(can_return_null=True)
    a = {"LENGTH": str(ds.RasterYSize), "WIDTH": str(ds.RasterXSize)}
    if gt is None:
        raise InputError(f"{path}: no geotransform; a GeoTIFF stack must be geocoded "
                         "(radar-coded binaries load with the gamma/roipac/isce readers)")
    if gt[2] != 0 or gt[4] != 0:
        raise InputError(f"{path}: rotated geotransform {gt}; warp it north-up first (gdalwarp)")
    a.update(X_FIRST=repr(gt[0]), Y_FIRST=repr(gt[3]), X_STEP=repr(gt[1]), Y_STEP=repr(gt[5]))
    srs = ds.GetSpatialRef()
    unit = "degrees"
    if srs is not None:
        if srs.IsProjected():
            unit = "meters"
        code = srs.GetAuthorityCode(None)
        if code is None:
            try:
                srs.AutoIdentifyEPSG()
                code = srs.GetAuthorityCode(None)
            except RuntimeError:
                code = None
        if code:
            a["EPSG"] = str(code)
    a.update(X_UNIT=unit, Y_UNIT=unit)
    return a


def tag_attrs(tags: Mapping[str, str]) -> dict[str, str]:
    """MintPy attributes from GDAL metadata tags."""
    a: dict[str, str] = {}
    for key, value in tags.items():
        k = key.upper()
        if k in TAG_MAP:
            a[TAG_MAP[k]] = str(value).strip()
        elif k in MINTPY_TAGS:
            a[k] = str(value).strip()
    if "INCIDENCE_ANGLE" in a:
        a.setdefault("CENTER_INCIDENCE_ANGLE", a["INCIDENCE_ANGLE"])
    gp.add_orbit_direction(a)
    return a


def _tag_dates(tags: Mapping[str, str]) -> tuple[_dt.date, _dt.date] | None:
    t = {k.upper(): v for k, v in tags.items()}
    if "FIRST_DATE" in t and "SECOND_DATE" in t:
        d1, d2 = parse_date(t["FIRST_DATE"]), parse_date(t["SECOND_DATE"])
        return (d1, d2) if d1 < d2 else (d2, d1)
    if "DATE12" in t:
        return gp.pair_dates(t["DATE12"])
    return None


def pair_of(path: Path) -> tuple[_dt.date, _dt.date]:
    """Dates from the file name, else from the GDAL tags."""
    dates = gp.pair_dates(path.name)
    if dates is None:
        dates = _tag_dates(_open(path).GetMetadata() or {})
    if dates is None:
        raise InputError(f"{path}: no pair of dates in the file name (YYYYMMDD-YYYYMMDD) nor FIRST_DATE/"
                         "SECOND_DATE tags; rename the file or add the tags (gdal_edit.py -mo FIRST_DATE=...)")
    return dates


def _index(files: list[Path]) -> dict[tuple[_dt.date, _dt.date], Path]:
    out: dict[tuple[_dt.date, _dt.date], Path] = {}
    for p in files:
        out.setdefault(pair_of(p), p)
    return out


def _zero_nan(v: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(v, np.float32), nan=0.0)


class GeoTiffReader(Reader):
    name = "geotiff"
    summary = "GeoTIFF stacks: one geocoded GeoTIFF per pair (+ coherence, DEM, GAMMA par headers/baselines)"

    def detect(self, request: LoadRequest) -> int:
        """Generic: any GeoTIFF (by its extension) could be a stack of unwrapped phase."""
        files = request.files("unwFile")
        return Confidence.GENERIC if files and files[0].suffix.lower() in TIF_EXT else Confidence.NO

    # ---------------------------------------------------------- stack
    def open_stack(self, request: LoadRequest) -> StackSource | None:
        files = request.files("unwFile")
        if not files:
            return None
        first_ds = _open(files[0])
        grid = grid_attrs(files[0], first_ds)
        tags = first_ds.GetMetadata() or {}
        units = str({k.upper(): v for k, v in tags.items()}.get("DATA_UNITS", "")).upper()
        if units not in RADIAN_UNITS:
            raise InputError(f"{files[0]}: DATA_UNITS = {units}; sbts loads unwrapped phase in radians "
                             "(convert the GeoTIFFs, or fix the tag if it is wrong)")
        pars = request_pars(request)
        cor = _index(request.files("corFile"))
        cc = _index(request.files("connCompFile"))
        base_index = pars.baseline_index()
        pairs: list[PairSource] = []
        inputs: list[Path] = list(pars.files)
        for path in files:
            d1, d2 = pair_of(path)
            # nodata → NaN → 0 in the loader; a later_earlier name holds the opposite phase
            layers: dict[str, object] = {"unwrapPhase": oriented_phase(GdalRaster(str(path)),
                                                                       gp.name_is_swapped(path.name))}
            inputs.append(path)
            if (d1, d2) in cor:
                layers["coherence"] = TransformedRaster(GdalRaster(str(cor[(d1, d2)])), _zero_nan)
                inputs.append(cor[(d1, d2)])
            elif request.pattern("corFile"):
                logger.warning("%s: no coherence GeoTIFF of mintpy.load.corFile has dates %s_%s", path,
                               d1.strftime("%Y%m%d"), d2.strftime("%Y%m%d"))
            if (d1, d2) in cc:
                layers["connectComponent"] = GdalRaster(str(cc[(d1, d2)]), nodata_to_nan=False)
                inputs.append(cc[(d1, d2)])
            bperp, bfile = baseline_for_pair_from(base_index, pars, d1, d2)
            if bfile is not None:
                inputs.append(bfile)
            pairs.append(PairSource(d1, d2, layers, bperp, str(path)))
        if all(p.bperp is None for p in pairs):
            logger.warning("no baseline matched the pairs (bperp = 0): set mintpy.load.bperpFile to the GAMMA "
                           "*base.par / *bperp.par files")
        attrs = self._attrs(grid, tags, pars, min(p.date1 for p in pairs), "ifgramStack")
        return StackSource(pairs, Metadata.from_attrs(attrs, source=str(files[0])), tuple(inputs))

    @staticmethod
    def _attrs(grid: Mapping[str, str], tags: Mapping[str, str], pars, date, file_type: str,
               quiet: bool = False) -> dict[str, str]:
        attrs = tag_attrs(tags)
        acq = pars.acquisition(date)
        if acq is not None:
            par_attrs = gp.acquisition_attrs(acq[1], str(acq[0]))
            if "WAVELENGTH" in attrs and "WAVELENGTH" in par_attrs:
                tag_wl, par_wl = float(attrs["WAVELENGTH"]), float(par_attrs["WAVELENGTH"])
                if abs(tag_wl - par_wl) > 1e-6 * par_wl and not quiet:
                    logger.info("WAVELENGTH: %s from %s (c / radar_frequency) replaces the GeoTIFF tag %s",
                                par_wl, acq[0].name, tag_wl)
            attrs.update(par_attrs)
        attrs.update(grid)
        processor = str({k.upper(): v for k, v in tags.items()}.get("INSAR_PROCESSOR", "")).strip().lower()
        attrs.update(FILE_TYPE=file_type, PROCESSOR=processor or "geotiff")
        return attrs

    # ---------------------------------------------------------- geometry
    def open_geometry(self, request: LoadRequest) -> list[GeometrySource] | None:
        files = request.files("unwFile")
        geo_layers: dict[str, object] = {}
        skip: set[str] = set()
        ref: Path | None = files[0] if files else None
        for key, name in (("demFile", "height"), ("incAngleFile", "incidenceAngle"), ("azAngleFile", "azimuthAngle"),
                          ("waterMaskFile", "waterMask"), ("shadowMaskFile", "shadowMask")):
            tifs = [p for p in request.files(key) if p.suffix.lower() in TIF_EXT]
            if not tifs:
                continue
            skip.add(key)
            ref = ref or tifs[0]
            raster = GdalRaster(str(tifs[0]), nodata_to_nan=name != "height")
            geo_layers[name] = raster
        if ref is None:
            return None
        ds = _open(ref)
        grid = grid_attrs(ref, ds)
        shape = (int(grid["LENGTH"]), int(grid["WIDTH"]))
        for name, raster in list(geo_layers.items()):
            if tuple(raster.shape) != shape:
                logger.warning("%s: %s is %s, not the stack's %s: ignored", raster.path, name, raster.shape, shape)
                del geo_layers[name]
        pars = request_pars(request)
        tags = ds.GetMetadata() or {}
        attrs = self._attrs(grid, tags, pars, None, "geometry", quiet=True)
        stack_grid = GridChoice(shape[0], shape[1], grid, ref, True)
        return build_geometry(request, pars, stack_grid, attrs["PROCESSOR"], stack_geo_attrs=grid,
                              extra_attrs=tag_attrs(tags), geo_layers=geo_layers, skip=skip,
                              extra_inputs=[ref])


@hookimpl
def sbts_readers():
    return [GeoTiffReader()]
