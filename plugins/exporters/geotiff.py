"""``sbts export geotiff``: geocoded maps as GeoTIFF files, for GIS software.

GDAL (``osgeo``) is imported only when a file is written, so listing plugins and ``sbts --help``
stay fast and work without GDAL.  Pixels are written block by block (memory bounded); the grid
comes from MintPy's ``X_FIRST/Y_FIRST`` (upper-left corner of the first pixel) and ``X_STEP/Y_STEP``.
"""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path

import numpy as np

from sbts.core.api import (
    Exporter,
    ExportRequest,
    IfgramStack,
    InputError,
    Metadata,
    PluginError,
    Product,
    TimeSeries,
    atomic_output,
    format_date,
    hookimpl,
    option_memory,
    parse_date,
    parse_options,
    plan_blocks,
    safe_part,
)

logger = logging.getLogger(__name__)

_DATE = re.compile(r"^\d{8}$")
_DATE12 = re.compile(r"^(\d{8})[_-](\d{8})$")
_TRUE = {"all", "yes", "true", "1"}


class GeoTiffExporter(Exporter):
    """One GeoTIFF per map, with its geotransform, CRS, nodata and MintPy attributes as tags."""

    name = "geotiff"
    summary = "GeoTIFF files of geocoded maps, time-series dates or whole stacks (GDAL)."
    description = textwrap.dedent("""\
    Writes one GeoTIFF per dataset of the file (all 2-D datasets when DATASET is not given), or one
    date of a time series (DATASET = YYYYMMDD), or one pair of a geocoded stack
    (DATASET = [unwrapPhase-]YYYYMMDD_YYYYMMDD), or every date of a 3-D dataset as bands
    (-O bands=all; band descriptions are the dates).  Several datasets: comma-separated.

    \b
    Georeferencing: geotransform from X_FIRST/Y_FIRST/X_STEP/Y_STEP, CRS from EPSG (or UTM_ZONE),
    EPSG:4326 for degree grids without one.  Float data: nodata = NaN.  Tags: FILE_TYPE, UNIT,
    REF_Y/REF_X/REF_LAT/REF_LON/REF_DATE, DATE or DATE12 (per band with bands=all).
    -o names the file (one output) or a folder (several); default: beside the input,
    <name>_<dataset or date>.tif.  Options: -O bands=all, -O compress=DEFLATE|LZW|NONE.""")
    requires_geocoded = True

    def export(self, request: ExportRequest) -> list[Path]:
        gdal, osr = _gdal()
        product = Product.open(request.input_file)
        if not product.metadata.grid.is_geocoded:  # direct API use (the export runner checks it too)
            raise InputError(f"{request.input_file} is in radar coordinates; GeoTIFF needs geocoded data: "
                             f"run `sbts geocode {request.input_file}` first")
        opts = parse_options(request, {"bands", "compress"}, "geotiff")
        bands = opts.get("bands", "").lower()
        if bands not in _TRUE | {"", "no", "false", "0"}:
            raise InputError(f"geotiff export: -O bands={bands!r}: use bands=all (every layer as a band) or leave it out")
        all_bands = bands in _TRUE
        compress = _compression(gdal, opts.get("compress", "DEFLATE"))
        max_memory = option_memory(opts, request.compute.max_memory if request.compute else 1.0, "geotiff")
        jobs = _jobs(product, request.dataset, all_bands)
        paths = _output_paths(product, jobs, request.output)
        srs = _srs(product.metadata, osr)
        threads = request.compute.num_worker if request.compute else 1
        for (dataset, index, label), path in zip(jobs, paths):
            _write(gdal, product, dataset, index, label, path, srs, compress, max_memory, threads)
            logger.info("wrote %s", path)
        return paths


# ---------------------------------------------------------------------------- selection
Job = tuple[str, "int | None | list[int]", "str | list[str]"]  # dataset, layer(s), label(s)


def _labels(product: Product) -> list[str]:
    if isinstance(product, TimeSeries):
        return list(product.date_strings)
    if isinstance(product, IfgramStack):
        return list(product.pairs.date12)
    return []


def _jobs(product: Product, dataset: str | None, all_bands: bool) -> list[Job]:
    maps = [d for d in product.datasets if len(product.dataset_shape(d)) == 2]
    cubes = [d for d in product.datasets if len(product.dataset_shape(d)) == 3]
    if not dataset:
        if not maps and not all_bands:
            raise InputError(f"{product.path}: name a date (YYYYMMDD) or a pair to export, "
                             "or pass -O bands=all to write every date as a band")
        names = maps + (cubes if all_bands else [])
    else:
        names = [n.strip() for n in dataset.split(",") if n.strip()]
    return [_job(product, n, all_bands) for n in names]


