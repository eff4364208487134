"""An sbts/MintPy HDF5 file as an :class:`xarray.Dataset`: the face of ``sbts.open_dataset``.

xarray is the common currency of the Python geo ecosystem: from a Dataset users reach rioxarray
(GeoTIFF/COG), netCDF, zarr, hvplot.  The Dataset built here is a *view* of the file, nothing
more: every variable reads its HDF5 dataset on access (through :class:`H5Array`, which opens the
file for each read and holds no handle), chunked with dask when dask is installed, so opening a
4000 × 4000 × 300 time series reads only its attributes and index datasets.

Layout
    3-D datasets of a time series: dims ``(time, y, x)``, ``time`` as ``datetime64`` with the
    perpendicular baseline ``bperp(time)``; of an interferogram stack: ``(pair, y, x)`` with
    ``pair`` the ``DATE1_DATE2`` labels and ``date1``/``date2``/``bperp``/``dropIfgram`` along it;
    maps: ``(y, x)``.  Geocoded files carry the pixel-centre coordinates in ``y``/``x`` (plus
    ``lat``/``lon`` aliases for degree grids) and a ``spatial_ref`` coordinate in the CF /
    rioxarray form (CF grid-mapping attributes with ``crs_wkt``, plus ``spatial_ref`` and
    ``GeoTransform``), named by each variable's ``grid_mapping``; radar files carry pixel indices.  The file's root attributes (MintPy's)
    are the Dataset's ``attrs``; each variable has its ``units``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from xarray.core import indexing

from sbts.core.errors import InputError
from sbts.core.io.h5 import open_h5
from sbts.core.io.products import HdfEos5TimeSeries, IfgramStack, Product, TimeSeries

logger = logging.getLogger(__name__)

# index datasets: coordinates, not variables
_INDEX = {"date", "bperp", "dropIfgram", "sensingMid"}
_WGS84 = 4326


class H5Array(xr.backends.BackendArray):
    """One HDF5 dataset read on demand: opens the file for each read (no handle held), so it pickles
    to dask workers and a Dataset left open never locks the file.

    Parameters
    ----------
    path : pathlib.Path
    name : str
        Dataset path in the file.
    shape : tuple of int
    dtype : numpy.dtype
    """

    def __init__(self, path: Path, name: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.name, self.shape, self.dtype = Path(path), name, tuple(shape), np.dtype(dtype)

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER_1VECTOR,
                                                  self._read)

    def _read(self, key: tuple) -> np.ndarray:
        with open_h5(self.path) as f:
            ds = f[self.name]
            # h5py takes increasing index lists only: read the span, then pick (OUTER_1VECTOR: one list)
            picks = [(axis, k) for axis, k in enumerate(key) if isinstance(k, np.ndarray)]
            if not picks:
                return np.asarray(ds[key])
            axis, idx = picks[0]
            if idx.size == 0:
                span = list(key)
                span[axis] = slice(0, 0)
                return np.asarray(ds[tuple(span)])
            span = list(key)
            span[axis] = slice(int(idx.min()), int(idx.max()) + 1)
            kept = sum(1 for k in key[:axis] if not isinstance(k, (int, np.integer)))  # integers drop an axis
            return np.take(np.asarray(ds[tuple(span)]), idx - idx.min(), axis=kept)


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.dtype.kind == "S":
        return [v.decode("utf-8", "replace") for v in value.ravel()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def crs_attributes(epsg: int) -> dict[str, Any]:
    """The CF grid-mapping attributes of EPSG code ``epsg`` (``grid_mapping_name``, ellipsoid,
    projection parameters, ``crs_wkt``) plus ``spatial_ref`` (the WKT, where rioxarray and GDAL look).

    pyproj writes the CF form; without it GDAL's osr gives the WKT alone; without either, ``EPSG:<code>``.
    """
    try:
        from pyproj import CRS

        crs = CRS.from_epsg(int(epsg))
        attrs: dict[str, Any] = dict(crs.to_cf())
        attrs.setdefault("crs_wkt", crs.to_wkt())
    except ImportError:
        try:
            from osgeo import osr

            srs = osr.SpatialReference()
            srs.ImportFromEPSG(int(epsg))
            attrs = {"crs_wkt": srs.ExportToWkt()}
        except ImportError:  # pragma: no cover - GDAL is set up by scripts/setup.sh
            attrs = {"crs_wkt": f"EPSG:{epsg}"}
    attrs["spatial_ref"] = attrs["crs_wkt"]
    return attrs


def _coordinates(product: Product) -> dict[str, Any]:
    """``y``/``x`` (and ``lat``/``lon``, ``spatial_ref``) coordinates of the grid."""
    length, width = product.shape
    g = product.metadata.grid.geo
    if g is None:
        return {"y": ("y", np.arange(length), {"long_name": "azimuth line (radar pixel)"}),
                "x": ("x", np.arange(width), {"long_name": "range column (radar pixel)"})}
    ys = g.y_first + (np.arange(length) + 0.5) * g.y_step
    xs = g.x_first + (np.arange(width) + 0.5) * g.x_step
    degrees = (g.x_unit or "degrees").lower().startswith("deg")
    epsg = g.epsg or (_WGS84 if degrees else None)
    coords: dict[str, Any] = {}
    if degrees:
        coords["y"] = ("y", ys, {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north"})
        coords["x"] = ("x", xs, {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east"})
        coords["lat"] = ("y", ys, {"standard_name": "latitude", "units": "degrees_north"})
        coords["lon"] = ("x", xs, {"standard_name": "longitude", "units": "degrees_east"})
    else:
        coords["y"] = ("y", ys, {"standard_name": "projection_y_coordinate", "units": g.y_unit or "m"})
        coords["x"] = ("x", xs, {"standard_name": "projection_x_coordinate", "units": g.x_unit or "m"})
    if epsg is not None:
        attrs = crs_attributes(epsg)
        attrs["GeoTransform"] = " ".join(repr(float(v)) for v in g.geotransform())
        attrs["epsg"] = int(epsg)
        coords["spatial_ref"] = xr.Variable((), np.int64(0), attrs)
    return coords


def _index_coordinates(product: Product) -> dict[str, Any]:
    """``time`` (and ``bperp``) of a time series; ``pair`` with its dates, ``bperp``, ``dropIfgram`` of a stack."""
    if isinstance(product, TimeSeries):
        time = np.array([np.datetime64(d, "ns") for d in product.dates])
        return {"time": ("time", time), "bperp": ("time", np.asarray(product.bperp, np.float32),
                                                  {"units": "m", "long_name": "perpendicular baseline"})}
    if isinstance(product, IfgramStack):
        p = product.pairs
        return {"pair": ("pair", np.array(p.date12, dtype=object)),
                "date1": ("pair", np.array([np.datetime64(d, "ns") for d in p.date1])),
                "date2": ("pair", np.array([np.datetime64(d, "ns") for d in p.date2])),
                "bperp": ("pair", np.asarray(p.bperp, np.float32), {"units": "m"}),
                "dropIfgram": ("pair", np.asarray(p.keep, bool),
                               {"long_name": "kept in the network (MintPy's dropIfgram: True = kept)"})}
    return {}


def _dims(product: Product, short: str, shape: tuple[int, ...]) -> tuple[str, ...] | None:
    """Dimension names; the 3-D datasets of a time series with one layer per date (the displacement,
    and e.g. the truth's components) share ``time``."""
    ndim = len(shape)
    if ndim == 0:
        return ()
    if ndim == 1:
        return (f"{short}_index",)
    if ndim == 2:
        return ("y", "x")
    if ndim == 3:
        if isinstance(product, TimeSeries) and (short == product.dataset_name.rsplit("/", 1)[-1]
                                                or shape[0] == len(product.dates)):
            return ("time", "y", "x")
        if isinstance(product, IfgramStack):
            return ("pair", "y", "x")
        return (f"{short}_layer", "y", "x")
    return None


def _chunks(dims: tuple[str, ...], chunks: Any) -> Any:
    """``"auto"``: every date (or pair) of a block in one chunk, blocks sized by dask (pixel histories are
    one chunk read; a map reads the blocks of one layer range)."""
    if chunks != "auto":
        return chunks
    return {d: (-1 if len(dims) == 3 and d == dims[0] else "auto") for d in dims}


def open_dataset(path: str | os.PathLike, dataset: str | Sequence[str] | None = None, *,
                 chunks: Any = "auto"):
    """Open an sbts/MintPy HDF5 file as a lazy :class:`xarray.Dataset` (see the module doc for the layout)."""
    from sbts.core.viz.maps import dataset_unit

    product = Product.open(path)
    short_of = ({n: n.rsplit("/", 1)[-1] for n in product.datasets} if isinstance(product, HdfEos5TimeSeries)
                else {n: n for n in product.datasets})
    wanted = None
    if dataset is not None:
        wanted = [dataset] if isinstance(dataset, str) else list(dataset)
        by_short = {s: n for n, s in short_of.items()}
        missing = [d for d in wanted if d not in by_short and d not in short_of]
        index = [d for d in wanted if d.rsplit("/", 1)[-1] in _INDEX]
        if index:
            raise InputError(f"{product.path}: {index[0]!r} is a coordinate of every dataset, not a dataset of "
                             "its own; open the file without it")
        if missing:
            shown_names = ", ".join(s for s in short_of.values() if s not in _INDEX)
            raise InputError(f"{product.path}: no dataset {missing[0]!r} (has: {shown_names})")
        wanted = [by_short.get(d, d) for d in wanted]
    use_dask = chunks is not None
    if use_dask:
        try:
            import dask.array  # noqa: F401
        except ImportError:
            logger.info("dask is not installed: %s is opened lazily without chunks", product.path)
            use_dask = False
    coords = {**_coordinates(product), **_index_coordinates(product)}
    grid_mapping = "spatial_ref" if "spatial_ref" in coords else None
    variables: dict[str, Any] = {}
    with open_h5(product.path) as f:
        root_attrs = {k: _decode(v) for k, v in f.attrs.items()}
        for name, short in short_of.items():
            if short in _INDEX or (wanted is not None and name not in wanted):
                continue
            h5 = f[name]
            dims = _dims(product, short, tuple(h5.shape))
            if dims is None:
                logger.debug("%s: dataset %s (%d-D) left out", product.path, name, h5.ndim)
                continue
            attrs = {k: _decode(v) for k, v in h5.attrs.items()}
            unit = dataset_unit(product, name)
            if unit:
                attrs.setdefault("units", unit)
            if grid_mapping:
                attrs["grid_mapping"] = grid_mapping
            lazy = indexing.LazilyIndexedArray(H5Array(product.path, name, h5.shape, h5.dtype))
            var = xr.Variable(dims, lazy, attrs)
            if use_dask:
                var = var.chunk(_chunks(dims, chunks))
            variables[short] = var
    used_dims = {d for v in variables.values() for d in v.dims}
    coords = {k: v for k, v in coords.items()
              if k == "spatial_ref" or (v[0] if isinstance(v, tuple) else ()) in used_dims or k in ("y", "x")}
    ds = xr.Dataset(variables, coords=coords, attrs=root_attrs)
    ds.encoding["source"] = str(product.path)
    return ds


__all__ = ["open_dataset", "crs_attributes", "H5Array"]