def _job(product: Product, name: str, all_bands: bool) -> Job:
    labels = _labels(product)
    if product.has(name):
        ndim = len(product.dataset_shape(name))
        if ndim == 2:
            return (name, None, "")
        if ndim == 3 and all_bands:
            n = product.dataset_shape(name)[0]
            return (name, list(range(n)), labels if len(labels) == n else [str(i) for i in range(n)])
        if ndim == 3:
            raise InputError(f"{product.path}: {name!r} has {product.dataset_shape(name)[0]} layers; name one "
                             "(YYYYMMDD, or DATASET-YYYYMMDD_YYYYMMDD for a stack) or pass -O bands=all")
        raise InputError(f"{product.path}: {name!r} is not a map (shape {product.dataset_shape(name)})")
    ds, sep, label = name.rpartition("-")
    if not sep:
        ds, label = "", name
    if isinstance(product, TimeSeries) and _DATE.match(label):
        i = product.date_index(label)
        return (ds or product.dataset_name, i, product.date_strings[i])
    m = _DATE12.match(label)
    if isinstance(product, IfgramStack) and m:
        key = f"{format_date(parse_date(m.group(1)))}_{format_date(parse_date(m.group(2)))}"
        if key not in labels:
            raise InputError(f"{product.path}: pair {key} is not in the stack")
        ds = ds or "unwrapPhase"
        product.dataset_shape(ds)  # raises, naming the datasets, when absent
        return (ds, labels.index(key), key)
    shown = [d for d in product.datasets if len(product.dataset_shape(d)) >= 2]
    hint = f"; dates: {labels[0]}..{labels[-1]}" if labels else ""
    raise InputError(f"{product.path}: no dataset or date {name!r} (datasets: {', '.join(shown) or 'none'}{hint})")


def _output_paths(product: Product, jobs: list[Job], output: Path | None) -> list[Path]:
    stem = product.path.stem

    def default(job: Job) -> str:
        dataset, index, label = job
        dataset = safe_part(dataset, "dataset name")  # a nested HDF5 path holds "/"
        label = label if not isinstance(index, int) else safe_part(label, "date")
        if isinstance(index, int):
            return f"{stem}_{label}.tif" if isinstance(product, TimeSeries) else f"{stem}_{dataset}_{label}.tif"
        whole_series = isinstance(product, TimeSeries) and dataset == product.dataset_name
        return f"{stem}.tif" if dataset == stem or whole_series else f"{stem}_{dataset}.tif"

    if output is None:
        return [product.path.with_name(default(j)) for j in jobs]
    output = Path(output)
    if len(jobs) == 1 and not output.is_dir() and output.suffix:
        return [output]
    output.mkdir(parents=True, exist_ok=True)
    return [output / default(j) for j in jobs]


# ---------------------------------------------------------------------------- writing
def _gdal():
    try:
        from osgeo import gdal, osr
    except ImportError as exc:
        raise PluginError(f"the geotiff exporter needs GDAL's Python bindings ({exc}); "
                          "install them to match the system GDAL (see README: pip install sbts[gdal])") from None
    gdal.UseExceptions()
    osr.UseExceptions()
    return gdal, osr


def _compression(gdal, value: str) -> str:
    """``-O compress=`` checked against what this GDAL's GTiff driver offers (GDAL would only warn
    and write the file uncompressed)."""
    import xml.etree.ElementTree as ET

    value = value.strip().upper()
    if value == "NONE":
        return value
    offered: list[str] = []
    text = gdal.GetDriverByName("GTiff").GetMetadataItem("DMD_CREATIONOPTIONLIST") or ""
    try:
        for option in ET.fromstring(text).iter("Option"):
            if option.get("name") == "COMPRESS":
                offered = [v.text.strip().upper() for v in option.iter("Value") if v.text]
    except ET.ParseError:
        offered = []
    if offered and value not in offered:
        raise InputError(f"geotiff export: -O compress={value[:40]!r} is not offered by this GDAL "
                         f"(one of: {', '.join(offered)})")
    if not offered and not re.fullmatch(r"[A-Z0-9_]{1,20}", value):
        raise InputError(f"geotiff export: -O compress={value[:40]!r}: give a GDAL compression name (DEFLATE, LZW, NONE)")
    return value


def _srs(meta: Metadata, osr):
    """The CRS: EPSG attribute, else UTM_ZONE (e.g. 33N), else EPSG:4326 for degree grids."""
    geo = meta.grid.geo
    srs = osr.SpatialReference()
    epsg = geo.epsg
    zone = meta.extra.get("UTM_ZONE", "").strip().upper()
    if epsg is None and zone:
        m = re.match(r"^(\d{1,2})([A-Z]?)$", zone)
        if m:
            north = m.group(2) == "" or m.group(2) >= "N"
            epsg = (32600 if north else 32700) + int(m.group(1))
    if epsg is None:
        if not geo.x_unit.lower().startswith("deg"):
            logger.warning("%s grid without EPSG or UTM_ZONE: the GeoTIFF has no CRS", geo.x_unit)
            return None
        epsg = 4326
    srs.ImportFromEPSG(int(epsg))
    if hasattr(osr, "OAMS_TRADITIONAL_GIS_ORDER"):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _gdal_type(gdal, dtype: np.dtype) -> tuple[int, np.dtype]:
    dtype = np.dtype(dtype)
    table = {
        "b": (gdal.GDT_Byte, np.uint8), "u1": (gdal.GDT_Byte, np.uint8), "i1": (gdal.GDT_Int16, np.int16),
        "i2": (gdal.GDT_Int16, np.int16), "u2": (gdal.GDT_UInt16, np.uint16), "i4": (gdal.GDT_Int32, np.int32),
        "u4": (gdal.GDT_UInt32, np.uint32), "f8": (gdal.GDT_Float64, np.float64),
        "c8": (gdal.GDT_CFloat32, np.complex64), "c16": (gdal.GDT_CFloat64, np.complex128),
    }
    key = "b" if dtype.kind == "b" else f"{dtype.kind}{dtype.itemsize}"
    return table.get(key, (gdal.GDT_Float32, np.float32))


def _dtype(product: Product, name: str) -> np.dtype:
    from sbts.core.api import open_h5

    with open_h5(product.path) as f:
        return f[name].dtype


def _tags(meta: Metadata, dataset: str) -> dict[str, str]:
    attrs = meta.to_attrs()
    tags = {k: attrs[k] for k in ("FILE_TYPE", "UNIT", "REF_Y", "REF_X", "REF_LAT", "REF_LON", "REF_DATE",
                                  "WAVELENGTH", "PROCESSOR", "START_DATE", "END_DATE", "DATE12") if k in attrs}
    from sbts.core.api import UNITS

    if "UNIT" not in tags and dataset in UNITS:
        tags["UNIT"] = UNITS[dataset]
    tags["DATASET"] = dataset
    return tags


def _write(gdal, product: Product, dataset: str, index, label, path: Path, srs, compress: str,
           max_memory: float, threads: int = 1) -> None:
    """Write one GeoTIFF, block by block.  Compressing the tiles is the work (reading a block costs
    little beside it): GDAL compresses them on ``threads`` threads (the run's workers) as it flushes,
    and the file is byte for byte the one a single thread writes."""
    meta = product.metadata
    length, width = meta.grid.shape
    layers = index if isinstance(index, list) else [index]
    gtype, npdtype = _gdal_type(gdal, _dtype(product, dataset))
    floating = np.dtype(npdtype).kind == "f"
    options = ["TILED=YES", "BIGTIFF=IF_SAFER"] + ([f"COMPRESS={compress}"] if compress != "NONE" else [])
    if compress != "NONE" and threads > 1:
        options.append(f"NUM_THREADS={int(threads)}")
    size = length * width * len(layers) * np.dtype(npdtype).itemsize
    with atomic_output(path, size if compress == "NONE" else 0) as tmp:
        ds = gdal.GetDriverByName("GTiff").Create(str(tmp), width, length, len(layers), gtype, options=options)
        try:
            ds.SetGeoTransform(meta.grid.geo.geotransform())
            if srs is not None:
                ds.SetProjection(srs.ExportToWkt())
            tags = _tags(meta, dataset)
            if isinstance(index, int):
                tags["DATE" if _DATE.match(str(label)) else "DATE12"] = str(label)
            elif isinstance(index, list):
                tags["DATES" if all(_DATE.match(str(x)) for x in label) else "DATE12S"] = ",".join(map(str, label))
            ds.SetMetadata(tags)
            ds.SetMetadataItem("AREA_OR_POINT", "Area")  # X_FIRST/Y_FIRST are pixel corners
            bands = [ds.GetRasterBand(b + 1) for b in range(len(layers))]
            for b, band in enumerate(bands):
                if floating:
                    band.SetNoDataValue(float("nan"))
                if isinstance(index, list):
                    band.SetDescription(str(label[b]))
                    band.SetMetadataItem("DATE" if _DATE.match(str(label[b])) else "DATE12", str(label[b]))
                elif tags.get("UNIT"):
                    band.SetUnitType(tags["UNIT"])
            itemsize = np.dtype(npdtype).itemsize
            for block in plan_blocks((length, width), itemsize * 3 * len(layers), max_memory, product.chunk_shape(dataset)):
                if index is None:
                    data = product.read(dataset, block)[None]
                elif isinstance(index, int):
                    data = product.read(dataset, block, index)[None]
                else:
                    data = product.read(dataset, block)
                for band, layer in zip(bands, data):
                    band.WriteArray(np.asarray(layer).astype(npdtype, copy=False), block.col_start, block.row_start)
            ds.FlushCache()
        finally:
            bands = None  # the bands keep the dataset open
            closing, ds = ds, None
            if hasattr(closing, "Close"):
                closing.Close()  # GDAL ≥ 3.8: a failed final write is reported here
            closing = None


@hookimpl
def sbts_exporters():
    return [GeoTiffExporter()]
